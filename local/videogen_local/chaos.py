"""`videogen chaos`: many jobs through `videogen local serve` while the OpenRouter simulator fails a share
of the calls on every edge (429 with Retry-After, 5xx, time-outs, dropped connections, truncated downloads,
failed / cancelled / expired jobs) and, with ``--aws-fault-rate``, AWS fails too (localmode/aws_faults.py:
DynamoDB throttling, SQS messages delivered twice, submit / poll / download / publish dying half-way). The
figures show whether every job still ends exactly once.

Pass criteria (``passed`` in the figures, see ``_passed``): every accepted job has exactly one terminal
status and exactly one result event that agrees with it, the simulator saw no duplicate submission, every
completed job's S3 object decodes and matches the sha256 of the video the simulator rendered, and no
multipart upload is left. The one tolerated repeat: a job whose event the outbox relay sent and was killed
before recording (counted by the fault injector) may see that same event again.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from videogen_local.localmode.process import local_serve, stack_client

TERMINAL = {"completed", "failed", "cancelled", "expired", "timed_out"}
RESULT_EVENTS = ("VideoCompleted", "VideoFailed")
SETTLE_POLLS = 3  # quiet seconds after the last job's event: a duplicate published late is still counted


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--fault-rate", type=float, default=0.2, help="share of OpenRouter calls that fail")
    parser.add_argument(
        "--aws-fault-rate",
        type=float,
        default=0.0,
        help="share of DynamoDB requests throttled, submit batches delivered twice, invocations dying half-way",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=8, help="parallel callers submitting jobs")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for every job to end")


def run(args: argparse.Namespace) -> int:
    figures = run_chaos(
        args.jobs, args.fault_rate, args.seed, args.concurrency, args.timeout, aws_fault_rate=args.aws_fault_rate
    )
    print(json.dumps(figures, indent=2))
    return 0 if figures["passed"] else 1


def reference_data_url() -> str:
    """The bundled backpack, small, as a data: URL (what many jobs can send without hosting an image)."""
    from videogen_local.sim.render import backpack_png

    return "data:image/png;base64," + base64.b64encode(backpack_png(96)).decode()


def run_chaos(
    jobs: int,
    fault_rate: float,
    seed: int,
    concurrency: int = 8,
    timeout: float = 900,
    *,
    aws_fault_rate: float = 0.0,
) -> dict[str, Any]:
    env = {
        "VIDEOGEN_SIM_FAULT_RATE": str(fault_rate),
        "VIDEOGEN_SIM_FAULT_SEED": str(seed),
        "VIDEOGEN_SIM_RENDER_HEIGHT": "144",
        # Below the simulator's 3 s "slow" answers, so those are real time-outs.
        "OPENROUTER_TIMEOUT_SECONDS": "1.5",
        "OPENROUTER_BACKOFF_SECONDS": "0.2",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        aws_faults_file = Path(scratch) / "aws-faults.json"
        if aws_fault_rate:
            env["VIDEOGEN_AWS_FAULT_RATE"] = str(aws_fault_rate)
            env["VIDEOGEN_AWS_FAULT_SEED"] = str(seed)
            env["VIDEOGEN_AWS_FAULT_FILE"] = str(aws_faults_file)
        serve_args = ("--poll-interval", "0", "--max-polls", "20")
        log = Path(scratch) / "serve.log"
        with local_serve(log, *serve_args, env=env) as (info, _):
            figures = _drive(info, jobs, concurrency, timeout)
        # Rewritten after every injection; read once serve has stopped, when no more can come.
        figures["aws_faults_injected"] = json.loads(aws_faults_file.read_text()) if aws_fault_rate else {}
        figures["lambda_invocations"] = _invocations_by_function(log.with_name(f"{log.stem}.metrics.jsonl"))
        figures["passed"] = _passed(figures)
        if not figures["passed"]:
            # Keep the evidence: the serve log of a failed run is the first thing to read.
            kept = Path("out") / f"chaos-serve-{uuid.uuid4().hex[:8]}.log"
            kept.parent.mkdir(exist_ok=True)
            kept.write_bytes(log.read_bytes())
            figures["serve_log"] = str(kept)
    figures["fault_rate"] = fault_rate
    figures["aws_fault_rate"] = aws_fault_rate
    figures["seed"] = seed
    figures["wall_seconds"] = round(time.monotonic() - started, 1)
    return figures


def _drive(info: dict[str, Any], jobs: int, concurrency: int, timeout: float) -> dict[str, Any]:
    def aws(service: str) -> Any:
        return stack_client(info, service)

    run_id = uuid.uuid4().hex[:8]
    reference = reference_data_url()

    latencies: list[float] = []

    def submit(index: int) -> str | None:
        body = {
            "prompt": f"chaos {run_id} job {index}",
            "duration": 4,
            "resolution": "480p",
            "input_references": [{"type": "image_url", "image_url": {"url": reference}}],
        }
        started = time.perf_counter()
        response = httpx.post(f"{info['api_url']}/videos", json=body, timeout=60)
        latencies.append(time.perf_counter() - started)
        return str(response.json()["id"]) if response.status_code == 202 else None

    submitting = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        accepted = [job_id for job_id in pool.map(submit, range(jobs)) if job_id]
    submit_seconds = time.perf_counter() - submitting

    dynamodb, sqs = aws("dynamodb"), aws("sqs")
    deadline = time.monotonic() + timeout
    records: dict[str, dict[str, Any]] = {}
    events: list[dict[str, Any]] = []
    while True:
        # A job's result event follows its terminal write; wait for both, or a fast check counts an event
        # still on its way as missing.
        events += _drain(sqs, info["results_queue_url"], quiet_polls=0)
        records = {}
        for page in dynamodb.get_paginator("scan").paginate(TableName=info["jobs_table"], ConsistentRead=True):
            for item in page["Items"]:
                records[item["id"]["S"]] = item
        pending = [j for j in accepted if records.get(j, {}).get("status", {}).get("S") not in TERMINAL]
        with_event = {e["detail"]["job_id"] for e in events if e["detail-type"] in RESULT_EVENTS}
        if (not pending and with_event.issuperset(accepted)) or time.monotonic() > deadline:
            break
        time.sleep(1)
    events += _drain(sqs, info["results_queue_url"], quiet_polls=SETTLE_POLLS)  # late duplicates count too

    result_events = Counter(e["detail"]["job_id"] for e in events if e["detail-type"] in RESULT_EVENTS)
    statuses: dict[str, set[str]] = {}
    for e in events:
        if e["detail-type"] in RESULT_EVENTS:
            statuses.setdefault(e["detail"]["job_id"], set()).add(e["detail"]["status"])
    stats = httpx.get(f"{info['openrouter_base_url']}/_sim/stats", timeout=30).json()
    outcomes = Counter(records[j]["status"]["S"] if j in records else "missing" for j in accepted)
    verified, mismatched = _verify_videos(aws("s3"), info["bucket"], accepted, records, stats)
    leftovers = aws("s3").list_multipart_uploads(Bucket=info["bucket"]).get("Uploads", [])
    figures = {
        "jobs": jobs,
        "accepted": len(accepted),
        "outcomes": dict(sorted(outcomes.items())),
        "lost": len(pending),
        "result_events": sum(result_events.values()),
        "jobs_with_duplicate_events": sum(1 for c in result_events.values() if c > 1),
        "duplicate_event_job_ids": sorted(j for j, c in result_events.items() if c > 1)[:20],
        "jobs_without_event": sum(1 for j in accepted if result_events.get(j, 0) == 0),
        # Two events of one job that disagree: the one thing a consumer deduplicating on
        # idempotency_key could not repair.
        "jobs_with_conflicting_events": sum(1 for seen in statuses.values() if len(seen) > 1),
        "events_disagreeing_with_job": sum(
            1
            for e in events
            if e["detail-type"] in RESULT_EVENTS
            and records.get(e["detail"]["job_id"], {}).get("status", {}).get("S") != e["detail"]["status"]
        ),
        "openrouter_submissions": stats["submissions"],
        "duplicate_submissions": stats["duplicate_submissions"],
        "duplicated_prompts": stats["duplicated_prompts"],
        "duplicated_jobs": _duplicated_jobs(stats, records),
        "faults_injected": stats["faults"],
        "completed_videos_verified": verified,
        "completed_videos_mismatched": mismatched,
        "incomplete_multipart_uploads": len(leftovers),
        "api": {
            "concurrency": concurrency,
            "accepted_per_second": round(len(accepted) / submit_seconds, 1),
            "post_videos_ms_p50": round(_percentile(latencies, 50) * 1000, 1),
            "post_videos_ms_p99": round(_percentile(latencies, 99) * 1000, 1),
        },
        "jobs_per_second": _jobs_per_second(records, accepted),
        "failure_reasons": dict(
            Counter(
                _reason(records[j].get("error", {}).get("S", ""))
                for j in accepted
                if j in records and records[j]["status"]["S"] != "completed"
            ).most_common()
        ),
    }
    figures["accepted_all"] = len(accepted) == jobs
    return figures


def _passed(figures: dict[str, Any]) -> bool:
    """Every job: one terminal status, its event, no second submission, its video verified, nothing left
    over. One result event per job, with one exception that is injected on purpose: the outbox relay killed
    after PutEvents and before recording it sends that job's event again on the stream's retry (EventBridge
    has no idempotent PutEvents). Such a repeat has the same idempotency_key, so it is allowed for at most
    as many jobs as those deaths, never otherwise, and never with another status."""
    repeats_allowed = figures.get("aws_faults_injected", {}).get("events_sent_unrecorded", 0)
    return bool(
        figures["accepted_all"]
        and figures["lost"] == 0
        and figures["jobs_without_event"] == 0
        and figures["jobs_with_conflicting_events"] == 0
        and figures["events_disagreeing_with_job"] == 0
        and figures["jobs_with_duplicate_events"] <= repeats_allowed
        and figures["duplicate_submissions"] == 0
        and not figures["completed_videos_mismatched"]
        and figures["incomplete_multipart_uploads"] == 0
    )


def _invocations_by_function(metrics_file: Path) -> dict[str, int]:
    """Lambda invocations per function folder over the run, from serve's recorded AWS/Lambda metrics."""
    from videogen_local.localmode.metrics import lambda_invocations
    from videogen_local.localmode.names import FUNCTIONS

    counts = lambda_invocations(metrics_file)
    return {
        folder: sum(n for name, n in counts.items() if name.endswith(f"-{suffix}"))
        for folder, suffix in FUNCTIONS.items()
    }


