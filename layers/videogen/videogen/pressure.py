"""Adaptive pressure on OpenRouter: one submission rate shared by every submit invocation.

``ScalingConfig.MaximumConcurrency`` bounds how many submissions run at once; this module decides how fast
they may go when OpenRouter pushes back. Without it, each message that gets a 429 or 503 would retry on its
own schedule, spend its own attempts and, under a long storm, fail; with it, the storm slows everyone:

* **calm** (no pressure item, or its rate at ``max_rate``): submissions go with no write at all, one read.
* a **429 or 503** answer to a submission halves the shared rate (``backoff_factor``), at most once per
  ``cooldown_seconds`` (a burst of refusals from one storm counts once), down to ``min_rate``. The refused
  message goes back on the queue after its ``Retry-After`` (or one token's time) and the refusal is no
  attempt: it was known not to be accepted and says nothing about the job.
* while under pressure, a **token bucket** at the current rate paces every submission: one conditional
  write takes a token; without one, the message waits (briefly in the invocation, or back on the queue
  with a delay).
* each **accepted** submission adds ``recovery_step`` submissions/s back (additive increase); reaching
  ``max_rate`` is calm again.

Only submissions are paced: polls, downloads and callbacks of jobs already running never wait for a token,
so a storm on submission does not starve them.

One item of the control table (key ``name``): ``pressure#submit`` with ``rate``, ``tokens``,
``updated_at`` (the bucket's clock), ``version`` (changed by every write of the bucket, so two submitters
never spend one token) and ``slowed_at`` (the last halving).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from videogen.aws import client

ITEM = "pressure#submit"
TAKE_ATTEMPTS = 4  # optimistic writes that lost a race with another submission's, before giving up for now


@dataclass(frozen=True)
class Pace:
    """May this submission go now? If not, in about ``wait_seconds``."""

    go: bool
    wait_seconds: float = 0.0
    rate: float | None = None  # submissions/s allowed now; None: calm


@dataclass
class SubmitPressure:
    table: str
    max_rate: float = 10.0
    min_rate: float = 0.2
    backoff_factor: float = 0.5
    recovery_step: float = 0.5
    cooldown_seconds: float = 2.0

    def _item(self) -> dict[str, Any]:
        item: dict[str, Any] = (
            client("dynamodb")
            .get_item(TableName=self.table, Key={"name": {"S": ITEM}}, ConsistentRead=True)
            .get("Item", {})
        )
        return item

    def rate(self) -> float | None:
        """The shared rate now (submissions/s), or None when calm."""
        rate = _n(self._item(), "rate")
        return rate if rate is not None and rate < self.max_rate else None

    def take(self, now: float) -> Pace:
        """Before a submission: a token from the shared bucket, or how long to wait for one."""
        for _ in range(TAKE_ATTEMPTS):
            item = self._item()
            rate = _n(item, "rate")
            if rate is None or rate >= self.max_rate:
                return Pace(go=True)
            updated = _n(item, "updated_at") or now
            burst = max(1.0, rate)  # at most a second's worth saved up
            tokens = min(burst, (_n(item, "tokens") or 0.0) + max(0.0, now - updated) * rate)
            if tokens < 1.0:
                return Pace(go=False, wait_seconds=(1.0 - tokens) / rate, rate=rate)
            if self._write_tokens(tokens - 1.0, now, item.get("version")):
                return Pace(go=True, rate=rate)
        # Every try lost to another submission's write: the bucket is busy, wait a token's time.
        return Pace(go=False, wait_seconds=1.0 / max(self.min_rate, rate or self.min_rate), rate=rate)

    def _write_tokens(self, tokens: float, now: float, seen_version: dict[str, str] | None) -> bool:
        """Write the bucket if nobody else did since it was read (``version`` changes with every write)."""
        condition = "version = :seen" if seen_version is not None else "attribute_not_exists(version)"
        values: dict[str, Any] = {":tokens": _num(tokens), ":now": _num(now), ":zero": {"N": "0"}, ":one": {"N": "1"}}
        if seen_version is not None:
            values[":seen"] = seen_version
        try:
            client("dynamodb").update_item(
                TableName=self.table,
                Key={"name": {"S": ITEM}},
                UpdateExpression=(
                    "SET tokens = :tokens, updated_at = :now, version = if_not_exists(version, :zero) + :one"
                ),
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def slow_down(self, now: float) -> float | None:
        """OpenRouter answered 429 or 503: halve the shared rate, unless it was halved within the cooldown.
        Returns the new rate if this call changed it."""
        item = self._item()
        slowed = _n(item, "slowed_at")
        if slowed is not None and now - slowed < self.cooldown_seconds:
            return None
        current = _n(item, "rate")
        current = self.max_rate if current is None else min(current, self.max_rate)
        new_rate = max(self.min_rate, current * self.backoff_factor)
        condition = "attribute_not_exists(slowed_at) OR slowed_at = :seen"
        values: dict[str, Any] = {":rate": _num(new_rate), ":now": _num(now), ":zero": _num(0.0), ":one": {"N": "1"}}
        if slowed is not None:
            values[":seen"] = item["slowed_at"]
        else:
            condition = "attribute_not_exists(slowed_at)"
        try:
            client("dynamodb").update_item(
                TableName=self.table,
                Key={"name": {"S": ITEM}},
                # The bucket starts empty at the new rate: the storm's next submission waits a token's time.
                UpdateExpression=(
                    "SET rate = :rate, tokens = :zero, updated_at = :now, slowed_at = :now, "
                    "version = if_not_exists(version, :zero) + :one"
                ),
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return None  # another submission's refusal halved it at the same moment
        return new_rate

    def speed_up(self) -> float | None:
        """A submission was accepted: add ``recovery_step`` back. Returns the new rate if it changed (the
        maximum means calm). Best effort: losing a race to another update loses one step, nothing else."""
        item = self._item()
        current = _n(item, "rate")
        if current is None or current >= self.max_rate:
            return None
        new_rate = min(self.max_rate, current + self.recovery_step)
        try:
            client("dynamodb").update_item(
                TableName=self.table,
                Key={"name": {"S": ITEM}},
                UpdateExpression="SET rate = :rate",
                ConditionExpression="rate = :seen",
                ExpressionAttributeValues={":rate": _num(new_rate), ":seen": item["rate"]},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return None
        return new_rate


def _n(item: dict[str, Any], name: str) -> float | None:
    value = item.get(name, {}).get("N")
    return float(value) if value is not None else None


def _num(value: float) -> dict[str, str]:
    return {"N": f"{value:.6f}"}
