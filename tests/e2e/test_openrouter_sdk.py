"""OpenRouter's own Python SDK (`openrouter` on PyPI), unchanged but for its server URL and key, runs the
guide's whole flow against `videogen local serve`: the acceptance test of the gateway."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from typing import Any

import pytest
from openrouter import OpenRouter, errors
from openrouter.utils import BackoffStrategy, RetryConfig

from tests.e2e.conftest import VIDEOGEN, Served, serve
from tests.support.images import reference_png

pytestmark = pytest.mark.e2e
GUIDE_PROMPT = (
    "Create a 4-second product video of the same backpack from the reference image. Keep the shape, color, "
    "and logo placement consistent. Place it on a wet city sidewalk at night with neon reflections."
)


def keys(served: Served, *args: str) -> Any:
    """`videogen keys ...` against local serve, finding its table from the ready line."""
    env = {**os.environ, "AWS_ENDPOINT_URL": served.info["aws_endpoint_url"]}
    result = subprocess.run(
        [str(VIDEOGEN), "keys", *args, "--table", served.info["keys_table"]],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    return json.loads(result.stdout)


def sdk(served: Served, key: str) -> OpenRouter:
    # The SDK retries 5xx for up to an hour by default: a test wants to see the first answer.
    no_retries = RetryConfig("backoff", BackoffStrategy(10, 10, 1.0, 10), False)
    return OpenRouter(api_key=key, server_url=f"{served.info['api_url']}/api/v1", retry_config=no_retries)


def test_the_sdk_runs_the_guides_flow_through_videogen(served: Served) -> None:
    tenant = f"sdk-{uuid.uuid4().hex[:8]}"
    issued = keys(served, "create", "--tenant", tenant, "--label", "acceptance")
    assert issued["tenant"] == tenant and issued["key"].startswith("vg_")
    bucket = served.info["bucket"]
    served.aws("s3").put_object(Bucket=bucket, Key="references/sdk.png", Body=reference_png(128))
    with sdk(served, issued["key"]) as client:
        models = client.video_generation.list_videos_models()
        assert "bytedance/seedance-2.0-fast" in {model.id for model in models.data}
        generation = client.video_generation.generate(
            model="bytedance/seedance-2.0-fast",
            prompt=GUIDE_PROMPT,
            duration=4,
            resolution="480p",
            aspect_ratio="16:9",
            input_references=[{"type": "image_url", "image_url": {"url": f"s3://{bucket}/references/sdk.png"}}],
        )
        assert generation.status == "pending" and generation.polling_url.startswith(served.info["api_url"])
        seen = []
        deadline = time.monotonic() + 90
        while True:
            polled = client.video_generation.get_generation(job_id=generation.id)
            seen.append(polled.status)
            if polled.status in ("completed", "failed", "cancelled", "expired") or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert polled.status == "completed", seen
        assert polled.unsigned_urls == [f"{served.info['api_url']}/api/v1/videos/{generation.id}/content?index=0"]
        assert polled.usage is not None and polled.usage.cost is not None
        # The SDK follows the redirect to the presigned S3 URL (and drops its key on the way: another host).
        content = client.video_generation.get_video_content(job_id=generation.id, index=0)
        video = content.read()
    stored = served.aws("s3").get_object(Bucket=bucket, Key=f"videos/{generation.id}.mp4")["Body"].read()
    assert video == stored and video[4:8] == b"ftyp"
    record = served.job_record(generation.id)
    assert record is not None and record["caller"] == f"tenant:{tenant}"
    listed = keys(served, "list", "--tenant", tenant)
    assert [k["key_id"] for k in listed] == [issued["key_id"]] and listed[0]["last_used_at"]
    # The tenant's key is a secret: in no log line, no item of either table, no event.
    secret = issued["key"][len("vg_") + 17 :]  # vg_<16 hex>_<secret>; the secret may hold "_" itself
    dynamodb = served.aws("dynamodb")
    for table in (served.info["jobs_table"], served.info["keys_table"]):
        assert secret not in json.dumps(dynamodb.scan(TableName=table)["Items"], default=str), table
    served.wait_announced(generation.id)
    assert secret not in json.dumps(served.drain_events())
    with open(served.info["stderr_log"]) as log:
        assert secret not in log.read()


def test_the_sdk_raises_its_typed_errors(served: Served) -> None:
    issued = keys(served, "create", "--tenant", f"sdk-{uuid.uuid4().hex[:8]}")
    with sdk(served, issued["key"]) as client:
        with pytest.raises(errors.BadRequestResponseError) as bad:
            client.video_generation.generate(model="bytedance/seedance-2.0-fast", prompt="p", duration=99)
        assert "duration" in bad.value.data.error.message
        with pytest.raises(errors.NotFoundResponseError):
            client.video_generation.get_generation(job_id="no-such-job")
        client.video_generation.list_videos_models()  # the key works, and its answer is now cached
        keys(served, "revoke", issued["key_id"])
        time.sleep(2.5)  # local serve's authorizer cache (deployed: ReauthorizeEvery, 60 s)
        with pytest.raises(errors.UnauthorizedResponseError):  # (the SDK types a 401 on generate, not on models)
            client.video_generation.generate(model="bytedance/seedance-2.0-fast", prompt="after revocation")
    with sdk(served, "vg_0000000000000000_" + "A" * 43) as stranger, pytest.raises(errors.UnauthorizedResponseError):
        stranger.video_generation.generate(model="bytedance/seedance-2.0-fast", prompt="p")


def test_another_tenants_job_is_not_found(served: Served) -> None:
    mine = keys(served, "create", "--tenant", f"sdk-{uuid.uuid4().hex[:8]}")
    theirs = keys(served, "create", "--tenant", f"sdk-{uuid.uuid4().hex[:8]}")
    with sdk(served, mine["key"]) as client:
        job = client.video_generation.generate(model="bytedance/seedance-2.0-fast", prompt="mine only", duration=4)
    with sdk(served, theirs["key"]) as other, pytest.raises(errors.NotFoundResponseError):
        other.video_generation.get_generation(job_id=job.id)


def budgets(served: Served, *args: str) -> Any:
    env = {**os.environ, "AWS_ENDPOINT_URL": served.info["aws_endpoint_url"]}
    result = subprocess.run(
        [str(VIDEOGEN), "budgets", *args, "--table", served.info["budgets_table"]],
        capture_output=True, text=True, timeout=60, check=True, env=env,
    )  # fmt: skip
    return json.loads(result.stdout)


def test_a_tenant_over_its_budget_gets_the_sdks_payment_required_error(served: Served) -> None:
    tenant = f"sdk-{uuid.uuid4().hex[:8]}"
    issued = keys(served, "create", "--tenant", tenant)
    # Seedance prices video tokens: a 4 s 480p 16:9 video is estimated at 0.0537 USD.
    [shown] = budgets(served, "set", "--owner", f"tenant:{tenant}", "--monthly-usd", "0.08")
    assert shown["limits"] == {"monthly_usd": 0.08, "daily_usd": None}
    request = {"model": "bytedance/seedance-2.0-fast", "prompt": "on budget", "duration": 4, "resolution": "480p"}
    with sdk(served, issued["key"]) as client:
        first = client.video_generation.generate(**request)
        with pytest.raises(errors.PaymentRequiredResponseError):
            client.video_generation.generate(**{**request, "prompt": "over budget"})
    [after] = budgets(served, "show", "--owner", f"tenant:{tenant}")
    assert after["month"]["reserved_usd"] + after["month"]["spent_usd"] <= 0.08
    record = served.job_record(first.id)
    assert record is not None and float(record["estimated_cost_usd"]) > 0


def test_the_gateways_throttling_is_the_sdks_too_many_requests_error(tmp_path: Any) -> None:
    # A serve of its own with a tiny stage limit (deployed: 50 rps, burst 100), so a few quick calls exceed it.
    with serve(tmp_path / "stderr.log", extra_env={"VIDEOGEN_API_THROTTLE": "1,1"}) as throttled:
        issued = keys(throttled, "create", "--tenant", f"sdk-{uuid.uuid4().hex[:8]}")
        with sdk(throttled, issued["key"]) as client, pytest.raises(errors.TooManyRequestsResponseError) as raised:
            for _ in range(10):
                client.video_generation.generate(model="bytedance/seedance-2.0-fast", prompt="quickly", duration=4)
    # The template's THROTTLED gateway response, in OpenRouter's envelope as its SDK reads it.
    assert raised.value.data.error.code == 429
    assert raised.value.data.error.message == "Too many requests: slow down and retry"
    assert raised.value.raw_response.status_code == 429
