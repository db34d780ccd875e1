"""End-to-end: the whole pipeline through `videogen local serve`, as a separate process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from tests.conftest import TEST_KEY
from videogen_local.localmode.process import local_serve

VIDEOGEN = Path(sys.executable).with_name("videogen")
TERMINAL = {"completed", "failed", "cancelled", "expired", "timed_out"}


@dataclass
class Served:
    info: dict[str, Any]
    process: subprocess.Popen[str]
    events: list[dict[str, Any]] = field(default_factory=list)

    def aws(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.info["aws_endpoint_url"],
            region_name=self.info["region"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.info['api_url']}{path}", timeout=30, **kwargs)

    def job_record(self, job_id: str) -> dict[str, Any] | None:
        from boto3.dynamodb.types import TypeDeserializer

        item = (
            self.aws("dynamodb")
            .get_item(TableName=self.info["jobs_table"], Key={"id": {"S": job_id}}, ConsistentRead=True)
            .get("Item")
        )
        return {k: TypeDeserializer().deserialize(v) for k, v in item.items()} if item else None

    def wait_job(self, job_id: str, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job_record(job_id)
            if job and job["status"] in TERMINAL:
                return job
            assert time.monotonic() < deadline, f"{job_id} not finished: {job and job['status']}"
            time.sleep(0.3)

    def wait_announced(self, job_id: str, timeout: float = 60) -> dict[str, Any]:
        """The job once the outbox relay has sent its result event (which follows the terminal write)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job_record(job_id)
            if job and "event_published_at" in job:
                return job
            assert time.monotonic() < deadline, f"{job_id} not announced: {job and job['status']}"
            time.sleep(0.3)

    def drain_events(self) -> list[dict[str, Any]]:
        """Move every event from the results queue into ``self.events`` and return them all."""
        sqs = self.aws("sqs")
        while batch := sqs.receive_message(
            QueueUrl=self.info["results_queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages"):
            for message in batch:
                self.events.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.info["results_queue_url"], ReceiptHandle=message["ReceiptHandle"])
        return self.events


@contextmanager
def serve(log: Path, *args: str, extra_env: dict[str, str] | None = None) -> Iterator[Served]:
    """`videogen local serve` as a subprocess, with a known simulator key (so tests can prove it never leaks)."""
    env = {
        **(extra_env or {}),
        "VIDEOGEN_SIMULATOR_API_KEY": TEST_KEY,
        "POWERTOOLS_LOG_LEVEL": "INFO",
        # Short, so the tests see a revoked key stop working (deployed default: 60 s).
        "VIDEOGEN_KEY_AUTHORIZER_CACHE_SECONDS": "2",
        # Short, so the tests see a receiver that does not answer time out (deployed: 10 s).
        "WEBHOOK_READ_SECONDS": "1",
    }
    with local_serve(log, *args, env=env) as (info, process):
        served = Served(info, process)
        served.info["stderr_log"] = str(log)
        yield served


@pytest.fixture(scope="package")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # Webhooks to loopback receivers (tests/e2e/test_webhooks.py, the observability run): the deployed rules are
    # checked by a serve of their own.
    log = tmp_path_factory.mktemp("serve") / "stderr.log"
    with serve(log, "--poll-interval", "0", "--max-polls", "6", "--allow-private-webhooks") as server:
        yield server
