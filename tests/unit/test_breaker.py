"""The credit breaker's state machine (videogen.breaker) on moto's DynamoDB: who may submit, who probes,
how the probe interval grows, and which OpenRouter refusals are the account's rather than the job's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from videogen.breaker import PROBE_RECHECK_SECONDS, CreditBreaker, TripReason, account_problem
from videogen.errors import OpenRouterError

TABLE = "videogen-control"
T0 = 1_800_000_000.0


@pytest.fixture
def breaker(aws: None) -> Iterator[CreditBreaker]:
    from videogen.aws import client
    from videogen_local.localmode.stack import create_control_table

    create_control_table(client("dynamodb"), TABLE)
    yield CreditBreaker(TABLE, initial_probe_seconds=30, max_probe_seconds=100, lease_seconds=60)


def test_a_closed_breaker_lets_every_submission_go_without_a_probe(breaker: CreditBreaker) -> None:
    admission = breaker.admit("job-a", T0)
    assert admission.go and not admission.probe
    assert breaker.view(T0).state == "closed"


def test_a_trip_opens_it_once_and_every_submission_waits_for_the_probe_time(breaker: CreditBreaker) -> None:
    view, changed = breaker.trip(TripReason.INSUFFICIENT_CREDITS, "Insufficient credits", None, "job-a", T0)
    assert changed and view.state == "open" and view.next_probe_at == T0 + 30 and view.trips == 1
    assert view.body()["reason"] == "insufficient_credits" and view.body()["message"] == "Insufficient credits"
    # Submissions admitted before it opened are refused too: they change nothing (no doubled interval).
    again, changed = breaker.trip(TripReason.INSUFFICIENT_CREDITS, "Insufficient credits", None, "job-b", T0 + 1)
    assert not changed and again.next_probe_at == T0 + 30 and again.trips == 1
    waiting = breaker.admit("job-c", T0 + 10)
    assert not waiting.go and waiting.wait_seconds == pytest.approx(20) and waiting.reason == "insufficient_credits"


def test_one_submission_probes_and_the_others_wait_while_it_does(breaker: CreditBreaker) -> None:
    breaker.trip(TripReason.INSUFFICIENT_CREDITS, "no credits", None, "job-a", T0)
    probe = breaker.admit("job-b", T0 + 30)
    assert probe.go and probe.probe
    assert breaker.view(T0 + 31).state == "probing"
    other = breaker.admit("job-c", T0 + 31)
    assert not other.go and other.wait_seconds == PROBE_RECHECK_SECONDS
    # The same holder asking again (a redelivered message) keeps its probe.
    assert breaker.admit("job-b", T0 + 32).probe


def test_refused_probes_double_the_interval_up_to_the_maximum(breaker: CreditBreaker) -> None:
    breaker.trip(TripReason.INSUFFICIENT_CREDITS, "no credits", None, "job-a", T0)
    now, intervals = T0, []
    for n in range(4):
        now = breaker.view(now).next_probe_at or now
        assert breaker.admit(f"probe-{n}", now).probe
        view, changed = breaker.trip(TripReason.INSUFFICIENT_CREDITS, "no credits", None, f"probe-{n}", now)
        assert changed and view.state == "open"
        intervals.append(view.probe_interval_seconds)
    assert intervals == [60, 100, 100, 100]
    assert breaker.view(now).trips == 5


def test_an_accepted_probe_closes_it_and_the_next_trip_starts_from_the_initial_interval(
    breaker: CreditBreaker,
) -> None:
    breaker.trip(TripReason.KEY_LIMIT, "Key limit exceeded", None, "job-a", T0)
    assert breaker.admit("job-b", T0 + 30).probe
    breaker.trip(TripReason.KEY_LIMIT, "Key limit exceeded", None, "job-b", T0 + 30)  # interval now 60
    assert breaker.admit("job-c", T0 + 90).probe
    assert not breaker.probe_accepted("job-other", T0 + 91)  # only the probe's holder closes it
    assert breaker.probe_accepted("job-c", T0 + 91)
    view = breaker.view(T0 + 92)
    assert view.state == "closed" and view.closed_at == T0 + 91 and view.trips == 2
    assert breaker.admit("job-d", T0 + 92).go
    reopened, _ = breaker.trip(TripReason.INSUFFICIENT_CREDITS, "no credits", None, "job-d", T0 + 100)
    assert reopened.probe_interval_seconds == 30 and reopened.next_probe_at == T0 + 130


def test_retry_after_sets_the_probe_time_and_does_not_grow_the_interval(breaker: CreditBreaker) -> None:
    view, _ = breaker.trip(TripReason.IN_FLIGHT_BUDGET, "in-flight budget", 5.0, "job-a", T0)
    assert view.next_probe_at == T0 + 5 and view.probe_interval_seconds == 30
    assert breaker.admit("job-b", T0 + 5).probe
    again, _ = breaker.trip(TripReason.IN_FLIGHT_BUDGET, "in-flight budget", 7.0, "job-b", T0 + 5)
    assert again.next_probe_at == T0 + 12 and again.probe_interval_seconds == 30
    # A Retry-After beyond the longest probe interval is capped by it.
    assert breaker.admit("job-c", T0 + 12).probe
    capped, _ = breaker.trip(TripReason.IN_FLIGHT_BUDGET, "in-flight budget", 3600.0, "job-c", T0 + 12)
    assert capped.next_probe_at == T0 + 112


def test_a_probe_whose_submitter_died_is_taken_over_after_its_lease(breaker: CreditBreaker) -> None:
    breaker.trip(TripReason.INSUFFICIENT_CREDITS, "no credits", None, "job-a", T0)
    assert breaker.admit("job-b", T0 + 30).probe
    assert not breaker.admit("job-c", T0 + 89).go  # job-b's lease (60 s) still holds
    assert breaker.admit("job-c", T0 + 91).probe


def test_an_inconclusive_probe_hands_the_probe_to_the_next_submission_at_once(breaker: CreditBreaker) -> None:
    breaker.trip(TripReason.INSUFFICIENT_CREDITS, "no credits", None, "job-a", T0)
    assert breaker.admit("job-b", T0 + 30).probe
    breaker.probe_inconclusive("job-b", T0 + 31)
    view = breaker.view(T0 + 31)
    assert view.state == "open" and view.next_probe_at == T0 + 31 and view.probe_interval_seconds == 30
    assert breaker.admit("job-c", T0 + 31).probe


@pytest.mark.parametrize(
    ("status", "metadata", "reason"),
    [
        (402, None, TripReason.INSUFFICIENT_CREDITS),
        (402, {"limit_source": "openrouter_in_flight_budget"}, TripReason.IN_FLIGHT_BUDGET),
        (403, {"limit_source": "openrouter_key_limit", "limit_usd": 10}, TripReason.KEY_LIMIT),
        (403, {"limit_source": "openrouter_workspace_budget"}, TripReason.WORKSPACE_BUDGET),
        (403, {"limit_source": "openrouter_guardrail_budget"}, TripReason.GUARDRAIL_BUDGET),
        (401, None, TripReason.KEY_REFUSED),
        # About the job, not the account: these still fail it at once.
        (403, None, None),  # a guardrail block
        (403, {"reasons": ["violence"], "flagged_input": "..."}, None),  # a moderation flag
        (400, None, None),
        (404, None, None),
        (413, None, None),
    ],
)
def test_which_refusals_are_the_accounts(status: int, metadata: dict[str, object] | None, reason: str | None) -> None:
    assert account_problem(OpenRouterError(status, "refused", metadata=metadata)) == reason
