"""The credit breaker: one account-wide switch that pauses submission while OpenRouter says the account
cannot pay, so that running out of credits fails no job and dead-letters no message.

OpenRouter answers a submission it will not pay for with 402 (insufficient credits; with
``error.metadata.limit_source = openrouter_in_flight_budget`` and a ``Retry-After``, a budget of jobs in
flight), 403 with a ``limit_source`` (the key's limit, the workspace's budget, a guardrail's budget) or
401 (the service's key is refused). None of these is about the job: the same job succeeds once credits
are back. So instead of failing the job, and then every job queued behind it, the breaker opens:

* **open**: no submission is sent. Each submit message is put back on the queue with a delay until the
  next probe (SQS ``DelaySeconds``, at most 15 minutes; a new message, so ``maxReceiveCount`` never
  counts a pause and nothing reaches the DLQ). The job stays ``queued``; the poll loop of jobs already
  submitted runs on.
* **probing**: at ``next_probe_at`` one submission, whichever message comes first, takes the probe lease
  (a conditional write) and is sent. Accepted: the breaker closes and every message sent back is
  submitted as it returns. Refused for the same reason: the interval doubles (``initial`` →
  ``max``), or is what ``Retry-After`` says. Anything else (a 429, a content refusal, no answer) tells
  nothing about credits: the next message probes at once.
* **closed**: submissions go straight through (one consistent read per submission).

A job waits for credits at most ``pause_limit_seconds`` (from its first pause, carried in its message);
after that it ends ``failed``, unsubmitted and unbilled, saying why. A 400 (OpenRouter refusing the
request for its content) still fails the job at once, as before.

One item of the control table (key ``name``) holds the state: ``breaker#openrouter``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from videogen.control import ControlItem, n, number, text
from videogen.errors import OpenRouterError

ITEM = "breaker#openrouter"
# While another submission holds the probe, wait this long and look again (the probe takes a second or two).
PROBE_RECHECK_SECONDS = 10.0


class TripReason(StrEnum):
    INSUFFICIENT_CREDITS = "insufficient_credits"  # 402
    IN_FLIGHT_BUDGET = "in_flight_budget"  # 402, limit_source openrouter_in_flight_budget (Retry-After)
    KEY_LIMIT = "key_limit"  # 403, limit_source openrouter_key_limit
    WORKSPACE_BUDGET = "workspace_budget"  # 403, limit_source openrouter_workspace_budget
    GUARDRAIL_BUDGET = "guardrail_budget"  # 403, limit_source openrouter_guardrail_budget
    KEY_REFUSED = "key_refused"  # 401: the service's OpenRouter key is invalid or disabled


_LIMIT_SOURCES_403 = {
    "openrouter_key_limit": TripReason.KEY_LIMIT,
    "openrouter_workspace_budget": TripReason.WORKSPACE_BUDGET,
    "openrouter_guardrail_budget": TripReason.GUARDRAIL_BUDGET,
}


def account_problem(error: OpenRouterError) -> TripReason | None:
    """The account-wide reason behind a refused submission, or None when the refusal is about the job
    (a 400 for its content, a 403 guardrail or moderation block, a 404 model)."""
    limit_source = (error.metadata or {}).get("limit_source")
    if error.status_code == 402:
        if limit_source == "openrouter_in_flight_budget":
            return TripReason.IN_FLIGHT_BUDGET
        return TripReason.INSUFFICIENT_CREDITS
    if error.status_code == 403 and isinstance(limit_source, str):
        return _LIMIT_SOURCES_403.get(limit_source)
    if error.status_code == 401:
        return TripReason.KEY_REFUSED
    return None


@dataclass(frozen=True)
class Admission:
    """May this submission be sent now? ``probe``: it is the one probe of an open breaker."""

    go: bool
    probe: bool = False
    wait_seconds: float = 0.0
    reason: str | None = None


GO = Admission(go=True)


@dataclass(frozen=True)
class BreakerView:
    """The breaker as operators see it (GET /health, GET /models, the dashboard's metrics)."""

    state: str  # closed | open | probing
    reason: str | None = None
    message: str | None = None  # OpenRouter's words, e.g. "Insufficient credits. Add more using ..."
    opened_at: float | None = None
    next_probe_at: float | None = None
    probe_interval_seconds: float | None = None
    trips: int = 0
    closed_at: float | None = None

    @property
    def open(self) -> bool:
        return self.state != "closed"

    def body(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "reason": self.reason,
            "message": self.message,
            "opened_at": _iso(self.opened_at),
            "next_probe_at": _iso(self.next_probe_at),
            "probe_interval_seconds": self.probe_interval_seconds,
            "trips": self.trips,
            "closed_at": _iso(self.closed_at),
        }


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch is not None else None


@dataclass
class CreditBreaker:
    table: str
    initial_probe_seconds: float = 30.0
    max_probe_seconds: float = 900.0
    # The probe's hold: a probe whose submitter died is taken over after this long (the function's timeout).
    lease_seconds: float = 120.0

    @property
    def _state(self) -> ControlItem:
        return ControlItem(self.table, ITEM)

    def view(self, now: float) -> BreakerView:
        return _view(self._state.read(), now)

    # --- the submit function's questions and answers ---------------------------------------------------

    def admit(self, holder: str, now: float) -> Admission:
        """Before a submission: go (closed), go as the probe (open, probe due, lease taken), or wait."""
        item = self._state.read()
        if text(item, "state") != "open":
            return GO
        reason = text(item, "reason")
        next_probe = number(item, "next_probe_at") or now
        if now < next_probe:
            return Admission(go=False, wait_seconds=next_probe - now, reason=reason)
        probe_holder, probe_until = text(item, "probe_holder"), number(item, "probe_until") or 0.0
        if probe_holder and probe_holder != holder and probe_until > now:
            return Admission(go=False, wait_seconds=min(PROBE_RECHECK_SECONDS, probe_until - now), reason=reason)
        taken = self._state.update(
            "SET probe_holder = :h, probe_until = :until, last_probe_at = :now",
            {":h": {"S": holder}, ":until": n(now + self.lease_seconds), ":now": n(now), ":open": {"S": "open"}},
            "#state = :open AND next_probe_at <= :now AND "
            "(attribute_not_exists(probe_holder) OR probe_until < :now OR probe_holder = :h)",
            {"#state": "state"},
        )
        if not taken:
            return Admission(go=False, wait_seconds=PROBE_RECHECK_SECONDS, reason=reason)
        return Admission(go=True, probe=True, reason=reason)

    def trip(
        self, reason: TripReason, message: str, retry_after: float | None, holder: str, now: float
    ) -> tuple[BreakerView, bool]:
        """OpenRouter refused a submission for an account-wide reason. Opens a closed breaker; a failed
        probe (``holder`` holds the lease) doubles the interval. Returns the state and whether this call
        changed it (a submission admitted just before another one opened the breaker changes nothing)."""
        hinted = min(retry_after, self.max_probe_seconds) if retry_after is not None else None
        values: dict[str, Any] = {
            ":reason": {"S": reason.value},
            ":message": {"S": message[:300]},
            ":now": n(now),
            ":one": {"N": "1"},
            ":zero": {"N": "0"},
        }
        opened = self._state.update(
            "SET #state = :open, reason = :reason, message = :message, opened_at = :now, next_probe_at = :next, "
            "probe_interval = :interval, trips = if_not_exists(trips, :zero) + :one "
            "REMOVE probe_holder, probe_until, closed_at",
            {
                **values,
                ":open": {"S": "open"},
                ":next": n(now + (hinted if hinted is not None else self.initial_probe_seconds)),
                ":interval": n(self.initial_probe_seconds),
            },
            "attribute_not_exists(#state) OR #state <> :open",
            {"#state": "state"},
        )
        if opened:
            return self.view(now), True
        item = self._state.read()
        if text(item, "probe_holder") != holder:
            return _view(item, now), False
        interval = number(item, "probe_interval") or self.initial_probe_seconds
        if hinted is None:  # a Retry-After says when; without one, back off
            interval = min(interval * 2, self.max_probe_seconds)
        refused = self._state.update(
            "SET reason = :reason, message = :message, next_probe_at = :next, probe_interval = :interval, "
            "last_refused_at = :now, trips = if_not_exists(trips, :zero) + :one REMOVE probe_holder, probe_until",
            {
                **values,
                ":h": {"S": holder},
                ":next": n(now + (hinted if hinted is not None else interval)),
                ":interval": n(interval),
            },
            "probe_holder = :h",
        )
        return self.view(now), refused

    def probe_accepted(self, holder: str, now: float) -> bool:
        """The probe was accepted: credits are back, close. True if this call closed the breaker."""
        return self._state.update(
            "SET #state = :closed, closed_at = :now REMOVE probe_holder, probe_until",
            {":closed": {"S": "closed"}, ":open": {"S": "open"}, ":h": {"S": holder}, ":now": n(now)},
            "#state = :open AND probe_holder = :h",
            {"#state": "state"},
        )

    def probe_inconclusive(self, holder: str, now: float) -> None:
        """The probe's answer says nothing about credits (a 429, a content refusal, no answer): hand the probe
        to the next submission at once."""
        self._state.update(
            "SET next_probe_at = :now REMOVE probe_holder, probe_until",
            {":h": {"S": holder}, ":now": n(now)},
            "probe_holder = :h",
        )


def _view(item: dict[str, Any], now: float) -> BreakerView:
    if text(item, "state") != "open":
        return BreakerView(state="closed", trips=int(number(item, "trips") or 0), closed_at=number(item, "closed_at"))
    probing = bool(text(item, "probe_holder")) and (number(item, "probe_until") or 0.0) > now
    return BreakerView(
        state="probing" if probing else "open",
        reason=text(item, "reason"),
        message=text(item, "message"),
        opened_at=number(item, "opened_at"),
        next_probe_at=number(item, "next_probe_at"),
        probe_interval_seconds=number(item, "probe_interval"),
        trips=int(number(item, "trips") or 0),
    )
