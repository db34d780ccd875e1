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
    # Verified on arrival, as a receiver does (the library refuses timestamps over 5 minutes old).
    message: dict[str, Any] | None


@dataclass
class ChaosReceiver:
    fault_rate: float
    seed: int
    deliveries: list[Delivery] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    # Each door's owner's secret (set once the stack runs, before any job): see door_owners.
    secrets: dict[str, str] = field(default_factory=dict)

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
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    with outer._lock:
                        outer.deliveries.append(Delivery(body, headers, outer.verify(body, headers)))
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

    def verify(self, body: bytes, headers: dict[str, str]) -> dict[str, Any] | None:
        """The message if it verifies with the secret of the owner of the door it names, else None."""
        try:
            secret = self.secrets.get(json.loads(body)["data"]["door"])
            message: dict[str, Any] | None = Webhook(secret).verify(body, headers) if secret else None
        except (WebhookVerificationError, ValueError, KeyError, TypeError):
            return None
        return message

    def job_ids(self) -> set[str]:
        with self._lock:
            return {json.loads(d.body)["data"]["job_id"] for d in self.deliveries}


def door_owners(info: dict[str, Any], event_source: str) -> dict[str, str]:
    """Who owns the chaos run's jobs at each door: local serve's unsigned caller, the bucket, the event source."""
    from videogen_local.localmode.front_door import DEFAULT_CALLER

    account = DEFAULT_CALLER.split(":")[4]
    return {"api": DEFAULT_CALLER, "s3": f"s3:{info['bucket']}", "eventbridge": f"eventbridge:{account}:{event_source}"}


def owner_secrets(info: dict[str, Any], owners: set[str]) -> dict[str, str]:
    """Each owner's secret, as an operator reads it (`videogen webhooks secret`)."""
    videogen = Path(sys.executable).with_name("videogen")
    env = {**os.environ, "AWS_ENDPOINT_URL": info["aws_endpoint_url"], "AWS_DEFAULT_REGION": info["region"]}
    env.setdefault("AWS_ACCESS_KEY_ID", "local")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    found: dict[str, str] = {}
    for owner in owners:
        where = ["--table", info["webhook_signing_table"], "--key-secret", info["webhook_signing_key_secret"]]
        answer = subprocess.run(
            [str(videogen), "webhooks", "secret", "--owner", owner, *where],
            capture_output=True, text=True, timeout=60, check=True, env=env,
        )  # fmt: skip
        found[owner] = json.loads(answer.stdout)["secret"]
    return found


def webhook_figures(receiver: ChaosReceiver, records: dict[str, dict[str, Any]], accepted: list[str]) -> dict[str, Any]:
    """Every accepted job's result received and verified on arrival with its owner's secret; repeats by
    webhook-id (at least once: allowed, receivers dedupe on the id); one that did not verify counts as forged."""
    verified: Counter[str] = Counter()
    unverified = disagreeing = 0
    for delivery in receiver.deliveries:
        if delivery.message is None:
            unverified += 1
            continue
        verified[delivery.headers["webhook-id"]] += 1
        record = records.get(delivery.message["data"]["job_id"])
        if record is not None and delivery.message["data"]["status"] != record["status"]["S"]:
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
