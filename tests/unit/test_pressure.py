"""The shared submission rate (videogen.pressure) on moto's DynamoDB: calm costs no write, a 429 storm
halves the rate once per cooldown, the token bucket holds every submitter to it, and accepted submissions
bring it back."""

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
    yield SubmitPressure(TABLE, max_rate=10, min_rate=1, backoff_factor=0.5, recovery_step=2, cooldown_seconds=2)


def item() -> dict[str, object]:
    from videogen.aws import client

    found: dict[str, object] = (
        client("dynamodb").get_item(TableName=TABLE, Key={"name": {"S": "pressure#submit"}}).get("Item", {})
    )
    return found


def test_calm_submissions_go_without_writing_anything(pressure: SubmitPressure) -> None:
    for n in range(5):
        pace = pressure.take(T0 + n * 0.01)
        assert pace.go and pace.rate is None
    assert item() == {} and pressure.rate() is None


def test_a_storm_halves_the_rate_once_per_cooldown_down_to_the_floor(pressure: SubmitPressure) -> None:
    assert pressure.slow_down(T0) == 5
    assert pressure.slow_down(T0 + 0.5) is None  # the same storm: counted once
    assert pressure.rate() == 5
    assert pressure.slow_down(T0 + 2) == 2.5
    assert pressure.slow_down(T0 + 4) == 1.25
    assert pressure.slow_down(T0 + 6) == 1  # min_rate
    assert pressure.slow_down(T0 + 8) == 1


def test_under_pressure_the_bucket_holds_everyone_to_the_rate(pressure: SubmitPressure) -> None:
    pressure.slow_down(T0)  # 5 per second, bucket empty
    first = pressure.take(T0)
    assert not first.go and first.wait_seconds == pytest.approx(0.2) and first.rate == 5
    # Over 10 simulated seconds of submitters asking every 10 ms, about 5 a second go.
    went = sum(pressure.take(T0 + n * 0.01).go for n in range(1000))
    assert 48 <= went <= 51


def test_concurrent_submitters_take_each_token_once(pressure: SubmitPressure) -> None:
    pressure.slow_down(T0)
    results: list[bool] = []
    lock = threading.Lock()

    def take() -> None:
        went = pressure.take(T0 + 1).go  # a second later: 5 tokens saved up (the burst)
        with lock:
            results.append(went)

    threads = [threading.Thread(target=take) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Each token of the burst spent once: those that went plus those left make the five saved up.
    left = float(item()["tokens"]["N"])  # type: ignore[index]
    assert 1 <= results.count(True) <= 5 and results.count(True) + left == pytest.approx(5)


def test_accepted_submissions_bring_the_rate_back_to_calm(pressure: SubmitPressure) -> None:
    pressure.slow_down(T0)
    assert pressure.speed_up() == 7
    assert pressure.speed_up() == 9
    assert pressure.speed_up() == 10
    assert pressure.speed_up() is None  # calm: nothing more to write
    pace = pressure.take(T0 + 1)
    assert pace.go and pace.rate is None and pressure.rate() is None
