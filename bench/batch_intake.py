"""Batch intake (issue 14): a manifest through the S3 door, the batch function in a process of its own
(bench/lambda_worker.py, on the layer's packages) against moto in another process and OpenRouter's simulator
on loopback (the model list each line is checked against).

For each size: the manifest is uploaded, intake_s3 takes its notification (the batch record, the receipt),
then a fresh batch-function process works on the batch queue's messages until the intake is done (more
than one invocation when a continuation is needed). Measured: lines enqueued per second over the batch
function's invocations, and its peak RSS (VmHWM, the whole process) and peak growth over its RSS before the
first invocation. Checked: every line made a job and one submit message, and nothing was refused.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from bench.harness import BUCKET, LambdaWorker, MiB, moto_server, workers

ROOT = Path(__file__).resolve().parents[1]
BATCHES_TABLE = "bench-batches"
TARGET_FLAT_MIB = 16.0


def _event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "events" / name).read_text())
    return loaded


def _manifest(lines: int) -> bytes:
    # Valid lines, each its own prompt and client_ref; no https reference (nothing to fetch per line).
    return b"".join(
        json.dumps({"prompt": f"product {n} on a white table", "duration": 4, "client_ref": f"sku-{n}"}).encode()
        + b"\n"
        for n in range(1, lines + 1)
    )


def one_batch(aws: Any, env: dict[str, str], lines: int, intake: LambdaWorker, batch: LambdaWorker) -> dict[str, Any]:
    """A manifest of ``lines`` through ``intake`` (intake_s3) and ``batch`` (the batch function) until its
    intake is done; what it measured, after checking that every line made a job and one submit message."""
    s3, sqs = aws.client("s3"), aws.client("sqs")
    submit_url, batch_url = env["QUEUE_URL"], env["BATCH_QUEUE_URL"]
    queued_before = _queued(sqs, submit_url)
    key = f"requests/bench-{lines}.jsonl"
    body = _manifest(lines)
    etag = s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"].strip('"')
    notification = copy.deepcopy(_event("s3_request_created.json"))
    notification["Records"][0]["s3"]["bucket"]["name"] = BUCKET
    notification["Records"][0]["s3"]["object"].update(
        key=quote_plus(key, safe="/"), eTag=etag, sequencer=f"{lines:018X}", size=len(body)
    )
    (record,) = intake.call("invoke", event=notification)["result"]["records"]
    assert record["outcome"] == "accepted", record
    before = batch.call("memory")["rss"]
    invocations, seconds, peak = 0, 0.0, 0
    while messages := sqs.receive_message(QueueUrl=batch_url, MaxNumberOfMessages=1).get("Messages"):
        event_record = copy.deepcopy(_event("sqs_submit.json")["Records"][0])
        event_record.update(body=messages[0]["Body"], messageId=messages[0]["MessageId"])
        reply = batch.call("invoke", event={"Records": [event_record]})
        assert reply["result"] == {"batchItemFailures": []}, reply["result"]
        sqs.delete_message(QueueUrl=batch_url, ReceiptHandle=messages[0]["ReceiptHandle"])
        invocations += 1
        seconds += reply["seconds"]
        peak = max(peak, reply["peak_rss"])
    item = aws.client("dynamodb").get_item(
        TableName=env["BATCHES_TABLE"],
        Key={"batch_id": {"S": record["id"]}, "item": {"S": "batch"}},
        ConsistentRead=True,
    )["Item"]
    queued = _queued(sqs, submit_url) - queued_before
    accepted, rejected = int(item["accepted"]["N"]), int(item["rejected"]["N"])
    if not (item["intake_done"]["BOOL"] and accepted == lines and rejected == 0 and queued == lines):
        raise AssertionError(f"{lines} lines: accepted {accepted}, rejected {rejected}, queued {queued}")
    return {
        "lines": lines,
        "manifest_mib": round(len(body) / MiB, 2),
        "invocations": invocations,
        "seconds": round(seconds, 1),
        "lines_per_second": round(lines / seconds, 1),
        "peak_rss_mib": round(peak / MiB, 1),
        "peak_growth_mib": round((peak - before) / MiB, 1),
        "submit_messages": queued,
    }


def _queued(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def _one(aws: Any, env: dict[str, str], lines: int) -> dict[str, Any]:
    """One size in fresh processes (the batch function's peak is its own run's)."""
    sqs = aws.client("sqs")
    env = {
        **env,
        "QUEUE_URL": sqs.create_queue(QueueName=f"bench-submit-{lines}")["QueueUrl"],
        "BATCH_QUEUE_URL": sqs.create_queue(QueueName=f"bench-batch-{lines}")["QueueUrl"],
    }
    with workers(env, "intake_s3", "batch") as running:
        return one_batch(aws, env, lines, running["intake_s3"], running["batch"])


def run(sizes: list[int]) -> dict[str, Any]:
    from videogen_local.localmode.stack import create_batches_table
    from videogen_local.sim.server import OpenRouterSimulator, SimulatorConfig

    with moto_server() as aws, OpenRouterSimulator(SimulatorConfig()) as simulator:
        create_batches_table(aws.client("dynamodb"), BATCHES_TABLE)
        env = {
            **aws.lambda_env(simulator.base_url),
            "OPENROUTER_API_KEY": simulator.config.api_key,
            "BATCHES_TABLE": BATCHES_TABLE,
            "VIDEOGEN_PREFLIGHT": "off",
        }
        started = time.monotonic()
        runs = [_one(aws, env, lines) for lines in sizes]
    peaks = [r["peak_rss_mib"] for r in runs]
    spread = round(max(peaks) - min(peaks), 1)
    return {
        "runs": runs,
        "peak_spread_mib": spread,
        "target_spread_mib": TARGET_FLAT_MIB,
        "met": spread <= TARGET_FLAT_MIB,
        "wall_seconds": round(time.monotonic() - started, 1),
    }
