"""The simulator's callbacks: OpenRouter's body and headers, signed with the configured secret, and its faults."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from tests.sim.support import submit, video_request
from tests.support.scripted_http import Canned, ScriptedServer
from videogen.callbacks import CallbackRefused, verify
from videogen_local.sim import OpenRouterSimulator, SimulatorConfig

SECRET = "whsec-sim-test"


def delivered(receiver: ScriptedServer, count: int, timeout: float = 10) -> list[tuple[dict[str, str], bytes]]:
    deadline = time.monotonic() + timeout
    while len(receiver.seen) < count:
        assert time.monotonic() < deadline, f"{len(receiver.seen)} of {count} callbacks"
        time.sleep(0.02)
    time.sleep(0.3)  # nothing more should follow
    return [(seen.headers, seen.body) for seen in receiver.seen]


def test_a_job_that_ends_posts_one_signed_callback(api_server: ScriptedServer) -> None:
    api_server.on("POST", "/hook", Canned(200, {"ok": True}))
    config = SimulatorConfig(webhook_secret=SECRET, seconds_to_complete=0.2, render_fps=4)
    with OpenRouterSimulator(config) as sim:
        accepted = submit(sim, video_request(callback_url=f"{api_server.url}/hook", duration=4))
        [(headers, body)] = delivered(api_server, 1)
        assert sim.jobs[accepted["id"]].status == "completed"  # ended by time, not by polls
    payload = json.loads(body)
    assert payload["type"] == "video.generation.completed"
    assert payload["data"]["id"] == accepted["id"] and payload["data"]["status"] == "completed"
    assert headers["x-openrouter-idempotency-key"] == f"{accepted['id']}-completed"
    callback = verify(SECRET, body, headers["x-openrouter-signature"], headers["x-openrouter-idempotency-key"])
    assert callback.openrouter_job_id == accepted["id"]


def test_no_callback_url_no_callback(api_server: ScriptedServer) -> None:
    with OpenRouterSimulator(SimulatorConfig(webhook_secret=SECRET, seconds_to_complete=0.1, render_fps=4)) as sim:
        submit(sim, video_request())
        time.sleep(1.0)
    assert api_server.seen == []


@pytest.mark.parametrize(
    ("fault", "deliveries", "verified"),
    [("duplicate", 2, 2), ("drop", 0, 0), ("bad_signature", 1, 0), ("stale", 1, 0), ("early", 2, 2), ("delay", 1, 1)],
)
def test_callback_faults(api_server: ScriptedServer, fault: str, deliveries: int, verified: int) -> None:
    api_server.on("POST", "/hook", Canned(200, {"ok": True}))
    config = SimulatorConfig(
        webhook_secret=SECRET,
        seconds_to_complete=0.3,
        render_fps=4,
        fault_rate=1.0,
        fault_endpoints=("callback",),
        callback_delay_seconds=0.3,
    )
    with OpenRouterSimulator(config) as sim:
        sim._random.choice = lambda kinds: fault  # type: ignore[method-assign,assignment,return-value]
        accepted = submit(sim, video_request(callback_url=f"{api_server.url}/hook"))
        if deliveries:
            got = delivered(api_server, deliveries)
        else:
            time.sleep(1.0)
            got = []
        assert len(got) == deliveries and sim.faults == {f"callback:{fault}": 1}
        ok = 0
        for headers, body in got:
            try:
                verify(SECRET, body, headers["x-openrouter-signature"])
                ok += 1
            except CallbackRefused:
                pass
        assert ok == verified
        if fault == "early":  # claims completion while the job was still running
            first = sim.jobs[accepted["id"]].callbacks[0]
            assert first["fault"] == "early" and first["status"] == "completed"
        assert Counter(c["answer"] for c in sim.jobs[accepted["id"]].callbacks) == Counter({200: deliveries})
