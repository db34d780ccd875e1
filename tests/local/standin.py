"""Stand-in handlers for the local stack's own tests: one app.py copied into every functions/<folder>,
logging each invocation (function, event, context) to $STAND_IN_LOG and behaving per function."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from videogen_local.localmode.names import FUNCTIONS

ROOT = Path(__file__).resolve().parents[2]

APP = '''
import json
import os


class TransientError(Exception):
    """Matched by name in the state machine's Retry."""


def _log(context, event):
    entry = {
        "function": context.function_name,
        "event": event,
        "request_id": context.aws_request_id,
        "arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "memory_mb": context.memory_limit_in_mb,
        "log_group": context.log_group_name,
        "log_stream": context.log_stream_name,
    }
    with open(os.environ["STAND_IN_LOG"], "a") as log:
        log.write(json.dumps(entry) + "\\n")


def _polls(job_id):
    with open(os.environ["STAND_IN_LOG"]) as log:
        entries = [json.loads(line) for line in log]
    return sum(1 for e in entries if e["function"].endswith("-poll") and e["event"].get("job_id") == job_id)


def lambda_handler(event, context):
    _log(context, event)
    role = context.function_name.split("-", 1)[1]
    if role == "api":
        if "explode" in event["path"]:
            raise RuntimeError("api stand-in exploded")
        return {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json", "X-Stand-In": "api"},
            "multiValueHeaders": {"X-Multi": ["a", "b"]},
            "body": json.dumps({"stand_in": "api", "resource": event["resource"]}),
            "isBase64Encoded": False,
        }
    if role == "intake-s3":
        key = event["Records"][0]["s3"]["object"]["key"]
        if "fail" in key:
            raise RuntimeError("intake refused " + key)
        return None
    if role == "intake-event":
        if event["detail"].get("fail"):
            raise RuntimeError("intake refused")
        return None
    if role == "submit":
        for record in event["Records"]:
            if json.loads(record["body"]).get("raise") and record["attributes"]["ApproximateReceiveCount"] == "1":
                raise RuntimeError("the whole batch fails once")
        failed = [r["messageId"] for r in event["Records"] if json.loads(r["body"]).get("fail")]
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}
    if role == "poll":
        job_id = event["job_id"]
        if job_id.startswith("retry") and _polls(job_id) == 1:
            raise TransientError("try again")
        if job_id.startswith("boom"):
            raise ValueError("poll exploded")
        return {
            "status": "completed",
            "poll_count": event["poll_count"] + 1,
            "error": None,
            "unsigned_urls": ["http://127.0.0.1:9/video.mp4"],
        }
    if role == "download":
        return {"status": "completed"}
    if role == "fail":
        return {"status": "failed"}
    if role == "publish":
        ids = [(r["dynamodb"]["SequenceNumber"], r["dynamodb"]["NewImage"]["id"]["S"]) for r in event["Records"]]
        if any(job_id.startswith("boom") for _, job_id in ids):
            raise RuntimeError("publish stand-in exploded")
        return {"batchItemFailures": [{"itemIdentifier": seq} for seq, job_id in ids if job_id.startswith("fail")]}
    raise ValueError("unknown stand-in role " + role)
'''


def write_tree(root: Path) -> Path:
    """functions/<folder>/app.py for every function, the real state machine and template; returns the log path."""
    for folder in FUNCTIONS:
        (root / "functions" / folder).mkdir(parents=True)
        (root / "functions" / folder / "app.py").write_text(APP)
    shutil.copytree(ROOT / "statemachine", root / "statemachine")
    shutil.copy(ROOT / "template.yaml", root / "template.yaml")  # the stream's event source is read from it
    log = root / "invocations.jsonl"
    log.touch()
    return log


def forget_loaded_functions() -> None:
    """The real handlers must load again for the other tests of this process."""
    for folder in FUNCTIONS:
        sys.modules.pop(f"videogen_functions.{folder}", None)


def invocations(log: Path, function: str) -> list[dict[str, Any]]:
    """Log entries of one function (its name without the stack prefix, e.g. "intake-s3")."""
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    return [entry for entry in entries if entry["function"].split("-", 1)[1] == function]
