"""Reference preflight: fetch each https reference the way a provider would before a request is accepted.

OpenRouter's guide: "Use stable, directly downloadable image URLs. Some providers cannot fetch image URLs that
require cookies, redirects through HTML pages, bot checks, or unusual headers." So each reference is read with
no cookies and plain headers, following at most MAX_REDIRECTS redirects, within a total deadline, and only its
first bytes: an HTML page (a login wall, a viewer page), an error status, a content type or first bytes not of
the reference's kind, too many redirects or a size over the limit is refused before the job exists.

It must not reach inside: every hop's host is judged as a WHATWG fetcher reads it
(addresses.check_public_https_url), resolved once (addresses.public_addresses, every address public), and the
connection goes to the checked address (the name only for TLS and Host), so a second lookup cannot answer
differently. Redirects are followed here, each hop checked the same way. Results are cached per URL briefly.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from videogen.addresses import Resolver
from videogen.pinned import pin, tls_context

MAX_REDIRECTS = 3
MAX_REFERENCE_BYTES = 30 * 1024 * 1024  # from Content-Length
SNIFF_BYTES = 64 * 1024  # never read more than this of a body
_ENOUGH_BYTES = 1024  # enough to tell HTML and every signature below
_HEADERS = {"User-Agent": "videogen-preflight/1 (+reference check)", "Accept": "*/*", "Accept-Encoding": "identity"}


@dataclass(frozen=True)
class Limits:
    max_redirects: int = MAX_REDIRECTS
    max_bytes: int = MAX_REFERENCE_BYTES
    sniff_bytes: int = SNIFF_BYTES
    connect_seconds: float = 2.0
    read_seconds: float = 2.0
    deadline_seconds: float = 5.0  # all hops of one reference, headers and first bytes included


class PreflightFailed(Exception):
    """A reference a provider could not fetch: ``field`` names it, the message says what was found."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def kind_of(field: str) -> str:
    """image, audio or video, from the field path (input_references[1].audio_url.url)."""
    if ".audio_url." in field:
        return "audio"
    if ".video_url." in field:
        return "video"
    return "image"


