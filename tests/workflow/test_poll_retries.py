"""Poll errors are retried by the state machine (Retry on TransientError), and a poll that keeps
failing still ends the job as failed with an event (Catch → RecordError)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.scripted_http import Canned, ScriptedServer
from tests.workflow.conftest import Pipeline
from videogen.jobs import JobStore
from videogen.models import Job, JobStatus, OpenRouterJob, VideoRequest
from videogen.services import new_job_id
from videogen_local.localmode.stack import LocalStack, LocalStackConfig

ERROR_503 = Canned(503, {"error": {"code": 503, "message": "No available provider"}})


@pytest.fixture(scope="module")
def openrouter() -> Iterator[ScriptedServer]:
    with ScriptedServer("127.0.0.1") as server:
        yield server


@pytest.fixture(scope="module")
def scripted(openrouter: ScriptedServer) -> Iterator[Pipeline]:
    """The local stack pointed at a scripted OpenRouter: jobs are only polled on the API origin."""
    config = LocalStackConfig(poll_interval=0, max_polls=3, openrouter_base_url=openrouter.url, openrouter_api_key="k")
    with LocalStack(config) as stack:
        yield Pipeline(stack)


def start(pipeline: Pipeline, server: ScriptedServer, job_id: str) -> None:
    """A submitted job whose polling_url points at the scripted server, and its execution."""
    store = JobStore(pipeline.info["jobs_table"])
    store.create(Job(id=job_id, status=JobStatus.QUEUED, request=VideoRequest(prompt="p")))
    polling_url = f"{server.url}/api/v1/videos/or-{job_id}"
    store.mark_submitted(job_id, OpenRouterJob(id=f"or-{job_id}", status="pending"), polling_url)
    pipeline.aws("stepfunctions").start_execution(
        stateMachineArn=pipeline.info["state_machine_arn"],
        name=job_id,
        input=json.dumps(
            {
                "job_id": job_id,
                "openrouter_job_id": f"or-{job_id}",
                "polling_url": polling_url,
                "wait_seconds": 0,
                "max_polls": 3,
                "poll": {"status": "pending", "poll_count": 0},
            }
        ),
    )


def test_poll_errors_are_retried_then_the_job_continues(scripted: Pipeline, openrouter: ScriptedServer) -> None:
    # Four 503s exhaust the client's own attempts once; the state machine's Retry then polls again.
    job_id = new_job_id()
    answer = Canned(200, {"id": f"or-{job_id}", "status": "failed", "error": "boom"})
    openrouter.on("GET", f"/api/v1/videos/or-{job_id}", *([ERROR_503] * 4), answer)
    start(scripted, openrouter, job_id)
    execution = scripted.execution(job_id, timeout=60)
    assert execution["status"] == "SUCCEEDED"
    history = scripted.history(execution["executionArn"])
    failed = [e for e in history if e["type"] in ("LambdaFunctionFailed", "TaskFailed")]
    assert failed, "the first poll attempt should have failed and been retried"
    job = scripted.job_record(job_id)
    assert job["status"] == "failed" and job["error"] == "boom"


def test_a_poll_that_keeps_failing_ends_the_job_with_an_event(scripted: Pipeline, openrouter: ScriptedServer) -> None:
    job_id = new_job_id()
    refused = Canned(401, {"error": {"code": 401, "message": "Invalid API key"}})
    openrouter.on("GET", f"/api/v1/videos/or-{job_id}", refused)
    start(scripted, openrouter, job_id)
    execution = scripted.execution(job_id, timeout=60)
    assert execution["status"] == "FAILED" and execution.get("error") == "VideoJobFailed"
    job = scripted.job_record(job_id)
    assert job["status"] == "failed" and "Invalid API key" in job["error"]
    [event] = scripted.events_for(job_id)
    assert event["detail-type"] == "VideoFailed"
