"""What a caller of a videogen stack sees over HTTP, through both APIs (see conftest.py for the target)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from openrouter import OpenRouter, errors
from openrouter.utils import BackoffStrategy, RetryConfig

from tests.deployed.conftest import Target
from tests.support.images import reference_data_url

pytestmark = pytest.mark.e2e
MODEL = "bytedance/seedance-2.0-fast"
TERMINAL = {"completed", "failed", "cancelled", "expired", "timed_out"}


def request(prompt: str) -> dict[str, Any]:
    return {
        "model": MODEL,
        "prompt": prompt,
        "duration": 4,
        "resolution": "480p",
        "aspect_ratio": "16:9",
        "input_references": [{"type": "image_url", "image_url": {"url": reference_data_url()}}],
    }


def test_iam_api_makes_a_playable_video(target: Target) -> None:
    api = target.iam()
    if api is None:
        pytest.skip("no AWS credentials to sign the IAM routes with")
    key = f"deployed-suite-{uuid.uuid4()}"
    first = api.call("POST", "/videos", json=request("deployed suite, IAM"), headers={"Idempotency-Key": key})
    again = api.call("POST", "/videos", json=request("deployed suite, IAM"), headers={"Idempotency-Key": key})
    assert first == again and first["status"] == "queued"
    job = api.wait(first["id"], timeout=target.timeout_seconds, interval=1 if target.local else 15, progress=False)
    assert job["status"] == "completed", job
    video = httpx.get(job["video"]["url"], timeout=120).content
    assert len(video) == job["video"]["bytes"] and video[4:8] == b"ftyp"
    assert any(item["id"] == first["id"] for item in api.call("GET", "/videos", params={"limit": "100"})["items"])


def test_iam_api_refuses_bad_input_with_the_field(target: Target) -> None:
    api = target.iam()
    if api is None:
        pytest.skip("no AWS credentials to sign the IAM routes with")
    response = api.request("POST", "/videos", json={"prompt": "p", "duration": 99})
    assert response.status_code == 422 and response.json()["error"]["fields"][0]["field"] == "duration"
    assert api.request("GET", f"/videos/{uuid.uuid4().hex}").status_code == 404


def sdk(target: Target) -> OpenRouter:
    if not target.api_key:
        pytest.skip("VIDEOGEN_API_KEY is not set")
    no_retries = RetryConfig("backoff", BackoffStrategy(10, 10, 1.0, 10), False)
    return OpenRouter(api_key=target.api_key, server_url=f"{target.api_url}/api/v1", retry_config=no_retries)


def test_openrouters_sdk_makes_a_video_with_a_key(target: Target) -> None:
    with sdk(target) as client:
        generation = client.video_generation.generate(**request("deployed suite, OpenRouter's SDK"))
        deadline = time.monotonic() + target.timeout_seconds
        polled = client.video_generation.get_generation(job_id=generation.id)
        while polled.status not in TERMINAL and time.monotonic() < deadline:
            time.sleep(1 if target.local else 15)
            polled = client.video_generation.get_generation(job_id=generation.id)
        assert polled.status == "completed", polled
        assert polled.unsigned_urls and polled.unsigned_urls[0].startswith(target.api_url)
        video = client.video_generation.get_video_content(job_id=generation.id, index=0).read()
        assert video[4:8] == b"ftyp"


def test_the_key_api_refuses_in_openrouters_envelope(target: Target) -> None:
    with sdk(target) as client:
        with pytest.raises(errors.BadRequestResponseError):
            client.video_generation.generate(model=MODEL, prompt="p", duration=99)
        with pytest.raises(errors.NotFoundResponseError):
            client.video_generation.get_generation(job_id=uuid.uuid4().hex)
    with target.http() as http:
        for headers in ({}, {"Authorization": "Bearer vg_0000000000000000_" + "A" * 43}):
            refused = http.post("/api/v1/videos", json={"model": MODEL, "prompt": "p"}, headers=headers)
            assert refused.status_code == 401 and refused.json()["error"]["code"] == 401


def test_each_api_hands_its_caller_a_webhook_signing_secret(target: Target) -> None:
    """Read-only but for the secret's creation on first use (a rotation would change a real caller's secret)."""
    api = target.iam()
    if api is not None:
        secret = api.call("GET", "/webhooks/secret")
        assert secret["secret"].startswith("whsec_") and api.call("GET", "/webhooks/secret") == secret
    if target.api_key:
        with target.http() as http:
            answer = http.get("/api/v1/webhooks/secret", headers={"Authorization": f"Bearer {target.api_key}"})
            assert answer.status_code == 200 and answer.json()["secret"].startswith("whsec_")
            assert answer.headers["cache-control"] == "no-store"
            assert http.get("/api/v1/webhooks/secret").status_code == 401
    if api is None and not target.api_key:
        pytest.skip("neither AWS credentials nor VIDEOGEN_API_KEY")
