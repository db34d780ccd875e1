"""Reference preflight against a loopback HTTP server: what a provider could fetch passes, the rest is named."""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from videogen.preflight import Limits, Preflight, kind_of

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MP4 = b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64
MP3 = b"ID3\x04\x00" + b"\x00" * 64
FIELD = "input_references[1].image_url.url"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", content_type: str = "image/png", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", headers.pop("length", str(len(body))))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.hits.append((self.path, self.headers.get("Host"), self.headers.get("Cookie")))  # type: ignore[attr-defined]
        path = self.path
        if path == "/png":
            self._send(200, PNG)
        elif path == "/png-octet":
            self._send(200, PNG, "application/octet-stream")
        elif path == "/mp4":
            self._send(200, MP4, "video/mp4")
        elif path == "/mp3":
            self._send(200, MP3, "audio/mpeg")
        elif path == "/html":
            self._send(200, b"<!doctype html><html>Sign in</html>", "text/html; charset=utf-8")
        elif path == "/html-as-png":
            self._send(200, b"<!DOCTYPE html><html>Sign in</html>", "image/png")
        elif path == "/json":
            self._send(200, b'{"a": 1}', "application/json")
        elif path == "/nomagic":
            self._send(200, b"just some bytes, not an image at all")
        elif path in ("/403", "/404", "/500"):
            self._send(int(path[1:]), b"no", "text/plain")
        elif path == "/huge":
            self._send(200, PNG, length=str(31 * 1024 * 1024))
        elif path.startswith("/hop/"):  # /hop/3 -> /hop/2 -> ... -> /png
            left = int(path.rsplit("/", 1)[1])
            self._send(302, b"", Location="/png" if left == 0 else f"/hop/{left - 1}", Set_Cookie="session=1")
        elif path == "/loop":
            self._send(302, b"", Location="/loop2")
        elif path == "/loop2":
            self._send(302, b"", Location="/loop")
        elif path.startswith("/to?"):
            self._send(302, b"", Location=path.split("?", 1)[1])
        elif path == "/slow":  # headers at once, then a byte a second: a slow-loris body
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            for _ in range(30):
                try:
                    self.wfile.write(b"\x89")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.5)
        elif path == "/slow-headers":  # headers dribbled
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for _ in range(30):
                try:
                    self.wfile.write(b"X-A: b\r\n")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.5)
        else:
            self._send(404, b"", "text/plain")


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.hits = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()


def _base(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def _check(server: ThreadingHTTPServer, path: str, field: str = FIELD, **kwargs: Any) -> str | None:
    preflight = Preflight(allow_private=True, **kwargs)
    failures = preflight.check_all([(field, _base(server) + path)])
    assert all(f.field == field for f in failures)
    return failures[0].message if failures else None


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/png", FIELD),
        ("/png-octet", FIELD),
        ("/mp4", "input_references[0].video_url.url"),
        ("/mp3", "input_references[0].audio_url.url"),
        ("/hop/2", FIELD),  # three redirects: the limit
    ],
)
def test_fetchable_references_pass(server: ThreadingHTTPServer, path: str, field: str) -> None:
    assert _check(server, path, field) is None


@pytest.mark.parametrize(
    ("path", "field", "found"),
    [
        ("/html", FIELD, "HTML page"),
        ("/html-as-png", FIELD, "HTML page"),
        ("/json", FIELD, "content type 'application/json', not image/*"),
        ("/nomagic", FIELD, "does not start like a PNG, JPEG, WebP, GIF or AVIF/HEIC file"),
        ("/png", "input_references[0].video_url.url", "content type 'image/png', not video/*"),
        ("/mp4", FIELD, "not image/*"),
        ("/403", FIELD, "HTTP 403: a login wall"),
        ("/404", FIELD, "HTTP 404"),
        ("/500", FIELD, "HTTP 500"),
        ("/huge", FIELD, "more than the 30 MiB limit"),
        ("/hop/3", FIELD, "redirects more than 3 times"),
        ("/loop", FIELD, "redirects in a loop"),
    ],
)
def test_unfetchable_references_are_named(server: ThreadingHTTPServer, path: str, field: str, found: str) -> None:
    message = _check(server, path, field)
    assert message is not None and found in message, message


def test_no_cookies_and_the_name_as_host(server: ThreadingHTTPServer) -> None:
    server.hits.clear()  # type: ignore[attr-defined]
    assert _check(server, "/hop/1") is None
    hits = server.hits  # type: ignore[attr-defined]
    assert [path for path, _, _ in hits] == ["/hop/1", "/hop/0", "/png"]
    assert all(cookie is None for _, _, cookie in hits)  # Set-Cookie of a hop is not sent back
    assert all(host == f"127.0.0.1:{server.server_address[1]}" for _, host, _ in hits)


