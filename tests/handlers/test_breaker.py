"""The submit function with the credit breaker (videogen.breaker): an account-wide refusal pauses the job
instead of failing it, the message comes back with a delay (never towards the DLQ), one probe at a time
finds the credits back, and refusals about the job itself still fail it at once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.handlers.conftest import Env
from tests.support.handlers import invoke, sample_event
from tests.support.scripted_http import Canned
from videogen.aws import client
from videogen.jobs import JobStore
from videogen.models import Job, JobStatus, VideoRequest
from videogen.services import get_services, reset_services

ACCEPTED = {"id": "job-abc123", "polling_url": "/api/v1/videos/job-abc123", "status": "pending"}
NO_CREDITS = Canned(
    402, {"error": {"code": 402, "message": "Insufficient credits. Add more using https://openrouter.ai/credits"}}
)


@pytest.fixture
def breaker_env(control_table: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("BREAKER_PROBE_SECONDS", "1")
    monkeypatch.setenv("BREAKER_MAX_PROBE_SECONDS", "4")
    reset_services()
    yield control_table


def queued(job_id: str) -> None:
    request = VideoRequest.model_validate(sample_event("eventbridge_video_requested")["detail"])
    JobStore("videogen-jobs").create(Job(id=job_id, status=JobStatus.QUEUED, request=request))


def job(job_id: str) -> Job:
    found = JobStore("videogen-jobs").get(job_id)
    assert found is not None
    return found


def message(job_id: str, **extra: Any) -> dict[str, Any]:
    event = sample_event("sqs_submit")
    event["Records"][0] = {
        **event["Records"][0],
        "messageId": f"m-{job_id}",
        "body": json.dumps({"job_id": job_id, **extra}),
    }
    return event


def deferred(env: Env, wait: float = 6.0) -> list[dict[str, Any]]:
    """The messages the submit function sent back, once their delay has passed (and removed from the queue)."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        for m in client("sqs").receive_message(QueueUrl=env.queue_url, MaxNumberOfMessages=10).get("Messages", []):
            found.append(json.loads(m["Body"]))
            client("sqs").delete_message(QueueUrl=env.queue_url, ReceiptHandle=m["ReceiptHandle"])
        if found:
            return found
        time.sleep(0.2)
    return found


def posts(env: Env) -> int:
    return len(env.openrouter.requests_to("/api/v1/videos"))


def test_no_credits_pauses_the_job_instead_of_failing_it_and_the_message_comes_back(breaker_env: Env) -> None:
    queued("job-1")
    breaker_env.openrouter.on("POST", "/api/v1/videos", NO_CREDITS)
    before = time.time()
    # The record is not a batch item failure: its copy is on the queue, so no receive counts towards the DLQ.
    assert invoke("submit", message("job-1")) == {"batchItemFailures": []}
    paused = job("job-1")
    assert paused.status is JobStatus.QUEUED and paused.submit_attempts == 0 and paused.error is None
    assert breaker_env.events() == []
    view = get_services().breaker.view(time.time())  # type: ignore[union-attr]
    assert (
        view.state == "open" and view.reason == "insufficient_credits" and "Insufficient credits" in str(view.message)
    )
    # Immediately after, nothing is visible: the copy is delayed until the probe is due.
    assert client("sqs").receive_message(QueueUrl=breaker_env.queue_url).get("Messages") is None
    [copy] = deferred(breaker_env)
    assert copy["job_id"] == "job-1" and before <= copy["paused_since"] <= time.time()


def test_while_open_no_submission_reaches_openrouter_and_every_job_waits(breaker_env: Env) -> None:
    for job_id in ("job-1", "job-2", "job-3"):
        queued(job_id)
    breaker_env.openrouter.on("POST", "/api/v1/videos", NO_CREDITS)
    invoke("submit", message("job-1"))
    assert posts(breaker_env) == 1
    for job_id in ("job-2", "job-3"):
        assert invoke("submit", message(job_id)) == {"batchItemFailures": []}
    assert posts(breaker_env) == 1
    assert all(job(j).status is JobStatus.QUEUED for j in ("job-1", "job-2", "job-3"))
    assert sorted(m["job_id"] for m in deferred(breaker_env) + deferred(breaker_env, 2)) == ["job-1", "job-2", "job-3"]


def test_a_refused_probe_backs_off_and_an_accepted_one_resumes_every_job(breaker_env: Env) -> None:
    queued("job-1")
    queued("job-2")
    breaker_env.openrouter.on(
        "POST",
        "/api/v1/videos",
        NO_CREDITS,
        NO_CREDITS,
        Canned(202, ACCEPTED),
        Canned(202, {**ACCEPTED, "id": "job-def456"}),
    )
    invoke("submit", message("job-1"))  # trips: first probe in 1 s
    [copy] = deferred(breaker_env)
    invoke("submit", message("job-1", paused_since=copy["paused_since"]))  # the probe, refused: interval 2 s
    breaker = get_services().breaker
    assert breaker is not None and breaker.view(time.time()).probe_interval_seconds == 2
    assert posts(breaker_env) == 2 and job("job-1").status is JobStatus.QUEUED
    invoke("submit", message("job-2"))  # waits for the next probe, unsent
    assert posts(breaker_env) == 2
    copies = deferred(breaker_env) + deferred(breaker_env, 3)
    first = next(c for c in copies if c["job_id"] == "job-1")
    invoke("submit", message("job-1", paused_since=first["paused_since"]))  # the second probe: accepted
    assert job("job-1").status is JobStatus.SUBMITTED
    assert breaker.view(time.time()).state == "closed"
    invoke("submit", message("job-2"))
    assert job("job-2").status is JobStatus.SUBMITTED and posts(breaker_env) == 4


