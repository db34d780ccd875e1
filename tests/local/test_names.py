"""Local mode mirrors the template: same names, same wiring, same handlers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from videogen_local.localmode.front_door import proxy_event
from videogen_local.localmode.handlers import load_all
from videogen_local.localmode.names import FUNCTIONS, Names

ROOT = Path(__file__).resolve().parents[2]


def template() -> dict[str, Any]:
    from tests.template.cfn_template import load_template  # the template tests' CFN-aware loader

    loaded: dict[str, Any] = load_template(ROOT / "template.yaml")
    return loaded


def sub(value: Any, stack: str) -> str:
    """Resolve the !Sub strings of physical names for a given stack name."""
    text = value["Fn::Sub"] if isinstance(value, dict) else value
    return (
        str(text)
        .replace("${AWS::StackName}", stack)
        .replace("${AWS::AccountId}", "123456789012")
        .replace("${AWS::Region}", "us-east-1")
    )


def test_local_names_match_the_template() -> None:
    names = Names(stack="videogen")
    resources = template()["Resources"]
    assert sub(resources["JobsTable"]["Properties"]["TableName"], "videogen") == names.table
    assert sub(resources["ServiceBucket"]["Properties"]["BucketName"], "videogen") == names.bucket
    assert sub(resources["SubmitQueue"]["Properties"]["QueueName"], "videogen") == names.queue
    assert sub(resources["SubmitDeadLetterQueue"]["Properties"]["QueueName"], "videogen") == names.dead_letter_queue
    assert sub(resources["EventBus"]["Properties"]["Name"], "videogen") == names.event_bus
    assert sub(resources["VideosApi"]["Properties"]["Name"], "videogen") == names.api
    assert sub(resources["VideoJobStateMachine"]["Properties"]["Name"], "videogen") == names.state_machine
    assert sub(resources["OpenRouterApiKeySecret"]["Properties"]["Name"], "videogen") == names.secret
    assert sub(resources["OpenRouterWebhookSecret"]["Properties"]["Name"], "videogen") == names.webhook_secret
    assert sub(resources["CallbackQueue"]["Properties"]["QueueName"], "videogen") == names.callback_queue
    assert (
        sub(resources["CallbackDeadLetterQueue"]["Properties"]["QueueName"], "videogen")
        == names.callback_dead_letter_queue
    )
    assert sub(resources["BatchesTable"]["Properties"]["TableName"], "videogen") == names.batches_table
    assert sub(resources["BatchQueue"]["Properties"]["QueueName"], "videogen") == names.batch_queue
    assert (
        sub(resources["BatchDeadLetterQueue"]["Properties"]["QueueName"], "videogen") == names.batch_dead_letter_queue
    )
    functions = {
        Path(r["Properties"]["CodeUri"]).name: sub(r["Properties"]["FunctionName"], "videogen")
        for r in resources.values()
        if r["Type"] == "AWS::Serverless::Function"
    }
    assert functions == {folder: names.function(folder) for folder in FUNCTIONS}


def test_every_function_loads_and_exposes_a_handler() -> None:
    modules = load_all(ROOT)
    assert set(modules) == set(FUNCTIONS)
    assert all(callable(module.lambda_handler) for module in modules.values())


@pytest.mark.parametrize(
    ("raw", "resource", "params", "query"),
    [
        ("/v1/videos", "/videos", None, None),
        ("/v1/videos/abc?x=1", "/videos/{id}", {"id": "abc"}, {"x": "1"}),
        ("/models", "/models", None, None),
        ("/v1/videos?status=completed&limit=2", "/videos", None, {"status": "completed", "limit": "2"}),
    ],
)
def test_front_door_builds_rest_proxy_events(
    raw: str, resource: str, params: dict[str, str] | None, query: dict[str, str] | None
) -> None:
    event = proxy_event("GET", raw, {"x-videogen-caller": "arn:aws:iam::1:user/a"}, b"", "127.0.0.1")
    assert event["resource"] == resource and event["pathParameters"] == params
    assert event["queryStringParameters"] == query
    assert event["requestContext"]["identity"]["userArn"] == "arn:aws:iam::1:user/a"
    assert event["requestContext"]["stage"] == "v1"
    assert not event["path"].startswith("/v1")


def test_front_door_events_parse_like_the_sample_event() -> None:
    sample = json.loads((ROOT / "events" / "api_post_videos.json").read_text())
    built = proxy_event("POST", "/v1/videos", {"content-type": "application/json"}, b"{}", "127.0.0.1")
    assert set(sample) <= set(built)
