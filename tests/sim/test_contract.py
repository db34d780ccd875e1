"""Contract checks for the OpenRouter simulator (``videogen_local.sim``) beyond test_simulator.py.

``test_simulator.py`` covers the happy path, the scripted outcomes and the basic error envelope. These tests pin
the rest of what local mode, the demo and the pipeline's tests rely on: the exact capabilities of every
seeded model, each capability check naming its field, auth messages, ``http(s)://`` references (with a
redirect), what ``sim.requests`` records, a client that follows the redirect mode without leaking the key,
and that the rendered video really is derived from the reference image.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

import av
import httpx
import numpy as np
import pytest
from PIL import Image

from tests.sim.support import submit
from tests.sim.support import video_request as request
from videogen_local.sim import OpenRouterSimulator, SimulatorConfig
from videogen_local.sim.render import render_reference_video

KEY = "sk-sim-contract"
AUTH = {"Authorization": f"Bearer {KEY}"}
# VideoModel's required keys in the OpenAPI spec (description and pricing_skus are optional there).
REQUIRED_MODEL_KEYS = {
    "id",
    "canonical_slug",
    "name",
    "created",
    "supported_resolutions",
    "supported_aspect_ratios",
    "supported_sizes",
    "supported_durations",
    "supported_frame_images",
    "upscale_factor",
    "creativity",
    "generate_audio",
    "seed",
    "allowed_passthrough_parameters",
}


@pytest.fixture
def sim() -> Iterator[OpenRouterSimulator]:
    with OpenRouterSimulator(SimulatorConfig(api_key=KEY, polls_to_complete=3, max_render_height=144)) as simulator:
        yield simulator


@pytest.fixture
def backpack() -> bytes:
    return resources.files("videogen_local").joinpath("assets/backpack.png").read_bytes()


@pytest.fixture
def image_host(backpack: bytes) -> Iterator[str]:
    """A plain HTTP host for ``http://`` references: /backpack.png, and /moved answering 302 to it (a
    provider follows redirects of reference URLs, so the simulator must too)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass  # keep pytest output clean

        def do_GET(self) -> None:
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", "/backpack.png")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif self.path == "/backpack.png":
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(backpack)))
                self.end_headers()
                self.wfile.write(backpack)
            else:
                self.send_error(404)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def finish(sim: OpenRouterSimulator, accepted: dict[str, Any]) -> dict[str, Any]:
    """Poll (resolving the relative polling_url against base_url) until the job is terminal."""
    for _ in range(20):
        answer: dict[str, Any] = httpx.get(f"{sim.base_url}{accepted['polling_url']}", headers=AUTH).json()
        if answer["status"] not in ("pending", "in_progress"):
            return answer
    raise AssertionError(f"job {accepted['id']} never finished")