def test_retry_after_on_an_in_flight_budget_402_sets_the_next_probe(breaker_env: Env) -> None:
    queued("job-1")
    breaker_env.openrouter.on(
        "POST",
        "/api/v1/videos",
        Canned(
            402,
            {
                "error": {
                    "code": 402,
                    "message": "in-flight budget",
                    "metadata": {"limit_source": "openrouter_in_flight_budget"},
                }
            },
            headers={"Retry-After": "3"},
        ),
    )
    now = time.time()
    invoke("submit", message("job-1"))
    view = get_services().breaker.view(time.time())  # type: ignore[union-attr]
    assert view.reason == "in_flight_budget" and view.next_probe_at == pytest.approx(now + 3, abs=1)
    assert job("job-1").status is JobStatus.QUEUED


def test_a_key_limit_403_pauses_but_a_guardrail_block_or_a_bad_request_fails_at_once(breaker_env: Env) -> None:
    queued("job-1")
    queued("job-2")
    queued("job-3")
    breaker_env.openrouter.on(
        "POST",
        "/api/v1/videos",
        Canned(403, {"error": {"code": 403, "message": "Request blocked by guardrail", "metadata": None}}),
    )
    invoke("submit", message("job-1"))
    assert job("job-1").status is JobStatus.FAILED and "guardrail" in str(job("job-1").error)
    breaker_env.openrouter.on(
        "POST", "/api/v1/videos", Canned(400, {"error": {"code": 400, "message": "Invalid request parameters"}})
    )
    invoke("submit", message("job-2"))
    assert job("job-2").status is JobStatus.FAILED
    assert get_services().breaker.view(time.time()).state == "closed"  # type: ignore[union-attr]
    breaker_env.openrouter.on(
        "POST",
        "/api/v1/videos",
        Canned(
            403,
            {
                "error": {
                    "code": 403,
                    "message": "Key limit exceeded",
                    "metadata": {"limit_source": "openrouter_key_limit"},
                }
            },
        ),
    )
    invoke("submit", message("job-3"))
    assert job("job-3").status is JobStatus.QUEUED
    assert get_services().breaker.view(time.time()).reason == "key_limit"  # type: ignore[union-attr]


def test_a_job_that_waited_longer_than_the_limit_fails_unsubmitted(
    breaker_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued("job-1")
    breaker_env.openrouter.on("POST", "/api/v1/videos", NO_CREDITS)
    invoke("submit", message("job-1"))
    monkeypatch.setenv("SUBMIT_PAUSE_LIMIT_SECONDS", "3600")
    reset_services()
    invoke("submit", message("job-1", paused_since=time.time() - 3601))
    failed = job("job-1")
    assert failed.status is JobStatus.FAILED and "nothing was sent or billed" in str(failed.error)
    assert posts(breaker_env) == 1
    [event] = breaker_env.events()
    assert event["detail-type"] == "VideoFailed"


def test_without_a_control_table_an_account_refusal_fails_the_job_as_before(env: Env) -> None:
    queued("job-1")
    env.openrouter.on("POST", "/api/v1/videos", NO_CREDITS)
    invoke("submit", message("job-1"))
    assert job("job-1").status is JobStatus.FAILED and "Insufficient credits" in str(job("job-1").error)


def test_health_and_models_show_the_breaker_and_the_compatible_models_route_does_not(breaker_env: Env) -> None:
    from tests.handlers.test_api import request

    def submission(path: str) -> dict[str, Any]:
        response = request("GET", path)
        assert response["statusCode"] == 200
        body: dict[str, Any] = json.loads(response["body"])["submission"]
        return body

    assert submission("/health")["state"] == "closed" and submission("/models")["state"] == "closed"
    queued("job-1")
    breaker_env.openrouter.on("POST", "/api/v1/videos", NO_CREDITS)
    invoke("submit", message("job-1"))
    health = submission("/health")
    assert health["state"] == "open" and health["reason"] == "insufficient_credits" and health["trips"] == 1
    assert health["next_probe_at"] and "Insufficient credits" in health["message"]
    assert submission("/models") == health
    # OpenRouter's own route answers as OpenRouter does: the model list alone.
    from tests.handlers.test_gateway import compatible

    compatible_models = json.loads(compatible("GET", "/api/v1/videos/models")["body"])
    assert set(compatible_models) == {"data"}
