"""Domain errors. Their class names matter: Step Functions matches Retry/Catch on them."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FieldError:
    field: str
    message: str


@dataclass
class RequestRejected(Exception):
    """A request we will not accept: 4xx at the edge, nothing written, nothing enqueued."""

    message: str
    errors: list[FieldError] = field(default_factory=list)
    status_code: int = 422
    reason: str = "invalid_request"  # low-cardinality category, a metric dimension

    def __str__(self) -> str:
        return self.message

    def to_body(self) -> dict[str, object]:
        return {
            "error": {
                "code": self.status_code,
                "message": self.message,
                "fields": [{"field": e.field, "message": e.message} for e in self.errors],
            }
        }


# OpenRouter pushing back (rate limited, no provider available): the request was not accepted.
PUSHBACK_STATUSES = (429, 503)


class TransientError(Exception):
    """Worth retrying later (OpenRouter 429/5xx, network trouble, AWS throttling).

    The state machine retries Tasks that raise it; the SQS consumer reports the record as a batch failure.
    """


class OpenRouterError(Exception):
    """OpenRouter answered with an error envelope (or something we could not parse)."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        metadata: dict[str, object] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"OpenRouter HTTP {status_code}: {message}")
        self.status_code = status_code
        self.message = message
        # ``error.metadata`` (e.g. ``limit_source`` of a 402/403 budget error) and the Retry-After header.
        self.metadata = metadata
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.status_code == 429 or self.status_code >= 500


class OpenRouterUnavailable(TransientError):
    """The request did not get through (connection refused, 429, 5xx) after the client's own retries.

    For a submit this means "known not accepted": it is safe to try again later.
    """

    def __init__(self, message: str, status_code: int | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retry_after = retry_after  # OpenRouter's Retry-After on a 429 / 503, seconds

    @property
    def http_status(self) -> str:
        """The last HTTP status seen, or "network" when none came back (a metric dimension)."""
        return str(self.status_code) if self.status_code else "network"


class SubmissionOutcomeUnknown(Exception):
    """The submit request was sent but no answer came back (time-out, dropped connection).

    OpenRouter may or may not have accepted the job, so sending it again could bill twice.
    """


class NotAnMp4(Exception):
    """The downloaded body is not a playable MP4: no ``ftyp`` first, or a structure that fails
    ``videogen.mp4``'s check (no moov, no video track, zero duration, truncated...). Permanent: the
    download ends the job ``failed`` rather than retrying the same bytes."""


class VideoTooLarge(Exception):
    """The downloaded body exceeds the configured maximum video size."""


class DownloadBusy(Exception):
    """Another live attempt holds the job's download claim (jobs.JobStore.claim_download). Not a
    TransientError: the state machine catches it by this name and goes back to waiting, and its next poll
    finds the job ended (or the claim gone stale, and downloads)."""
