"""The OpenRouter simulator speaks the documented API over real HTTP."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator

import av
import httpx
import pytest

from tests.sim.support import submit
from tests.sim.support import video_request as body
from tests.support.images import reference_png
from videogen_local.sim import OpenRouterSimulator, SimulatorConfig
from videogen_local.sim.render import frame_size, render_reference_video

KEY = "sk-sim-test"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def sim() -> Iterator[OpenRouterSimulator]:
    with OpenRouterSimulator(SimulatorConfig(api_key=KEY, polls_to_complete=3, max_render_height=144)) as simulator:
        yield simulator


def poll_until_done(sim: OpenRouterSimulator, polling_url: str) -> list[dict[str, object]]:
    answers = []
    for _ in range(10):
        answers.append(httpx.get(f"{sim.base_url}{polling_url}", headers=AUTH).json())
        if answers[-1]["status"] not in ("pending", "in_progress"):
            break
    return answers


def test_models_list_has_the_guides_seedance_capabilities(sim: OpenRouterSimulator) -> None:
    models = {m["id"]: m for m in httpx.get(f"{sim.base_url}/api/v1/videos/models").json()["data"]}
    seedance = models["bytedance/seedance-2.0-fast"]
    assert seedance["supported_durations"] == list(range(4, 16))
    assert seedance["supported_resolutions"] == ["480p", "720p"]
    assert seedance["supported_aspect_ratios"] == ["1:1", "3:4", "9:16", "4:3", "16:9", "21:9", "9:21"]
    assert models["test/nulls-model"]["supported_durations"] is None


def test_errors_use_the_envelope(sim: OpenRouterSimulator) -> None:
    unauthenticated = httpx.post(f"{sim.base_url}/api/v1/videos", json=body())
    assert unauthenticated.status_code == 401 and unauthenticated.json()["error"]["code"] == 401
    wrong = httpx.post(f"{sim.base_url}/api/v1/videos", json=body(), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    out_of_set = httpx.post(f"{sim.base_url}/api/v1/videos", json=body(resolution="1080p"), headers=AUTH)
    assert out_of_set.status_code == 400 and "resolution" in out_of_set.json()["error"]["message"]
    unknown = httpx.post(f"{sim.base_url}/api/v1/videos", json=body(model="no/model"), headers=AUTH)
    assert unknown.status_code == 404
    assert sim.submissions == 0


def test_job_progresses_and_serves_a_playable_mp4_without_the_key_on_the_content_host(
    sim: OpenRouterSimulator,
) -> None:
    accepted = submit(sim, body())
    assert accepted["status"] == "pending" and accepted["polling_url"] == f"/api/v1/videos/{accepted['id']}"
    answers = poll_until_done(sim, str(accepted["polling_url"]))
    assert [a["status"] for a in answers] == ["pending", "in_progress", "completed"]
    done = answers[-1]
    assert done["usage"] == {"cost": 0.2, "is_byok": False}
    [url] = done["unsigned_urls"]  # type: ignore[misc]
    assert url.startswith(sim.content_base_url) and sim.content_base_url.startswith("http://127.0.0.2:")
    video = httpx.get(url).content
    assert hashlib.sha256(video).hexdigest() == sim.jobs[str(accepted["id"])].sha256
    proxied = httpx.get(f"{sim.base_url}/api/v1/videos/{accepted['id']}/content?index=0", headers=AUTH)
    assert proxied.headers["content-type"] == "video/mp4" and proxied.content == video
    assert httpx.get(f"{sim.base_url}/api/v1/videos/{accepted['id']}/content?index=0").status_code == 401
    with av.open(io.BytesIO(video)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (256, 144)
        assert sum(1 for _ in container.decode(stream)) == 96
    assert all("authorization" not in r.headers for r in sim.requests if r.server == "content")


def test_content_redirect_mode(sim: OpenRouterSimulator) -> None:
    sim.config.content_redirect = True
    accepted = submit(sim, body("[sim:polls=1]"))
    poll_until_done(sim, str(accepted["polling_url"]))
    response = httpx.get(f"{sim.base_url}/api/v1/videos/{accepted['id']}/content?index=0", headers=AUTH)
    assert response.status_code == 302 and response.headers["location"].startswith(sim.content_base_url)


@pytest.mark.parametrize("outcome", ["failed", "cancelled", "expired"])
def test_scripted_failures_carry_an_error_string(sim: OpenRouterSimulator, outcome: str) -> None:
    accepted = submit(sim, body(f"a backpack [sim:outcome={outcome}]"))
    final = poll_until_done(sim, str(accepted["polling_url"]))[-1]
    assert final["status"] == outcome and isinstance(final["error"], str) and final["error"]
    assert "unsigned_urls" not in final


def test_never_and_polls_markers(sim: OpenRouterSimulator) -> None:
    never = submit(sim, body("[sim:outcome=never]"))
    assert [a["status"] for a in poll_until_done(sim, str(never["polling_url"]))][-1] == "in_progress"
    quick = submit(sim, body("[sim:polls=1]"))
    assert [a["status"] for a in poll_until_done(sim, str(quick["polling_url"]))] == ["completed"]


def test_unreachable_reference_fails_the_job(sim: OpenRouterSimulator) -> None:
    request = body("[sim:polls=1]")
    request["input_references"] = [{"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/nothing.png"}}]
    final = poll_until_done(sim, str(submit(sim, request)["polling_url"]))[-1]
    assert final["status"] == "failed" and "could not fetch reference image" in str(final["error"])


def test_render_keeps_the_reference_colours_and_aspect_ratio() -> None:
    png = reference_png(256)
    width, height = frame_size("480p", "9:16", None, 160)
    assert (width, height) == (90, 160)
    video = render_reference_video(png, width=width, height=height, seconds=1, fps=12)
    with av.open(io.BytesIO(video)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 12 and frames[0].shape == (160, 90, 3)
    # The reference is mostly blue with an orange block: the video's colours come from it.
    mean = frames[0].reshape(-1, 3).mean(axis=0)
    assert mean[0] > 60 and mean[2] > 40


def test_a_job_whose_reference_host_hangs_does_not_stall_other_jobs(sim: OpenRouterSimulator) -> None:
    import socket
    import threading
    import time

    with socket.socket() as hanging:  # accepts connections (backlog), never answers
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(8)
        slow = body("[sim:polls=1]")
        slow["input_references"] = [
            {"type": "image_url", "image_url": {"url": f"http://127.0.0.1:{hanging.getsockname()[1]}/x.png"}}
        ]
        stuck = submit(sim, slow)
        background = threading.Thread(target=poll_until_done, args=(sim, str(stuck["polling_url"])), daemon=True)
        background.start()
        time.sleep(0.3)
        started = time.monotonic()
        quick = submit(sim, body("[sim:polls=1]"))
        assert poll_until_done(sim, str(quick["polling_url"]))[-1]["status"] == "completed"
        assert time.monotonic() - started < 5


def test_stop_without_start_returns() -> None:
    OpenRouterSimulator(SimulatorConfig(api_key=KEY)).stop()


def test_renders_are_cached_per_distinct_request_and_match_an_uncached_render() -> None:
    config = SimulatorConfig(api_key=KEY, polls_to_complete=1, max_render_height=144)
    with OpenRouterSimulator(config) as cached:
        first, again = (submit(cached, body(f"job {n}")) for n in range(2))
        other = submit(cached, body("a longer one", duration=5))
        answers = {job["id"]: poll_until_done(cached, job["polling_url"])[-1] for job in (first, again, other)}
        assert {answer["status"] for answer in answers.values()} == {"completed"}
        stats = cached.stats()
        sha = {job_id: stats["jobs"][job_id]["sha256"] for job_id in answers}
        content = httpx.get(f"{cached.base_url}/api/v1/videos/{again['id']}/content?index=0", headers=AUTH)
    assert (stats["renders"], stats["render_cache_hits"]) == (2, 1)  # one request shape rendered once
    assert sha[first["id"]] == sha[again["id"]] != sha[other["id"]]
    assert hashlib.sha256(content.content).hexdigest() == sha[again["id"]]
    # Byte for byte what rendering it again gives, in a simulator that keeps no renders.
    with OpenRouterSimulator(
        SimulatorConfig(api_key=KEY, polls_to_complete=1, max_render_height=144, render_cache_size=0)
    ) as fresh:
        jobs = [submit(fresh, body(f"fresh {n}")) for n in range(2)]
        for job in jobs:
            poll_until_done(fresh, job["polling_url"])
        fresh_stats = fresh.stats()
    assert (fresh_stats["renders"], fresh_stats["render_cache_hits"]) == (2, 0)
    assert {fresh_stats["jobs"][job["id"]]["sha256"] for job in jobs} == {sha[first["id"]]}
