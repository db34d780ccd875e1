"""A batch under pressure (issue 14, `make bench` benchmark "batch_pressure"): one manifest of ``jobs`` lines
through the S3 door of `videogen local serve` while the OpenRouter simulator answers 429 (Retry-After: 1) to
``pushback_rate`` of the submissions until half of the batch's jobs have ended.

Measured: wall time from the upload to the batch's end, jobs/s, the simulator's 429s, its peak of submissions
in flight at once. Checked: every line ends (0 lost), 0 duplicate submissions, exactly one BatchCompleted whose
counts match results.jsonl line by line, and the peak never above the submit function's maximum concurrency
(local serve: VIDEOGEN_SUBMIT_MAX_CONCURRENCY environments of the submit function, the template's default 10).
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from videogen_local.localmode.process import local_serve, stack_client

TARGET_SECONDS = 600.0
# The template's SubmitMaxConcurrency default, which local serve's submit queue poller runs with.
LOCAL_SUBMIT_CONCURRENCY = 10


def run(jobs: int = 2000, pushback_rate: float = 0.3, timeout: float = 1800) -> dict[str, Any]:
    env = {
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "VIDEOGEN_SIM_RENDER_HEIGHT": "144",
        "VIDEOGEN_SUBMIT_MAX_CONCURRENCY": str(LOCAL_SUBMIT_CONCURRENCY),
    }
    with tempfile.TemporaryDirectory(prefix="videogen-bench-batch-") as work:
        log = Path(work) / "serve.log"
        with local_serve(log, "--poll-interval", "0", "--max-polls", "30", env=env) as (info, _):
            figures = _one_batch(info, jobs, pushback_rate, timeout)
    figures["met"] = bool(
        figures["ended"] == jobs
        and figures["lost"] == 0
        and figures["outcomes"].get("completed", 0) == jobs
        and figures["duplicate_submissions"] == 0
        and figures["batch_completed_events"] == 1
        and figures["counts_match_results"]
        and figures["peak_submissions_in_flight"] <= figures["max_concurrency"]
        and figures["wall_seconds"] < TARGET_SECONDS
    )
    return figures


def _one_batch(info: dict[str, Any], jobs: int, pushback_rate: float, timeout: float) -> dict[str, Any]:
    s3, dynamodb, sqs = (stack_client(info, name) for name in ("s3", "dynamodb", "sqs"))
    simulator = info["openrouter_base_url"]
    run_id = uuid.uuid4().hex[:8]
    key = f"requests/bench-pressure-{run_id}.jsonl"
    # One product photo in the service bucket for every line (a catalogue's lines would each name their own).
    from videogen_local.sim.render import backpack_png

    reference_key = f"references/bench-{run_id}.png"
    s3.put_object(Bucket=info["bucket"], Key=reference_key, Body=backpack_png(96), ContentType="image/png")
    reference = [{"type": "image_url", "image_url": {"url": f"s3://{info['bucket']}/{reference_key}"}}]
    manifest = "".join(
        json.dumps(
            {
                "prompt": f"bench {run_id} product {n}",
                "duration": 4,
                "resolution": "480p",
                "input_references": reference,
                "client_ref": f"sku-{n}",
            }
        )
        + "\n"
        for n in range(1, jobs + 1)
    )
    httpx.post(f"{simulator}/_sim/pushback", json={"rate": pushback_rate}, timeout=30).raise_for_status()
    started = time.monotonic()
    s3.put_object(Bucket=info["bucket"], Key=key, Body=manifest.encode())
    receipt_key = key.removesuffix(".jsonl") + ".batch.json"
    batch_id = _wait(lambda: _receipt(s3, info["bucket"], receipt_key), 120, "the batch receipt")["batch_id"]

    pushback_off_at = None
    batch: dict[str, Any] = {}
    deadline = started + timeout
    while time.monotonic() < deadline:
        batch = _batch(dynamodb, info["batches_table"], batch_id)
        ended = sum(batch.get("ended", {}).values())
        if pushback_off_at is None and ended >= jobs / 2:
            httpx.post(f"{simulator}/_sim/pushback", json={"rate": 0.0}, timeout=30).raise_for_status()
            pushback_off_at = time.monotonic() - started
        if batch.get("completed_event_at"):
            break
        time.sleep(2)
    wall = time.monotonic() - started
    stats = httpx.get(f"{simulator}/_sim/stats", timeout=60).json()
    results: list[dict[str, Any]] = []
    if batch.get("results"):
        bucket, _, results_key = batch["results"].removeprefix("s3://").partition("/")
        body = s3.get_object(Bucket=bucket, Key=results_key)["Body"].read().decode()
        results = [json.loads(line) for line in body.splitlines()]
    completed_events = [
        e
        for e in _drain(sqs, info["results_queue_url"])
        if e["detail-type"] == "BatchCompleted" and e["detail"]["batch_id"] == batch_id
    ]
    by_status = Counter(r["status"] for r in results)
    event_counts = {k: v for k, v in (completed_events[0]["detail"]["counts"] if completed_events else {}).items() if v}
    ended_total = sum(batch.get("ended", {}).values())
    return {
        "jobs": jobs,
        "pushback_rate_first_half": pushback_rate,
        "pushback_off_at_seconds": round(pushback_off_at, 1) if pushback_off_at is not None else None,
        "wall_seconds": round(wall, 1),
        "jobs_per_second": round(ended_total / wall, 2) if wall else 0.0,
        "ended": ended_total,
        "lost": jobs - ended_total,
        "outcomes": dict(sorted(by_status.items())),
        "failure_reasons": dict(Counter((r.get("error") or "")[:90] for r in results if r["status"] != "completed")),
        "submissions": stats["submissions"],
        "duplicate_submissions": stats["duplicate_submissions"],
        "pushbacks_429": stats["pushbacks"],
        "peak_submissions_in_flight": stats["peak_submissions_in_flight"],
        "max_concurrency": LOCAL_SUBMIT_CONCURRENCY,
        "batch_completed_events": len(completed_events),
        "results_lines": len(results),
        "counts_match_results": bool(completed_events) and event_counts == dict(by_status) and len(results) == jobs,
        "target_seconds": TARGET_SECONDS,
    }


def _wait(probe: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.5)
    raise TimeoutError(f"no {what} within {seconds:.0f} s")


def _receipt(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None
    return found


def _batch(dynamodb: Any, table: str, batch_id: str) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    item = dynamodb.get_item(
        TableName=table, Key={"batch_id": {"S": batch_id}, "item": {"S": "batch"}}, ConsistentRead=True
    ).get("Item", {})
    plain: dict[str, Any] = {k: TypeDeserializer().deserialize(v) for k, v in item.items()}
    if "ended" in plain:
        plain["ended"] = {k: int(v) for k, v in plain["ended"].items()}
    return plain


def _drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    quiet = 0
    while quiet < 2:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        quiet = 0 if batch else quiet + 1
        for message in batch:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return found


if __name__ == "__main__":
    import sys

    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 2000), indent=2))