def assert_error(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status and error["metadata"] is None
    for word in words:
        assert word in error["message"], error["message"]


def test_models_list_is_public_and_seeds_the_documented_capabilities(sim: OpenRouterSimulator) -> None:
    anonymous = httpx.get(f"{sim.base_url}/api/v1/videos/models")
    assert anonymous.status_code == 200
    assert httpx.get(f"{sim.base_url}/api/v1/videos/models", headers=AUTH).json() == anonymous.json()
    models = {m["id"]: m for m in anonymous.json()["data"]}
    for model in models.values():
        assert model.keys() >= REQUIRED_MODEL_KEYS, model["id"]
        assert isinstance(model["allowed_passthrough_parameters"], list) and model["upscale_factor"] is None
    # Veo takes the passthrough parameters OpenRouter's skill documents for google-vertex; Seedance none.
    assert models["google/veo-3.1-fast"]["allowed_passthrough_parameters"] == ["personGeneration", "negativePrompt"]
    assert models["bytedance/seedance-2.0-fast"]["allowed_passthrough_parameters"] == []
    seedance, veo, nulls = (
        models["bytedance/seedance-2.0-fast"],
        models["google/veo-3.1-fast"],
        models["test/nulls-model"],
    )
    assert {"description", "pricing_skus"} <= seedance.keys() & veo.keys()
    assert seedance["supported_durations"] == list(range(4, 16))
    assert seedance["supported_resolutions"] == ["480p", "720p"]
    assert seedance["supported_aspect_ratios"] == ["1:1", "3:4", "9:16", "4:3", "16:9", "21:9", "9:21"]
    assert seedance["supported_sizes"] is None
    assert seedance["supported_frame_images"] == ["first_frame", "last_frame"]
    assert seedance["generate_audio"] is True and seedance["seed"] is True
    assert veo["supported_durations"] == [4, 6, 8]
    assert veo["supported_resolutions"] == ["720p", "1080p", "4K"]
    assert veo["supported_aspect_ratios"] == ["16:9", "9:16"]
    assert veo["supported_sizes"] == ["1280x720", "1080x1920", "1920x1080", "720x1280"]
    assert veo["supported_frame_images"] == ["first_frame", "last_frame"]
    assert veo["generate_audio"] is True and veo["seed"] is True
    assert all(nulls[key] is None for key in nulls if key.startswith("supported_"))
    assert nulls["generate_audio"] is None and nulls["seed"] is None


def test_auth_messages(sim: OpenRouterSimulator) -> None:
    url = f"{sim.base_url}/api/v1/videos"
    assert_error(httpx.post(url, json=request()), 401, "Missing Authentication header")
    assert_error(httpx.post(url, json=request(), headers={"Authorization": "Bearer wrong"}), 401, "Invalid API key")
    assert_error(httpx.get(f"{url}/anything"), 401, "Missing Authentication header")
    assert_error(httpx.get(f"{url}/anything/content?index=0"), 401)
    assert sim.submissions == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"duration": 16}, "duration"),
        ({"resolution": "1080p"}, "resolution"),
        ({"aspect_ratio": "3:2"}, "aspect_ratio"),
        ({"model": "google/veo-3.1-fast", "resolution": "720p", "aspect_ratio": "16:9", "size": "640x480"}, "size"),
        (
            {"frame_images": [{"type": "image_url", "image_url": {"url": "data:,"}, "frame_type": "middle_frame"}]},
            "frame_type",
        ),
    ],
)
def test_out_of_capability_values_are_400_naming_the_field(
    sim: OpenRouterSimulator, change: dict[str, Any], field: str
) -> None:
    response = httpx.post(f"{sim.base_url}/api/v1/videos", json=request(**change), headers=AUTH)
    assert_error(response, 400, field)
    assert sim.submissions == 0 and sim.jobs == {}


def test_malformed_submissions(sim: OpenRouterSimulator) -> None:
    url = f"{sim.base_url}/api/v1/videos"
    assert_error(httpx.post(url, content=b"{not json", headers=AUTH), 400)
    assert_error(httpx.post(url, json={"model": "bytedance/seedance-2.0-fast"}, headers=AUTH), 400, "prompt")
    assert_error(httpx.post(url, json={"prompt": "a backpack"}, headers=AUTH), 400, "model")
    assert_error(httpx.post(url, json=request(model="nobody/nothing"), headers=AUTH), 404, "Model not found")
    # Unknown capabilities (all null) accept any shape.
    assert submit(sim, request(model="test/nulls-model", resolution="4K", aspect_ratio="3:2"))["status"] == "pending"
    assert sim.submissions == 1


def test_unknown_job_and_content_before_completion_are_404(sim: OpenRouterSimulator) -> None:
    assert_error(httpx.get(f"{sim.base_url}/api/v1/videos/no-such-job", headers=AUTH), 404)
    accepted = submit(sim, request())
    assert len(accepted["id"]) == 20 and accepted["generation_id"].startswith("gen-")
    assert_error(httpx.get(f"{sim.base_url}/api/v1/videos/{accepted['id']}/content?index=0", headers=AUTH), 404)
    assert sim.jobs[accepted["id"]].video is None


