"""Callbacks end to end: `videogen local serve` with OPENROUTER_WEBHOOK_SECRET, a 30-second poll interval and a
simulator whose jobs finish 2 s after submission. The job completes within a couple of seconds of the simulator
finishing, long before the state machine's first poll, with one result event and one OpenRouter poll."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import serve
from tests.e2e.test_pipeline import video_request
from tests.support.images import reference_png

pytestmark = pytest.mark.e2e
CALLBACKS_ON = {"OPENROUTER_WEBHOOK_SECRET": "whsec-e2e-callbacks", "VIDEOGEN_SIM_SECONDS_TO_COMPLETE": "2"}


def test_a_callback_ends_the_wait_at_once(tmp_path: Path) -> None:
    with serve(tmp_path / "stderr.log", "--poll-interval", "30", "--max-polls", "4", extra_env=CALLBACKS_ON) as served:
        assert served.info["callbacks"].startswith("on")
        bucket = served.info["bucket"]
        served.aws("s3").put_object(Bucket=bucket, Key="references/cb.png", Body=reference_png(128))
        response = served.api("POST", "/videos", json=video_request(f"s3://{bucket}/references/cb.png", "callback"))
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        job = served.wait_job(job_id, timeout=25)
        done_at = time.time()
        assert job["status"] == "completed"
        stats = httpx.get(f"{served.info['openrouter_base_url']}/_sim/stats", timeout=10).json()
        [sim_job] = [j for j in stats["jobs"].values() if j["prompt"] == "callback"]
        # Ended by the callback: seconds after the simulator finished, well before the first 30-second poll.
        assert done_at - sim_job["finished_at"] < 3, (done_at, sim_job)
        assert sim_job["polls"] == 1  # the nudge's one poll; the state machine has not polled yet
        assert [c["answer"] for c in sim_job["callbacks"]] == [200]
        served.wait_announced(job_id, timeout=20)
        assert [e["detail"]["job_id"] for e in served.drain_events()] == [job_id]
