"""`videogen chaos`: many jobs through `videogen local serve` while the OpenRouter simulator fails a share
of the calls on every edge (429 with Retry-After, 5xx, time-outs, dropped connections, truncated downloads,
failed / cancelled / expired jobs) and, with ``--aws-fault-rate``, AWS fails too (localmode/aws_faults.py:
DynamoDB throttling, SQS messages delivered twice, submit / poll / download / publish dying half-way). The
figures show whether every job still ends exactly once.

The jobs come through the three intake doors in turn (``--doors``): ``POST /videos`` with an
``Idempotency-Key`` of its own per logical request (retried with the same key after a dropped answer or a
time-out), an S3 object ``requests/chaos-<run>-<i>.json`` (job id from its ``.job.json`` receipt) and a
``VideoRequested`` event on the bus (job found in the jobs table by its prompt, unique per request). With
``--aws-fault-rate`` the doors deliver at least once: S3 notifications and events reach the intake functions
2-3 times, and the front door drops answers after the api function ran. Every logical request must still
end with exactly one job.

Pass criteria (``passed`` in the figures, see ``_passed``): every accepted job has exactly one terminal
status and exactly one result event that agrees with it, the simulator saw no duplicate submission, every
completed job's S3 object decodes and matches the sha256 of the video the simulator rendered, no
multipart upload is left, every logical request has exactly one job record (``duplicate_jobs`` 0) and
every S3 request's receipt names that job (``receipts_with_wrong_id`` 0). The one tolerated repeat: a job
whose event the outbox relay sent and was killed before recording (counted by the fault injector) may see
that same event again.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from videogen_local.chaos_webhooks import ChaosReceiver, door_owners, owner_secrets, webhook_figures
from videogen_local.localmode.process import local_serve, stack_client

TERMINAL = {"completed", "failed", "cancelled", "expired", "timed_out"}
RESULT_EVENTS = ("VideoCompleted", "VideoFailed")
SETTLE_POLLS = 3  # quiet seconds after the last job's event: a duplicate published late is still counted
DOORS = ("api", "s3", "eventbridge")
API_ATTEMPTS = 5  # a POST /videos without an answer is sent again, with the same Idempotency-Key
API_BACKOFF_SECONDS = 0.2  # doubled after each attempt
# For the last webhooks after the last result event: the local schedule's 8 attempts take 15 s plus time-outs.
WEBHOOK_WAIT_SECONDS = 90
EVENT_SOURCE = "com.example.chaos"
RECEIPT_WAIT_SECONDS = 60  # for an S3 request's receipt, or an EventBridge request's job record
SUBMISSION_WATCH_SECONDS = 0.2  # how often a credit outage asks the simulator whether submissions have begun


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--fault-rate", type=float, default=0.2, help="share of OpenRouter calls that fail")
    parser.add_argument(
        "--aws-fault-rate",
        type=float,
        default=0.0,
        help="share of DynamoDB requests throttled, submit batches and door events delivered again, API answers "
        "dropped, invocations dying half-way",
    )
    parser.add_argument(
        "--door-fault-rate",
        type=float,
        default=None,
        help="with --aws-fault-rate: share of S3 notifications and VideoRequested events delivered 2-3 times and "
        "of POST /videos answers dropped (default: the AWS fault rate)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=8, help="parallel callers submitting jobs")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for every job to end")
    parser.add_argument(
        "--credits-out-at",
        type=float,
        default=None,
        help="seconds after the first submission reaches OpenRouter when the simulated account runs out of "
        "credits (every submission refused with 402 until --credits-out-for has passed); the credit breaker must "
        "pause, not fail, the jobs",
    )
    parser.add_argument("--credits-out-for", type=float, default=60.0, help="seconds the credits stay out")
    parser.add_argument(
        "--doors",
        default=",".join(DOORS),
        help="the intake doors the jobs come through, in turn (comma-separated: api, s3, eventbridge)",
    )


def run(args: argparse.Namespace) -> int:
    doors = tuple(door.strip() for door in args.doors.split(",") if door.strip())
    unknown = set(doors) - set(DOORS)
    if unknown or not doors:
        raise SystemExit(f"--doors: expected some of {', '.join(DOORS)}, got {args.doors!r}")
    figures = run_chaos(
        args.jobs,
        args.fault_rate,
        args.seed,
        args.concurrency,
        args.timeout,
        aws_fault_rate=args.aws_fault_rate,
        door_fault_rate=args.door_fault_rate,
        doors=doors,
        credits_outage=(args.credits_out_at, args.credits_out_for) if args.credits_out_at is not None else None,
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
    door_fault_rate: float | None = None,
    doors: Sequence[str] = DOORS,
    credits_outage: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """``door_fault_rate`` (only with ``aws_fault_rate``): the doors' redeliveries and dropped answers; None:
    ``aws_fault_rate``. ``credits_outage``: (seconds into the run, seconds long) the simulated account has no
    credits."""
    env = {
        "VIDEOGEN_SIM_FAULT_RATE": str(fault_rate),
        "VIDEOGEN_SIM_FAULT_SEED": str(seed),
        "VIDEOGEN_SIM_RENDER_HEIGHT": "144",
        # Below the simulator's 3 s "slow" answers, so those are real time-outs.
        "OPENROUTER_TIMEOUT_SECONDS": "1.5",
        "OPENROUTER_BACKOFF_SECONDS": "0.2",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "POWERTOOLS_METRICS_DISABLED": "true",
        # The receiver's slow answers (chaos_webhooks.SLOW_SECONDS) are real time-outs.
        "WEBHOOK_READ_SECONDS": "1",
        # OpenRouter's callbacks on: the simulator sends them with faults (twice, late, early, wrongly signed,
        # stale, never), and none of the forged or stale ones may be accepted.
        "OPENROUTER_WEBHOOK_SECRET": "whsec-chaos-callbacks",
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        aws_faults_file = Path(scratch) / "aws-faults.json"
        if aws_fault_rate:
            env["VIDEOGEN_AWS_FAULT_RATE"] = str(aws_fault_rate)
            env["VIDEOGEN_AWS_FAULT_SEED"] = str(seed)
            env["VIDEOGEN_AWS_FAULT_FILE"] = str(aws_faults_file)
            if door_fault_rate is not None:
                env["VIDEOGEN_AWS_DOOR_FAULT_RATE"] = str(door_fault_rate)
        # Every job asks for a webhook, to a loopback receiver that fails some deliveries on purpose.
        serve_args = ("--poll-interval", "0", "--max-polls", "20", "--allow-private-webhooks")
        log = Path(scratch) / "serve.log"
        with ChaosReceiver(fault_rate, seed) as receiver, local_serve(log, *serve_args, env=env) as (info, _):
            with CreditOutage(info["openrouter_base_url"], credits_outage) as outage:
                figures = _drive(info, jobs, concurrency, timeout, doors, receiver)
            if credits_outage is not None:
                figures["credit_outage"] = outage.figures(figures)
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
    figures["door_fault_rate"] = (
        (aws_fault_rate if door_fault_rate is None else door_fault_rate) if aws_fault_rate else 0.0
    )
    figures["seed"] = seed
    figures["doors"] = list(doors)
    figures["wall_seconds"] = round(time.monotonic() - started, 1)
    return figures


def _drive(
    info: dict[str, Any], jobs: int, concurrency: int, timeout: float, doors: Sequence[str], receiver: ChaosReceiver
) -> dict[str, Any]:
    def aws(service: str) -> Any:
        return stack_client(info, service)

    run_id = uuid.uuid4().hex[:8]
    reference = reference_data_url()
    # The receiver verifies each webhook as it comes, with the secret of the owner of its door.
    owners = door_owners(info, EVENT_SOURCE)
    secrets = owner_secrets(info, set(owners.values()))
    receiver.secrets = {door: secrets[owner] for door, owner in owners.items()}
    s3, events, dynamodb, sqs = aws("s3"), aws("events"), aws("dynamodb"), aws("sqs")
    # One logical request a job, each with a prompt of its own: the jobs of a request are found by its prompt.
    requests = [Request(index, doors[index % len(doors)], f"chaos {run_id} job {index}") for index in range(jobs)]

    latencies: list[float] = []
    api_transport_errors = Counter[str]()
    tally = threading.Lock()  # the callers' threads add to both

    def body(request: Request) -> dict[str, Any]:
        return {
            "prompt": request.prompt,
            "duration": 4,
            "resolution": "480p",
            "input_references": [{"type": "image_url", "image_url": {"url": reference}}],
            "webhook_url": receiver.url,
        }

    def through_api(request: Request) -> str | None:
        """POST /videos; a dropped answer or a time-out is retried with the same Idempotency-Key."""
        started = time.perf_counter()
        for attempt in range(API_ATTEMPTS):
            if attempt:
                time.sleep(API_BACKOFF_SECONDS * 2 ** (attempt - 1))
            try:
                response = httpx.post(
                    f"{info['api_url']}/videos",
                    json=body(request),
                    headers={"Idempotency-Key": f"chaos-{run_id}-{request.index}"},
                    timeout=60,
                )
            except httpx.TransportError as exc:  # no answer: the request may or may not have become a job
                with tally:
                    api_transport_errors[type(exc).__name__] += 1
                continue
            with tally:
                latencies.append(time.perf_counter() - started)
            return str(response.json()["id"]) if response.status_code == 202 else None
        return None

    def through_s3(request: Request) -> str | None:
        """requests/chaos-<run>-<i>.json; the job id is in the receipt requests/chaos-<run>-<i>.job.json."""
        s3.put_object(
            Bucket=info["bucket"],
            Key=request.s3_key(run_id),
            Body=json.dumps(body(request)).encode(),
            ContentType="application/json",
        )
        deadline = time.monotonic() + RECEIPT_WAIT_SECONDS
        while time.monotonic() < deadline:
            receipt = _receipt(s3, info["bucket"], request.s3_key(run_id), ".job.json")
            if receipt is not None:
                return str(receipt["id"])
            if _receipt(s3, info["bucket"], request.s3_key(run_id), ".error.json") is not None:
                return None
            time.sleep(0.2)
        return None

    def through_eventbridge(request: Request) -> None:
        """A VideoRequested event on the bus; its job is found in the jobs table by the prompt."""
        entry = {
            "Source": EVENT_SOURCE,
            "DetailType": "VideoRequested",
            "Detail": json.dumps(body(request)),
            "EventBusName": info["event_bus"],
        }
        answer = events.put_events(Entries=[entry])
        if answer.get("FailedEntryCount"):
            raise RuntimeError(f"PutEvents refused the request of job {request.index}: {answer['Entries']}")

    def submit(request: Request) -> None:
        if request.door == "api":
            request.job_id = through_api(request)
        elif request.door == "s3":
            request.job_id = through_s3(request)
        else:
            through_eventbridge(request)

    submitting = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(submit, requests))
    submit_seconds = time.perf_counter() - submitting

    def scan() -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for page in dynamodb.get_paginator("scan").paginate(TableName=info["jobs_table"], ConsistentRead=True):
            for item in page["Items"]:
                found[item["id"]["S"]] = item
        return found

    # The EventBridge requests' jobs: the first job of each prompt (by creation), once there is one for each.
    by_event = [r for r in requests if r.door == "eventbridge"]
    deadline = time.monotonic() + RECEIPT_WAIT_SECONDS
    while by_event:
        first = _first_job_by_prompt(scan())
        for request in by_event:
            request.job_id = first.get(request.prompt)
        if all(r.job_id for r in by_event) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    accepted = [r.job_id for r in requests if r.job_id]

    deadline = time.monotonic() + timeout
    records: dict[str, dict[str, Any]] = {}
    events_seen: list[dict[str, Any]] = []
    while True:
        # A job's result event follows its terminal write; wait for both, or a fast check counts an event
        # still on its way as missing.
        events_seen += _drain(sqs, info["results_queue_url"], quiet_polls=0)
        records = scan()
        pending = [j for j in accepted if records.get(j, {}).get("status", {}).get("S") not in TERMINAL]
        with_event = {e["detail"]["job_id"] for e in events_seen if e["detail-type"] in RESULT_EVENTS}
        if (not pending and with_event.issuperset(accepted)) or time.monotonic() > deadline:
            break
        time.sleep(1)
    events_seen += _drain(sqs, info["results_queue_url"], quiet_polls=SETTLE_POLLS)  # late duplicates count too
    # Webhooks follow the result events, retried on the local schedule (seconds) after the receiver's faults.
    webhook_deadline = time.monotonic() + WEBHOOK_WAIT_SECONDS
    while not receiver.job_ids().issuperset(accepted) and time.monotonic() < webhook_deadline:
        time.sleep(1)
    records = scan()  # after the settle time: a late redelivery's job counts too

    result_events = Counter(e["detail"]["job_id"] for e in events_seen if e["detail-type"] in RESULT_EVENTS)
    statuses: dict[str, set[str]] = {}
    for e in events_seen:
        if e["detail-type"] in RESULT_EVENTS:
            statuses.setdefault(e["detail"]["job_id"], set()).add(e["detail"]["status"])
    stats = httpx.get(f"{info['openrouter_base_url']}/_sim/stats", timeout=30).json()
    outcomes = Counter(records[j]["status"]["S"] if j in records else "missing" for j in accepted)
    verified, mismatched = _verify_videos(s3, info["bucket"], accepted, records, stats)
    leftovers = s3.list_multipart_uploads(Bucket=info["bucket"]).get("Uploads", [])
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
            for e in events_seen
            if e["detail-type"] in RESULT_EVENTS
            and records.get(e["detail"]["job_id"], {}).get("status", {}).get("S") != e["detail"]["status"]
        ),
        **_door_figures(requests, records, s3, info["bucket"], run_id),
        "openrouter_submissions": stats["submissions"],
        "duplicate_submissions": stats["duplicate_submissions"],
        "duplicated_prompts": stats["duplicated_prompts"],
        "duplicated_jobs": _duplicated_jobs(stats, records),
        "faults_injected": stats["faults"],
        "callbacks": _callback_figures(stats),
        "completed_videos_verified": verified,
        "completed_videos_mismatched": mismatched,
        "incomplete_multipart_uploads": len(leftovers),
        "api": {
            "concurrency": concurrency,
            "requests": sum(1 for r in requests if r.door == "api"),
            # Over every door: what the callers got accepted per second, all doors together.
            "accepted_per_second": round(len(accepted) / submit_seconds, 1),
            "post_videos_ms_p50": round(_percentile(latencies, 50) * 1000, 1),
            "post_videos_ms_p99": round(_percentile(latencies, 99) * 1000, 1),
            # Requests without an answer (a dropped response, a time-out), each retried with its Idempotency-Key.
            "transport_errors": dict(sorted(api_transport_errors.items())),
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
    figures["webhooks"] = webhook_figures(receiver, records, accepted)
    figures["accepted_all"] = len(accepted) == jobs
    # The credit breaker's promise: a refusal for the account (402, a limit) never fails a job.
    figures["failed_for_credits"] = sum(
        1
        for j in accepted
        if j in records
        and records[j]["status"]["S"] != "completed"
        and any(
            words in records[j].get("error", {}).get("S", "")
            for words in ("Insufficient credits", "refused submissions for the account", "limit exceeded")
        )
    )
    return figures


class CreditOutage:
    """The simulated account out of credits for a while (sim/server.py ``/_sim/credits``), from a timer."""

    def __init__(self, simulator_url: str, window: tuple[float, float] | None) -> None:
        self._url = f"{simulator_url}/_sim/credits"
        self._window = window
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="credit-outage", daemon=True)
        self.first_submission_at: float | None = None
        self.out_at: float | None = None
        self.back_at: float | None = None
        self._started = time.monotonic()

    def __enter__(self) -> CreditOutage:
        if self._window is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self.out_at is not None and self.back_at is None:
            self._set(False)  # a run that ended during the outage leaves the account as it found it
            self.back_at = time.monotonic() - self._started

    def _submitted(self) -> bool:
        stats = httpx.get(self._url.replace("/_sim/credits", "/_sim/stats"), timeout=30).json()
        return int(stats["submissions"]) > 0

    def _set(self, out: bool) -> None:
        httpx.post(self._url, json={"out": out}, timeout=30).raise_for_status()

    def _run(self) -> None:
        assert self._window is not None
        start, length = self._window
        # The window counts from OpenRouter's first submission, not from the run's start: the run's set-up and
        # the doors take seconds of their own (more on a loaded machine), and an outage before any submission
        # tests nothing.
        while not self._submitted():
            if self._stop.wait(SUBMISSION_WATCH_SECONDS):
                return
        self.first_submission_at = time.monotonic() - self._started
        if self._stop.wait(start):
            return
        self._set(True)
        self.out_at = time.monotonic() - self._started
        if self._stop.wait(length):
            return
        self._set(False)
        self.back_at = time.monotonic() - self._started

    def figures(self, run: dict[str, Any]) -> dict[str, Any]:
        """When the credits were out, how many submissions OpenRouter refused for it, and how many jobs
        failed for it (the breaker's promise: none)."""
        refusals = httpx.get(self._url, timeout=30).json()["refusals"]
        return {
            "first_submission_at_seconds": _rounded(self.first_submission_at),
            "out_at_seconds": _rounded(self.out_at),
            "back_at_seconds": _rounded(self.back_at),
            "submissions_refused": refusals,
            "jobs_failed_for_credits": run["failed_for_credits"],
        }


def _rounded(seconds: float | None) -> float | None:
    return round(seconds, 1) if seconds is not None else None


@dataclass
class Request:
    """One logical request, sent through one door (retries and redeliveries included: still this one)."""

    index: int
    door: str
    prompt: str
    job_id: str | None = None  # as its caller learned it: the 202's id, the receipt's, the table's first

    def s3_key(self, run_id: str) -> str:
        return f"requests/chaos-{run_id}-{self.index}.json"


def _receipt(s3: Any, bucket: str, request_key: str, suffix: str) -> dict[str, Any] | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=request_key.removesuffix(".json") + suffix)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    receipt: dict[str, Any] = json.loads(body)
    return receipt


