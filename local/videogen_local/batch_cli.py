"""`videogen batch submit|status|wait|results`: batches through the API (POST /batches, GET /batches/{id}),
found as the other caller verbs find it (``--api`` or ``VIDEOGEN_API_URL``; SigV4 when deployed)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from videogen_local.caller import VideogenApi


def add_arguments(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="batch_command", required=True)

    def verb(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help_text)
        sub.add_argument("--api", default=os.environ.get("VIDEOGEN_API_URL"), help="API URL (env VIDEOGEN_API_URL)")
        sub.add_argument("--region", help="AWS region of a deployed API (default: from its URL)")
        return sub

    submit = verb("submit", "send a manifest (a JSON array or JSON lines, one request a line) as one batch")
    submit.add_argument("file", type=Path)
    submit.add_argument("--idempotency-key", help="the same key and file again answer with the same batch")
    verb("status", "show a batch and its counts").add_argument("id")
    wait = verb("wait", "wait for a batch to finish, with a progress bar on stderr")
    wait.add_argument("id")
    wait.add_argument("--timeout", type=float, default=24 * 3600)
    wait.add_argument("--interval", type=float, default=5)
    results = verb("results", "print (or save) a finished batch's results.jsonl")
    results.add_argument("id")
    results.add_argument("-o", "--output", type=Path)


def run(args: argparse.Namespace) -> int:
    if not args.api:
        raise SystemExit("pass --api URL (or set VIDEOGEN_API_URL), e.g. the ApiUrl stack output")
    api = VideogenApi(args.api, args.region)
    if args.batch_command == "submit":
        headers = {"Content-Type": "application/json"}
        if args.idempotency_key:
            headers["Idempotency-Key"] = args.idempotency_key
        print(json.dumps(api.call("POST", "/batches", content=args.file.read_bytes(), headers=headers), indent=2))
        return 0
    if args.batch_command == "status":
        print(json.dumps(api.call("GET", f"/batches/{args.id}"), indent=2))
        return 0
    if args.batch_command == "wait":
        batch = wait(api, args.id, args.timeout, args.interval)
        print(json.dumps(batch, indent=2))
        return 0 if batch["status"] == "finished" else 1
    batch = api.call("GET", f"/batches/{args.id}")
    if batch["status"] != "finished" or not batch.get("results_url"):
        raise SystemExit(f"batch {args.id} is {batch['status']}: no results yet (videogen batch wait {args.id})")
    # The presigned S3 URL carries its own authorization: no SigV4 header is sent there.
    with httpx.stream("GET", batch["results_url"], timeout=120) as response:
        response.raise_for_status()
        out = args.output.open("wb") if args.output else sys.stdout.buffer
        try:
            for chunk in response.iter_bytes(1024 * 1024):
                out.write(chunk)
        finally:
            if args.output:
                out.close()
            else:
                out.flush()
    return 0


def progress_bar(batch: dict[str, Any], width: int = 30) -> str:
    """``[#####-----] 40/100 ended (3 refused, 37 completed, ...)`` of a batch view."""
    counts: dict[str, int] = batch["counts"]
    total = batch["jobs"]
    ended = total - counts.get("pending", 0)
    filled = width * ended // total if total else (width if batch["status"] != "reading" else 0)
    detail = ", ".join(f"{n} {status}" for status, n in counts.items() if n and status != "pending")
    reading = " reading" if batch["status"] == "reading" else ""
    return f"[{'#' * filled}{'-' * (width - filled)}] {ended}/{total} ended{reading} ({detail or 'none yet'})"


def wait(api: VideogenApi, batch_id: str, timeout: float, interval: float) -> dict[str, Any]:
    started = time.monotonic()
    while True:
        batch: dict[str, Any] = api.call("GET", f"/batches/{batch_id}")
        elapsed = time.monotonic() - started
        print(f"\r{progress_bar(batch)} {elapsed:6.0f}s", end="", file=sys.stderr, flush=True)
        if batch["status"] == "finished" or elapsed > timeout:
            print(file=sys.stderr)
            return batch
        time.sleep(interval)
