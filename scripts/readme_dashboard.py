"""Redraws docs/dashboard.png, the README's screenshot of the local dashboard (`make readme-dashboard`).

Two dozen requests through the three doors of `videogen local serve` (the simulator; some made to fail,
some rejected at the edge), every job waited for until its result event is out, then `videogen dashboard`
on the metrics and log lines that run recorded. Needs Chromium (`make browser`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from videogen_local.chaos import reference_data_url
from videogen_local.localmode.process import local_serve, stack_client

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = [
    "A red backpack on a wooden bench, slow push-in",
    "The backpack on a mountain trail at dawn",
    "The backpack in the rain [sim:polls=5]",
    "The backpack on a beach [sim:outcome=failed]",
    "The backpack in a museum [sim:outcome=expired]",
    "The backpack on a train [sim:reject=402]",
]
WAVES = 3
WAVE_PAUSE_SECONDS = 6


def main() -> int:
    reference = [{"type": "image_url", "image_url": {"url": reference_data_url()}}]

    def request(prompt: str, **extra: Any) -> dict[str, Any]:
        return {"prompt": prompt, "resolution": "480p", "input_references": reference, **extra}

    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "serve.log"
        env = {"POWERTOOLS_LOG_LEVEL": "INFO", "VIDEOGEN_SIM_RENDER_HEIGHT": "144"}
        with local_serve(log, "--poll-interval", "1", env=env) as (info, _):

            def aws(service: str) -> Any:
                return stack_client(info, service)

            api = f"{info['api_url']}/videos"
            # The API's caller (local serve's default developer) has a budget, so the spend widgets have data.
            aws("dynamodb").put_item(
                TableName=info["budgets_table"],
                Item={
                    "owner": {"S": "arn:aws:iam::123456789012:user/local-developer"},
                    "period": {"S": "limits"},
                    "monthly_usd": {"N": "5"},
                },
            )
            # In waves a few seconds apart, so that the charts show a run over time, not one spike.
            for wave in range(WAVES):
                for prompt in PROMPTS:
                    httpx.post(api, json=request(prompt), timeout=60).raise_for_status()
                httpx.post(api, json=request("too long a video", duration=99), timeout=60)  # 422 at the edge
                httpx.post(api, content=b"{not json", timeout=60)  # 400 at the edge
                if wave < WAVES - 1:
                    time.sleep(WAVE_PAUSE_SECONDS)
            s3 = aws("s3")
            for index, prompt in enumerate(PROMPTS[:2]):
                body = json.dumps(request(f"{prompt} (S3 door)")).encode()
                s3.put_object(Bucket=info["bucket"], Key=f"requests/readme-{index}.json", Body=body)
            s3.put_object(Bucket=info["bucket"], Key="requests/readme-bad.json", Body=b'{"prompt": ""}')
            entries = [
                {
                    "Source": "com.example.readme",
                    "DetailType": "VideoRequested",
                    "Detail": json.dumps(request(f"{prompt} (EventBridge door)")),
                    "EventBusName": info["event_bus"],
                }
                for prompt in (PROMPTS[0], PROMPTS[3])
            ]
            aws("events").put_events(Entries=entries)
            _wait_until_announced(aws("dynamodb"), info["jobs_table"], expected=WAVES * len(PROMPTS) + 4)
            time.sleep(3)  # the last metric lines (queue depth sampler, the execution watcher)
        png = ROOT / "docs" / "dashboard.png"
        command = [str(Path(sys.executable).with_name("videogen")), "dashboard", "--metrics"]
        command += [str(log.with_name(f"{log.stem}.metrics.jsonl")), "--logs", str(log)]
        command += ["--html", str(ROOT / "out" / "dashboard.html"), "--png", str(png)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        print(done.stdout.strip() or done.stderr[-2000:])
        return done.returncode


def _wait_until_announced(dynamodb: Any, table: str, expected: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while True:
        items = dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
        if len(items) >= expected and all("event_published_at" in item for item in items):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(items)} jobs, not all announced after {timeout} s")
        time.sleep(0.5)


if __name__ == "__main__":
    raise SystemExit(main())
