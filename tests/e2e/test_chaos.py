"""Chaos, small (`make chaos` runs 200 jobs): jobs through `videogen local serve` with 20 % of OpenRouter calls
failing on every edge, then the same with AWS failing too (DynamoDB throttles, submit batches delivered twice,
submit / poll / download / publish dying at a random AWS call)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from videogen_local.chaos import run_chaos

pytestmark = pytest.mark.e2e


def _common(figures: dict[str, Any], jobs: int) -> None:
    print(json.dumps(figures, indent=2))  # shown with -s or on failure: the figures of this run
    assert figures["accepted"] == jobs and figures["lost"] == 0
    assert figures["jobs_without_event"] == 0
    assert figures["jobs_with_conflicting_events"] == 0 and figures["events_disagreeing_with_job"] == 0
    assert figures["duplicate_submissions"] == 0
    assert figures["completed_videos_mismatched"] == [] and figures["completed_videos_verified"] > 0
    assert figures["completed_videos_verified"] == figures["outcomes"].get("completed", 0)
    assert figures["incomplete_multipart_uploads"] == 0
    assert sum(figures["faults_injected"].values()) > 0, "the run injected no OpenRouter faults"


def test_every_job_ends_exactly_once_under_openrouter_faults() -> None:
    figures = run_chaos(jobs=24, fault_rate=0.2, seed=5, concurrency=6, timeout=300)
    _common(figures, 24)
    assert figures["jobs_with_duplicate_events"] == 0 and figures["result_events"] == 24
    assert figures["passed"]


def test_every_job_ends_with_its_event_when_aws_fails_too() -> None:
    """The outbox relay killed between PutEvents and recording the publication sends that job's event again
    on the stream's retry (EventBridge has no idempotent PutEvents): a repeat, same idempotency_key, allowed
    for at most as many jobs as the fault injector saw such deaths. Everything else holds exactly."""
    figures = run_chaos(jobs=24, fault_rate=0.2, seed=5, concurrency=6, timeout=300, aws_fault_rate=0.1)
    _common(figures, 24)
    injected = figures["aws_faults_injected"]
    assert figures["jobs_with_duplicate_events"] <= injected["events_sent_unrecorded"]
    assert figures["result_events"] >= 24 and injected["dynamodb_throttles"] > 0, "the run injected no AWS faults"
    assert figures["passed"]