_HEIF_BRANDS = (b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")


def _signature(head: bytes) -> str | None:
    """The format the first bytes announce, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[4:8] == b"ftyp":
        return "heif" if head[8:12] in _HEIF_BRANDS else "mp4"  # MP4, MOV, M4A (and their brands)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"  # WebM and Matroska
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


_KIND_SIGNATURES = {
    "image": {"png", "jpeg", "gif", "webp", "heif"},
    "video": {"mp4", "matroska", "ogg"},
    "audio": {"mp3", "wav", "ogg", "flac", "mp4", "matroska"},
}
_DESCRIBE = {
    "image": "PNG, JPEG, WebP, GIF or AVIF/HEIC",
    "video": "MP4/MOV, WebM/Matroska or Ogg",
    "audio": "MP3, WAV, Ogg, FLAC, M4A or WebM",
}
_NEUTRAL_TYPES = ("", "application/octet-stream", "binary/octet-stream")


def _looks_like_html(head: bytes) -> bool:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml", b"<!--", b"<script"))


class Preflight:
    """Check references; ``resolver`` and ``transport`` are injectable (tests on loopback). ``allow_private``
    (local mode and tests only) lets loopback, private addresses and plain http through."""

    def __init__(
        self,
        *,
        resolver: Resolver = socket.getaddrinfo,
        transport: httpx.BaseTransport | None = None,
        allow_private: bool = False,
        limits: Limits | None = None,
        cache_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.resolver = resolver
        self.transport = transport
        self.allow_private = allow_private
        self.limits = limits or Limits()
        self.cache_seconds = cache_seconds
        self.clock = clock
        self.fetches = 0  # network checks made (not answered from the cache)
        self._cache: dict[tuple[str, str], tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def check_all(self, references: Sequence[tuple[str, str]]) -> list[PreflightFailed]:
        """Every http(s) reference of (field, URL) checked at once (s3:// and data: are not fetched); the
        failures, in field order. Bounded by one deadline, however many references there are."""
        pending = [(field, url) for field, url in references if url.startswith(("https://", "http://"))]
        results: dict[str, str | None] = {}
        threads = []
        for field, url in pending:
            cached = self._cached(url, kind_of(field))
            if cached is not None:
                results[field] = cached[0]
                continue
            thread = threading.Thread(
                target=lambda f=field, u=url: results.__setitem__(f, self._check_uncached(u, kind_of(f))),
                name=f"preflight {field}",
                daemon=True,  # a server that dribbles its headers keeps it reading; the answer does not wait
            )
            thread.start()
            threads.append((field, url, thread))
        end = self.clock() + self.limits.deadline_seconds + 0.5
        for field, url, thread in threads:
            thread.join(max(0.0, end - self.clock()))
            if thread.is_alive():
                message = f"did not answer within {self.limits.deadline_seconds:g} s"
                results[field] = message
                self._remember(url, kind_of(field), message)
        return [PreflightFailed(field, found) for field, _ in pending if (found := results.get(field)) is not None]

    def check(self, field: str, url: str) -> None:
        """Raise PreflightFailed for one reference a provider could not fetch."""
        if failures := self.check_all([(field, url)]):
            raise failures[0]

    def _cached(self, url: str, kind: str) -> tuple[str | None] | None:
        with self._lock:
            entry = self._cache.get((url, kind))
            if entry is None or entry[0] <= self.clock():
                return None
            return (entry[1],)

    def _remember(self, url: str, kind: str, outcome: str | None) -> None:
        now = self.clock()
        with self._lock:
            if len(self._cache) >= 1024:
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                if len(self._cache) >= 1024:
                    self._cache.clear()
            self._cache[(url, kind)] = (now + self.cache_seconds, outcome)

    def _check_uncached(self, url: str, kind: str) -> str | None:
        with self._lock:
            self.fetches += 1
        try:
            outcome = self._fetch(url, kind)
        except Exception as exc:  # whatever went wrong, the reference could not be read
            outcome = f"could not be fetched ({type(exc).__name__})"
        self._remember(url, kind, outcome)
        return outcome

    def _fetch(self, url: str, kind: str) -> str | None:
        limits = self.limits
        deadline = self.clock() + limits.deadline_seconds
        timeout = httpx.Timeout(limits.read_seconds, connect=limits.connect_seconds)
        seen = {url}
        redirects = 0
        with httpx.Client(
            transport=self.transport, verify=tls_context(), timeout=timeout, follow_redirects=False, trust_env=False
        ) as client:
            while True:
                try:
                    hop = pin(url, self.resolver, allow_private=self.allow_private)
                except ValueError as exc:
                    where = "" if redirects == 0 else f" (redirect {redirects} to {url[:200]})"
                    return f"is not fetchable from outside{where}: {exc}"
                client.cookies.clear()  # no cookies, not even ones set by an earlier hop
                request = client.build_request(
                    "GET",
                    hop.target,
                    headers={**_HEADERS, "Host": hop.host_header},
                    extensions=hop.extensions,
                )
                try:
                    response = client.send(request, stream=True)
                except httpx.TimeoutException:
                    return "timed out (connect or read)"
                except httpx.HTTPError as exc:
                    return f"could not be fetched ({type(exc).__name__}: {str(exc)[:120]})"
                try:
                    if response.is_redirect:
                        location = response.headers.get("location", "")
                        redirects += 1
                        if not location:
                            return f"answered HTTP {response.status_code} without a Location"
                        if redirects > limits.max_redirects:
                            return f"redirects more than {limits.max_redirects} times"
                        url = urljoin(url, location)
                        if url in seen:
                            return f"redirects in a loop (back to {url[:200]})"
                        seen.add(url)
                        continue
                    return self._judge(response, kind, deadline)
                finally:
                    response.close()

    def _judge(self, response: httpx.Response, kind: str, deadline: float) -> str | None:
        status = response.status_code
        if status in (401, 403, 407):
            return f"answered HTTP {status}: a login wall, bot check or access denial a provider cannot pass"
        if status >= 400:
            return f"answered HTTP {status}"
        if not 200 <= status < 300:
            return f"answered HTTP {status}, not the file"
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type in ("text/html", "application/xhtml+xml"):
            return f"is an HTML page ({content_type}: a login wall, bot check or viewer page?), not the {kind} itself"
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.limits.max_bytes:
            mib = self.limits.max_bytes / 1024 / 1024
            return f"is {int(length)} bytes (Content-Length), more than the {mib:g} MiB limit"
        if not (content_type.startswith(f"{kind}/") or content_type in _NEUTRAL_TYPES):
            return f"has content type {content_type!r}, not {kind}/*"
        head = b""
        for chunk in response.iter_bytes():
            head += chunk
            if self.clock() > deadline:
                return f"did not send its first bytes within {self.limits.deadline_seconds:g} s"
            if len(head) >= _ENOUGH_BYTES or len(head) >= self.limits.sniff_bytes:
                break
        head = head[: self.limits.sniff_bytes]
        if _looks_like_html(head):
            return f"is an HTML page (a login wall, bot check or viewer page?), not the {kind} itself"
        if _signature(head) not in _KIND_SIGNATURES[kind]:
            return f"does not start like a {_DESCRIBE[kind]} file ({content_type or 'no content type'})"
        return None
