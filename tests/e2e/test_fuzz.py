"""Fuzzing the API from its own OpenAPI document (schemathesis): no 5xx, and nothing invalid enqueued.

`make test` runs a small budget; `make fuzz` runs about 1,000 generated cases (VIDEOGEN_FUZZ_EXAMPLES=100).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from boto3.dynamodb.types import TypeDeserializer

from tests.e2e.conftest import serve
from videogen.capabilities import check_capabilities
from videogen.intake import parse_request
from videogen.jobs import job_from_image
from videogen.models import VideoModel

pytestmark = pytest.mark.e2e
EXAMPLES = os.environ.get("VIDEOGEN_FUZZ_EXAMPLES", "8")  # about 250 cases: `make test` keeps to its 10 minutes


def test_generated_requests_never_get_a_5xx_and_only_valid_ones_become_jobs(tmp_path: Path) -> None:
    # Jobs are accepted but never polled during the run: the fuzzer exercises the edge, not the renderer.
    with serve(tmp_path / "serve.log", "--poll-interval", "3600") as served:
        api = served.info["api_url"]
        st = Path(sys.executable).with_name("st")
        result = subprocess.run(
            [
                str(st),
                "run",
                f"{api}/openapi.json",
                "--url",
                api,
                "--max-examples",
                EXAMPLES,
                "--checks",
                "not_a_server_error",
                "--generation-deterministic",
                # One worker: with two, schemathesis' threads intermittently hit a CPython 3.11 ast.parse
                # SystemError ("AST constructor recursion depth mismatch") under load.
                "--workers",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
            cwd=tmp_path,
        )
        summary = result.stdout[-3000:]
        print(summary)
        generated = re.search(r"(\d+) generated", summary)
        assert generated and int(generated.group(1)) >= 5 * int(EXAMPLES), summary
        assert result.returncode == 0, summary

        models = httpx.get(f"{served.info['openrouter_base_url']}/api/v1/videos/models").json()["data"]
        catalogue = {m["id"]: VideoModel.model_validate(m) for m in models}
        items = served.aws("dynamodb").scan(TableName=served.info["jobs_table"])["Items"]
        for item in items:
            # Read the item as the service does (DynamoDB numbers come back as Decimal, which the strict
            # request model refuses; jobs.job_from_image turns them into ints), then validate it again.
            job = job_from_image({k: TypeDeserializer().deserialize(v) for k, v in item.items()})
            request = parse_request(job.request.model_dump(mode="json", exclude_none=True))
            check_capabilities(request, catalogue[request.model])
        print(f"{generated.group(1)} generated cases, {len(items)} accepted jobs, all valid")
