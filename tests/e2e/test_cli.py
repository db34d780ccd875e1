"""The `videogen` caller CLI against `videogen local serve`, and its SigV4 signing for deployed APIs."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
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


def profiles(served: Served, tmp_path: Path) -> dict[str, str]:
    """An AWS config with two role profiles on one IAM user's key, as a developer or a CI job has them; the
    environment a CLI process gets to use them against local serve's STS and API."""
    iam = served.aws("iam")
    user = f"cli-{tmp_path.name[-8:]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    config = [
        f"[profile base]\naws_access_key_id = {key['AccessKeyId']}\naws_secret_access_key = {key['SecretAccessKey']}"
    ]
    for role in ("renderer", "billing"):
        arn = iam.create_role(RoleName=f"{role}-{user}", Path="/services/", AssumeRolePolicyDocument="{}")["Role"][
            "Arn"
        ]
        config.append(f"[profile {role}]\nrole_arn = {arn}\nsource_profile = base\nregion = us-east-1")
    (tmp_path / "config").write_text("\n\n".join(config) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_ENDPOINT_URL=served.info["aws_endpoint_url"],
        VIDEOGEN_API_URL=served.info["api_url"],
    )
    return env


def test_a_role_profile_owns_its_jobs_across_sessions(served: Served, tmp_path: Path) -> None:
    env = profiles(served, tmp_path)

    def as_profile(profile: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(VIDEOGEN), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**env, "AWS_PROFILE": profile},
        )

    submitted = as_profile("renderer", "submit", "--prompt", "from a role profile", "--duration", "4")
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["id"]
    # Each CLI process is a new botocore session, so a new STS session name (botocore-session-<epoch>).
    time.sleep(1.1)
    seen = as_profile("renderer", "status", job_id)
    assert seen.returncode == 0, seen.stderr
    job = json.loads(seen.stdout)
    role = f"renderer-cli-{tmp_path.name[-8:]}"
    assert job["caller"] == f"arn:aws:iam::123456789012:role/{role}"  # the role, without its path, not the session
    assert job["caller_session"].startswith(f"arn:aws:sts::123456789012:assumed-role/{role}/botocore-session-")
    assert as_profile("billing", "status", job_id).returncode == 2  # another role: 404
    unknown = httpx.get(
        f"{served.info['api_url']}/videos/{job_id}",
        headers={"Authorization": "AWS4-HMAC-SHA256 Credential=AKIANOBODYGAVEOUT000/20261202/us-east-1/execute-api"},
        timeout=30,
    )
    assert unknown.status_code == 403
