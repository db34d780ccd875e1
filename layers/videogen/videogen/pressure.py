"""Adaptive pressure on OpenRouter: one submission rate shared by every submit invocation.

``ScalingConfig.MaximumConcurrency`` bounds how many submissions run at once; this module decides how fast
they may go when OpenRouter pushes back. Without it, each message that gets a 429 or 503 would retry on its
own schedule, spend its own attempts and, under a long storm, fail; with it, a storm slows everyone, and a
few refusals slow no one:

* **calm** (no pressure item, or no window open and the rate at ``max_rate``): submissions go with one read
  and no write at all.
* a **429 or 503** answer is no attempt (it was known not to be accepted and says nothing about the job): the
  message goes back on the queue after its ``Retry-After`` (or one token's time). The first one opens a
  **window** of ``window_seconds``; every answer to a submission while a window is open is counted in it
  (one atomic ``ADD``).
* the first answer once the window is ``window_seconds`` old and holds ``min_answers`` (this one included)
  **judges** it, once (a conditional write): if at least
  ``slow_share`` of its answers were refusals, *many* submissions were refused, so the rate becomes
  ``backoff_factor`` x what was actually sent in the window (never more than the rate allowed, never below
  ``min_rate``) and the token bucket starts empty; below that share the answers have recovered and the rate
  gets ``recovery_step`` submissions/s back (additive increase, at most ``max_rate``). The next window opens
  at once; a window with no refusal that brings the rate back to ``max_rate`` ends the pressure (calm).
  Judging a share rather than single refusals is what keeps a steady trickle of 429s (OpenRouter's limits
  refuse some requests of a busy key at any rate) from ratcheting the rate down to the floor; halving on
  each refusal would, since refusals that do not depend on the rate never stop.
* while the rate is below ``max_rate``, a **token bucket** at that rate paces every submission: one
  conditional write takes a token; without one, the message waits (briefly in the invocation, or back on
  the queue with a delay).

Only submissions are paced: polls, downloads and callbacks of jobs already running never wait for a token,
so a storm on submission does not starve them.

One item of the control table (key ``name``): ``pressure#submit`` with ``rate``, ``tokens``,
``updated_at`` (the bucket's clock), ``version`` (changed by every write of the bucket, so two submitters
never spend one token), and the open window's ``window_at``, ``answers`` and ``refusals``.
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
    watched: bool = False  # a window is open: this submission's answer is to be counted (``answered``)


@dataclass(frozen=True)
class Judged:
    """A window's verdict: the shared rate before and after it, and the window's refused share; or, with
    ``opened``, a refusal in calm that opened a window (the rate unchanged, to be judged)."""

    rate: float
    previous: float
    refused_share: float
    opened: bool = False

    @property
    def slowed(self) -> bool:
        return self.rate < self.previous


@dataclass
class SubmitPressure:
    table: str
    max_rate: float = 10.0
    min_rate: float = 0.2
    backoff_factor: float = 0.5
    recovery_step: float = 1.0
    window_seconds: float = 5.0
    slow_share: float = 0.5
    # A window is judged on at least this many answers (it stays open until then): with 30 % of refusals, a
    # window of 4 to 10 answers reads as half refused often enough (1 in 7 at 10) to cut the rate for nothing.
    min_answers: int = 20

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
            watched = "window_at" in item
            if rate is None or rate >= self.max_rate:
                return Pace(go=True, watched=watched)
            updated = number(item, "updated_at") or now
            burst = max(1.0, rate)  # at most a second's worth saved up
            tokens = min(burst, (number(item, "tokens") or 0.0) + max(0.0, now - updated) * rate)
            if tokens < 1.0:
                return Pace(go=False, wait_seconds=(1.0 - tokens) / rate, rate=rate, watched=watched)
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
                return Pace(go=True, rate=rate, watched=watched)
        # Every try lost to another submission's write: the bucket is busy, wait a token's time.
        return Pace(go=False, wait_seconds=1.0 / max(self.min_rate, rate or self.min_rate), rate=rate)

    def answered(self, refused: bool, now: float) -> Judged | None:
        """A submission was answered: refused (429 / 503) or accepted. Counts it in the open window (a
        refusal opens one), and judges the window once it has closed: the verdict if this call judged one
        or opened one (``max_rate`` is calm). Best effort under races: an answer lost at a window's edge changes one
        window's share a little, nothing else."""
        for _ in range(TAKE_ATTEMPTS):
            item = self._bucket.read()
            opened = number(item, "window_at")
            if opened is None:
                rate = number(item, "rate")
                if not refused and (rate is None or rate >= self.max_rate):
                    return None  # calm: an accepted submission writes nothing
                if self._bucket.update(
                    "SET window_at = :now, answers = :one, refusals = :refused",
                    {":now": n(now), ":one": n(1), ":refused": n(1 if refused else 0)},
                    "attribute_not_exists(window_at)",
                ):
                    current = min(rate, self.max_rate) if rate is not None else self.max_rate
                    return Judged(rate=current, previous=current, refused_share=1.0 if refused else 0.0, opened=True)
                continue  # another answer opened it at the same moment: count this one in it
            if now - opened < self.window_seconds or (number(item, "answers") or 0.0) + 1 < self.min_answers:
                if self._bucket.update(
                    "ADD answers :one, refusals :refused",
                    {":one": n(1), ":refused": n(1 if refused else 0), ":seen": item["window_at"]},
                    "window_at = :seen",
                ):
                    return None
                continue  # judged meanwhile: count it in the next window
            judged = self._judge(item, opened, refused, now)
            if judged is not None:
                return judged
            # Another answer judged it first: count this one in the window it opened.
        return None

    def _judge(self, item: dict[str, Any], opened: float, refused: bool, now: float) -> Judged | None:
        """Judge the closed window read as ``item``, this answer counted in it. None when another answer
        judged it first."""
        answers = (number(item, "answers") or 0.0) + 1
        refusals = (number(item, "refusals") or 0.0) + (1 if refused else 0)
        current = number(item, "rate")
        current = self.max_rate if current is None else min(current, self.max_rate)
        values: dict[str, Any] = {":seen": item["window_at"]}
        # The next window opens with this answer in it.
        next_window: dict[str, Any] = {":now": n(now), ":one": n(1), ":refused": n(1 if refused else 0)}
        share = refusals / answers
        if share >= self.slow_share:
            sent = answers / max(now - opened, self.window_seconds)  # what went out, not just what was allowed
            new_rate = max(self.min_rate, min(current, sent) * self.backoff_factor)
            # The bucket starts empty at the new rate: the storm's next submission waits a token's time.
            expression = (
                "SET rate = :rate, tokens = :zero, updated_at = :now, version = if_not_exists(version, :zero) + :one, "
                "window_at = :now, answers = :one, refusals = :refused"
            )
            values.update({":rate": n(new_rate), ":zero": n(0), **next_window})
        else:
            new_rate = min(self.max_rate, current + self.recovery_step)
            values[":rate"] = n(new_rate)
            if new_rate >= self.max_rate and refusals == 0:
                expression = "SET rate = :rate REMOVE window_at, answers, refusals"  # calm again
            else:
                expression = "SET rate = :rate, window_at = :now, answers = :one, refusals = :refused"
                values.update(next_window)
        if not self._bucket.update(expression, values, "window_at = :seen"):
            return None
        return Judged(rate=new_rate, previous=current, refused_share=share)
