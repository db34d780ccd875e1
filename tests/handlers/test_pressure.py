"""The submit function with adaptive pressure (videogen.pressure): a 429 or 503 spends no attempt and the
refused message comes back after Retry-After; a window of many refusals slows every submission down, and
windows of accepted submissions bring the rate back."""

from __future__ import annotations

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

WINDOW = 0.5
RATE_LIMITED = Canned(429, {"error": {"code": 429, "message": "Rate limit exceeded"}}, headers={"Retry-After": "2"})


@pytest.fixture
def pressure_env(control_table: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("SUBMIT_MAX_RATE", "10")
    monkeypatch.setenv("PRESSURE_RECOVERY_STEP", "2")
    monkeypatch.setenv("PRESSURE_WINDOW_SECONDS", str(WINDOW))
    monkeypatch.setenv("PRESSURE_MIN_ANSWERS", "4")
    reset_services()
    yield control_table


def shared_rate() -> float | None:
    pressure = get_services().pressure
    assert pressure is not None
    return pressure.rate()


def test_a_429_spends_no_attempt_and_comes_back_after_retry_after(pressure_env: Env) -> None:
    queued("job-1")
    pressure_env.openrouter.on("POST", "/api/v1/videos", RATE_LIMITED)
    sent = time.time()
    assert invoke("submit", message("job-1")) == {"batchItemFailures": []}
    # Not retried in the invocation (the shared pace decides), no attempt spent, the job still queued.
    assert posts(pressure_env) == 1
    paused = job("job-1")
    assert paused.status is JobStatus.QUEUED and paused.submit_attempts == 0
    assert shared_rate() is None  # one refusal slows no one: it opens a window of answers to judge
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


def storm(env: Env, jobs: list[str]) -> float:
    """Every job refused once, then (a window later) one more refusal judges the window: the rate it set."""
    for job_id in jobs:
        invoke("submit", message(job_id))
    time.sleep(WINDOW)
    invoke("submit", message(jobs[0]))
    rate = shared_rate()
    assert rate is not None and rate < 10, "many refusals slow everyone down"
    return rate


def test_under_pressure_submissions_are_paced_and_accepted_ones_bring_the_rate_back(pressure_env: Env) -> None:
    jobs = [f"job-{k}" for k in range(1, 5)]
    for job_id in jobs:
        queued(job_id)
    pressure_env.openrouter.on(
        "POST",
        "/api/v1/videos",
        *[RATE_LIMITED] * 5,
        *[Canned(202, {**ACCEPTED, "id": f"or-{k}"}) for k in range(40)],
    )
    rate = storm(pressure_env, jobs)
    # Each submission now waits for its token in the invocation: three take at least two tokens' time.
    started = time.monotonic()
    for job_id in jobs[1:]:
        invoke("submit", message(job_id))
    assert time.monotonic() - started >= 2 / rate - 0.05
    assert all(job(j).status is JobStatus.SUBMITTED for j in jobs[1:])
    # Windows of accepted submissions add PRESSURE_RECOVERY_STEP (2/s) back each, up to the ceiling: calm.
    more = [f"job-{k}" for k in range(5, 40)]
    for job_id in more:
        queued(job_id)
    submitted = 0
    while shared_rate() is not None and submitted < len(more):
        invoke("submit", message(more[submitted]))
        submitted += 1
        time.sleep(WINDOW / 4)
    assert shared_rate() is None and submitted >= 8  # at least two windows of four answers
    assert all(job(j).status is JobStatus.SUBMITTED for j in more[:submitted])


def test_a_503_counts_as_pushback_too_but_a_500_still_counts_as_an_attempt(pressure_env: Env) -> None:
    jobs = [f"job-{k}" for k in range(1, 5)]
    for job_id in [*jobs, "job-5"]:
        queued(job_id)
    pressure_env.openrouter.on(
        "POST", "/api/v1/videos", Canned(503, {"error": {"code": 503, "message": "No available provider"}})
    )
    storm(pressure_env, jobs)
    assert all(job(j).submit_attempts == 0 for j in jobs)
    pressure_env.openrouter.on(
        "POST", "/api/v1/videos", Canned(500, {"error": {"code": 500, "message": "Internal Server Error"}})
    )
    time.sleep(1)  # a token's time at the slowed rate, so the 500 is not merely paced
    event = message("job-5")
    result = invoke("submit", event)
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert job("job-5").submit_attempts == 1
