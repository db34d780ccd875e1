"""The submit function with adaptive pressure (videogen.pressure): a 429 or 503 slows every submission
down instead of spending the message's attempts, the refused message comes back after Retry-After, and
accepted submissions bring the rate back."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.handlers.conftest import Env
from tests.handlers.test_breaker import ACCEPTED, deferred, job, message, posts, queued
from tests.support.handlers import invoke
from tests.support.scripted_http import Canned
from videogen.aws import client
from videogen.models import JobStatus
from videogen.services import get_services, reset_services

RATE_LIMITED = Canned(429, {"error": {"code": 429, "message": "Rate limit exceeded"}}, headers={"Retry-After": "2"})


@pytest.fixture
def pressure_env(control_table: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("SUBMIT_MAX_RATE", "10")
    monkeypatch.setenv("PRESSURE_RECOVERY_STEP", "2")
    reset_services()
    yield control_table


def shared_rate() -> float | None:
    pressure = get_services().pressure
    assert pressure is not None
    return pressure.rate()


def test_a_429_slows_everyone_and_spends_no_attempt(pressure_env: Env) -> None:
    queued("job-1")
    pressure_env.openrouter.on("POST", "/api/v1/videos", RATE_LIMITED)
    sent = time.time()
    assert invoke("submit", message("job-1")) == {"batchItemFailures": []}
    # Not retried in the invocation (the shared pace decides), no attempt spent, the job still queued.
    assert posts(pressure_env) == 1
    paused = job("job-1")
    assert paused.status is JobStatus.QUEUED and paused.submit_attempts == 0
    assert shared_rate() == 5
    # Back on the queue after Retry-After (2 s): not visible before.
    assert client("sqs").receive_message(QueueUrl=pressure_env.queue_url).get("Messages") is None
    [copy] = deferred(pressure_env, 8)
    assert copy["job_id"] == "job-1" and time.time() - sent >= 2


def test_every_429_of_a_long_storm_is_no_attempt_so_no_job_fails_for_it(pressure_env: Env) -> None:
    queued("job-1")
    pressure_env.openrouter.on("POST", "/api/v1/videos", RATE_LIMITED)
    for _ in range(5):  # more than MAX_SUBMIT_ATTEMPTS (3)
        invoke("submit", message("job-1", paused_since=time.time()))
    assert job("job-1").status is JobStatus.QUEUED and job("job-1").submit_attempts == 0
    pressure_env.openrouter.on("POST", "/api/v1/videos", Canned(202, ACCEPTED))
    invoke("submit", message("job-1", paused_since=time.time()))
    assert job("job-1").status is JobStatus.SUBMITTED


def test_under_pressure_submissions_are_paced_and_accepted_ones_bring_the_rate_back(pressure_env: Env) -> None:
    for job_id in ("job-1", "job-2", "job-3", "job-4"):
        queued(job_id)
    pressure_env.openrouter.on(
        "POST",
        "/api/v1/videos",
        RATE_LIMITED,
        *[Canned(202, {**ACCEPTED, "id": f"or-{n}"}) for n in range(4)],
    )
    invoke("submit", message("job-1"))
    assert shared_rate() == 5
    started = time.monotonic()
    for job_id in ("job-2", "job-3", "job-4"):
        invoke("submit", message(job_id))  # each waits for its token (0.2 s at 5/s) in the invocation
    assert time.monotonic() - started >= 0.35
    assert all(job(j).status is JobStatus.SUBMITTED for j in ("job-2", "job-3", "job-4"))
    assert shared_rate() is None  # 5 + 3 x 2 >= 10: calm again


def test_a_503_slows_down_too_but_a_500_still_counts_as_an_attempt(pressure_env: Env) -> None:
    queued("job-1")
    queued("job-2")
    pressure_env.openrouter.on(
        "POST", "/api/v1/videos", Canned(503, {"error": {"code": 503, "message": "No available provider"}})
    )
    invoke("submit", message("job-1"))
    assert job("job-1").submit_attempts == 0 and shared_rate() == 5
    pressure_env.openrouter.on(
        "POST", "/api/v1/videos", Canned(500, {"error": {"code": 500, "message": "Internal Server Error"}})
    )
    event = message("job-2")
    result = invoke("submit", event)
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert job("job-2").submit_attempts == 1
    assert json.loads(event["Records"][0]["body"])["job_id"] == "job-2"
