"""The simulator's account: credits that run out (402 / 403 as OpenRouter answers them), pushback (429 with
Retry-After), and the peak of submissions in flight at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.sim.support import video_request
from videogen_local.sim import OpenRouterSimulator
from videogen_local.sim.server import SimulatorConfig


@pytest.fixture
def sim() -> Iterator[OpenRouterSimulator]:
    with OpenRouterSimulator(SimulatorConfig(slow_seconds=0.3)) as simulator:
        yield simulator


def post(sim: OpenRouterSimulator) -> httpx.Response:
    headers = {"Authorization": f"Bearer {sim.config.api_key}"}
    return httpx.post(f"{sim.base_url}/api/v1/videos", json=video_request(), headers=headers, timeout=10)


def test_out_of_credits_every_submission_is_refused_until_they_are_back(sim: OpenRouterSimulator) -> None:
    sim.set_credits(True)
    refused = post(sim)
    assert refused.status_code == 402 and "Insufficient credits" in refused.json()["error"]["message"]
    assert "retry-after" not in refused.headers and sim.jobs == {}
    sim.set_credits(False)
    assert post(sim).status_code == 202
    assert sim.stats()["credit_refusals"] == 1


def test_an_in_flight_budget_402_has_its_limit_source_and_retry_after(sim: OpenRouterSimulator) -> None:
    sim.set_credits(True, "in_flight", retry_after=3)
    refused = post(sim)
    assert refused.status_code == 402 and refused.headers["retry-after"] == "3"
    assert refused.json()["error"]["metadata"] == {"limit_source": "openrouter_in_flight_budget"}


def test_over_the_key_limit_is_a_403_with_its_limit_source_over_http(sim: OpenRouterSimulator) -> None:
    assert httpx.post(f"{sim.base_url}/_sim/credits", json={"out": True, "kind": "key_limit"}).json()["out"]
    refused = post(sim)
    assert refused.status_code == 403 and refused.json()["error"]["metadata"]["limit_source"] == "openrouter_key_limit"
    assert httpx.post(f"{sim.base_url}/_sim/credits", json={"kind": "nope", "out": True}).status_code == 400
    httpx.post(f"{sim.base_url}/_sim/credits", json={"out": False})
    assert post(sim).status_code == 202


def test_pushback_answers_429_with_retry_after_and_creates_no_job(sim: OpenRouterSimulator) -> None:
    assert httpx.post(f"{sim.base_url}/_sim/pushback", json={"next": 2}).json()["next"] == 2
    answers = [post(sim) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 202]
    assert answers[0].headers["retry-after"] == "1" and len(sim.jobs) == 1
    sim.set_pushback(rate=1.0)
    assert post(sim).status_code == 429
    sim.set_pushback()
    assert sim.stats()["pushbacks"] == 3


def test_the_peak_of_submissions_in_flight_is_recorded(
    sim: OpenRouterSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = sim._submit
    started = threading.Barrier(4, timeout=10)

    def slow_submit(body: Any) -> tuple[int, dict[str, Any]]:
        started.wait()  # all four are being answered at once
        return answer(body)

    monkeypatch.setattr(sim, "_submit", slow_submit)
    threads = [threading.Thread(target=post, args=(sim,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sim.stats()["peak_submissions_in_flight"] == 4 and len(sim.jobs) == 4