def _percentile(samples: list[float], percent: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(percent / 100 * (len(ordered) - 1)))] if ordered else 0.0


def _jobs_per_second(records: dict[str, dict[str, Any]], accepted: list[str]) -> float:
    """Jobs ended per second, from the first job's creation to the last one's end (the job records' times)."""
    from datetime import datetime

    ended = [records[j] for j in accepted if j in records and "finished_at" in records[j]]
    if not ended:
        return 0.0
    first = min(datetime.fromisoformat(r["created_at"]["S"]) for r in ended)
    last = max(datetime.fromisoformat(r["finished_at"]["S"]) for r in ended)
    return round(len(ended) / max((last - first).total_seconds(), 1e-3), 2)


def _duplicated_jobs(stats: dict[str, Any], records: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """For each prompt the simulator received more than once: what our job records say (the evidence)."""
    duplicated = set(stats["duplicated_prompts"])
    found = []
    for job_id, record in records.items():
        prompt = record.get("request", {}).get("M", {}).get("prompt", {}).get("S")
        if prompt not in duplicated:
            continue
        entry: dict[str, Any] = {
            "job_id": job_id,
            "prompt": prompt,
            "simulator_jobs": sorted(k for k, v in stats["jobs"].items() if v.get("prompt") == prompt),
        }
        for name in ("status", "openrouter_job_id", "submit_attempts", "last_submit_error", "error"):
            if name in record:
                entry[name] = next(iter(record[name].values()))  # {"S": ...} or {"N": ...}
        found.append(entry)
    return found


def _reason(error: str) -> str:
    """Group errors by their kind, not their details (ids, counts)."""
    return error.split(":")[0][:80] if error else "(none)"


def _drain(sqs: Any, queue_url: str, quiet_polls: int) -> list[dict[str, Any]]:
    """Every message on the queue now, then until ``quiet_polls`` one-second polls in a row find nothing."""
    events: list[dict[str, Any]] = []
    quiet = 0
    while True:
        wait = 1 if quiet_polls else 0
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait).get(
            "Messages", []
        )
        quiet = quiet + 1 if not batch else 0
        for message in batch:
            events.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if not batch and quiet >= quiet_polls:
            return events


def _verify_videos(
    s3: Any, bucket: str, accepted: list[str], records: dict[str, dict[str, Any]], stats: dict[str, Any]
) -> tuple[int, list[str]]:
    import av

    verified, mismatched = 0, []
    for job_id in accepted:
        record = records.get(job_id, {})
        if record.get("status", {}).get("S") != "completed":
            continue
        video = record["video"]["M"]
        body = s3.get_object(Bucket=bucket, Key=f"videos/{job_id}.mp4")["Body"].read()
        digest = hashlib.sha256(body).hexdigest()
        rendered = stats["jobs"].get(record["openrouter_job_id"]["S"], {}).get("sha256")
        with av.open(io.BytesIO(body)) as container:
            frames = sum(1 for _ in container.decode(video=0))
        if digest == video["sha256"]["S"] == rendered and frames > 0:
            verified += 1
        else:
            mismatched.append(job_id)
    return verified, mismatched
