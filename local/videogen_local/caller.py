"""The caller's side of the API: plain HTTP locally, SigV4-signed for a deployed API Gateway."""

from __future__ import annotations

import ipaddress
import os
import re
import sys
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

TERMINAL = {"completed", "failed", "cancelled", "expired", "timed_out"}


class SigV4Auth(httpx.Auth):
    """Signs each request for API Gateway's AWS_IAM authorizer with the caller's AWS credentials."""

    def __init__(self, region: str, credentials: Any | None = None) -> None:
        import botocore.session

        self.region = region
        self.credentials = credentials or botocore.session.Session().get_credentials()
        if self.credentials is None:
            raise SystemExit("no AWS credentials found to sign the request (aws configure, or AWS_PROFILE)")

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        from botocore.auth import SigV4Auth as BotocoreSigV4
        from botocore.awsrequest import AWSRequest

        signed = AWSRequest(
            method=request.method,
            url=str(request.url),
            data=request.content,
            headers={"Content-Type": request.headers.get("content-type", "application/json")},
        )
        BotocoreSigV4(self.credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(signed)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in signed.headers:
                request.headers[name] = signed.headers[name]
        yield request


def is_local(api_url: str) -> bool:
    host = urlsplit(api_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def region_of(api_url: str) -> str | None:
    match = re.match(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com", urlsplit(api_url).hostname or "")
    return match.group(1) if match else None


class VideogenApi:
    def __init__(self, api_url: str, region: str | None = None, timeout: float = 30) -> None:
        self.api_url = api_url.rstrip("/")
        auth: httpx.Auth | None = None
        if not is_local(self.api_url):
            resolved = region or region_of(self.api_url)
            if not resolved:
                raise SystemExit("cannot tell the API's region from its URL: pass --region")
            auth = SigV4Auth(resolved)
        elif os.environ.get("AWS_PROFILE"):
            # Local serve names a signed request's caller by its key, as API Gateway does (an assumed role's
            # session, an IAM user): with a profile chosen, act as that principal locally too.
            auth = SigV4Auth(region or os.environ.get("AWS_REGION") or "us-east-1")
        self._http = httpx.Client(base_url=self.api_url, auth=auth, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The raw answer (signed when the API is deployed), errors included."""
        return self._http.request(method, path, **kwargs)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code >= 400:
            print(response.text, file=sys.stderr)
            raise SystemExit(2)
        return response.json()

    def submit(self, request: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", "/videos", json=request)
        return result

    def status(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", f"/videos/{job_id}")
        return result

    def wait(self, job_id: str, timeout: float, interval: float, progress: bool = True) -> dict[str, Any]:
        started = time.monotonic()
        while True:
            job = self.status(job_id)
            elapsed = time.monotonic() - started
            if progress:
                recent = " > ".join(job["polls"][-5:])
                print(
                    f"\r{job['status']:<12} polls={len(job['polls']):<3} {elapsed:6.1f}s  {recent:<70}",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
            if job["status"] in TERMINAL or elapsed > timeout:
                if progress:
                    print(file=sys.stderr)
                return job
            time.sleep(interval)

    def download(self, job_id: str, output: Path) -> int:
        job = self.status(job_id)
        if job["status"] != "completed" or not job.get("video"):
            raise SystemExit(f"job {job_id} is {job['status']}: no video to download")
        output.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        # The presigned S3 URL carries its own authorization: no SigV4 header is sent there.
        with httpx.stream("GET", job["video"]["url"], timeout=120) as response, output.open("wb") as file:
            response.raise_for_status()
            for chunk in response.iter_bytes(1024 * 1024):
                file.write(chunk)
                size += len(chunk)
        return size