def test_a_name_that_resolves_to_loopback_is_refused_without_the_flag(server: ThreadingHTTPServer) -> None:
    port = server.server_address[1]
    resolver = _resolver_to("127.0.0.1")
    refused = Preflight(resolver=resolver).check_all([(FIELD, "https://images.example.com/png")])
    assert len(refused) == 1 and "resolves to 127.0.0.1, which is not a public address" in refused[0].message
    # With the flag (local mode) the same name reaches the loopback server, Host is the name.
    server.hits.clear()  # type: ignore[attr-defined]
    allowed = Preflight(resolver=resolver, allow_private=True)
    assert allowed.check_all([(FIELD, f"http://images.example.com:{port}/png")]) == []
    assert server.hits[-1][1] == f"images.example.com:{port}"  # type: ignore[attr-defined]


@pytest.mark.parametrize("target", ["http://127.0.0.1/png", "https://169.254.169.254/latest/meta-data/"])
def test_a_redirect_inside_is_refused_without_the_flag(server: ThreadingHTTPServer, target: str) -> None:
    # The first hop is a public name (resolved by the test resolver to a public address, then connected to
    # through the loopback server via a transport that only the first request may use).
    port = server.server_address[1]
    preflight = Preflight(resolver=_resolver_to("93.184.216.34"), transport=_Loopback(port))
    failures = preflight.check_all([(FIELD, f"https://images.example.com/to?{target}")])
    assert len(failures) == 1
    assert "redirect 1 to" in failures[0].message
    assert "must start with https://" in failures[0].message or "not a public address" in failures[0].message


def test_a_slow_loris_is_cut_at_the_deadline(server: ThreadingHTTPServer) -> None:
    limits = Limits(deadline_seconds=1.5, read_seconds=1.0)
    for path in ("/slow", "/slow-headers"):
        started = time.monotonic()
        message = _check(server, path, limits=limits)
        elapsed = time.monotonic() - started
        assert message is not None and ("within 1.5 s" in message or "timed out" in message), message
        assert elapsed < 2.5, (path, elapsed)


def test_results_are_cached_per_url(server: ThreadingHTTPServer) -> None:
    now = [0.0]
    preflight = Preflight(allow_private=True, cache_seconds=300, clock=lambda: now[0])
    url = _base(server) + "/png"
    bad = _base(server) + "/html"
    for _ in range(3):
        assert preflight.check_all([(FIELD, url), ("frame_images[0].image_url.url", bad)])[0].field.startswith("frame")
    assert preflight.fetches == 2
    now[0] = 301.0
    preflight.check_all([(FIELD, url)])
    assert preflight.fetches == 3


def test_s3_and_data_references_are_not_fetched() -> None:
    preflight = Preflight()
    assert preflight.check_all([(FIELD, "s3://bucket/references/a.png"), (FIELD, "data:image/png;base64,AA==")]) == []
    assert preflight.fetches == 0


def test_kind_of_field() -> None:
    assert kind_of("input_references[0].audio_url.url") == "audio"
    assert kind_of("input_references[2].video_url.url") == "video"
    assert kind_of("frame_images[1].image_url.url") == "image"


def test_latency_on_loopback(server: ThreadingHTTPServer) -> None:
    """p50/p99 of one uncached check (printed with -s; the bound is loose for a shared machine)."""
    preflight = Preflight(allow_private=True, cache_seconds=0)
    url = _base(server) + "/png"
    times = []
    for _ in range(50):
        started = time.perf_counter()
        assert preflight.check_all([(FIELD, url)]) == []
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p50, p99 = statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]
    print(f"preflight latency on loopback over 50 fetches: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    assert p50 < 200


def _resolver_to(address: str) -> Any:
    def resolve(host: str, port: int) -> list[tuple[int, int, int, str, tuple[Any, ...]]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    return resolve


class _Loopback(httpx.BaseTransport):
    """An httpx transport that sends the first request to the loopback server over plain http (standing in
    for the public host), and refuses any other: a redirect must be refused before it is sent."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.inner = httpx.HTTPTransport()
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        assert self.sent == 1, f"a second request was sent: {request.url}"
        assert str(request.url.host) == "93.184.216.34" and request.headers["host"] == "images.example.com"
        assert request.extensions["sni_hostname"] == "images.example.com"
        local = httpx.Request(
            "GET", request.url.copy_with(scheme="http", host="127.0.0.1", port=self.port), headers=request.headers
        )
        return self.inner.handle_request(local)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize(("value", "on"), [(None, True), ("on", True), ("off", False), ("0", False)])
def test_the_setting(value: str | None, on: bool) -> None:
    from videogen.settings import Settings

    env = {} if value is None else {"VIDEOGEN_PREFLIGHT": value}
    assert Settings.from_env(env).videogen_preflight is on
    assert Settings.from_env(env).videogen_preflight_allow_private is False
    assert Settings.from_env({"VIDEOGEN_PREFLIGHT_ALLOW_PRIVATE": "1"}).videogen_preflight_allow_private is True
