"""OpenRouter video API client.

Rules from OpenRouter's guide that this module enforces (and tests pin down):

* every URL is built from the configured base URL, and a relative ``polling_url`` resolves against it;
* the ``Authorization`` header is sent only to the base's own origin under ``/api/``: never to an
  ``unsigned_urls`` entry on another host, and never carried across a redirect to another origin
  (redirects are followed here, hop by hop, so the rule is applied to every hop);
* 429 and 5xx are retried with exponential backoff that honours ``Retry-After``;
* a submit is only retried when it is known not to have been accepted, because a second
  ``POST /api/v1/videos`` starts (and bills) a second job;
* the API key never appears in an exception, log line or return value.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx

from videogen.errors import PUSHBACK_STATUSES, OpenRouterError, OpenRouterUnavailable, SubmissionOutcomeUnknown
from videogen.models import OpenRouterJob, VideoModel

MAX_REDIRECTS = 5
MAX_RETRY_AFTER_SECONDS = 30.0
USER_AGENT = "videogen/0.1 (+https://github.com/videogen)"

# Raised before a single byte of the request left this machine: always safe to retry.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class OpenRouterClient:
    def __init__(
        self,
        base_url: str,
        api_key: Callable[[], str],
        *,
        timeout: float = 30.0,
        max_attempts: int = 4,
        backoff_seconds: float = 1.0,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        base = urlsplit(self.base_url)
        if base.scheme not in ("http", "https") or not base.netloc:
            raise ValueError(f"OPENROUTER_BASE_URL must be an absolute http(s) URL, got {base_url!r}")
        self._origin = (base.scheme, base.netloc.lower())
        self._api_prefix = base.path.rstrip("/") + "/api/"
        self._api_key = api_key
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._sleep = sleep
        # follow_redirects stays off: redirects are followed by hand so that the auth rule holds on every hop.
        self._http = http or httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))

    # --- URL rules -----------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """An absolute URL for an API path such as ``/api/v1/videos``."""
        return self.base_url + "/" + path.lstrip("/")

    def resolve(self, url: str) -> str:
        """Resolve a possibly relative URL (OpenRouter's ``polling_url`` is relative) against the base."""
        return urljoin(self.base_url + "/", url)

    def is_api_url(self, url: str) -> bool:
        """True only for the base's own origin under ``/api/``: the one place the key may go."""
        parts = urlsplit(url)
        return (parts.scheme, parts.netloc.lower()) == self._origin and parts.path.startswith(self._api_prefix)

    def content_url(self, openrouter_job_id: str, index: int = 0) -> str:
        return self.url(f"/api/v1/videos/{quote(openrouter_job_id, safe='')}/content?index={index}")

    def _headers_for(self, url: str) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT}
        if self.is_api_url(url):
            headers["Authorization"] = f"Bearer {self._api_key()}"
            headers["X-Title"] = "videogen"
        return headers

    # --- API calls -----------------------------------------------------------------------------------

    def list_models(self) -> list[VideoModel]:
        response = self._send("GET", self.url("/api/v1/videos/models"), idempotent=True)
        data = _json(response).get("data") or []
        return [VideoModel.model_validate(item) for item in data]

    def submit(self, body: dict[str, Any], *, retry_pushback: bool = True) -> OpenRouterJob:
        """POST /api/v1/videos. Raises OpenRouterError (rejected, not billed), OpenRouterUnavailable
        (known not accepted, safe to retry later) or SubmissionOutcomeUnknown (do not resubmit).
        ``retry_pushback=False``: a 429 or 503 is raised at once (with its Retry-After), not retried here,
        for a caller that paces submissions itself (videogen.pressure)."""
        response = self._send(
            "POST", self.url("/api/v1/videos"), json=body, idempotent=False, retry_pushback=retry_pushback
        )
        return OpenRouterJob.model_validate(_json(response))

    def poll_url(self, polling_url: str | None, openrouter_job_id: str) -> str:
        """``polling_url`` resolved against the base, if it stays on the API origin; otherwise (absent, or
        pointing elsewhere, e.g. ``//host/...``) the documented ``/api/v1/videos/{id}``. A job is only
        ever polled where the key may go, so polling never needs to leave the API."""
        if polling_url:
            resolved = self.resolve(polling_url)
            if self.is_api_url(resolved):
                return resolved
        return self.url(f"/api/v1/videos/{quote(openrouter_job_id, safe='')}")

    def get_job(self, polling_url: str | None, openrouter_job_id: str) -> OpenRouterJob:
        response = self._send("GET", self.poll_url(polling_url, openrouter_job_id), idempotent=True)
        return OpenRouterJob.model_validate(_json(response))

    @contextmanager
    def stream(self, url: str) -> Iterator[httpx.Response]:
        """GET a (possibly foreign) URL as a stream, e.g. ``unsigned_urls[0]`` or the content endpoint."""
        response = self._send("GET", self.resolve(url), idempotent=True, stream=True)
        try:
            yield response
        finally:
            response.close()

    # --- transport -----------------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool,
        json: Any = None,
        stream: bool = False,
        retry_pushback: bool = True,
    ) -> httpx.Response:
        last_problem = ""
        last_status: int | None = None
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = self._send_following_redirects(method, url, json=json, stream=stream)
            except _NOT_SENT as exc:
                last_problem = f"could not connect to {_origin_of(url)}: {type(exc).__name__}"
            except httpx.TransportError as exc:
                if not idempotent:
                    raise SubmissionOutcomeUnknown(
                        f"no answer from {_origin_of(url)} after the request was sent ({type(exc).__name__})"
                    ) from None
                last_problem = f"transport error talking to {_origin_of(url)}: {type(exc).__name__}"
            else:
                if response.status_code < 400:
                    return response
                if stream:
                    response.read()
                error = OpenRouterError(
                    response.status_code,
                    _error_message(response),
                    metadata=_error_metadata(response),
                    retry_after=_parse_retry_after(response.headers.get("retry-after")),
                )
                if not error.retryable:
                    raise error
                if not idempotent and response.status_code >= 500 and not _has_error_envelope(response):
                    # A bare 5xx (a proxy, a crash mid-request) does not tell us the job was not created.
                    raise SubmissionOutcomeUnknown(
                        f"OpenRouter answered HTTP {response.status_code} without an error body"
                    ) from None
                last_problem, last_status = str(error), response.status_code
                if not retry_pushback and response.status_code in PUSHBACK_STATUSES:
                    raise OpenRouterUnavailable(last_problem, last_status, retry_after=error.retry_after)
                if attempt < self._max_attempts:
                    self._sleep(self._delay(attempt, response.headers.get("retry-after")))
                continue
            if attempt < self._max_attempts:
                self._sleep(self._delay(attempt, None))
        raise OpenRouterUnavailable(f"gave up after {self._max_attempts} attempts: {last_problem}", last_status)

    def _send_following_redirects(self, method: str, url: str, *, json: Any, stream: bool) -> httpx.Response:
        for _ in range(MAX_REDIRECTS + 1):
            request = self._http.build_request(method, url, json=json, headers=self._headers_for(url))
            response = self._http.send(request, stream=True)
            if not response.is_redirect:
                if not stream:
                    response.read()
                return response
            location = response.headers.get("location", "")
            response.close()
            url = urljoin(url, location)
            if response.status_code in (301, 302, 303):
                method, json = "GET", None
        raise OpenRouterError(310, f"more than {MAX_REDIRECTS} redirects")

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        hinted = _parse_retry_after(retry_after)
        if hinted is not None:
            return min(hinted, MAX_RETRY_AFTER_SECONDS)
        exponential = self._backoff * (2 ** (attempt - 1))
        return float(min(exponential + random.uniform(0, self._backoff), MAX_RETRY_AFTER_SECONDS))

    def close(self) -> None:
        self._http.close()


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise OpenRouterError(response.status_code, "response is not JSON") from exc
    if not isinstance(body, dict):
        raise OpenRouterError(response.status_code, "response JSON is not an object")
    return body


def _envelope(response: httpx.Response) -> dict[str, Any] | None:
    """OpenRouter's ``{"error": {...}}`` object, or None when the body is not one."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def _has_error_envelope(response: httpx.Response) -> bool:
    return _envelope(response) is not None


def _error_message(response: httpx.Response) -> str:
    """OpenRouter's ``{"error": {"message": ...}}`` verbatim, else a short excerpt of the body."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason_phrase or "")[:300]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:1000]
        if isinstance(error, str):
            return error[:1000]
    return str(body)[:300]


def _error_metadata(response: httpx.Response) -> dict[str, object] | None:
    """``error.metadata`` of OpenRouter's envelope: ``limit_source`` tells a budget 402/403 from the rest."""
    metadata = (_envelope(response) or {}).get("metadata")
    return metadata if isinstance(metadata, dict) else None


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
