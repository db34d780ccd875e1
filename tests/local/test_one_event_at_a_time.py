"""Concurrent invocations of one function in local serve's single process: Lambda gives an execution
environment one event at a time, and the api's Powertools resolver relies on it (it keeps the current
event on its class). Found by a chaos run: two jobs were created from one POST /videos body."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from videogen_local.localmode import patches
from videogen_local.localmode.front_door import proxy_event
from videogen_local.localmode.handlers import load_function
from videogen_local.localmode.stack import ONE_EVENT_AT_A_TIME

NAME = "lt-api"


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The real api handler, its job intake replaced by an echo of what it was given."""
    module = load_function("api")

    def echo(services: Any, body: str, door: Any, owner: Any, **_: Any) -> Any:
        made = SimpleNamespace(
            id=f"{json.loads(body)['prompt']}|{owner.id}",
            status=SimpleNamespace(value="queued"),
            estimated_cost_usd=None,
        )
        return SimpleNamespace(job=made, replayed=False)

    monkeypatch.setattr(module.intake, "accept", echo)
    monkeypatch.setattr(module, "get_services", lambda: None)
    monkeypatch.setitem(patches.HANDLERS, NAME, module.lambda_handler)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show at once
    try:
        yield module
    finally:
        sys.setswitchinterval(interval)


def post_concurrently(threads: int = 8, requests: int = 40) -> list[tuple[str, str]]:
    """(what each request sent, what its answer says was created), through local mode's Lambda invoke."""
    function = SimpleNamespace(function_name=NAME, function_arn=f"arn:aws:lambda:us-east-1:123456789012:{NAME}")
    seen: list[tuple[str, str]] = []

    def caller(thread: int) -> None:
        for index in range(requests):
            mine = f"t{thread}-{index}"
            headers = {
                "Content-Type": "application/json",
                "X-Videogen-Caller": f"arn:aws:iam::123456789012:user/{mine}",
            }
            event = proxy_event("POST", "/v1/videos", headers, json.dumps({"prompt": mine}).encode(), "127.0.0.1")
            answer, failed, _ = patches._invoke_lambda(function, event)
            assert not failed, answer
            seen.append((f"{mine}|arn:aws:iam::123456789012:user/{mine}", json.loads(json.loads(answer)["body"])["id"]))

    workers = [threading.Thread(target=caller, args=(thread,)) for thread in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return seen


def test_without_the_lock_concurrent_requests_get_each_others_body_and_caller(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hold two invocations inside the route, each after the resolver has stored its event and before the
    # route reads it back: the interleaving a busy process produces by chance, made certain.
    both_inside = threading.Barrier(2, timeout=10)
    monkeypatch.setattr(api, "get_services", lambda: both_inside.wait())
    mixed = [(sent, created) for sent, created in post_concurrently(threads=2, requests=5) if sent != created]
    assert mixed, "the race did not show: is the resolver's current event no longer shared?"


def test_the_api_takes_one_event_at_a_time(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "api" in ONE_EVENT_AT_A_TIME and "submit" in ONE_EVENT_AT_A_TIME
    monkeypatch.setitem(patches.ONE_AT_A_TIME, NAME, threading.Lock())
    assert [(sent, created) for sent, created in post_concurrently() if sent != created] == []
