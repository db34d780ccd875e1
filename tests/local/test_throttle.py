"""Local mode's stage throttling: API Gateway's token bucket (rate per second, burst), and its setting."""

from __future__ import annotations

import pytest

from videogen_local.localmode.throttle import DEFAULT_BURST, DEFAULT_RATE, TokenBucket, parse_throttle


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_lets_a_burst_through_then_refills_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.25  # half a token: still throttled
    assert bucket.take() is False
    clock.now += 0.25
    assert bucket.take() is True and bucket.take() is False
    clock.now += 60  # a quiet minute refills the bucket only up to its burst
    assert sum(bucket.take() for _ in range(10)) == 3


def test_one_per_second_with_a_burst_of_one() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=1, burst=1, clock=clock)
    assert bucket.take() is True and bucket.take() is False
    clock.now += 1
    assert bucket.take() is True


def test_the_setting_reads_rate_and_burst_or_off() -> None:
    assert parse_throttle("1,1") == (1.0, 1)
    assert parse_throttle("0.5, 10") == (0.5, 10)
    assert parse_throttle("off") is None and parse_throttle("0") is None
    assert (DEFAULT_RATE, DEFAULT_BURST) == (50.0, 100)  # tests/template checks the template says the same


@pytest.mark.parametrize("value", ["50", "a,b", "1,2,3", "-1,5", "5,0"])
def test_a_setting_that_cannot_be_read_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="VIDEOGEN_API_THROTTLE"):
        parse_throttle(value)


def test_local_serve_reads_it_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from videogen_local.localmode.stack import LocalStackConfig

    monkeypatch.delenv("VIDEOGEN_API_THROTTLE", raising=False)
    assert LocalStackConfig.from_env().api_throttle == (DEFAULT_RATE, DEFAULT_BURST)  # the template's, by default
    monkeypatch.setenv("VIDEOGEN_API_THROTTLE", "1,1")
    assert LocalStackConfig.from_env().api_throttle == (1.0, 1)
    monkeypatch.setenv("VIDEOGEN_API_THROTTLE", "off")
    assert LocalStackConfig.from_env().api_throttle is None
