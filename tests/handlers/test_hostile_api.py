"""Hostile input through the API and the S3 / EventBridge doors (issue 10, part 5): a 4xx (or a receipt
and a VideoRejected event) naming the field, never a 5xx or silence."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from tests.handlers.conftest import BUCKET, Env
from tests.handlers.test_api import post, request
from tests.support.handlers import invoke, sample_event
from videogen.aws import client


def error_of(response: dict[str, Any], status: int) -> dict[str, Any]:
    assert response["statusCode"] == status, response
    error: dict[str, Any] = json.loads(response["body"])["error"]
    assert error["code"] == status
    return error


def fields_of(error: dict[str, Any]) -> list[str]:
    return [f["field"] for f in error["fields"]]


@pytest.mark.parametrize("body", ["[" * 2000, '{"a":' * 2000])
def test_deeply_nested_body_is_400_naming_body(env: Env, body: str) -> None:
    assert fields_of(error_of(post(body), 400)) == ["body"]
    assert env.queued_job_ids() == []


def test_body_over_the_limit_in_utf8_bytes_is_413(env: Env) -> None:
    body = json.dumps({"prompt": "é" * 210_000}, ensure_ascii=False)
    assert fields_of(error_of(post(body), 413)) == ["body"]


def test_loose_types_are_422_naming_the_field(env: Env) -> None:
    for field, value in (("duration", True), ("duration", "5"), ("seed", "42"), ("generate_audio", "yes")):
        assert fields_of(error_of(post({"prompt": "p", field: value}), 422)) == [field]
    assert client("dynamodb").scan(TableName="videogen-jobs")["Count"] == 0


def test_invisible_prompt_is_422(env: Env) -> None:
    assert fields_of(error_of(post({"prompt": "\u200b\ufeff"}), 422)) == ["prompt"]
    assert fields_of(error_of(post({"prompt": "\x00\x00"}), 422)) == ["prompt"]
    assert fields_of(error_of(post({"prompt": "\u0301\u0301 \u20dd"}), 422)) == ["prompt"]  # marks on nothing


def list_query(**query: str) -> dict[str, Any]:
    return request("GET", "/videos", queryStringParameters=query)


@pytest.mark.parametrize("limit", ["1e9", "0", "-1", "101", "2.5", "abc", "", " 5", "0x10", "1" * 40])
def test_limit_outside_1_to_100_is_422_naming_limit(env: Env, limit: str) -> None:
    assert fields_of(error_of(list_query(limit=limit), 422)) == ["limit"]


def test_limit_bounds_are_accepted(env: Env) -> None:
    assert list_query(limit="1")["statusCode"] == 200
    assert list_query(limit="100")["statusCode"] == 200


def test_unknown_status_is_422_naming_status(env: Env) -> None:
    assert fields_of(error_of(list_query(status="bogus"), 422)) == ["status"]


def forged(key: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


@pytest.mark.parametrize(
    "token",
    [
        forged({"caller": {"S": "arn:aws:iam::123456789012:user/caller"}, "id": {"N": "1"}, "created_at": {"S": "x"}}),
        forged({"caller": {"S": "arn:aws:iam::123456789012:user/caller"}, "nope": {"S": "x"}}),
        forged({"caller": {"S": "arn:aws:iam::123456789012:user/caller"}, "id": {"S": "a"}, "created_at": 5}),
        forged({"caller": {"S": "arn:aws:iam::123456789012:user/someone"}, "id": {"S": "a"}, "created_at": {"S": "x"}}),
        forged([1]),
        "garbage",
    ],
)
def test_forged_next_token_is_422_naming_next_token(env: Env, token: str) -> None:
    assert fields_of(error_of(list_query(next_token=token), 422)) == ["next_token"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/videos", "GET, POST"),
        ("PATCH", "/videos", "GET, POST"),
        ("DELETE", "/videos", "GET, POST"),
        ("PUT", "/videos/abc", "GET, DELETE"),
        ("PATCH", "/videos/abc", "GET, DELETE"),
        ("POST", "/videos/abc", "GET, DELETE"),
        ("GET", "/batches", "POST"),
        ("PUT", "/batches", "POST"),
        ("PUT", "/batches/b1", "GET, DELETE"),
        ("POST", "/batches/b1/jobs", "GET"),
    ],
)
def test_unsupported_method_is_405_with_allow(env: Env, method: str, path: str, allowed: str) -> None:
    response = request(method, path)
    error = error_of(response, 405)
    assert response["multiValueHeaders"]["Allow"] == [allowed] and method in error["message"]


def test_unknown_path_is_still_404(env: Env) -> None:
    error_of(request("PUT", "/nothing"), 404)


def test_duplicate_frame_type_names_frame_images(env: Env) -> None:
    frame = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}, "frame_type": "first_frame"}
    assert fields_of(error_of(post({"prompt": "p", "frame_images": [frame, frame]}), 422)) == ["frame_images"]


# --- the other doors: a receipt and a VideoRejected event for every rejection ---------------------------


def s3_put(key: str, body: bytes) -> dict[str, Any]:
    etag = client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"].strip('"')
    event = copy.deepcopy(sample_event("s3_request_created"))
    event["Records"][0]["s3"]["object"].update(key=key, eTag=etag)  # as S3 sends it: the upload's own ETag
    result: dict[str, Any] = invoke("intake_s3", event)
    return result


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 2000, "request body is nested too deeply"),
        (b'{"a":' * 2000, "request body is nested too deeply"),
        (b'{"prompt": "caf\xe9"}', "request is not UTF-8 JSON"),
    ],
)
def test_s3_door_rejects_hostile_objects_with_a_receipt_and_an_event(env: Env, body: bytes, message: str) -> None:
    s3_put("requests/hostile.json", body)
    receipt = json.loads(client("s3").get_object(Bucket=BUCKET, Key="requests/hostile.error.json")["Body"].read())
    assert receipt["error"]["code"] == 400 and receipt["error"]["message"] == message
    assert [f["field"] for f in receipt["error"]["fields"]] == ["body"]
    [event] = env.events()
    assert event["detail-type"] == "VideoRejected" and event["detail"]["message"] == message
    assert env.queued_job_ids() == []


def test_eventbridge_door_rejects_deep_detail_with_an_event(env: Env) -> None:
    value: Any = 1
    for _ in range(3000):
        value = [value]
    event = copy.deepcopy(sample_event("eventbridge_video_requested"))
    event["detail"] = {"prompt": "p", "x": value}
    result = invoke("intake_event", event)
    assert result["status"] == "rejected" and result["error"]["code"] == 400
    [published] = env.events()
    assert published["detail-type"] == "VideoRejected" and published["detail"]["fields"][0]["field"] == "body"


def test_eventbridge_door_rejects_loose_types_with_an_event(env: Env) -> None:
    event = copy.deepcopy(sample_event("eventbridge_video_requested"))
    event["detail"]["duration"] = "4"
    result = invoke("intake_event", event)
    assert result["status"] == "rejected" and result["error"]["fields"][0]["field"] == "duration"
    assert [e["detail-type"] for e in env.events()] == ["VideoRejected"]
