"""OpenRouter's signed output URLs (`urls`, keyless until `expires_at`): the download uses `urls[0]`, and the
URLs, bearer secrets, appear in no log, execution history, job record or event. Outputs that expired before
they were downloaded fail the job with that reason."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import TEST_KEY
from tests.e2e.conftest import Served
from tests.support.images import reference_data_url

pytestmark = pytest.mark.e2e


def submit(served: Served, prompt: str) -> str:
    ref = [{"type": "image_url", "image_url": {"url": reference_data_url()}}]
    response = served.api("POST", "/videos", json={"prompt": prompt, "resolution": "480p", "input_references": ref})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def sim_job(served: Served, prompt: str) -> dict[str, object]:
    stats = httpx.get(f"{served.info['openrouter_base_url']}/_sim/stats", timeout=10).json()
    [job] = [j for j in stats["jobs"].values() if j["prompt"] == prompt]
    return dict(job)


def test_the_signed_url_is_used_and_kept_secret(served: Served) -> None:
    prompt = "signed outputs [sim:urls=signed]"
    job_id = submit(served, prompt)
    job = served.wait_announced(job_id)
    assert job["status"] == "completed" and job["signed_outputs"] is True
    assert sim_job(served, prompt)["signed_downloads"] == 1  # urls[0], keyless, not the unsigned link
    # The token of the signed URL, from OpenRouter's own answer (asked here as a client would).
    openrouter_id = job["openrouter_job_id"]
    answer = httpx.get(
        f"{served.info['openrouter_base_url']}/api/v1/videos/{openrouter_id}",
        headers={"Authorization": f"Bearer {TEST_KEY}"},
        timeout=10,
    ).json()
    token = answer["urls"][0].split("token=")[1]
    sfn = served.aws("stepfunctions")
    [execution] = [
        e
        for e in sfn.list_executions(stateMachineArn=served.info["state_machine_arn"])["executions"]
        if e["name"] == job_id
    ]
    history = json.dumps(sfn.get_execution_history(executionArn=execution["executionArn"])["events"], default=str)
    events = json.dumps([e for e in served.drain_events() if e["detail"].get("job_id") == job_id])
    with open(served.info["stderr_log"]) as log:
        logged = log.read()
    for where, text in {
        "history": history,
        "record": json.dumps(job, default=str),
        "events": events,
        "logs": logged,
    }.items():
        assert token not in text, where


def test_outputs_that_expired_before_the_download_fail_the_job(served: Served) -> None:
    job = served.wait_announced(submit(served, "expired outputs [sim:urls=expired]"))
    assert job["status"] == "failed" and "expired" in job["error"] and "before they were downloaded" in job["error"]
    assert served.aws("s3").list_objects_v2(Bucket=served.info["bucket"], Prefix=f"videos/{job['id']}")["KeyCount"] == 0