def test_http_reference_through_a_redirect_renders_and_is_recorded(sim: OpenRouterSimulator, image_host: str) -> None:
    body = request("[sim:polls=2]", model="google/veo-3.1-fast", resolution=None, aspect_ratio=None, size="720x1280")
    body["input_references"] = [{"type": "image_url", "image_url": {"url": f"{image_host}/moved"}}]
    accepted = submit(sim, body)
    done = finish(sim, accepted)
    assert done["status"] == "completed", done
    assert done["usage"] == {"cost": pytest.approx(4 * 0.05), "is_byok": False}
    job = sim.jobs[accepted["id"]]
    assert job.status == "completed" and job.video is not None and job.sha256
    video = httpx.get(done["unsigned_urls"][0]).content
    assert len(video) == len(job.video) and hashlib.sha256(video).hexdigest() == job.sha256
    with av.open(io.BytesIO(video)) as container:
        context = container.streams.video[0].codec_context
        assert (context.name, context.width, context.height) == ("h264", 80, 144)  # portrait, capped at 144

    submits = [r for r in sim.requests if r.method == "POST"]
    assert [(r.server, r.path) for r in submits] == [("api", "/api/v1/videos")]
    assert submits[0].host == sim.base_url.removeprefix("http://")
    assert submits[0].headers["authorization"] == AUTH["Authorization"]  # keys are lower-case
    [download] = [r for r in sim.requests if r.server == "content"]
    assert download.host == sim.content_base_url.removeprefix("http://")
    assert download.path == done["unsigned_urls"][0].removeprefix(sim.content_base_url)  # query included
    assert "authorization" not in download.headers


def test_redirect_mode_followed_by_a_client_never_takes_the_key_to_the_content_host(
    sim: OpenRouterSimulator,
) -> None:
    sim.config.content_redirect = True
    accepted = submit(sim, request("[sim:polls=1]"))
    assert finish(sim, accepted)["status"] == "completed"
    content_url = f"{sim.base_url}/api/v1/videos/{accepted['id']}/content?index=0"
    # httpx drops Authorization on a cross-origin redirect, like curl -L and browsers do.
    response = httpx.get(content_url, headers=AUTH, follow_redirects=True)
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
    assert [r.status_code for r in response.history] == [302]
    assert hashlib.sha256(response.content).hexdigest() == sim.jobs[accepted["id"]].sha256
    content_requests = [r for r in sim.requests if r.server == "content"]
    assert content_requests and all("authorization" not in r.headers for r in content_requests)
    # A wrong signature on the content host is a 404, not a download.
    good = response.url
    assert httpx.get(str(good.copy_set_param("sig", "forged"))).status_code == 404


def _mean_rgb(pixels: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    mean: np.ndarray[Any, Any] = pixels.reshape(-1, 3).astype(float).mean(axis=0)
    return mean


@pytest.mark.parametrize(("width", "height"), [(256, 144), (144, 256)])
def test_render_is_a_moving_shot_of_the_reference(backpack: bytes, width: int, height: int) -> None:
    video = render_reference_video(backpack, width=width, height=height, seconds=2, fps=12)
    with av.open(io.BytesIO(video)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    assert len(frames) == 24 and frames[0].shape == (height, width, 3)
    # The first frame is the cover-fitted reference: its mean colour matches the source's centre crop.
    source = Image.open(io.BytesIO(backpack)).convert("RGB")
    side = source.width
    crop = (0, (side - side * height // width) // 2, side, (side + side * height // width) // 2)
    if height > width:
        crop = ((side - side * width // height) // 2, 0, (side + side * width // height) // 2, side)
    expected = _mean_rgb(np.asarray(source.crop(crop)))
    assert np.abs(_mean_rgb(frames[0]) - expected).max() < 20, (_mean_rgb(frames[0]), expected)
    # And the camera moves: the last frame is not the first one.
    assert np.abs(frames[-1].astype(int) - frames[0].astype(int)).mean() > 2


def test_render_depends_on_the_image() -> None:
    def solid(colour: tuple[int, int, int]) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), colour).save(buffer, format="PNG")
        return buffer.getvalue()

    for colour in ((20, 180, 40), (200, 30, 160)):
        video = render_reference_video(solid(colour), width=64, height=36, seconds=0.5, fps=8)
        with av.open(io.BytesIO(video)) as container:
            first = next(container.decode(video=0)).to_ndarray(format="rgb24")
        assert np.abs(_mean_rgb(first) - np.array(colour)).max() < 12
