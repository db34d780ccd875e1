"""The chaos run's webhook receiver: a loopback endpoint that fails some deliveries on purpose (500s, answers
slower than the sender waits) and keeps every delivery, which is verified afterwards with the `standardwebhooks`
library and each owner's secret, as a caller's receiver would."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

# The sender waits WEBHOOK_READ_SECONDS (chaos: 1 s) for an answer; a slow answer takes longer.
SLOW_SECONDS = 1.5


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]


@dataclass
class ChaosReceiver:
    fault_rate: float
    seed: int
    deliveries: list[Delivery] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with outer._lock:
                    draw = outer._random.random()
                    fault = None
                    if draw < outer.fault_rate:  # three in four failures are 500s, the rest slow answers
                        fault = "error" if draw < outer.fault_rate * 0.75 else "slow"
                    if fault:
                        outer.faults[fault] += 1
                if fault == "slow":
                    time.sleep(SLOW_SECONDS)
                status = 500 if fault == "error" else 204
                if fault is None:  # taken: what a receiver keeps (a failed answer means "not received")
                    with outer._lock:
                        outer.deliveries.append(Delivery(body, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ChaosReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def job_ids(self) -> set[str]:
        with self._lock:
            return {json.loads(d.body)["data"]["job_id"] for d in self.deliveries}


def owner_secrets(info: dict[str, Any], owners: set[str]) -> dict[str, list[str]]:
    """Each owner's secret, as an operator reads it (`videogen webhooks secret`)."""
    videogen = Path(sys.executable).with_name("videogen")
    env = {**os.environ, "AWS_ENDPOINT_URL": info["aws_endpoint_url"], "AWS_DEFAULT_REGION": info["region"]}
    env.setdefault("AWS_ACCESS_KEY_ID", "local")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    found: dict[str, list[str]] = {}
    for owner in owners:
        where = ["--table", info["webhook_signing_table"], "--key-secret", info["webhook_signing_key_secret"]]
        answer = subprocess.run(
            [str(videogen), "webhooks", "secret", "--owner", owner, *where],
            capture_output=True, text=True, timeout=60, check=True, env=env,
        )  # fmt: skip
        found[owner] = [json.loads(answer.stdout)["secret"]]
    return found


def webhook_figures(
    receiver: ChaosReceiver, records: dict[str, dict[str, Any]], accepted: list[str], info: dict[str, Any]
) -> dict[str, Any]:
    """Every accepted job's result received and verified with its owner's secret; repeats by webhook-id (at
    least once: allowed, and a receiver dedupes on the id); anything that does not verify counts as forged."""
    owners = {records[j]["caller"]["S"] for j in accepted if j in records}
    secrets = owner_secrets(info, owners)
    verified: Counter[str] = Counter()
    unverified = 0
    disagreeing = 0
    for delivery in receiver.deliveries:
        job_id = json.loads(delivery.body)["data"]["job_id"]
        record = records.get(job_id)
        secret = secrets.get(record["caller"]["S"], []) if record else []
        try:
            message = Webhook(secret[0]).verify(delivery.body, delivery.headers) if secret else None
        except WebhookVerificationError:
            message = None
        if message is None:
            unverified += 1
            continue
        verified[delivery.headers["webhook-id"]] += 1
        if record is not None and message["data"]["status"] != record["status"]["S"]:
            disagreeing += 1
    # msg_<job id>_<status>: the status may hold an underscore (timed_out), the job id never does.
    delivered_jobs = {wid.removeprefix("msg_").split("_", 1)[0] for wid in verified}
    return {
        "expected": len(accepted),
        "delivered_and_verified": len(delivered_jobs & set(accepted)),
        "missing": len(set(accepted) - delivered_jobs),
        "unverified_deliveries": unverified,
        "deliveries_disagreeing_with_job": disagreeing,
        "repeated_deliveries": sum(count - 1 for count in verified.values()),
        "receiver_faults": dict(sorted(receiver.faults.items())),
    }
