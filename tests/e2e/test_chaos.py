"""Chaos, small: jobs through `videogen local serve` with 20 % of OpenRouter calls failing on every edge and
AWS failing too (DynamoDB throttles, submit batches delivered twice, submit / poll / download dying half-way).
`make chaos` runs the same with 200 jobs."""

from __future__ import annotations

import json

import pytest

from videogen_local.chaos import run_chaos

pytestmark = pytest.mark.e2e


def test_every_job_ends_exactly_once_under_faults() -> None:
    figures = run_chaos(jobs=24, fault_rate=0.2, seed=5, concurrency=6, timeout=300, aws_fault_rate=0.1)
    print(json.dumps(figures, indent=2))  # shown with -s or on failure: the figures of this run
    assert figures["accepted"] == 24 and figures["lost"] == 0
    assert figures["jobs_with_duplicate_events"] == 0 and figures["jobs_without_event"] == 0
    assert figures["result_events"] == 24
    assert figures["duplicate_submissions"] == 0
    assert figures["completed_videos_mismatched"] == [] and figures["completed_videos_verified"] > 0
    assert figures["completed_videos_verified"] == figures["outcomes"].get("completed", 0)
    assert figures["incomplete_multipart_uploads"] == 0
    assert sum(figures["faults_injected"].values()) > 0, "the run injected no OpenRouter faults"
    assert figures["aws_faults_injected"]["dynamodb_throttles"] > 0, "the run injected no AWS faults"
    assert figures["passed"]
