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

from videogen.control import ControlItem, n, number

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

    @property
    def _bucket(self) -> ControlItem:
        return ControlItem(self.table, ITEM)

    def rate(self) -> float | None:
        """The shared rate now (submissions/s), or None when calm."""
        rate = number(self._bucket.read(), "rate")
        return rate if rate is not None and rate < self.max_rate else None

    def take(self, now: float) -> Pace:
        """Before a submission: a token from the shared bucket, or how long to wait for one."""
        rate: float | None = None
        for _ in range(TAKE_ATTEMPTS):
            item = self._bucket.read()
            rate = number(item, "rate")
            if rate is None or rate >= self.max_rate:
                return Pace(go=True)
            updated = number(item, "updated_at") or now
            burst = max(1.0, rate)  # at most a second's worth saved up
            tokens = min(burst, (number(item, "tokens") or 0.0) + max(0.0, now - updated) * rate)
            if tokens < 1.0:
                return Pace(go=False, wait_seconds=(1.0 - tokens) / rate, rate=rate)
            # Written only if nobody else wrote the bucket since it was read (``version`` changes every time).
            seen = item.get("version")
            values: dict[str, Any] = {
                ":tokens": n(tokens - 1.0),
                ":now": n(now),
                ":zero": {"N": "0"},
                ":one": {"N": "1"},
            }
            if seen is not None:
                values[":seen"] = seen
            if self._bucket.update(
                "SET tokens = :tokens, updated_at = :now, version = if_not_exists(version, :zero) + :one",
                values,
                "version = :seen" if seen is not None else "attribute_not_exists(version)",
            ):
                return Pace(go=True, rate=rate)
        # Every try lost to another submission's write: the bucket is busy, wait a token's time.
        return Pace(go=False, wait_seconds=1.0 / max(self.min_rate, rate or self.min_rate), rate=rate)

    def slow_down(self, now: float) -> float | None:
        """OpenRouter answered 429 or 503: halve the shared rate, unless it was halved within the cooldown.
        Returns the new rate if this call changed it."""
        item = self._bucket.read()
        slowed = number(item, "slowed_at")
        if slowed is not None and now - slowed < self.cooldown_seconds:
            return None
        current = number(item, "rate")
        current = self.max_rate if current is None else min(current, self.max_rate)
        new_rate = max(self.min_rate, current * self.backoff_factor)
        values: dict[str, Any] = {":rate": n(new_rate), ":now": n(now), ":zero": n(0.0), ":one": {"N": "1"}}
        if slowed is not None:
            values[":seen"] = item["slowed_at"]
        changed = self._bucket.update(
            # The bucket starts empty at the new rate: the storm's next submission waits a token's time.
            "SET rate = :rate, tokens = :zero, updated_at = :now, slowed_at = :now, "
            "version = if_not_exists(version, :zero) + :one",
            values,
            # Another submission's refusal may have halved it at the same moment: then this one does not.
            "slowed_at = :seen" if slowed is not None else "attribute_not_exists(slowed_at)",
        )
        return new_rate if changed else None

    def speed_up(self) -> float | None:
        """A submission was accepted: add ``recovery_step`` back. Returns the new rate if it changed (the
        maximum means calm). Best effort: losing a race to another update loses one step, nothing else."""
        item = self._bucket.read()
        current = number(item, "rate")
        if current is None or current >= self.max_rate:
            return None
        new_rate = min(self.max_rate, current + self.recovery_step)
        changed = self._bucket.update("SET rate = :rate", {":rate": n(new_rate), ":seen": item["rate"]}, "rate = :seen")
        return new_rate if changed else None
