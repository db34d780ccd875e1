"""`videogen demo`: the seed's backpack example through the whole local pipeline.

Starts the local stack in-process (moto + the real handlers + the real state machine), uploads the
bundled reference image to the service bucket, submits the seed's prompt through the local API with
``input_references``, shows progress while the state machine polls, saves the MP4 and prints the
seed-style summary. With OPENROUTER_API_KEY and REFERENCE_IMAGE_URL set, the same run goes to the
real OpenRouter (and spends credits).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import httpx

from videogen_local.localmode import metrics
from videogen_local.localmode.output import LineWriter
from videogen_local.localmode.process import stack_client
from videogen_local.localmode.stack import LocalStack, LocalStackConfig

SEED_PROMPT = (
    "Create a 4-second product video of the same backpack from the reference image. "
    "Keep the shape, color, and logo placement consistent. "
    "Place it on a wet city sidewalk at night with neon reflections. "
    "Use a slow orbiting camera move and realistic lighting."
)
TERMINAL = {"completed", "failed", "cancelled", "expired", "timed_out"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", default="out/reference-video.mp4", help="where to save the MP4")
    parser.add_argument(
        "--poll-interval",
        type=int,
        default=None,
        help="seconds between polls (default: 1 with the simulator, 30 with OpenRouter)",
    )
    parser.add_argument("--max-polls", type=int, default=60)
    parser.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    parser.add_argument(
        "--metrics-file",
        type=Path,
        default=Path("out/metrics.jsonl"),
        help="where the run's metrics are recorded for `videogen dashboard`",
    )


def run_demo(args: argparse.Namespace) -> int:
    # The summary is the only thing on stdout; the handlers' logs go to stderr and their metrics (EMF) to
    # the metrics file only, so the progress stays readable.
    summary_out = sys.stdout
    sys.stdout = LineWriter(sys.stderr, hook=metrics.take_emf)  # type: ignore[assignment]
    real = bool(os.environ.get("OPENROUTER_API_KEY") and os.environ.get("REFERENCE_IMAGE_URL"))
    if os.environ.get("OPENROUTER_API_KEY") and not real:
        print("OPENROUTER_API_KEY is set but REFERENCE_IMAGE_URL is not: using the simulator.", file=sys.stderr)
    interval = args.poll_interval if args.poll_interval is not None else (30 if real else 1)
    config = LocalStackConfig(
        poll_interval=interval,
        max_polls=args.max_polls,
        openrouter_base_url="https://openrouter.ai" if real else None,
        openrouter_api_key=os.environ["OPENROUTER_API_KEY"] if real else None,
        metrics_file=args.metrics_file.resolve(),
    )
    started = time.monotonic()
    print(
        "starting the local stack (moto, handlers, state machine"
        + (", OpenRouter simulator)" if not real else ", real OpenRouter)"),
        file=sys.stderr,
    )
    with LocalStack(config) as stack:
        info = stack.info
        print(
            f"  api {info['api_url']}  aws {info['aws_endpoint_url']}  openrouter {info['openrouter_base_url']}",
            file=sys.stderr,
        )
        reference = os.environ["REFERENCE_IMAGE_URL"] if real else upload_reference(info)
        request = {
            "model": "bytedance/seedance-2.0-fast",
            "prompt": SEED_PROMPT,
            "duration": 4,
            "resolution": "720p",
            "aspect_ratio": "16:9",
            "generate_audio": False,
            "input_references": [{"type": "image_url", "image_url": {"url": reference}}],
        }
        with httpx.Client(base_url=info["api_url"], timeout=30) as api:
            accepted = api.post("/videos", json=request)
            if accepted.status_code != 202:
                print(f"request rejected: HTTP {accepted.status_code} {accepted.text}", file=sys.stderr)
                return 2
            job_id = accepted.json()["id"]
            print(f"submitted job {job_id}", file=sys.stderr)
            job = wait(api, job_id, args.timeout or interval * (args.max_polls + 2) + 60)
            output = Path(args.output)
            size = 0
            if job["status"] == "completed":
                size = save(job["video"]["url"], output)
        summary = {
            "id": job_id,
            "status": job["status"],
            "polls": job["polls"],
            "output_path": str(output) if job["status"] == "completed" else None,
            "bytes": size,
        }
        if job.get("error"):
            summary["error"] = job["error"]
        print(json.dumps(summary, indent=2), file=summary_out)
        print(f"demo finished in {time.monotonic() - started:.1f} s", file=sys.stderr)
        print(
            f"metrics in {args.metrics_file} (chart them: videogen dashboard --metrics {args.metrics_file})",
            file=sys.stderr,
        )
        return 0 if job["status"] == "completed" else 1


def upload_reference(info: dict[str, Any]) -> str:
    image = resources.files("videogen_local").joinpath("assets/backpack.png").read_bytes()
    s3 = stack_client(info, "s3")
    s3.put_object(Bucket=info["bucket"], Key="references/backpack.png", Body=image, ContentType="image/png")
    uri = f"s3://{info['bucket']}/references/backpack.png"
    print(f"uploaded the bundled reference image to {uri}", file=sys.stderr)
    return uri


def wait(api: httpx.Client, job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    start = time.monotonic()
    while True:
        job: dict[str, Any] = api.get(f"/videos/{job_id}").json()
        line = f"\r  {job['status']:<12} polls={len(job['polls'])} {' > '.join(job['polls'][-6:])}"
        print(f"{line:<100} {time.monotonic() - start:5.1f}s", end="", file=sys.stderr, flush=True)
        if job["status"] in TERMINAL or time.monotonic() > deadline:
            print(file=sys.stderr)
            return job
        time.sleep(0.5)


def save(url: str, output: Path) -> int:
    output.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    with httpx.stream("GET", url, timeout=60) as response, output.open("wb") as file:
        response.raise_for_status()
        for chunk in response.iter_bytes(1024 * 1024):
            file.write(chunk)
            size += len(chunk)
    print(f"Saved {output}", file=sys.stderr)
    return size
