"""Property-based tests (hypothesis) of the request model and the URL/auth rules."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from videogen.errors import RequestRejected
from videogen.intake import parse_request
from videogen.models import MAX_PROMPT_CHARS
from videogen.openrouter import OpenRouterClient

FIELDS = [
    "model",
    "prompt",
    "duration",
    "resolution",
    "aspect_ratio",
    "size",
    "generate_audio",
    "seed",
    "input_references",
    "frame_images",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from([*FIELDS, "extra", "callback_url"]), json_values, max_size=6))
def test_any_json_object_is_either_a_valid_request_or_a_named_rejection(payload: dict[str, Any]) -> None:
    try:
        request = parse_request(payload)
    except RequestRejected as rejected:
        assert rejected.status_code in (400, 413, 422)
        assert rejected.errors and all(error.field and error.message for error in rejected.errors)
        json.dumps(rejected.to_body())  # always serialisable for the HTTP answer and events
        return
    # Accepted: what goes to OpenRouter is a plain JSON object with only known fields, and round-trips.
    body = request.to_openrouter()
    assert set(body) <= set(FIELDS) and body["prompt"].strip()
    assert len(body["prompt"]) <= MAX_PROMPT_CHARS
    assert parse_request(json.dumps(body)).to_openrouter() == body


@given(st.text(max_size=300))
def test_arbitrary_bodies_never_raise_anything_but_a_rejection(text: str) -> None:
    with contextlib.suppress(RequestRejected):
        parse_request(text)


hosts = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?(\.[a-z]{2,5}){0,2}", fullmatch=True)
paths = st.from_regex(r"(/[A-Za-z0-9._~%-]{0,12}){0,4}(\?[A-Za-z0-9=&]{0,12})?", fullmatch=True)
schemes = st.sampled_from(["https", "http"])
ports = st.sampled_from(["", ":443", ":8443", ":80"])


@given(schemes, hosts, ports, paths)
def test_the_key_goes_only_to_the_api_origin_under_api(scheme: str, host: str, port: str, path: str) -> None:
    client = OpenRouterClient("https://openrouter.ai", lambda: "k")
    url = f"{scheme}://{host}{port}{path}"
    expected = scheme == "https" and host == "openrouter.ai" and port in ("",) and path.startswith("/api/")
    assert client.is_api_url(url) is expected
    assert ("Authorization" in client._headers_for(url)) is expected


@given(st.one_of(paths, st.builds("{}://{}{}".format, schemes, hosts, paths), st.just("//evil.example/api/x")))
def test_jobs_are_only_polled_on_the_api_origin(polling_url: str) -> None:
    client = OpenRouterClient("https://openrouter.ai", lambda: "k")
    url = client.poll_url(polling_url, "job-1")
    assert client.is_api_url(url)
    if polling_url.startswith("/api/"):
        assert url == "https://openrouter.ai" + polling_url


@given(hosts, paths)
def test_reference_urls_are_https_public_hosts_or_rejected(host: str, path: str) -> None:
    for scheme in ("http", "ftp", "file", "gopher"):
        payload = {
            "prompt": "p",
            "input_references": [{"type": "image_url", "image_url": {"url": f"{scheme}://{host}{path}"}}],
        }
        try:
            parse_request(payload)
        except RequestRejected as rejected:
            assert rejected.errors[0].field == "input_references[0].image_url.url"
        else:
            raise AssertionError(f"{scheme} URL accepted")
