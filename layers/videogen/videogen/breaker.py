"""The credit circuit breaker: running out of OpenRouter credits (402) or hitting a key or workspace limit
(403) pauses submission for everyone instead of failing every queued job behind the first.

State is one item of the control table (key ``name``), written conditionally:

* **closed**: submissions go ahead.
* **open**: tripped by a 402 or a limit 403. Submissions wait (their jobs stay ``queued``; submit puts the
  message back with a delay, so nothing is dead-lettered or failed for it). At ``probe_at`` one submission,
  the one whose conditional write takes the probe, goes through: accepted, the breaker closes; refused again,
  the interval doubles (30 s up to 15 minutes), or follows ``Retry-After`` when OpenRouter gives one.

A request OpenRouter refuses for its own content (400, a guardrail 403) is not the account's problem and still
fails its job at once (``trips``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from videogen.aws import client
from videogen.errors import OpenRouterError

NAME = "openrouter-credits"
FIRST_INTERVAL_SECONDS = 30.0
MAX_INTERVAL_SECONDS = 900.0
# A probe that died (its function timed out) is given up after this, so the next submission may probe.
PROBE_LEASE_SECONDS = 120.0
_LIMIT_WORDS = ("limit", "key", "workspace", "credit", "quota")


def trips(error: OpenRouterError) -> bool:
    """A refusal that says the account cannot pay or may not submit now, not that this request is wrong."""
    if error.status_code == 402:
        return True
    message = error.message.lower()
    return error.status_code == 403 and any(word in message for word in _LIMIT_WORDS) and "guardrail" not in message


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    probe: str | None = None  # this submission is the breaker's probe (its lease id)
    wait_seconds: float = 0.0  # when not allowed: until the next probe


@dataclass
class CreditBreaker:
    table: str
    clock: Callable[[], float] = time.time

    def check(self) -> Verdict:
        item = self._item()
        if item is None or item.get("state", {}).get("S") != "open":
            return Verdict(True)
        now = self.clock()
        probe_at = float(item["probe_at"]["N"])
        if now < probe_at:
            return Verdict(False, wait_seconds=probe_at - now)
        lease = uuid.uuid4().hex
        try:
            client("dynamodb").update_item(
                TableName=self.table,
                Key={"name": {"S": NAME}},
                UpdateExpression="SET probe = :lease, probe_until = :until",
                ConditionExpression="#st = :open AND (attribute_not_exists(probe_until) OR probe_until < :now)",
                ExpressionAttributeNames={"#st": "state"},
                ExpressionAttributeValues={
                    ":lease": {"S": lease},
                    ":until": {"N": str(now + PROBE_LEASE_SECONDS)},
                    ":now": {"N": str(now)},
                    ":open": {"S": "open"},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return Verdict(False, wait_seconds=FIRST_INTERVAL_SECONDS)  # another submission is probing
        return Verdict(True, probe=lease)

    def trip(self, error: OpenRouterError) -> float:
        """Open (or keep open) the breaker after a refusal ``trips`` names; returns the seconds until the probe."""
        item = self._item() or {}
        was_open = item.get("state", {}).get("S") == "open"
        interval = float(item.get("interval", {}).get("N", FIRST_INTERVAL_SECONDS / 2)) if was_open else 0.0
        interval = min(MAX_INTERVAL_SECONDS, max(FIRST_INTERVAL_SECONDS, interval * 2))
        if error.retry_after is not None:
            interval = min(MAX_INTERVAL_SECONDS, max(1.0, error.retry_after))
        now = self.clock()
        values: dict[str, Any] = {
            ":open": {"S": "open"},
            ":probe_at": {"N": str(now + interval)},
            ":interval": {"N": str(interval)},
            ":reason": {"S": f"HTTP {error.status_code}: {error.message}"[:300]},
            ":now": {"N": str(now)},
        }
        client("dynamodb").update_item(
            TableName=self.table,
            Key={"name": {"S": NAME}},
            UpdateExpression=(
                "SET #st = :open, probe_at = :probe_at, #iv = :interval, reason = :reason, "
                "opened_at = if_not_exists(opened_at, :now) REMOVE probe, probe_until"
            ),
            ExpressionAttributeNames={"#st": "state", "#iv": "interval"},
            ExpressionAttributeValues=values,
        )
        return interval

    def close(self) -> bool:
        """A submission was accepted: close the breaker if it was open. True if this call closed it."""
        try:
            client("dynamodb").update_item(
                TableName=self.table,
                Key={"name": {"S": NAME}},
                UpdateExpression="SET #st = :closed, closed_at = :now REMOVE probe, probe_until, opened_at",
                ConditionExpression="#st = :open",
                ExpressionAttributeNames={"#st": "state"},
                ExpressionAttributeValues={
                    ":closed": {"S": "closed"},
                    ":open": {"S": "open"},
                    ":now": {"N": str(self.clock())},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def state(self) -> dict[str, Any]:
        """What GET /models shows: ``closed``, or ``open`` with why and when the next probe goes."""
        item = self._item()
        if item is None or item.get("state", {}).get("S") != "open":
            return {"state": "closed"}
        return {
            "state": "open",
            "reason": item.get("reason", {}).get("S"),
            "opened_at": float(item["opened_at"]["N"]) if "opened_at" in item else None,
            "next_probe_in_seconds": round(max(0.0, float(item["probe_at"]["N"]) - self.clock()), 1),
        }

    def _item(self) -> dict[str, Any] | None:
        item: dict[str, Any] | None = (
            client("dynamodb")
            .get_item(TableName=self.table, Key={"name": {"S": NAME}}, ConsistentRead=True)
            .get("Item")
        )
        return item
