"""Spend control (issue 13, `make bench` benchmark "spend"):

* **preflight latency** per reference (videogen.preflight, in this process): a PNG on a loopback HTTP server,
  each check a URL of its own so none is answered from the cache; p50 and p99, and a cached answer.
* **the budget race**: ``concurrency`` callers of one owner POST at once against a monthly budget that fits
  ``fits`` of their estimates: exactly ``fits`` are accepted, the rest get 402, and the reserved amount equals
  ``fits`` estimates (no overspend).
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from videogen_local.localmode.process import local_serve, stack_client


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def run(references: int = 200, concurrency: int = 50, fits: int = 10) -> dict[str, Any]:
    with _image_server() as image_url:
        preflight = _preflight(image_url, references)
    # The race through the front door, as callers send it (its stage throttle off: 50 callers at once).
    env = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true", "VIDEOGEN_API_THROTTLE": "off"}
    with (
        tempfile.TemporaryDirectory(prefix="videogen-bench-spend-") as work,
        local_serve(Path(work) / "serve.log", env=env) as (info, _),
    ):
        race = _race(info, concurrency, fits)
    return {
        "preflight": preflight,
        "budget_race": race,
        "met": race["overspend_usd"] == 0 and race["accepted"] == fits and race["refused_402"] == concurrency - fits,
    }


def _request(reference: str, prompt: str) -> dict[str, Any]:
    return {
        "prompt": prompt,
        "duration": 4,
        "resolution": "480p",
        "input_references": [{"type": "image_url", "image_url": {"url": reference}}],
    }


def _preflight(image_url: str, requests: int) -> dict[str, Any]:
    """videogen.preflight as the intake runs it, per reference: resolve, connect to the checked address,
    read the first bytes, check the magic (allow_private: the reference is on loopback)."""
    from videogen.preflight import Preflight

    preflight = Preflight(allow_private=True)
    timings: list[float] = []
    for n in range(requests):
        started = time.perf_counter()
        preflight.check("input_references[0]", f"{image_url}?n={n}")  # a URL of its own: never from the cache
        timings.append((time.perf_counter() - started) * 1000)
    cached_started = time.perf_counter()
    preflight.check("input_references[0]", f"{image_url}?n=0")
    return {
        "references": requests,
        "fetches": preflight.fetches,
        "p50_ms": round(percentile(timings, 0.5), 2),
        "p99_ms": round(percentile(timings, 0.99), 2),
        "cached_ms": round((time.perf_counter() - cached_started) * 1000, 3),
    }


def _race(info: dict[str, Any], concurrency: int, fits: int) -> dict[str, Any]:
    from videogen_local.chaos import reference_data_url

    owner = f"arn:aws:iam::123456789012:user/bench-race-{uuid.uuid4().hex[:6]}"
    caller = {"X-Videogen-Caller": owner}
    reference = reference_data_url()
    with httpx.Client(base_url=info["api_url"], timeout=60) as api:
        probe = api.post(
            "/videos", json=_request(reference, "race: the estimate"), headers={"X-Videogen-Caller": f"{owner}-probe"}
        )
        estimate = Decimal(str(probe.json()["estimated_cost_usd"]))
    budget = estimate * fits
    dynamodb = stack_client(info, "dynamodb")
    dynamodb.put_item(
        TableName=info["budgets_table"],
        Item={"owner": {"S": owner}, "period": {"S": "limits"}, "monthly_usd": {"N": str(budget)}},
    )
    barrier = threading.Barrier(concurrency)
    answers: list[int] = []
    lock = threading.Lock()

    def call(index: int) -> None:
        with httpx.Client(base_url=info["api_url"], timeout=60) as own:
            barrier.wait()
            status = own.post("/videos", json=_request(reference, f"race {index}"), headers=caller).status_code
        with lock:
            answers.append(status)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    month = next(
        item
        for item in dynamodb.query(
            TableName=info["budgets_table"],
            KeyConditionExpression="#o = :o AND begins_with(#p, :m)",
            ExpressionAttributeNames={"#o": "owner", "#p": "period"},
            ExpressionAttributeValues={":o": {"S": owner}, ":m": {"S": "month#"}},
            ConsistentRead=True,
        )["Items"]
    )
    committed = Decimal(month["committed"]["N"])
    statuses = Counter(answers)
    return {
        "callers": concurrency,
        "budget_fits": fits,
        "estimate_usd": float(estimate),
        "accepted": statuses.get(202, 0),
        "refused_402": statuses.get(402, 0),
        "other": {str(k): v for k, v in statuses.items() if k not in (202, 402)},
        "committed_usd": float(committed),
        "overspend_usd": float(max(Decimal(0), committed - budget)),
        "seconds": round(seconds, 2),
    }


@contextmanager
def _image_server() -> Iterator[str]:
    from videogen_local.sim.render import backpack_png

    png = backpack_png(96)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(png)))
            self.end_headers()
            self.wfile.write(png)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/backpack.png"
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
