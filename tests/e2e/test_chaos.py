"""Chaos, small (`make chaos` runs 200 jobs): jobs through `videogen local serve`, a third through each intake door
(POST /videos, S3 requests/, VideoRequested events), with 20 % of OpenRouter calls failing on every edge, then the
same with AWS failing too (DynamoDB throttles, submit batches delivered twice, submit / poll / download / publish
dying at a random AWS call) and the doors delivering at least once (S3 notifications and events 2-3 times, POST
/videos answers dropped after the job was made, retried with the same Idempotency-Key)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from videogen_local.chaos import DOORS, run_chaos

pytestmark = pytest.mark.e2e

JOBS = 24
# The doors' faults at more than the AWS rate: with 24 jobs (32 door deliveries), 0.1 could leave a run without any.
DOOR_FAULT_RATE = 0.2


def _common(figures: dict[str, Any], jobs: int) -> None:
    print(json.dumps(figures, indent=2))  # shown with -s or on failure: the figures of this run
    assert figures["requests_by_door"] == {door: jobs // len(DOORS) for door in sorted(DOORS)}
    assert figures["accepted"] == jobs and figures["lost"] == 0
    assert figures["jobs_without_event"] == 0
    assert figures["jobs_with_conflicting_events"] == 0 and figures["events_disagreeing_with_job"] == 0
    assert figures["requests_without_job"] == 0
    assert figures["completed_videos_mismatched"] == [] and figures["completed_videos_verified"] > 0
    assert figures["completed_videos_verified"] == figures["outcomes"].get("completed", 0)
    assert figures["incomplete_multipart_uploads"] == 0
    assert sum(figures["faults_injected"].values()) > 0, "the run injected no OpenRouter faults"
    # Every result reached the receiver, signed with its owner's secret, whatever the receiver's own faults.
    webhooks = figures["webhooks"]
    assert webhooks["missing"] == 0 and webhooks["delivered_and_verified"] == webhooks["expected"], webhooks
    assert webhooks["unverified_deliveries"] == 0 and webhooks["deliveries_disagreeing_with_job"] == 0
    assert sum(webhooks["receiver_faults"].values()) > 0, "the receiver failed no delivery"
    # OpenRouter's callbacks came, some forged or stale on purpose: none was accepted.
    assert figures["callbacks"]["sent"] > 0 and figures["callbacks"]["forged_or_stale_accepted"] == 0


def _one_job_per_request(figures: dict[str, Any], jobs: int) -> None:
    assert figures["duplicate_jobs"] == 0, figures["duplicate_jobs_by_door"]
    assert figures["requests_with_one_job"] == jobs and figures["job_records"] == jobs
    assert figures["receipts_with_wrong_id"] == 0
    assert figures["duplicate_submissions"] == 0


def test_every_job_ends_exactly_once_under_openrouter_faults() -> None:
    # Part way through, the account runs out of credits for 8 s: the credit breaker pauses the submissions it
    # refuses (videogen.breaker) and a probe resumes them; no job fails for it.
    figures = run_chaos(jobs=JOBS, fault_rate=0.2, seed=5, concurrency=6, timeout=300, credits_outage=(1, 8))
    _common(figures, JOBS)
    outage = figures["credit_outage"]
    assert outage["submissions_refused"] > 0 and outage["jobs_failed_for_credits"] == 0, outage
    _one_job_per_request(figures, JOBS)  # no door redelivers without AWS faults: holds today
    assert figures["jobs_with_duplicate_events"] == 0 and figures["result_events"] == JOBS
    assert figures["passed"]


@pytest.fixture(scope="module")
def aws_chaos() -> dict[str, Any]:
    """One run for the two tests below (make test keeps a module's tests on one worker: --dist loadscope)."""
    return run_chaos(
        jobs=JOBS,
        fault_rate=0.2,
        seed=5,
        concurrency=6,
        timeout=300,
        aws_fault_rate=0.1,
        door_fault_rate=DOOR_FAULT_RATE,
    )


def test_every_job_ends_with_its_event_when_aws_fails_too(aws_chaos: dict[str, Any]) -> None:
    """The outbox relay killed between PutEvents and recording the publication sends that job's event again
    on the stream's retry (EventBridge has no idempotent PutEvents): a repeat, same idempotency_key, allowed
    for at most as many jobs as the fault injector saw such deaths. Everything else holds exactly."""
    figures = aws_chaos
    _common(figures, JOBS)
    injected = figures["aws_faults_injected"]
    assert figures["jobs_with_duplicate_events"] <= injected["events_sent_unrecorded"]
    assert figures["result_events"] >= JOBS and injected["dynamodb_throttles"] > 0, "the run injected no AWS faults"
    at_the_doors = ("s3_notifications_redelivered", "eventbridge_events_redelivered", "api_responses_dropped")
    assert sum(injected[kind] for kind in at_the_doors) > 0, "the run redelivered nothing at the doors"
    # Every dropped answer was retried (and answered in the end: every request was accepted, above).
    assert sum(figures["api"]["transport_errors"].values()) >= injected["api_responses_dropped"]


def test_every_request_ends_with_one_job_when_the_doors_redeliver(aws_chaos: dict[str, Any]) -> None:
    """Same run: a redelivered S3 notification or VideoRequested event, or a POST /videos retried with its
    Idempotency-Key, finds the job it made (one job record per request, the S3 receipt keeps its id, one
    OpenRouter submission per request), and so the run passes."""
    _one_job_per_request(aws_chaos, JOBS)
    assert aws_chaos["passed"]
