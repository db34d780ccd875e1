"""OpenRouter's video guide, step by step, through OpenRouter's own SDK only: the acceptance flow of
tests/e2e/test_openrouter_sdk.py, but reading nothing but what the SDK and HTTP hand back, so that it runs
against a deployed stack (``make test-deployed``) as against local serve (see conftest.py for the target)."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from openrouter import errors

from tests.deployed.conftest import Target
from tests.deployed.test_http_api import MODEL, TERMINAL, request, sdk

pytestmark = pytest.mark.e2e


def test_the_guides_flow_through_the_sdk_alone(target: Target) -> None:
    with sdk(target) as client:
        models = client.video_generation.list_videos_models()
        assert MODEL in {model.id for model in models.data}
        generation = client.video_generation.generate(**request("deployed suite, the guide's flow"))
        assert generation.status == "pending" and generation.polling_url.startswith(target.api_url)
        deadline = time.monotonic() + target.timeout_seconds
        seen = [generation.status]
        polled = client.video_generation.get_generation(job_id=generation.id)
        while polled.status not in TERMINAL and time.monotonic() < deadline:
            seen.append(polled.status)
            time.sleep(target.poll_seconds)
            polled = client.video_generation.get_generation(job_id=generation.id)
        assert polled.status == "completed", [*seen, polled.status]
        content_url = f"{target.api_url}/api/v1/videos/{generation.id}/content?index=0"
        assert polled.unsigned_urls == [content_url]
        assert polled.usage is not None and polled.usage.cost is not None
        # The SDK follows the redirect to the presigned S3 URL (and drops the key on the way: another host).
        video = client.video_generation.get_video_content(job_id=generation.id, index=0).read()
    assert video[4:8] == b"ftyp", video[:16]  # an MP4: its first box is ftyp
    # A second download, by hand through the same redirect, gets the same bytes: what the SDK got is the video.
    with target.http() as http:
        redirect = http.get(content_url, headers={"Authorization": f"Bearer {target.api_key}"})
        assert redirect.status_code in (302, 303, 307) and redirect.headers["location"].startswith("http")
    assert httpx.get(redirect.headers["location"], timeout=120).content == video


def test_the_sdks_typed_errors(target: Target) -> None:
    with sdk(target) as client:
        with pytest.raises(errors.BadRequestResponseError) as bad:
            client.video_generation.generate(model=MODEL, prompt="p", duration=99)
        assert bad.value.status_code == 400 and "duration" in bad.value.data.error.message
        with pytest.raises(errors.NotFoundResponseError) as missing:
            client.video_generation.get_generation(job_id=uuid.uuid4().hex)
        assert missing.value.status_code == 404
    # A route the gateway does not have: its own 404, in the envelope (not API Gateway's bare 403).
    with target.http() as http:
        unknown = http.get("/api/v1/no-such-route", headers={"Authorization": f"Bearer {target.api_key}"})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == 404


def test_a_revoked_key_is_the_sdks_unauthorized_error(target: Target) -> None:
    if not target.revoked_api_key:
        pytest.skip("set VIDEOGEN_REVOKED_API_KEY to a key revoked at least a minute ago (the authorizer's cache)")
    with (
        sdk(Target(target.api_url, target.revoked_api_key, target.local, target.timeout_seconds)) as client,
        pytest.raises(errors.UnauthorizedResponseError) as refused,  # (typed on generate, not on models)
    ):
        client.video_generation.generate(model=MODEL, prompt="with a revoked key")
    assert refused.value.status_code == 401 and refused.value.data.error.code == 401
