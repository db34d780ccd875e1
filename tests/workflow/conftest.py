"""The real state machine definition executing in moto, invoking the real handlers, with the
OpenRouter simulator on loopback: the local stack, in-process."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import pytest

from videogen.jobs import JobStore
from videogen_local.localmode.stack import LocalStack, LocalStackConfig

TERMINAL = {"completed", "failed", "cancelled", "expired", "timed_out"}
MAX_POLLS = 4


@dataclass
class Pipeline:
    stack: LocalStack

    @property
    def info(self) -> dict[str, Any]:
        return self.stack.info

    def aws(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.info["aws_endpoint_url"], region_name=self.info["region"])

    def submit(self, **request: Any) -> str:
        response = httpx.post(f"{self.info['api_url']}/videos", json=request, timeout=30)
        assert response.status_code == 202, response.text
        job_id: str = response.json()["id"]
        return job_id

    def job(self, job_id: str) -> dict[str, Any]:
        response = httpx.get(f"{self.info['api_url']}/videos/{job_id}", timeout=30)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def job_record(self, job_id: str) -> dict[str, Any]:
        """The job straight from DynamoDB (jobs created outside the API belong to no API caller)."""
        job = JobStore(self.info["jobs_table"]).get(job_id)
        assert job is not None
        return job.model_dump(mode="json")

    def wait(self, job_id: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["status"] in TERMINAL:
                return job
            assert time.monotonic() < deadline, f"job {job_id} still {job['status']} after {timeout} s"
            time.sleep(0.2)

    def execution(self, job_id: str, timeout: float = 30) -> dict[str, Any]:
        """The job's execution once it has stopped running."""
        arn = self.info["state_machine_arn"].replace(":stateMachine:", ":execution:") + f":{job_id}"
        deadline = time.monotonic() + timeout
        while True:
            described: dict[str, Any] = self.aws("stepfunctions").describe_execution(executionArn=arn)
            if described["status"] != "RUNNING":
                return described
            assert time.monotonic() < deadline, f"execution {arn} still running"
            time.sleep(0.2)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        sfn = self.aws("stepfunctions")
        events: list[dict[str, Any]] = []
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
            events += page["events"]
        return events

    def events_for(self, job_id: str, settle: float = 0.5, timeout: float = 30) -> list[dict[str, Any]]:
        """Result events of this job read from the results queue (others are kept for their tests), once
        the outbox relay has announced the job: its event follows the terminal write, it does not come with it."""
        dynamodb, sqs = self.aws("dynamodb"), self.aws("sqs")
        deadline = time.monotonic() + timeout
        key = {"id": {"S": job_id}}
        while "event_published_at" not in dynamodb.get_item(
            TableName=self.info["jobs_table"], Key=key, ConsistentRead=True
        ).get("Item", {}):
            assert time.monotonic() < deadline, f"job {job_id} not announced after {timeout} s"
            time.sleep(0.1)
        time.sleep(settle)  # a duplicate would come right after
        found: list[dict[str, Any]] = []
        while batch := sqs.receive_message(
            QueueUrl=self.info["results_queue_url"], MaxNumberOfMessages=10, VisibilityTimeout=0
        ).get("Messages"):
            mine = [m for m in batch if json.loads(m["Body"])["detail"].get("job_id") == job_id]
            for message in mine:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.info["results_queue_url"], ReceiptHandle=message["ReceiptHandle"])
            if not mine:
                break
        return found


@pytest.fixture(scope="package")
def pipeline() -> Iterator[Pipeline]:
    config = LocalStackConfig(poll_interval=0, max_polls=MAX_POLLS, simulator_max_render_height=144)
    with LocalStack(config) as stack:
        yield Pipeline(stack)
