"""Processes the benchmarks measure and the processes they measure against, each on its own:
moto as a server, the loopback video host, and one process per Lambda container."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import IO, Any

import boto3
import httpx

from videogen_local.localmode.stack import free_port

REGION = "us-east-1"
TABLE = "bench-jobs"
BUCKET = "bench-bucket"
BUS = "bench-bus"
API_KEY = "sk-or-v1-bench-key"
MiB = 1024 * 1024


def _wait_http(url: str, process: subprocess.Popen[Any], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(url)


@contextmanager
def _process(args: list[str], ready_url: str, env: Mapping[str, str] | None = None) -> Iterator[None]:
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        _wait_http(ready_url, process)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class Aws:
    """moto in server mode, in its own process, with the service's table, bucket and bus."""

    endpoint: str

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )

    def lambda_env(self, openrouter_base_url: str) -> dict[str, str]:
        """The function environment of template.yaml, pointed at this moto server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "JOBS_TABLE": TABLE,
            "BUCKET": BUCKET,
            "EVENT_BUS": BUS,
            "OPENROUTER_BASE_URL": openrouter_base_url,
            "OPENROUTER_API_KEY": API_KEY,
            "POWERTOOLS_SERVICE_NAME": "videogen",
            "POWERTOOLS_METRICS_NAMESPACE": "videogen-bench",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }


@contextmanager
def moto_server() -> Iterator[Aws]:
    from videogen_local.localmode.stack import create_jobs_table

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "bench.moto_server", "-H", "127.0.0.1", "-p", str(port)]
    with _process(args, f"{endpoint}/moto-api/"):
        aws = Aws(endpoint)
        create_jobs_table(aws.client("dynamodb"), TABLE)
        aws.client("s3").create_bucket(Bucket=BUCKET)
        aws.client("events").create_event_bus(Name=BUS)
        yield aws


@contextmanager
def video_server() -> Iterator[str]:
    """Yields the server's base URL; GET {url}/video?bytes=N."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with _process([sys.executable, "-m", "bench.video_server", "--port", str(port)], f"{url}/video?bytes=0"):
        yield url


class LambdaWorker:
    """A function's app.py in a process of its own (see bench/lambda_worker.py)."""

    def __init__(self, function: str, env: Mapping[str, str]) -> None:
        from bench.layer_site import ROOT, layer_site

        self.function = function
        python, site = layer_site()
        path = os.pathsep.join([str(site), str(ROOT), str(ROOT / "local")])
        env = {"PYTHONPATH": path, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMPDIR": "/tmp", **env}
        self.process = subprocess.Popen(
            [python, "-S", "-m", "bench.lambda_worker", function],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.ready = self._reply()

    def call(self, op: str, **request: Any) -> dict[str, Any]:
        stdin: IO[str] | None = self.process.stdin
        assert stdin is not None
        stdin.write(json.dumps({"op": op, **request}) + "\n")
        stdin.flush()
        reply = self._reply()
        if reply["error"]:
            raise RuntimeError(f"{self.function} {op}: {reply['error']['trace']}")
        return reply

    def send(self, op: str, **request: Any) -> None:
        """Start a request without waiting for its answer (to kill the worker half-way)."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": op, **request}) + "\n")
        self.process.stdin.flush()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def _reply(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.function} exited ({self.process.wait()})")
        reply: dict[str, Any] = json.loads(line)
        return reply


@contextmanager
def workers(env: Mapping[str, str], *functions: str) -> Iterator[dict[str, LambdaWorker]]:
    with ExitStack() as stack:
        started = {}
        for function in functions:
            worker = LambdaWorker(function, env)
            stack.callback(worker.close)
            started[function] = worker
        yield started
