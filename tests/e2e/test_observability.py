"""What operators will see: the metrics an end-to-end run really emits (EMF on the handlers' output)
are exactly the catalogue that the dashboard charts (tests/template/test_dashboard.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Served
from tests.support.images import reference_data_url
from tests.support.scripted_http import Canned, ScriptedServer
from videogen.observability import Metric

pytestmark = pytest.mark.e2e


def emitted(log_text: str) -> dict[str, set[frozenset[str]]]:
    """Metric name → the dimension sets it was emitted with, from the EMF lines of the log."""
    found: dict[str, set[frozenset[str]]] = {}
    for line in log_text.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        directive = json.loads(line)["_aws"]["CloudWatchMetrics"][0]
        for metric in directive["Metrics"]:
            for dimensions in directive["Dimensions"]:
                found.setdefault(metric["Name"], set()).add(frozenset(dimensions) - {"service"})
    return found


def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_an_end_to_end_run_emits_every_catalogued_metric(served: Served) -> None:
    def request(prompt: str, **extra: Any) -> dict[str, Any]:
        ref = [{"type": "image_url", "image_url": {"url": reference_data_url()}}]
        return {"prompt": prompt, "resolution": "480p", "input_references": ref, **extra}

    # A caller of its own with a budget (the budget metrics come from its settled jobs), far from its limit.
    caller = {"X-Videogen-Caller": "arn:aws:iam::123456789012:user/observability"}
    served.aws("dynamodb").put_item(
        TableName=served.info["budgets_table"],
        Item={"owner": {"S": caller["X-Videogen-Caller"]}, "period": {"S": "limits"}, "monthly_usd": {"N": "100"}},
    )

    def post(body: dict[str, Any]) -> Any:
        return served.api("POST", "/videos", json=body, headers=caller)

    # A webhook (the local stack allows loopback receivers here): its attempt's outcome and latency.
    receiver = ScriptedServer()
    receiver.on("POST", "/hook", Canned(204))
    log_path = Path(served.info["stderr_log"])
    credits = f"{served.info['openrouter_base_url']}/_sim/credits"
    with receiver:
        jobs = [
            post(request("observability: completes", webhook_url=f"{receiver.url}/hook")).json()["id"],
            post(request("observability: fails [sim:outcome=failed]")).json()["id"],
            post(request("observability: refused [sim:reject=403]")).json()["id"],
        ]
        assert post(request("observability: invalid", duration=1)).status_code == 422
        # OpenRouter pushing back once: the shared submission rate slows down (SubmitRate) and comes back.
        served.wait_job(jobs[0])
        sim = served.info["openrouter_base_url"]
        httpx.post(f"{sim}/_sim/pushback", json={"next": 1}).raise_for_status()
        jobs.append(post(request("observability: pushed back once")).json()["id"])
        served.wait_job(jobs[-1])
        # Out of credits for a moment: the credit breaker pauses a job (SubmissionsPaused, SubmitBreakerOpen)
        # and a probe resumes it once they are back.
        httpx.post(credits, json={"out": True}).raise_for_status()
        try:
            jobs.append(post(request("observability: waits for credits")).json()["id"])
            wait_until(
                lambda: served.api("GET", "/health", headers=caller).json()["submission"]["state"] != "closed", 30
            )
        finally:
            httpx.post(credits, json={"out": False}).raise_for_status()
        # The outcome metrics come from the outbox relay, after the terminal write: wait for its announcement.
        outcomes = [served.wait_announced(job_id)["status"] for job_id in jobs]
        assert outcomes == ["completed", "failed", "failed", "completed", "completed"]
        # A batch of two lines, one refused (BatchLines by outcome) to its end (BatchesCompleted).
        batch = served.api(
            "POST", "/batches", json=[request("observability: a batch line"), {"prompt": ""}], headers=caller
        )
        assert batch.status_code == 202, batch.text
        batch_path = f"/batches/{batch.json()['batch_id']}"
        wait_until(lambda: served.api("GET", batch_path, headers=caller).json()["status"] == "finished", 90)
        # The deliver function's metrics are flushed as its invocation ends, after the receiver answered.
        wait_until(lambda: '"WebhookDeliveries"' in log_path.read_text(), 30)
    refused = served.job_record(jobs[2])
    assert refused is not None and "Request blocked by guardrail" in refused["error"]

    with open(served.info["stderr_log"]) as log:
        seen = emitted(log.read())
    catalogue = {metric.metric_name: frozenset(metric.value[2]) for metric in Metric}
    assert set(seen) == set(catalogue), f"missing: {set(catalogue) - set(seen)}, unknown: {set(seen) - set(catalogue)}"
    for name, dimension_sets in seen.items():
        assert dimension_sets == {catalogue[name]}, (name, dimension_sets)
