"""What callbacks buy (`make bench`, benchmark "callbacks"): the time from the simulator finishing a job to its
VideoCompleted event, and OpenRouter polls per job, with callbacks (OPENROUTER_WEBHOOK_SECRET set) and with the
poll loop alone, both at the deployed 30 s poll interval, through `videogen local serve`.

Each job's generation time is drawn from 5-65 s ([sim:seconds=N]), so completions fall anywhere in the poll cycle.
Target: p50 <= 2 s with callbacks. `--quick` (tests/bench): 2 jobs, a 2 s interval, 1-3 s generations.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from videogen_local.localmode.process import local_serve, stack_client


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


TARGET_P50_SECONDS = 2.0


def run(
    jobs: int = 20, poll_interval: int = 30, seed: int = 12, generation: tuple[float, float] = (5, 65)
) -> dict[str, Any]:
    """Both modes, one after the other, on the same draws of generation times."""
    with tempfile.TemporaryDirectory(prefix="videogen-bench-callbacks-") as work:
        modes = {
            mode: run_mode(mode, jobs, poll_interval, seed, Path(work), generation) for mode in ("callbacks", "polling")
        }
    return {
        "jobs": jobs,
        "poll_interval_seconds": poll_interval,
        "generation_seconds": list(generation),
        "modes": modes,
        "target_p50_s": TARGET_P50_SECONDS,
        "met": modes["callbacks"]["delay_p50_s"] <= TARGET_P50_SECONDS
        and all(m["completed_events"] == jobs for m in modes.values()),
    }


def run_mode(
    mode: str, jobs: int, poll_interval: int, seed: int, work: Path, generation: tuple[float, float]
) -> dict[str, Any]:
    env = {
        "VIDEOGEN_SIM_SECONDS_TO_COMPLETE": "30",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }
    if mode == "callbacks":
        env["OPENROUTER_WEBHOOK_SECRET"] = "whsec-measure"
    rng = random.Random(seed)
    with local_serve(work / f"{mode}.log", "--poll-interval", str(poll_interval), "--max-polls", "10", env=env) as (
        info,
        _,
    ):
        s3, sqs = stack_client(info, "s3"), stack_client(info, "sqs")
        s3.put_object(Bucket=info["bucket"], Key="references/m.png", Body=_png())
        reference = f"s3://{info['bucket']}/references/m.png"
        submitted: dict[str, str] = {}
        for index in range(jobs):
            seconds = rng.uniform(*generation)
            prompt = f"measure {mode} {index} [sim:seconds={seconds:.2f}]"
            body = {"prompt": prompt, "duration": 4, "resolution": "480p", "aspect_ratio": "16:9"}
            body["input_references"] = [{"type": "image_url", "image_url": {"url": reference}}]
            answer = httpx.post(f"{info['api_url']}/videos", json=body, timeout=30)
            answer.raise_for_status()
            submitted[answer.json()["id"]] = prompt
        seen: dict[str, float] = {}
        deadline = time.monotonic() + generation[1] + 3 * poll_interval + 60
        while len(seen) < jobs and time.monotonic() < deadline:
            batch = sqs.receive_message(
                QueueUrl=info["results_queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", [])
            for message in batch:
                event = json.loads(message["Body"])
                if event["detail-type"] == "VideoCompleted":
                    seen.setdefault(event["detail"]["job_id"], time.time())
                sqs.delete_message(QueueUrl=info["results_queue_url"], ReceiptHandle=message["ReceiptHandle"])
        stats = httpx.get(f"{info['openrouter_base_url']}/_sim/stats", timeout=30).json()
    by_prompt = {job["prompt"]: job for job in stats["jobs"].values()}
    delays, polls = [], []
    for job_id, prompt in submitted.items():
        sim = by_prompt[prompt]
        polls.append(sim["polls"])
        if job_id in seen and sim["finished_at"]:
            delays.append(seen[job_id] - sim["finished_at"])
    return {
        "mode": mode,
        "callbacks": info.get("callbacks"),
        "jobs": jobs,
        "completed_events": len(seen),
        "delay_p50_s": round(percentile(delays, 0.5), 2),
        "delay_p99_s": round(percentile(delays, 0.99), 2),
        "delay_max_s": round(max(delays), 2),
        "openrouter_polls_per_job": round(statistics.mean(polls), 2),
    }


def _png() -> bytes:
    from importlib import resources

    return resources.files("videogen_local").joinpath("assets/backpack.png").read_bytes()
