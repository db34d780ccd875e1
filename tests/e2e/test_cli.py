"""The `videogen` caller CLI against `videogen local serve`, and its SigV4 signing for deployed APIs."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import httpx
import pytest
from botocore.credentials import Credentials

from tests.e2e.conftest import VIDEOGEN, Served
from tests.support.images import reference_png
from videogen_local.caller import SigV4Auth, is_local, region_of

pytestmark = pytest.mark.e2e


def videogen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VIDEOGEN), *args], capture_output=True, text=True, timeout=120, check=False)


def test_submit_wait_download_and_models(served: Served, tmp_path: Path) -> None:
    served.aws("s3").put_object(Bucket=served.info["bucket"], Key="references/cli.png", Body=reference_png(128))
    api = ["--api", served.info["api_url"]]
    submitted = videogen(
        "submit",
        *api,
        "--prompt",
        "a backpack from the CLI",
        "--duration",
        "4",
        "--resolution",
        "480p",
        "--aspect-ratio",
        "1:1",
        "--reference",
        f"s3://{served.info['bucket']}/references/cli.png",
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["id"]
    waited = videogen("wait", *api, job_id, "--interval", "0.2", "--timeout", "90")
    assert waited.returncode == 0, waited.stderr
    job = json.loads(waited.stdout)
    assert job["status"] == "completed" and "polls=" in waited.stderr
    output = tmp_path / "cli.mp4"
    downloaded = videogen("download", *api, job_id, "-o", str(output))
    assert downloaded.returncode == 0, downloaded.stderr
    assert hashlib.sha256(output.read_bytes()).hexdigest() == job["video"]["sha256"]
    status = json.loads(videogen("status", *api, job_id).stdout)
    assert status["id"] == job_id and status["status"] == "completed"
    models = json.loads(videogen("models", *api).stdout)["data"]
    assert "bytedance/seedance-2.0-fast" in {m["id"] for m in models}


def test_cli_reports_api_errors(served: Served) -> None:
    result = videogen("submit", "--api", served.info["api_url"], "--prompt", "p", "--duration", "99")
    assert result.returncode == 2 and json.loads(result.stderr)["error"]["fields"][0]["field"] == "duration"
    missing = videogen("status", "--api", served.info["api_url"], "no-such-job")
    assert missing.returncode == 2


def test_deployed_api_requests_are_sigv4_signed() -> None:
    url = "https://abc123.execute-api.eu-west-1.amazonaws.com/v1/videos"
    assert not is_local(url) and is_local("http://127.0.0.1:8787/v1") and region_of(url) == "eu-west-1"
    auth = SigV4Auth("eu-west-1", Credentials("AKIDEXAMPLE", "secret", "token"))
    request = httpx.Request("POST", url, json={"prompt": "p"})
    signed = next(auth.auth_flow(request))
    assert signed.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in signed.headers["Authorization"]
    assert signed.headers["X-Amz-Security-Token"] == "token" and signed.headers["X-Amz-Date"]