def _prompt(record: dict[str, Any]) -> str | None:
    prompt = record.get("request", {}).get("M", {}).get("prompt", {}).get("S")
    return str(prompt) if prompt is not None else None


def _first_job_by_prompt(records: dict[str, dict[str, Any]]) -> dict[str, str]:
    first: dict[str, str] = {}
    for job_id, record in sorted(records.items(), key=lambda item: (item[1]["created_at"]["S"], item[0])):
        prompt = _prompt(record)
        if prompt is not None:
            first.setdefault(prompt, job_id)
    return first


def _door_figures(
    requests: list[Request], records: dict[str, dict[str, Any]], s3: Any, bucket: str, run_id: str
) -> dict[str, Any]:
    """Jobs per logical request (one each, whatever was redelivered or retried), and the S3 receipts."""
    jobs_of: dict[str, list[str]] = {}
    for job_id, record in records.items():
        prompt = _prompt(record)
        if prompt is not None:
            jobs_of.setdefault(prompt, []).append(job_id)
    duplicates = Counter[str]()
    for request in requests:
        duplicates[request.door] += max(0, len(jobs_of.get(request.prompt, [])) - 1)
    # An S3 request's receipt (read now, after every redelivery) must name the one job of its prompt: a
    # receipt missing, or one where the prompt has several jobs or another one, is wrong.
    wrong_receipts = 0
    for request in requests:
        if request.door != "s3":
            continue
        receipt = _receipt(s3, bucket, request.s3_key(run_id), ".job.json")
        if receipt is None or jobs_of.get(request.prompt, []) != [receipt.get("id")]:
            wrong_receipts += 1
    return {
        "requests_by_door": dict(sorted(Counter(r.door for r in requests).items())),
        "job_records": len(records),
        # Job records beyond the first of each logical request (a redelivery or a retry that made a new job).
        "duplicate_jobs": sum(duplicates.values()),
        "duplicate_jobs_by_door": {door: duplicates[door] for door in sorted({r.door for r in requests})},
        "requests_with_one_job": sum(1 for r in requests if len(jobs_of.get(r.prompt, [])) == 1),
        "requests_without_job": sum(1 for r in requests if not jobs_of.get(r.prompt)),
        "receipts_with_wrong_id": wrong_receipts,
    }


