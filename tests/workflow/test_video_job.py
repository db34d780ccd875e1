"""Every path through statemachine/video_job.asl.json, executed for real (moto) with the real handlers."""

from __future__ import annotations

import hashlib

import pytest

from tests.support.images import reference_data_url
from tests.workflow.conftest import MAX_POLLS, Pipeline

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
