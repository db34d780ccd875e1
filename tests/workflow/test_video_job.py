"""Every path through statemachine/video_job.asl.json, executed for real (moto) with the real handlers."""

from __future__ import annotations

import hashlib
import time
import uuid

import httpx
import pytest

from tests.support.images import reference_data_url
from tests.workflow.conftest import MAX_POLLS, Pipeline
from videogen.jobs import JobStore
from videogen.models import Job, JobStatus, VideoRequest, WorkflowInput
from videogen.nudge import NudgeResult, nudge
from videogen.services import get_services

REFERENCE = reference_data_url()


def request(prompt: str) -> dict[str, object]:
    return {
        "prompt": prompt,
        "duration": 4,
        "resolution": "480p",
        "aspect_ratio": "16:9",
        "input_references": [{"type": "image_url", "image_url": {"url": REFERENCE}}],
    }


def test_completed_job_stores_a_verified_mp4_and_emits_one_event(pipeline: Pipeline) -> None:
    job_id = pipeline.submit(**request("a backpack on a wet sidewalk"))
    job = pipeline.wait(job_id)
    assert job["status"] == "completed", job
    assert job["polls"] == ["pending", "in_progress", "completed"]
    assert job["usage"]["cost"] > 0 and job["cost_usd"] == job["usage"]["cost"]
    assert job["poll_count"] == 3 and job["openrouter_status"] == "completed" and job["elapsed_seconds"] > 0
    body = pipeline.aws("s3").get_object(Bucket=pipeline.info["bucket"], Key=f"videos/{job_id}.mp4")["Body"].read()
    assert body[4:8] == b"ftyp" and len(body) == job["video"]["bytes"]
    assert hashlib.sha256(body).hexdigest() == job["video"]["sha256"]
    simulated = pipeline.stack.simulator.jobs[job["openrouter_job_id"]]  # type: ignore[union-attr]
    assert simulated.sha256 == job["video"]["sha256"]
    execution = pipeline.execution(job_id)
    assert execution["status"] == "SUCCEEDED"
    [event] = pipeline.events_for(job_id)
    assert event["detail-type"] == "VideoCompleted" and event["detail"]["video"]["sha256"] == job["video"]["sha256"]


@pytest.mark.parametrize("outcome", ["failed", "cancelled", "expired"])
def test_terminal_failures_record_openrouter_error_verbatim(pipeline: Pipeline, outcome: str) -> None:
    job_id = pipeline.submit(**request(f"a backpack [sim:outcome={outcome}]"))
    job = pipeline.wait(job_id)
    assert job["status"] == outcome
    assert job["polls"][-1] == outcome
    simulated = pipeline.stack.simulator.jobs[job["openrouter_job_id"]]  # type: ignore[union-attr]
    assert job["error"] == simulated.error and job["error"]
    assert pipeline.execution(job_id)["status"] == "SUCCEEDED"
    [event] = pipeline.events_for(job_id)
    assert event["detail-type"] == "VideoFailed" and event["detail"]["status"] == outcome
    assert event["detail"]["error"] == job["error"]


def test_a_job_that_never_finishes_times_out_after_max_polls(pipeline: Pipeline) -> None:
    job_id = pipeline.submit(**request("a backpack [sim:outcome=never]"))
    job = pipeline.wait(job_id)
    assert job["status"] == "timed_out"
    assert len(job["polls"]) == MAX_POLLS and f"after {MAX_POLLS} polls" in job["error"]
    assert pipeline.execution(job_id)["status"] == "SUCCEEDED"
    [event] = pipeline.events_for(job_id)
    assert event["detail-type"] == "VideoFailed" and event["detail"]["status"] == "timed_out"


def test_state_transitions_per_poll_cycle(pipeline: Pipeline) -> None:
    job_id = pipeline.submit(**request("count the transitions [sim:polls=4]"))
    assert pipeline.wait(job_id)["status"] == "completed"
    history = pipeline.history(pipeline.execution(job_id)["executionArn"])
    entered = [e for e in history if e["type"].endswith("StateEntered")]
    names = [e["stateEnteredEventDetails"]["name"] for e in entered]
    # Wait, Poll, Route per cycle; then Download.
    assert names == ["WaitBeforePoll", "Poll", "RouteOnStatus"] * 4 + ["Download"]


