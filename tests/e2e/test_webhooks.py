"""Outbound webhooks end to end: `videogen local serve --allow-private-webhooks`, a loopback receiver that
answers 500 twice and times out once before it takes the result, and verifies every delivery with the
`standardwebhooks` library and the owner's secret from GET /webhooks/secret."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from tests.e2e.conftest import VIDEOGEN, Served, serve
from tests.e2e.test_pipeline import video_request
from tests.support.images import reference_png
from tests.support.scripted_http import Canned, ScriptedServer

pytestmark = pytest.mark.e2e


def test_a_receiver_gets_every_result_signed_after_failures(tmp_path: Path) -> None:
    env = {"WEBHOOK_READ_SECONDS": "1"}
    with (
        ScriptedServer() as receiver,
        serve(tmp_path / "stderr.log", "--allow-private-webhooks", extra_env=env) as served,
    ):
        assert served.info["webhooks_allow_private"] is True
        receiver.on("POST", "/hook", Canned(500), Canned(500), Canned(200, delay=2.5), Canned(200))
        secret = served.api("GET", "/webhooks/secret").json()["secret"]
        bucket = served.info["bucket"]
        served.aws("s3").put_object(Bucket=bucket, Key="references/hook.png", Body=reference_png(128))
        request = {
            **video_request(f"s3://{bucket}/references/hook.png", "webhook"),
            "webhook_url": f"{receiver.url}/hook",
        }
        response = served.api("POST", "/videos", json=request)
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        assert served.wait_job(job_id)["status"] == "completed"
        job = wait_delivered(served, job_id, timeout=60)
        outcomes = [(a["outcome"], a["http_status"]) for a in job["webhook_attempts"]]
        assert outcomes == [("retrying", 500), ("retrying", 500), ("retrying", None), ("delivered", 200)], outcomes
        assert job["webhook_attempts"][2]["error"] == "timed out"
        assert len(receiver.seen) == 4 and len({seen.headers["webhook-id"] for seen in receiver.seen}) == 1
        for seen in receiver.seen:
            message = Webhook(secret).verify(seen.body, seen.headers)
            assert message["type"] == "VideoCompleted" and message["data"]["job_id"] == job_id
            assert message["data"]["video"]["sha256"] == job["video"]["sha256"]
        # The owner sees the attempts on its job; the URL's receiver got nothing else.
        assert served.api("GET", f"/videos/{job_id}").json()["webhook_state"] == "delivered"
        time.sleep(2)
        assert len(receiver.seen) == 4


def test_without_the_flag_a_loopback_webhook_url_is_refused(tmp_path: Path) -> None:
    with serve(tmp_path / "stderr.log") as served:
        assert served.info["webhooks_allow_private"] is False
        for url in ("http://127.0.0.1:9/hook", "https://localhost:9/hook", "https://127.1/hook"):
            response = served.api("POST", "/videos", json={"prompt": "x", "webhook_url": url})
            assert response.status_code == 422 and "webhook_url" in response.text, (url, response.text)


def wait_delivered(served: Served, job_id: str, timeout: float) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        job = served.job_record(job_id)
        if job and job.get("webhook_state") in ("delivered", "failed", "refused"):
            return job
        assert time.monotonic() < deadline, f"no delivery: {job and job.get('webhook_attempts')}"
        time.sleep(0.3)


def webhooks_cli(served: Served, *args: str) -> dict[str, Any]:
    env = {**os.environ, "AWS_ENDPOINT_URL": served.info["aws_endpoint_url"]}
    where = ("--table", served.info["webhook_signing_table"], "--key-secret", served.info["webhook_signing_key_secret"])
    result = subprocess.run(
        [str(VIDEOGEN), "webhooks", "secret", *args, *where],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def test_a_door_job_is_signed_with_its_door_owners_secret_which_operators_read(served: Served) -> None:
    bucket = served.info["bucket"]
    with ScriptedServer() as receiver:
        receiver.on("POST", "/hook", Canned(200))
        request = {
            "prompt": "from s3 [sim:outcome=failed]",
            "resolution": "480p",
            "webhook_url": f"{receiver.url}/hook",
        }
        served.aws("s3").put_object(Bucket=bucket, Key="requests/hooked.json", Body=json.dumps(request).encode())
        deadline = time.monotonic() + 60
        while not receiver.seen:
            assert time.monotonic() < deadline, "no webhook"
            time.sleep(0.3)
        secret = webhooks_cli(served, "--owner", f"s3:{bucket}")["secret"]
        message = Webhook(secret).verify(receiver.seen[0].body, receiver.seen[0].headers)
        assert message["type"] == "VideoFailed" and message["data"]["door"] == "s3"
    # A tenant's secret is the same through its key and through the operators' CLI.
    tenant = f"hooks-{uuid.uuid4().hex[:8]}"
    issued = json.loads(
        subprocess.run(
            [str(VIDEOGEN), "keys", "create", "--tenant", tenant, "--table", served.info["keys_table"]],
            capture_output=True, text=True, timeout=60, check=True,
            env={**os.environ, "AWS_ENDPOINT_URL": served.info["aws_endpoint_url"]},
        ).stdout
    )  # fmt: skip
    headers = {"Authorization": f"Bearer {issued['key']}"}
    via_key = served.api("GET", "/api/v1/webhooks/secret", headers=headers).json()["secret"]
    assert via_key == webhooks_cli(served, "--owner", f"tenant:{tenant}")["secret"]
    rotated = webhooks_cli(served, "--owner", f"tenant:{tenant}", "--rotate")
    assert rotated["secret"] != via_key and rotated["previous_secret_signs_until"]
