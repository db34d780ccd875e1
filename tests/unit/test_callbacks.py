"""OpenRouter callback signatures: t=<seconds>,v1=<hex HMAC-SHA256 of "<t>,<raw body>">, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from videogen.callbacks import MAX_BODY_BYTES, CallbackRefused, parse_signature, sign, verify

SECRET = "whsec-test-0123456789"
NOW = 1_764_057_600
BODY = json.dumps({"type": "video.generation.completed", "data": {"id": "or-1", "status": "completed"}}).encode()


def independent_signature(secret: str, body: bytes, stamp: int) -> str:
    # Written out from OpenRouter's description, not with callbacks.sign: the two must agree.
    return hmac.new(secret.encode(), f"{stamp},".encode() + body, hashlib.sha256).hexdigest()


def refused(status: int, *args: object, **kwargs: object) -> CallbackRefused:
    with pytest.raises(CallbackRefused) as caught:
        verify(*args, **kwargs)  # type: ignore[arg-type]
    assert caught.value.status == status, caught.value
    return caught.value


def test_a_good_signature_verifies_and_names_the_job() -> None:
    header = f"t={NOW},v1={independent_signature(SECRET, BODY, NOW)}"
    assert header == sign(SECRET, BODY, NOW)
    callback = verify(SECRET, BODY, header, "or-1-completed", now=NOW + 10)
    assert callback.openrouter_job_id == "or-1"
    assert callback.claimed_status == "completed" and callback.idempotency_key == "or-1-completed"


def test_a_replay_within_the_window_verifies_again() -> None:
    # Harmless by design: a callback only makes the job be polled (tests/handlers/test_callbacks.py).
    header = sign(SECRET, BODY, NOW)
    assert (
        verify(SECRET, BODY, header, now=NOW).openrouter_job_id
        == verify(SECRET, BODY, header, now=NOW + 60).openrouter_job_id
    )


def test_forged_signatures_are_refused() -> None:
    refused(401, "another-secret", BODY, sign(SECRET, BODY, NOW), now=NOW)
    refused(401, SECRET, BODY + b" ", sign(SECRET, BODY, NOW), now=NOW)  # one byte more than was signed
    refused(401, SECRET, BODY, sign(SECRET, BODY, NOW - 1).replace(f"t={NOW - 1}", f"t={NOW}"), now=NOW)
    # The dot separator of other schemes (Stripe's "t.body") is not OpenRouter's comma.
    dotted = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    refused(401, SECRET, BODY, f"t={NOW},v1={dotted}", now=NOW)
    refused(401, SECRET, BODY, None, now=NOW)


def test_stale_and_future_timestamps_are_refused() -> None:
    refused(401, SECRET, BODY, sign(SECRET, BODY, NOW - 301), now=NOW)
    refused(401, SECRET, BODY, sign(SECRET, BODY, NOW + 301), now=NOW)
    assert verify(SECRET, BODY, sign(SECRET, BODY, NOW - 300), now=NOW)
    assert verify(SECRET, BODY, sign(SECRET, BODY, NOW + 300), now=NOW)


def test_one_matching_v1_among_several_is_enough() -> None:
    good = independent_signature(SECRET, BODY, NOW)
    assert verify(SECRET, BODY, f"t={NOW},v1={'0' * 64},v1={good}", now=NOW)
    assert verify(SECRET, BODY, f"t={NOW}, v1={good.upper()}, v2=future-scheme", now=NOW)
    refused(401, SECRET, BODY, f"t={NOW},v1={'0' * 64},v1={'1' * 64}", now=NOW)
    refused(400, SECRET, BODY, f"t={NOW}," + ",".join([f"v1={good}"] * 9), now=NOW)


@pytest.mark.parametrize(
    "header",
    [
        "",  # empty: missing
        "garbage",
        f"v1={'0' * 64}",  # no timestamp
        f"t={NOW}",  # no signature
        f"t={NOW},t={NOW},v1={'0' * 64}",  # two timestamps
        f"t=+{NOW},v1={'0' * 64}",
        f"t={NOW}.5,v1={'0' * 64}",
        f"t=١٧٦٤٠٥٧٦٠٠,v1={'0' * 64}",  # digits, but not ASCII ones
        f"t={NOW},v1={'0' * 63}",
        f"t={NOW},v1={'g' * 64}",
        f"t={NOW},v1=" + "0" * 5000,
    ],
)
def test_malformed_headers_are_refused(header: str) -> None:
    with pytest.raises(CallbackRefused) as caught:
        parse_signature(header)
    assert caught.value.status in (400, 401)
    assert caught.value.status == (401 if header == "" else 400)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"{}",
        b'{"data": {}}',
        b'{"data": {"id": 7}}',
        b'{"data": {"id": ""}}',
        b"[" * 5000,
    ],
)
def test_a_signed_body_that_is_not_a_callback_is_refused(body: bytes) -> None:
    refused(400, SECRET, body, sign(SECRET, body, NOW), now=NOW)


def test_the_body_size_is_capped_before_anything_else() -> None:
    big = b" " * (MAX_BODY_BYTES + 1)
    refused(413, SECRET, big, sign(SECRET, big, NOW), now=NOW)