def test_the_state_machines_download_waits_while_a_callbacks_download_holds_the_claim(pipeline: Pipeline) -> None:
    """A callback's download holds the claim: the execution's Download catches DownloadBusy and goes back to
    waiting (instead of failing the job); the callback then completes the job and the execution ends
    without a second transfer, with one event."""
    store = JobStore(pipeline.info["jobs_table"])
    job_id = pipeline.submit(**request("a callback downloads this one [sim:polls=2]"))
    assert store.claim_download(job_id, "callback:workflow-test", time.time(), 900)
    deadline = time.monotonic() + 30
    while len(pipeline.job_record(job_id)["polls"]) < 4:  # completed, busy, polled again, busy again
        assert time.monotonic() < deadline, pipeline.job_record(job_id)
        time.sleep(0.05)
    openrouter_id = pipeline.job_record(job_id)["openrouter_job_id"]
    assert nudge(get_services(), openrouter_id, owner="callback:workflow-test") is NudgeResult.COMPLETED
    execution = pipeline.execution(job_id)
    assert execution["status"] == "SUCCEEDED"
    names = [
        e["stateEnteredEventDetails"]["name"]
        for e in pipeline.history(execution["executionArn"])
        if e["type"].endswith("StateEntered")
    ]
    assert names[names.index("Download") + 1] == "WaitBeforePoll"
    # It ended where it met the ended job: its Poll (JobAlreadyEnded) or a Download already under way (a no-op).
    assert names[-1] in ("JobAlreadyEnded", "Download")
    [event] = pipeline.events_for(job_id)
    assert event["detail-type"] == "VideoCompleted"


def test_a_job_a_callback_completed_ends_its_execution_at_the_next_poll_without_openrouter(
    pipeline: Pipeline,
) -> None:
    """The execution is waiting (1 s here, 30 s deployed) when the callback's nudge completes the job: its next
    Poll reads the ended job and stops (JobAlreadyEnded); OpenRouter saw the nudge's poll only."""
    simulator = pipeline.stack.simulator
    assert simulator is not None
    accepted = httpx.post(
        f"{simulator.base_url}/api/v1/videos",
        json={**request("completed by a callback [sim:polls=1]"), "model": "bytedance/seedance-2.0-fast"},
        headers={"Authorization": f"Bearer {simulator.config.api_key}"},
        timeout=30,
    ).json()
    job_id, openrouter_id = uuid.uuid4().hex, accepted["id"]
    polling_url = f"{simulator.base_url}/api/v1/videos/{openrouter_id}"
    JobStore(pipeline.info["jobs_table"]).create(
        Job(
            id=job_id,
            status=JobStatus.SUBMITTED,
            request=VideoRequest.model_validate(request("completed by a callback [sim:polls=1]")),
            openrouter_job_id=openrouter_id,
            polling_url=polling_url,
        )
    )
    # The nudge lands while the execution would be waiting; it is started after it here so that the order is
    # certain (a loaded machine could otherwise let the Wait end first, the race the test above covers).
    assert nudge(get_services(), openrouter_id, owner="callback:m-1") is NudgeResult.COMPLETED
    workflow = WorkflowInput(
        job_id=job_id, openrouter_job_id=openrouter_id, polling_url=polling_url, wait_seconds=1, max_polls=MAX_POLLS
    )
    pipeline.aws("stepfunctions").start_execution(
        stateMachineArn=pipeline.info["state_machine_arn"], name=job_id, input=workflow.model_dump_json()
    )
    execution = pipeline.execution(job_id)
    assert execution["status"] == "SUCCEEDED"
    names = [
        e["stateEnteredEventDetails"]["name"]
        for e in pipeline.history(execution["executionArn"])
        if e["type"].endswith("StateEntered")
    ]
    assert names == ["WaitBeforePoll", "Poll", "RouteOnStatus", "JobAlreadyEnded"]
    assert simulator.jobs[openrouter_id].polls == 1
    [event] = pipeline.events_for(job_id)
    assert event["detail-type"] == "VideoCompleted"
