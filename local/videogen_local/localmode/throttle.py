"""The local stand-in for API Gateway's stage throttling (template.yaml: the VideosApi's MethodSettings).

API Gateway throttles with a token bucket: ``burst`` requests may arrive at once, and tokens come back at
``rate`` per second; a request that finds the bucket empty is answered 429 by the gateway itself (the
THROTTLED GatewayResponse), before any authorizer or function runs. The template sets one limit for the
whole stage (``/*``, every method), so one bucket serves every route here too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# The template's stage settings (MethodSettings ThrottlingRateLimit / ThrottlingBurstLimit; tests/template
# checks they agree).
DEFAULT_RATE = 50.0
DEFAULT_BURST = 100
# The template's THROTTLED GatewayResponse (tests/template checks they agree): OpenRouter's envelope, so
# OpenRouter's SDKs raise their typed TooManyRequests error and back off as they would there.
THROTTLED_BODY = {"error": {"code": 429, "message": "Too many requests: slow down and retry", "metadata": None}}


def parse_throttle(value: str) -> tuple[float, int] | None:
    """VIDEOGEN_API_THROTTLE: ``rate,burst`` (requests per second, bucket size), or ``off`` for none."""
    if value.strip().lower() in ("off", "none", "0"):
        return None
    try:
        rate_text, burst_text = value.split(",")
        rate, burst = float(rate_text), int(burst_text)
    except ValueError:
        raise ValueError(f"VIDEOGEN_API_THROTTLE must be 'rate,burst' (e.g. 50,100) or 'off', got {value!r}") from None
    if rate <= 0 or burst < 1:
        raise ValueError(f"VIDEOGEN_API_THROTTLE needs a rate > 0 and a burst >= 1, got {value!r}")
    return rate, burst


class TokenBucket:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        """Starts full, as a stage does after a quiet spell. ``clock``: injectable for tests."""
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()  # the front door serves each request on a thread of its own

    def take(self) -> bool:
        """One token for one request: False when there is none left (the request is throttled)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True
