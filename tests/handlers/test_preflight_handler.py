"""Preflight on, through the API and EventBridge doors: an unfetchable reference is a 422 naming its field,
and nothing is written, enqueued or sent to OpenRouter. (The env fixture turns preflight off for the rest.)"""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest

from tests.handlers.conftest import Env
from tests.support.handlers import invoke, sample_event
from videogen.aws import client
from videogen.preflight import Preflight

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def _answer(request: httpx.Request) -> httpx.Response:
    # Connected by address, the name kept for Host and TLS (SNI).
    assert request.url.host == "93.184.216.34" and request.headers["host"] == "images.example.com"
    assert request.extensions["sni_hostname"] == "images.example.com"
    if request.url.path == "/backpack.png":
        return httpx.Response(200, content=PNG, headers={"Content-Type": "image/png"})
    return httpx.Response(200, content=b"<!doctype html><p>Log in", headers={"Content-Type": "text/html"})


@pytest.fixture
def preflight_on(env: Env, monkeypatch: pytest.MonkeyPatch) -> Preflight:
    from videogen.services import get_services, reset_services

    monkeypatch.setenv("VIDEOGEN_PREFLIGHT", "on")
    reset_services()
    preflight = Preflight(
        resolver=lambda host, port: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))],
        transport=httpx.MockTransport(_answer),
    )
    get_services().__dict__["preflight"] = preflight  # the cached_property, injected
    return preflight


def _request(*urls: str) -> dict[str, Any]:
    refs = [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    return {"prompt": "a red backpack", "duration": 4, "input_references": refs}


def _post(body: dict[str, Any]) -> dict[str, Any]:
    event = sample_event("api_post_videos")
    event["body"] = json.dumps(body)
    return invoke("api", event)


def test_an_html_reference_is_422_naming_its_field_and_nothing_is_written(env: Env, preflight_on: Preflight) -> None:
    response = _post(_request("https://images.example.com/backpack.png", "https://images.example.com/share/123"))
    assert response["statusCode"] == 422, response
    [error] = json.loads(response["body"])["error"]["fields"]
    assert error["field"] == "input_references[1].image_url.url" and "HTML" in error["message"]
    assert env.queued_job_ids() == []
    assert client("dynamodb").scan(TableName="videogen-jobs")["Count"] == 0
    assert env.openrouter.requests_to("/api/v1/videos") == []


def test_a_fetchable_reference_is_accepted_and_checked_once(env: Env, preflight_on: Preflight) -> None:
    for _ in range(2):
        assert _post(_request("https://images.example.com/backpack.png"))["statusCode"] == 202
    assert preflight_on.fetches == 1  # the second request was answered from the cache
    assert len(env.queued_job_ids()) == 2


def test_the_eventbridge_door_rejects_with_reason_preflight(env: Env, preflight_on: Preflight) -> None:
    event = sample_event("eventbridge_video_requested")
    event["detail"] = _request("https://images.example.com/share/123")
    invoke("intake_event", event)
    assert client("dynamodb").scan(TableName="videogen-jobs")["Count"] == 0
    [rejected] = [e for e in env.events() if e["detail-type"] == "VideoRejected"]
    assert rejected["detail"]["fields"][0]["field"] == "input_references[0].image_url.url"
    assert "HTML" in rejected["detail"]["fields"][0]["message"]


def test_off_means_not_fetched(env: Env) -> None:
    from videogen.services import get_services

    assert _post(_request("https://images.example.com/share/123"))["statusCode"] == 202
    assert "preflight" not in get_services().__dict__
