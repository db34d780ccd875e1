"""The OpenRouter client against loopback servers: URL and auth rules, retries, outcome classes."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import TEST_KEY
from tests.support.scripted_http import Canned, ScriptedServer
from videogen.errors import OpenRouterError, OpenRouterUnavailable, SubmissionOutcomeUnknown
from videogen.openrouter import OpenRouterClient

JOB = {"id": "job-abc123", "polling_url": "/api/v1/videos/job-abc123", "status": "pending"}
ERROR_500 = {"error": {"code": 500, "message": "Internal Server Error"}}


def make_client(base_url: str, sleeps: list[float] | None = None, timeout: float = 5.0) -> OpenRouterClient:
    recorded = sleeps if sleeps is not None else []
    return OpenRouterClient(
        base_url, lambda: TEST_KEY, timeout=timeout, max_attempts=3, backoff_seconds=0.01, sleep=recorded.append
    )


def test_relative_polling_url_resolves_against_the_base(api_server: ScriptedServer) -> None:
    client = make_client(api_server.url)
    assert client.resolve("/api/v1/videos/job-abc123") == f"{api_server.url}/api/v1/videos/job-abc123"
    assert client.resolve("https://other.example/x") == "https://other.example/x"
    assert make_client("https://openrouter.ai/").resolve("/api/v1/videos/j") == "https://openrouter.ai/api/v1/videos/j"
    assert (
        make_client("https://openrouter.ai").content_url("a/b")
        == "https://openrouter.ai/api/v1/videos/a%2Fb/content?index=0"
    )


def test_a_polling_url_that_leaves_the_api_is_not_followed() -> None:
    client = make_client("https://openrouter.ai")
    assert client.poll_url("//evil.example/api/v1/videos/j", "j") == "https://openrouter.ai/api/v1/videos/j"
    assert client.poll_url("https://evil.example/x", "j") == "https://openrouter.ai/api/v1/videos/j"
    assert client.poll_url(None, "j") == "https://openrouter.ai/api/v1/videos/j"
    assert client.poll_url("/api/v1/videos/j?x=1", "j") == "https://openrouter.ai/api/v1/videos/j?x=1"


def test_authorization_only_for_the_api_origin_under_api() -> None:
    client = make_client("https://openrouter.ai")
    assert client.is_api_url("https://openrouter.ai/api/v1/videos/x/content?index=0")
    assert not client.is_api_url("https://openrouter.ai/docs")
    assert not client.is_api_url("http://openrouter.ai/api/v1/videos")  # downgraded scheme
    assert not client.is_api_url("https://openrouter.ai.evil.example/api/v1")
    assert not client.is_api_url("https://storage.example.com/api/v1/video.mp4")
    assert not client.is_api_url("https://openrouter.ai:8443/api/v1/videos")


def test_submit_sends_bearer_and_poll_follows_relative_polling_url(api_server: ScriptedServer) -> None:
    api_server.on("POST", "/api/v1/videos", Canned(202, JOB))
    api_server.on("GET", "/api/v1/videos/job-abc123", Canned(200, {**JOB, "status": "in_progress"}))
    client = make_client(api_server.url)
    accepted = client.submit({"model": "m", "prompt": "p"})
    polled = client.get_job(accepted.polling_url, accepted.id)
    assert polled.status == "in_progress"
    assert all(seen.headers["authorization"] == f"Bearer {TEST_KEY}" for seen in api_server.seen)


def test_unsigned_url_on_another_host_gets_no_key(api_server: ScriptedServer, foreign_server: ScriptedServer) -> None:
    foreign_server.on("GET", "/files/v.mp4", Canned(200, b"\x00\x00\x00\x18ftypmp42"))
    client = make_client(api_server.url)
    with client.stream(f"{foreign_server.url}/files/v.mp4?sig=1") as response:
        assert response.read().startswith(b"\x00\x00\x00\x18ftyp")
    assert "authorization" not in foreign_server.seen[0].headers


def test_redirect_from_api_to_foreign_host_drops_the_key(
    api_server: ScriptedServer, foreign_server: ScriptedServer
) -> None:
    api_server.on(
        "GET", "/api/v1/videos/j/content", Canned(302, b"", {"Location": f"{foreign_server.url}/files/j.mp4"})
    )
    foreign_server.on("GET", "/files/j.mp4", Canned(302, b"", {"Location": f"{api_server.url}/not-api/j.mp4"}))
    api_server.on("GET", "/not-api/j.mp4", Canned(200, b"video"))
    client = make_client(api_server.url)
    with client.stream(client.content_url("j")) as response:
        assert response.read() == b"video"
    assert api_server.requests_to("/api/v1/videos/j/content")[0].headers["authorization"] == f"Bearer {TEST_KEY}"
    assert "authorization" not in foreign_server.seen[0].headers
    # Back on the API host, but outside /api/: still no key.
    assert "authorization" not in api_server.requests_to("/not-api/j.mp4")[0].headers


def test_429_is_retried_honouring_retry_after(api_server: ScriptedServer) -> None:
    limited = Canned(429, {"error": {"code": 429, "message": "Rate limit exceeded"}}, {"Retry-After": "7"})
    api_server.on("GET", "/api/v1/videos/j", limited, Canned(200, {**JOB, "id": "j"}))
    sleeps: list[float] = []
    assert make_client(api_server.url, sleeps).get_job(None, "j").id == "j"
    assert sleeps == [7.0]


def test_5xx_is_retried_with_backoff_then_gives_up(api_server: ScriptedServer) -> None:
    api_server.on(
        "GET", "/api/v1/videos/j", Canned(502, {"error": {"code": 502, "message": "Provider returned error"}})
    )
    sleeps: list[float] = []
    with pytest.raises(OpenRouterUnavailable, match="Provider returned error"):
        make_client(api_server.url, sleeps).get_job(None, "j")
    assert len(api_server.seen) == 3
    assert len(sleeps) == 2 and sleeps[0] < sleeps[1] + 0.02


def test_4xx_is_not_retried_and_carries_openrouter_message(api_server: ScriptedServer) -> None:
    api_server.on("POST", "/api/v1/videos", Canned(402, {"error": {"code": 402, "message": "Insufficient credits"}}))
    with pytest.raises(OpenRouterError) as info:
        make_client(api_server.url).submit({"model": "m", "prompt": "p"})
    assert info.value.status_code == 402 and info.value.message == "Insufficient credits"
    assert len(api_server.seen) == 1


def test_submit_5xx_with_error_body_is_retried(api_server: ScriptedServer) -> None:
    api_server.on("POST", "/api/v1/videos", Canned(500, ERROR_500), Canned(202, JOB))
    assert make_client(api_server.url).submit({"model": "m", "prompt": "p"}).id == "job-abc123"
    assert len(api_server.seen) == 2


def test_submit_bare_5xx_is_an_unknown_outcome(api_server: ScriptedServer) -> None:
    api_server.on("POST", "/api/v1/videos", Canned(502, b"<html>Bad gateway</html>"))
    with pytest.raises(SubmissionOutcomeUnknown):
        make_client(api_server.url).submit({"model": "m", "prompt": "p"})
    assert len(api_server.seen) == 1


def test_submit_timeout_after_sending_is_never_resent(api_server: ScriptedServer) -> None:
    api_server.on("POST", "/api/v1/videos", Canned(202, JOB, delay=1.0))
    with pytest.raises(SubmissionOutcomeUnknown):
        make_client(api_server.url, timeout=0.2).submit({"model": "m", "prompt": "p"})
    assert len(api_server.seen) == 1


def test_submit_dropped_connection_is_an_unknown_outcome(api_server: ScriptedServer) -> None:
    api_server.on("POST", "/api/v1/videos", Canned(drop=True))
    with pytest.raises(SubmissionOutcomeUnknown):
        make_client(api_server.url).submit({"model": "m", "prompt": "p"})
    assert len(api_server.seen) == 1


def test_connection_refused_is_known_not_accepted() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps: list[float] = []
    with pytest.raises(OpenRouterUnavailable) as info:
        make_client(f"http://127.0.0.1:{port}", sleeps).submit({"model": "m", "prompt": "p"})
    assert len(sleeps) == 2
    assert TEST_KEY not in str(info.value)


def test_poll_timeouts_are_retried(api_server: ScriptedServer) -> None:
    api_server.on("GET", "/api/v1/videos/j", Canned(200, JOB, delay=1.0), Canned(200, {**JOB, "id": "j"}))
    assert make_client(api_server.url, timeout=0.3).get_job(None, "j").id == "j"


def test_models_list_parses_null_capabilities(api_server: ScriptedServer) -> None:
    api_server.on("GET", "/api/v1/videos/models", Canned(200, {"data": [{"id": "a/b", "supported_durations": None}]}))
    models = make_client(api_server.url).list_models()
    assert models[0].id == "a/b" and models[0].supported_durations is None


def test_the_key_never_appears_in_errors_or_reprs(api_server: ScriptedServer) -> None:
    api_server.on("POST", "/api/v1/videos", Canned(401, {"error": {"code": 401, "message": "Invalid API key"}}))
    client = make_client(api_server.url)
    with pytest.raises(OpenRouterError) as info:
        client.submit({"model": "m", "prompt": "p"})
    assert TEST_KEY not in str(info.value) and TEST_KEY not in repr(info.value) and TEST_KEY not in repr(client)


def test_base_url_must_be_absolute() -> None:
    with pytest.raises(ValueError):
        make_client("openrouter.ai")


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("https://openrouter.ai", "https://openrouter.ai"),
        ("https://openrouter.ai/", "https://openrouter.ai"),
        ("https://openrouter.ai/api/v1", "https://openrouter.ai"),  # the SDKs' server_url
        ("https://openrouter.ai/api/v1/", "https://openrouter.ai"),
        ("https://proxy.example.com/openrouter/api/v1", "https://proxy.example.com/openrouter"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ],
)
def test_the_base_url_is_understood_in_both_forms(given: str, used: str) -> None:
    from videogen.openrouter import OpenRouterClient
    from videogen.settings import Settings

    settings = Settings(openrouter_base_url=given)
    assert settings.openrouter_base_url == used
    client = OpenRouterClient(settings.openrouter_base_url, lambda: "k")
    assert client.url("/api/v1/videos") == f"{used}/api/v1/videos"


@pytest.mark.parametrize(
    "given",
    [
        "https://openrouter.ai/api",
        "https://openrouter.ai/api/v2",
        "openrouter.ai",
        "https://x/?a=1",
        # The SDK's suffix given twice: stripping it once must not leave a path that still has /api in it.
        "https://openrouter.ai/api/v1/api/v1",
        "https://openrouter.ai/api/v1/api/v1/",
        "https://openrouter.ai/api/api/v1",
        "https://proxy.example.com/openrouter/api/v1/api/v1",
    ],
)
def test_a_base_url_that_cannot_be_read_is_refused_at_start_up(given: str) -> None:
    from pydantic import ValidationError

    from videogen.settings import Settings

    with pytest.raises(ValidationError, match="OPENROUTER_BASE_URL"):
        Settings.from_env({"OPENROUTER_BASE_URL": given})


def test_the_sdk_suffix_given_twice_is_refused_with_a_message_that_says_so() -> None:
    from videogen.settings import openrouter_base

    with pytest.raises(ValueError, match="/api/v1 at most once"):
        openrouter_base("https://openrouter.ai/api/v1/api/v1")
