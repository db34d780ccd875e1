"""The shared submission rate (videogen.pressure) on moto's DynamoDB: calm costs no write, answers are judged
by window (many refusals slow everyone to a share of what was sent, a trickle does not), the token bucket
holds every submitter to the rate, and better windows bring it back."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from videogen.pressure import SubmitPressure

TABLE = "videogen-control"
T0 = 1_800_000_000.0


@pytest.fixture
def pressure(aws: None) -> Iterator[SubmitPressure]:
    from videogen.aws import client
    from videogen_local.localmode.stack import create_control_table

    create_control_table(client("dynamodb"), TABLE)
    yield SubmitPressure(
        TABLE,
        max_rate=10,
        min_rate=1,
        backoff_factor=0.5,
        recovery_step=2,
        window_seconds=2,
        slow_share=0.5,
        min_answers=4,
    )


def item() -> dict[str, object]:
    from videogen.aws import client

    found: dict[str, object] = (
        client("dynamodb").get_item(TableName=TABLE, Key={"name": {"S": "pressure#submit"}}).get("Item", {})
    )
    return found


def answers(pressure: SubmitPressure, start: float, refused: list[bool], spacing: float) -> list[object]:
    """Answer one submission every ``spacing`` seconds from ``start``: the verdicts of those that judged a
    window (not those that opened one)."""
    return [
        verdict
        for k, was_refused in enumerate(refused)
        if (verdict := pressure.answered(was_refused, start + k * spacing)) is not None and not verdict.opened
    ]


def slowed(pressure: SubmitPressure) -> None:
    """A storm's first window: 10 refusals in 2 s (5 sent per second), the last judging it."""
    answers(pressure, T0, [True] * 9, 0.2)
    verdict = pressure.answered(True, T0 + 2)
    assert verdict is not None and verdict.slowed and verdict.rate == 2.5  # half of the 5/s that went out


def test_calm_submissions_go_without_writing_anything(pressure: SubmitPressure) -> None:
    for k in range(5):
        pace = pressure.take(T0 + k * 0.01)
        assert pace.go and pace.rate is None and not pace.watched
        assert pressure.answered(False, T0 + k * 0.01) is None
    assert item() == {} and pressure.rate() is None


def test_many_refusals_slow_everyone_once_per_window_down_to_the_floor(pressure: SubmitPressure) -> None:
    slowed(pressure)
    assert pressure.rate() == 2.5
    # Inside the next window refusals are only counted; its end judges it: half of what went out (at most the
    # rate), never below min_rate.
    assert answers(pressure, T0 + 2.5, [True, True, True], 0.5) == []
    verdict = pressure.answered(True, T0 + 4)
    assert verdict is not None and verdict.rate == 1.25 and verdict.previous == 2.5 and verdict.refused_share == 1
    assert answers(pressure, T0 + 4.5, [True, True, True], 0.5) == []
    verdict = pressure.answered(True, T0 + 6)
    assert verdict is not None and verdict.rate == 1.0 and verdict.slowed
    assert answers(pressure, T0 + 6.5, [True, True, True], 0.5) == []
    verdict = pressure.answered(True, T0 + 8)
    assert verdict is not None and verdict.rate == 1.0 and not verdict.slowed  # the floor


def test_a_window_waits_for_enough_answers_to_be_judged(pressure: SubmitPressure) -> None:
    # One stray refusal, then a quiet minute: three answers are not enough to judge a share on.
    assert answers(pressure, T0, [True, False, False], 30) == []
    verdict = pressure.answered(False, T0 + 91)
    assert verdict is not None and verdict.rate == 10 and verdict.refused_share == 0.25


def test_a_trickle_of_refusals_slows_no_one(pressure: SubmitPressure) -> None:
    # 30 % of 10 submissions a second refused, window after window: below the slow share, the rate holds.
    pattern = [k % 10 in (0, 3, 6) for k in range(100)]
    verdicts = answers(pressure, T0, pattern, 0.1)
    assert len(verdicts) == 4 and all(v.rate == 10 and not v.slowed for v in verdicts)  # type: ignore[attr-defined]
    assert pressure.rate() is None and pressure.take(T0 + 10).go


