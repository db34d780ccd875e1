"""Handlers under moto: the service's resources, its environment, and a scripted OpenRouter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.conftest import TEST_KEY
from tests.support.handlers import invoke
from tests.support.scripted_http import Canned, ScriptedServer
from videogen_local.localmode.stream_poller import StreamPoller, StreamSource
from videogen_local.sim.server import SEEDANCE

BUCKET = "videogen-bucket"


@dataclass
class Env:
    openrouter: ScriptedServer
    queue_url: str
    results_url: str
    state_machine_arn: str
    outbox: StreamPoller
    outbox_dlq_url: str

    def queued_job_ids(self) -> list[str]:
        from videogen.aws import client

        messages = client("sqs").receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"])["job_id"] for m in messages]

    def events(self) -> list[dict[str, Any]]:
        """The result events so far: the jobs table's stream is relayed to the publish function first."""
        from videogen.aws import client

        self.outbox.poll_once()
        found: list[dict[str, Any]] = []
        while batch := client("sqs").receive_message(QueueUrl=self.results_url, MaxNumberOfMessages=10).get("Messages"):
            found += [json.loads(m["Body"]) for m in batch]
            for m in batch:
                client("sqs").delete_message(QueueUrl=self.results_url, ReceiptHandle=m["ReceiptHandle"])
        return found


@pytest.fixture
def env(aws: None, api_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    from videogen.aws import client
    from videogen.services import reset_services

    sqs = client("sqs")
    queue_url = sqs.create_queue(QueueName="videogen-submit")["QueueUrl"]
    results_url = sqs.create_queue(QueueName="videogen-results")["QueueUrl"]
    events = client("events")
    events.create_event_bus(Name="videogen-bus")
    events.put_rule(Name="results", EventBusName="videogen-bus", EventPattern=json.dumps({"source": ["videogen"]}))
    results_arn = sqs.get_queue_attributes(QueueUrl=results_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_targets(Rule="results", EventBusName="videogen-bus", Targets=[{"Id": "q", "Arn": results_arn}])
    role = "arn:aws:iam::123456789012:role/videogen-test"
    machine = client("stepfunctions").create_state_machine(
        name="videogen-video-job",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn=role,
    )["stateMachineArn"]
    api_server.on("GET", "/api/v1/videos/models", Canned(200, {"data": [SEEDANCE]}))
    for name, value in {
        "JOBS_TABLE": "videogen-jobs",
        "BUCKET": BUCKET,
        "QUEUE_URL": queue_url,
        "EVENT_BUS": "videogen-bus",
        "STATE_MACHINE_ARN": machine,
        "OPENROUTER_BASE_URL": api_server.url,
        "OPENROUTER_API_KEY": TEST_KEY,
        "OPENROUTER_BACKOFF_SECONDS": "0.01",
        # References such as https://example.com/backpack.png are not fetched here (test_preflight_handler turns it on).
        "VIDEOGEN_PREFLIGHT": "off",
        "POLL_INTERVAL_SECONDS": "0",
        "MAX_POLLS": "5",
    }.items():
        monkeypatch.setenv(name, value)
    reset_services()
    outbox_dlq_url = sqs.create_queue(QueueName="videogen-outbox-dlq")["QueueUrl"]
    outbox = StreamPoller(
        # botocore sends stream calls to <account>.streams-ddb.<region>..., a host moto's mock does not know.
        boto3.client("dynamodbstreams", config=Config(account_id_endpoint_mode="disabled")),
        client("dynamodb").describe_table(TableName="videogen-jobs")["Table"]["LatestStreamArn"],
        lambda event: invoke("publish", event),
        "arn:aws:lambda:us-east-1:123456789012:function:videogen-publish",
        StreamSource.outbox(),
        sqs,
        outbox_dlq_url,
    )
    yield Env(api_server, queue_url, results_url, machine, outbox, outbox_dlq_url)


CONTROL = "videogen-control"


@pytest.fixture
def control_table(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """The env with the control table (videogen.breaker, videogen.pressure); a test's own settings follow."""
    from videogen.aws import client
    from videogen.services import reset_services
    from videogen_local.localmode.stack import create_control_table

    create_control_table(client("dynamodb"), CONTROL)
    monkeypatch.setenv("CONTROL_TABLE", CONTROL)
    reset_services()
    yield env
