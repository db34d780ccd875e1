"""The HTTP end-to-end tests, against a deployed stack or, by default, `videogen local serve`.

`make test-deployed` runs them against ``VIDEOGEN_API_URL`` (the stack's ``ApiUrl`` output): the IAM routes
are SigV4-signed with your AWS credentials (botocore's chain: AWS_PROFILE, ...), the OpenRouter-compatible
routes use ``VIDEOGEN_API_KEY`` (from ``videogen keys create --stack <name> --tenant ...``). A test whose
credential is missing is skipped. ``VIDEOGEN_REVOKED_API_KEY``, a key you revoked (``videogen keys revoke``)
at least a minute ago, adds the check that a revoked key is refused. Nothing here reads AWS resources
directly: only what a caller sees. Without ``VIDEOGEN_API_URL`` (as `make test` runs them) they start local
serve and use its keys table (a second key is issued and revoked there for the revoked-key check).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from videogen_local.caller import VideogenApi


@dataclass
class Target:
    api_url: str
    api_key: str | None
    local: bool
    # Deployed OpenRouter polls every 30 s and renders for minutes; the simulator takes seconds.
    timeout_seconds: float
    # A key that was issued and revoked (None: that check is skipped).
    revoked_api_key: str | None = None

    @property
    def poll_seconds(self) -> float:
        return 1 if self.local else 15

    def iam(self) -> VideogenApi | None:
        """A signed client for the IAM routes, or None when there are no credentials to sign with."""
        if not self.local:
            import botocore.session

            if botocore.session.Session().get_credentials() is None:
                return None
        return VideogenApi(self.api_url, timeout=60)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, timeout=60)


@pytest.fixture(scope="package")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    url = os.environ.get("VIDEOGEN_API_URL")
    if url:
        yield Target(
            url.rstrip("/"),
            os.environ.get("VIDEOGEN_API_KEY"),
            local=False,
            timeout_seconds=1800,
            revoked_api_key=os.environ.get("VIDEOGEN_REVOKED_API_KEY") or None,
        )
        return
    from tests.e2e.conftest import serve

    log = tmp_path_factory.mktemp("deployed-serve") / "stderr.log"
    with serve(log, "--poll-interval", "0", "--max-polls", "6") as served:
        videogen = Path(sys.executable).with_name("videogen")
        env = {**os.environ, "AWS_ENDPOINT_URL": served.info["aws_endpoint_url"]}

        def keys(*args: str) -> Any:
            result = subprocess.run(
                [str(videogen), "keys", *args, "--table", served.info["keys_table"]],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
                env=env,
            )
            return json.loads(result.stdout)

        created = keys("create", "--tenant", "deployed-suite")
        # Revoked before it is ever used, so no authorizer cache entry can keep it working.
        revoked = keys("create", "--tenant", "deployed-suite", "--label", "revoked")
        keys("revoke", revoked["key_id"])
        yield Target(
            served.info["api_url"], created["key"], local=True, timeout_seconds=120, revoked_api_key=revoked["key"]
        )
