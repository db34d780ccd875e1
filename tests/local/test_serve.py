"""`videogen local serve` as a user runs it: one JSON line on stdout, then a clean exit on a signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

VIDEOGEN = Path(sys.executable).with_name("videogen")
REQUIRED = {
    "api_url",
    "aws_endpoint_url",
    "region",
    "bucket",
    "event_bus",
    "jobs_table",
    "queue_url",
    "results_queue_url",
    "state_machine_arn",
    "openrouter_base_url",
    "simulator",
}


def read_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The first stdout line, or "" if none came within the timeout."""
    lines: list[str] = []
    assert process.stdout is not None
    stdout = process.stdout
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return lines[0] if lines else ""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_prints_one_json_line_and_stops_cleanly(signum: signal.Signals, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENROUTER_", "AWS_ENDPOINT", "VIDEOGEN_"))}
    stderr_log = tmp_path / "stderr.log"
    started = time.monotonic()
    with stderr_log.open("w") as stderr:
        process = subprocess.Popen(
            [
                *(str(VIDEOGEN), "local", "serve", "--port", "0", "--poll-interval", "0", "--max-polls", "3"),
                *("--metrics-file", str(tmp_path / "metrics.jsonl")),
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )
        try:
            line = read_line(process, timeout=30)
            ready = time.monotonic() - started
            assert line, f"nothing on stdout within 30 s; stderr:\n{stderr_log.read_text()[-3000:]}"
            info = json.loads(line)
            assert set(info) >= REQUIRED, REQUIRED - set(info)
            assert info["simulator"] is True and info["region"] == "us-east-1"
            assert info["api_url"].startswith("http://127.0.0.1:") and info["api_url"].endswith("/v1")
            # The front door answers: an unknown route with the gateway's own 404, a route through its function.
            assert httpx.get(f"{info['api_url']}/no-such-route", timeout=30).status_code == 404
            assert httpx.get(f"{info['api_url']}/health", timeout=30).status_code < 500
            # ... and what Lambda and API Gateway publish for it is in the metrics file before the answer.
            assert info["metrics_file"] == str(tmp_path / "metrics.jsonl")
            lines = Path(info["metrics_file"]).read_text().splitlines()
            namespaces = [json.loads(line)["_aws"]["CloudWatchMetrics"][0]["Namespace"] for line in lines]
            assert {"AWS/Lambda", "AWS/ApiGateway"} <= set(namespaces), namespaces
            print(f"local serve ready in {ready:.2f} s")
            process.send_signal(signum)
            stopping = time.monotonic()
            try:
                # serve's own deadline is 30 s: past it, it prints every thread's stack and exits 1.
                status = process.wait(timeout=45)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGUSR1)  # serve prints every thread's stack to stderr
                time.sleep(1)
                pytest.fail(f"not stopped within 45 s; stderr:\n{stderr_log.read_text()[-6000:]}")
            assert status == 0, f"stopped with {status}; stderr:\n{stderr_log.read_text()[-6000:]}"
            print(f"stopped in {time.monotonic() - stopping:.2f} s")
            assert process.stdout is not None and process.stdout.read() == ""  # exactly one line
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
