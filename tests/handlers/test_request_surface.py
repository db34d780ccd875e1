"""OpenRouter's whole request surface through the API door: continuing a completed job of one's own,
provider passthrough checked against the model, audio and video references, image-only requests."""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.handlers.conftest import Env
from tests.support.handlers import invoke, sample_event
from tests.support.scripted_http import Canned
from videogen.jobs import JobStore
from videogen.models import Job, JobStatus, OpenRouterJob, VideoRequest

MINE = "arn:aws:iam::123456789012:user/caller"  # the sample event's caller
PREVIOUS = "fedcba9876543210fedcba9876543210"


def post(body: dict[str, Any], caller: str = MINE) -> dict[str, Any]:
    event = copy.deepcopy(sample_event("api_post_videos"))
    event["requestContext"]["identity"]["userArn"] = caller
    event["body"] = json.dumps(body)
    response: dict[str, Any] = invoke("api", event)
    return response


def submit(job_id: str) -> None:
    event = copy.deepcopy(sample_event("sqs_submit"))
    event["Records"][0]["body"] = json.dumps({"job_id": job_id})
    assert invoke("submit", event) == {"batchItemFailures": []}


def completed_job(caller: str, status: JobStatus = JobStatus.COMPLETED) -> None:
    store = JobStore("videogen-jobs")
    store.create(Job(id=PREVIOUS, status=JobStatus.QUEUED, request=VideoRequest(prompt="first cut"), caller=caller))
    store.mark_submitted(PREVIOUS, OpenRouterJob(id="gen-vid-previous", status="pending"), "https://x/api/v1/videos/p")
    store.finish(PREVIOUS, status)


def test_a_completed_job_of_ones_own_is_continued_by_its_openrouter_id(env: Env) -> None:
    completed_job(MINE)
    response = post({"prompt": "extend it by four seconds", "previous_job_id": PREVIOUS})
    assert response["statusCode"] == 202
    job_id = json.loads(response["body"])["id"]
    env.openrouter.on(
        "POST", "/api/v1/videos", Canned(202, {"id": "gen-vid-next", "polling_url": "/x", "status": "pending"})
    )
    submit(job_id)
    [sent] = env.openrouter.requests_to("/api/v1/videos")
    assert json.loads(sent.body)["previous_job_id"] == "gen-vid-previous"  # OpenRouter's id, not videogen's


def test_another_owners_job_is_404_and_an_unfinished_one_422(env: Env) -> None:
    completed_job("arn:aws:iam::123456789012:user/someone-else")
    response = post({"prompt": "p", "previous_job_id": PREVIOUS})
    assert response["statusCode"] == 404
    assert json.loads(response["body"])["error"]["fields"][0]["field"] == "previous_job_id"
    assert post({"prompt": "p", "previous_job_id": "no-such-job"})["statusCode"] == 404
    assert env.queued_job_ids() == []


def test_a_failed_previous_job_cannot_be_continued(env: Env) -> None:
    completed_job(MINE, JobStatus.FAILED)
    response = post({"prompt": "p", "previous_job_id": PREVIOUS})
    assert response["statusCode"] == 422 and "failed" in json.loads(response["body"])["error"]["fields"][0]["message"]


def test_passthrough_parameters_are_checked_against_the_model(env: Env) -> None:
    # The scripted catalogue's Seedance allows no passthrough parameter.
    options = {"byteplus": {"parameters": {"watermark": False}}}
    response = post({"prompt": "p", "provider": {"options": options}})
    assert response["statusCode"] == 422
    [field] = json.loads(response["body"])["error"]["fields"]
    assert field["field"] == "provider.options.byteplus.parameters.watermark"
    assert env.queued_job_ids() == []


def test_an_image_only_request_and_audio_references_are_accepted(env: Env) -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    audio = {"type": "audio_url", "audio_url": {"url": "https://example.com/a.mp3"}}
    assert post({"input_references": [image, audio]})["statusCode"] == 202
    assert post({"input_references": [audio]})["statusCode"] == 422  # no image input: a prompt is required