def test_a_stray_refusal_opens_a_window_a_clean_one_closes_it(pressure: SubmitPressure) -> None:
    opened = pressure.answered(True, T0)
    assert opened is not None and opened.opened and opened.rate == 10 and not opened.slowed
    assert pressure.take(T0 + 0.1).watched  # answers are counted now
    answers(pressure, T0 + 0.2, [False] * 5, 0.3)
    first = pressure.answered(False, T0 + 2.1)  # judges: 1 refusal in 7 answers
    assert first is not None and first.rate == 10 and first.refused_share == pytest.approx(1 / 7)
    answers(pressure, T0 + 2.5, [False] * 3, 0.3)
    clean = pressure.answered(False, T0 + 4.2)  # a window with no refusal at the ceiling: calm again
    assert clean is not None and clean.rate == 10
    assert set(item()) <= {"name", "rate"} and not pressure.take(T0 + 5).watched


def test_under_pressure_the_bucket_holds_everyone_to_the_rate(pressure: SubmitPressure) -> None:
    slowed(pressure)  # 2.5 per second, bucket empty
    first = pressure.take(T0 + 2)
    assert not first.go and first.wait_seconds == pytest.approx(0.4) and first.rate == 2.5
    assert first.watched
    # Over 10 simulated seconds of submitters asking every 10 ms, about 2.5 a second go.
    went = sum(pressure.take(T0 + 2 + k * 0.01).go for k in range(1000))
    assert 23 <= went <= 26


def test_concurrent_submitters_take_each_token_once(pressure: SubmitPressure) -> None:
    slowed(pressure)
    results: list[bool] = []
    lock = threading.Lock()

    def take() -> None:
        went = pressure.take(T0 + 3).go  # a second later: 2.5 tokens saved up (the burst)
        with lock:
            results.append(went)

    threads = [threading.Thread(target=take) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Each token of the burst spent once: those that went plus those left make the 2.5 saved up.
    left = float(item()["tokens"]["N"])  # type: ignore[index]
    assert 1 <= results.count(True) <= 2 and results.count(True) + left == pytest.approx(2.5)


def test_concurrent_answers_are_all_counted_and_one_judges_the_window(pressure: SubmitPressure) -> None:
    pressure.answered(True, T0)
    barrier = threading.Barrier(8)

    def answer(k: int) -> None:
        barrier.wait()
        pressure.answered(k % 2 == 0, T0 + 0.5)

    threads = [threading.Thread(target=answer, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counted = item()
    assert float(counted["answers"]["N"]) == 9 and float(counted["refusals"]["N"]) == 5  # type: ignore[index]
    verdicts: list[object] = []
    judges = [threading.Thread(target=lambda: verdicts.append(pressure.answered(True, T0 + 2.5))) for _ in range(4)]
    for thread in judges:
        thread.start()
    for thread in judges:
        thread.join()
    judged = [v for v in verdicts if v is not None]
    assert len(judged) == 1 and judged[0].slowed  # type: ignore[attr-defined]


def test_better_windows_bring_the_rate_back_to_calm(pressure: SubmitPressure) -> None:
    slowed(pressure)  # 2.5/s; a recovering window adds 2/s back
    rates = []
    for window in range(5):
        start = T0 + 2.1 + window * 2
        answers(pressure, start, [False] * 3, 0.5)
        verdict = pressure.answered(False, start + 2)
        if verdict is not None:
            rates.append(verdict.rate)  # type: ignore[attr-defined]
    assert rates[:4] == [4.5, 6.5, 8.5, 10]
    pace = pressure.take(T0 + 20)
    assert pace.go and pace.rate is None and pressure.rate() is None