def _passed(figures: dict[str, Any]) -> bool:
    """Every job: one terminal status, its event, no second submission, its video verified, nothing left
    over. One result event per job, with one exception that is injected on purpose: the outbox relay killed
    after PutEvents and before recording it sends that job's event again on the stream's retry (EventBridge
    has no idempotent PutEvents). Such a repeat has the same idempotency_key, so it is allowed for at most
    as many jobs as those deaths, never otherwise, and never with another status. At the doors, no repeat
    at all: each logical request one job record, whatever was redelivered or retried, and each S3 receipt
    naming it."""
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
        and figures["duplicate_jobs"] == 0
        and figures["requests_with_one_job"] == figures["jobs"]
        and figures["receipts_with_wrong_id"] == 0
        and figures["callbacks"]["forged_or_stale_accepted"] == 0
        and figures["webhooks"]["missing"] == 0
        and figures["webhooks"]["unverified_deliveries"] == 0
        and figures["webhooks"]["deliveries_disagreeing_with_job"] == 0
        and figures["failed_for_credits"] == 0
        and figures.get("credit_outage", {}).get("submissions_refused", 1) > 0
    )


def _callback_figures(stats: dict[str, Any]) -> dict[str, Any]:
    """OpenRouter's callbacks as the simulator sent them: by fault and answer; a wrongly signed or stale one
    answered 2xx would be a forgery accepted."""
    sent = [c for job in stats["jobs"].values() for c in job.get("callbacks", [])]
    answers = Counter(f"{c['fault'] or 'ok'}:{c['answer']}" for c in sent)
    refused_kinds = ("bad_signature", "stale")
    forged = sum(1 for c in sent if c["fault"] in refused_kinds and isinstance(c["answer"], int) and c["answer"] < 300)
    return {"sent": len(sent), "answers": dict(sorted(answers.items())), "forged_or_stale_accepted": forged}


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
