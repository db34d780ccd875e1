"""One Lambda container as a process: it loads a function's app.py and runs requests read from stdin,
one JSON per line, answering each with one JSON line that includes the process's memory.

The process runs on what a deployed function has (bench/layer_site.py: the layer's packages and the
runtime's boto3, no site-packages). Running each function in its own process (with AWS on a moto server
in yet another process) is what makes memory figures mean something: in `videogen local serve` every
handler shares one process.

Requests: {"op": "invoke", "event": {...}}, {"op": "read", "url": ...} (the HTTP leg alone: the
bytes are read and dropped), {"op": "upload", "bytes": N, "part_bytes": P} (the S3 leg alone: N
bytes from memory into a multipart upload), {"op": "memory"}.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import traceback
from typing import Any


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def peak_rss_bytes() -> int:
    """The process's high-water RSS. Not getrusage's ru_maxrss: Linux carries that over from the parent
    across fork and exec, so a child of a big process reports the parent's peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    function = sys.argv[1]
    # Replies get the real stdout; what the handler prints (logs, EMF metrics) goes to stderr.
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    from videogen_local.localmode.handlers import load_function

    handler = load_function(function).lambda_handler
    context = _Context(function)
    print(json.dumps({"ready": True, **_memory()}), file=replies, flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        before = rss_bytes()
        started = time.perf_counter()
        try:
            result: Any = _run(request, handler, context)
            error = None
        except Exception as exc:
            result, error = None, {"type": type(exc).__name__, "message": str(exc), "trace": traceback.format_exc()}
        seconds = time.perf_counter() - started
        reply = {"result": result, "error": error, "seconds": seconds, "rss_before": before, **_memory()}
        print(json.dumps(reply, default=str), file=replies, flush=True)


class _Context:
    """What Powertools reads from a Lambda context."""

    def __init__(self, function: str) -> None:
        self.function_name = f"videogen-{function}"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        self.memory_limit_in_mb = 512
        self.function_version = "$LATEST"
        self.aws_request_id = "bench"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def _memory() -> dict[str, int]:
    return {"rss": rss_bytes(), "peak_rss": peak_rss_bytes()}


def _run(request: dict[str, Any], handler: Any, context: Any) -> Any:
    op = request["op"]
    if op == "invoke":
        return handler(request["event"], context)
    if op == "read":
        return _read(request["url"])
    if op == "upload":
        return _upload(int(request["bytes"]), int(request["part_bytes"]))
    if op == "memory":
        return None
    raise ValueError(f"unknown op {op!r}")


def _read(url: str) -> int:
    from videogen.services import get_services

    total = 0
    with get_services().openrouter.stream(url) as response:
        for chunk in response.iter_bytes(1024 * 1024):
            total += len(chunk)
    return total


def _upload(total: int, part_bytes: int) -> int:
    """Sequential parts from one buffer in memory: the upload leg with no reading at all."""
    from videogen.aws import client
    from videogen.services import get_services

    bucket = get_services().settings.bucket
    s3 = client("s3")
    key = "videos/bench-upload-leg.mp4"
    buffer = bytes(part_bytes)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    for number, offset in enumerate(range(0, total, part_bytes), start=1):
        body = buffer[: min(part_bytes, total - offset)]
        parts.append(
            {
                "PartNumber": number,
                "ETag": s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)[
                    "ETag"
                ],
            }
        )
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    return total


if __name__ == "__main__":
    main()
