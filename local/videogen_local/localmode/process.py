"""`videogen local serve` as a child process: started, its ready line read, stopped on exit.

Used by `videogen chaos` and the end-to-end tests, which must go through the command a user runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def local_serve(
    log: Path, *args: str, env: Mapping[str, str] | None = None
) -> Iterator[tuple[dict[str, Any], subprocess.Popen[str]]]:
    """Yields (the ready line's info, the process). The caller's OPENROUTER_* and AWS endpoint settings are
    not inherited, so the child picks the simulator unless ``env`` says otherwise; stderr goes to ``log``,
    and the metrics next to it (``<log stem>.metrics.jsonl``) unless ``args`` name a --metrics-file."""
    if "--metrics-file" not in args:
        # Not serve's default out/metrics.jsonl: runs in parallel (tests, chaos) would overwrite each other's.
        args = (*args, "--metrics-file", str(log.with_name(f"{log.stem}.metrics.jsonl")))
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENROUTER_", "AWS_ENDPOINT"))}
    child_env.update(env or {})
    videogen = Path(sys.executable).with_name("videogen")
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [str(videogen), "local", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=child_env,
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"videogen local serve did not start:\n{log.read_text()[-3000:]}")
            yield json.loads(line), process
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def stack_client(info: Mapping[str, Any], service: str) -> Any:
    """A boto3 client for a running local stack, from its ready line: its endpoint and region, and
    credentials of any value (moto checks none), so that no AWS profile of the caller's is needed."""
    import boto3

    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=info["aws_endpoint_url"],
        region_name=info["region"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
