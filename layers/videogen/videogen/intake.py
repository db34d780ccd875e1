"""Intake: one validation for the three doors (API, S3, EventBridge).

A request is accepted only when it is valid on its own, fits the model's capabilities and its s3://
references exist; only then is a job written and enqueued. A rejected request leaves nothing behind
and costs no OpenRouter credits.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from videogen.budgets import OverBudget
from videogen.errors import FieldError, RequestRejected, TransientError
from videogen.events import DetailType
from videogen.jobs import JobExists, WriteRefused
from videogen.models import Door, Job, JobStatus, VideoRequest
from videogen.observability import Metric, annotate_job, emit, logger
from videogen.owners import Owner, owns
from videogen.pricing import estimate_cost_usd
from videogen.services import Services, new_job_id
from videogen.webhooks import check_webhook_url

MAX_REQUEST_BYTES = 400 * 1024
# A real request nests 4 levels deep (frame_images[0].image_url.url); 32 leaves room and keeps every later
# recursive walk (pydantic, json.dumps, logging) far from the interpreter's recursion limit.
MAX_NESTING = 32


def parse_request(payload: str | bytes | dict[str, Any] | None) -> VideoRequest:
    """Caller JSON → VideoRequest, or RequestRejected naming every offending field."""
    if payload is None or payload in ("", b""):
        raise RequestRejected(
            "request body is empty", [FieldError("body", "a JSON object is required")], 400, reason="malformed"
        )
    if isinstance(payload, str | bytes):
        # The limit is on the wire size: count UTF-8 bytes, not characters (an "é" is two bytes).
        size = len(payload) if isinstance(payload, bytes) else _utf8_size(payload)
        if size > MAX_REQUEST_BYTES:
            raise RequestRejected(
                "request too large", [FieldError("body", f"at most {MAX_REQUEST_BYTES} bytes")], 413, reason="too_large"
            )
        if isinstance(payload, bytes):
            try:
                payload = payload.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _malformed("request is not UTF-8 JSON", f"invalid UTF-8 at byte {exc.start}") from None
        try:
            payload = json.loads(payload)
        except RecursionError:
            # json.loads recurses once per level: a few thousand brackets exhaust the stack. Its C scanner
            # unwinds cleanly, so this is a refusal like any other.
            raise _too_deep_rejection() from None
        except ValueError as exc:
            raise _malformed("request body is not valid JSON", str(exc)) from None
    # Whatever parsed it (json.loads above, or EventBridge for its door's dict), anything deeper than this
    # is no request of ours, and pydantic, json.dumps and logging would all recurse on it.
    if _too_deep(payload):
        raise _too_deep_rejection()
    if not isinstance(payload, dict):
        raise _malformed("request must be a JSON object", "expected an object")
    try:
        request = VideoRequest.model_validate(payload)
    except ValidationError as exc:
        errors = [FieldError(_field_path(err["loc"]), err["msg"]) for err in exc.errors(include_url=False)]
        raise RequestRejected("request validation failed", errors, 422) from None
    if errors := _inconsistencies(request):
        raise RequestRejected("request validation failed", errors, 422)
    return request


# The short side of a frame for each "<n>p" resolution; the "K" resolutions name a long side loosely (1K is
# 1024 or 1080 wide by provider), so they are not compared with a size.
_SHORT_SIDE = {"480p": 480, "720p": 720, "768p": 768, "1080p": 1080}


def _inconsistencies(request: VideoRequest) -> list[FieldError]:
    """What the fields say together: a prompt unless there is image input, and a ``size`` that agrees with
    ``resolution`` and ``aspect_ratio`` when those are given too (OpenRouter: "interchangeable")."""
    errors = []
    if request.prompt is None and not request.has_image_input:
        errors.append(
            FieldError("prompt", "required unless the request has image input (an image reference or a frame)")
        )
    if request.size is not None:
        width, height = (int(n) for n in request.size.split("x"))
        if request.aspect_ratio is not None:
            across, down = (int(n) for n in request.aspect_ratio.split(":"))
            if abs(width / height - across / down) > 0.02 * across / down:
                errors.append(FieldError("size", f"{request.size} is not {request.aspect_ratio} (aspect_ratio)"))
        short = _SHORT_SIDE.get(request.resolution or "")
        if short is not None and min(width, height) != short:
            errors.append(FieldError("size", f"{request.size} is not {request.resolution} (resolution)"))
    return errors


def _utf8_size(text: str) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        # Lone surrogates (from a "\ud800" that something decoded for us) have no UTF-8 form; count them as 3 bytes.
        return len(text.encode("utf-8", "surrogatepass"))


def _too_deep(value: object) -> bool:
    """Nesting deeper than MAX_NESTING, without recursing (a hostile value is as deep as it likes)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_NESTING:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def _too_deep_rejection() -> RequestRejected:
    return _malformed("request body is nested too deeply", f"at most {MAX_NESTING} levels of nesting")


def _malformed(message: str, detail: str) -> RequestRejected:
    return RequestRejected(message, [FieldError("body", detail)], 400, reason="malformed")


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


@dataclass(frozen=True)
class RequestIdentity:
    """What makes two deliveries one request, per door: the caller's ``Idempotency-Key`` within its owner
    (API), the object's key and version or ETag + sequencer within its bucket (S3), the event's id within
    its account (EventBridge). The job's id is derived from it, so the job record is the dedupe record:
    one conditional write makes both, and a redelivery finds the job its first delivery made."""

    door: Door
    scope: str
    key: str
    # Where a mismatch is reported (a replay with another request): the API's header, else the body.
    field: str = "body"

    @property
    def job_id(self) -> str:
        # 128 bits of a hash: the same shape as new_job_id(), a valid Step Functions execution name.
        return hashlib.sha256(f"{self.door.value}\n{self.scope}\n{self.key}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class BatchLine:
    """Where a batch line's job comes from (videogen.batches): recorded on the job, indexed by batch."""

    batch_id: str
    line: int
    client_ref: str | None = None


@dataclass(frozen=True)
class Accepted:
    job: Job
    # True when an earlier delivery of the same request made the job: nothing new was written.
    replayed: bool = False
    # True when the job was not written yet: the caller writes it (JobStore.create_many), see ``accept``.
    deferred: bool = False


def fingerprint(request: VideoRequest) -> str:
    """The validated request, hashed: equal for equal requests whatever their JSON spelling."""
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


def accept(
    services: Services,
    payload: str | bytes | dict[str, Any] | None,
    *,
    door: Door,
    owner: Owner,
    identity: RequestIdentity | None = None,
    source: str | None = None,
    batch: BatchLine | None = None,
    enqueue: bool = True,
    defer: bool = False,
) -> Accepted:
    """Validate, record and enqueue a request, or find the job an earlier delivery of it made (``identity``).
    Raises RequestRejected for bad input, and for a replay of ``identity`` with another request.
    ``enqueue=False``: the caller sends the queue message of every returned job still ``queued`` (a batch
    sends them ten at a time with SendMessageBatch). ``defer=True`` (with ``identity``, ``enqueue=False``): a
    job that reserves no budget is returned unwritten (``deferred``), for the caller to write many at a time
    under the same condition (JobStore.create_many), and the earlier-delivery read is left to that write's
    condition: a batch's intake then makes one DynamoDB call per line instead of two. (A job
    with a budget reservation is written here, as always: its transaction holds the budget's condition.)
    Only for requests whose identity can never come with another request (a line of an immutable
    manifest), since no fingerprint is compared."""
    try:
        request = parse_request(payload)
        request_hash = fingerprint(request)
        # Only a deferring caller pays for this read (the other doors read the limits once, when reserving).
        deferring = defer and identity is not None and not enqueue and not _budgeted(services, owner)
        if (
            identity is not None
            and not deferring
            and (earlier := find_earlier(services, identity, request_hash, enqueue)) is not None
        ):
            return earlier
        _check_webhook_url(services, request)
        for field, url in request.reference_urls():
            if url.startswith("s3://"):
                services.storage.check_reference(url, field)
        _preflight(services, request)
        previous = _previous_openrouter_job(services, request, owner)
        services.catalog.validate(request)
        job_id = identity.job_id if identity is not None else new_job_id()
        estimate, reservation = _estimate_and_reserve(services, request, owner, job_id)
    except RequestRejected as rejected:
        _rejected(door, rejected)
        raise

    job = Job(
        id=job_id,
        status=JobStatus.QUEUED,
        request=request,
        door=door,
        caller=owner.id,
        caller_session=owner.session,
        source=source,
        request_fingerprint=request_hash,
        previous_openrouter_job_id=previous,
        estimated_cost_usd=float(estimate) if estimate is not None else None,
        batch_id=batch.batch_id if batch else None,
        batch_line=batch.line if batch else None,
        client_ref=batch.client_ref if batch else None,
    )
    if deferring and not reservation:
        annotate_job(job.id)
        return Accepted(job, deferred=True)
    try:
        services.store.create(job, with_writes=reservation)
    except WriteRefused:
        # Another request took the room between the limits read and this write: the budget held.
        raise _rejected(door, _over_budget(owner, estimate)) from None
    except JobExists:
        # A concurrent delivery of the same request wrote it first (identity given: the id is the request's).
        assert identity is not None
        if (earlier := find_earlier(services, identity, request_hash, enqueue)) is None:
            raise TransientError(f"job {job.id} was written and removed meanwhile: retry") from None
        return earlier
    if not enqueue:
        annotate_job(job.id)
        emit(Metric.JOBS_ACCEPTED, door=door.value)
        return Accepted(job)
    try:
        services.queue.enqueue(job.id)
    except Exception:
        # Without a queue message nothing would ever move this job: take the record back (and with it the
        # request's identity, which is its id) and let the caller or the door's retry try again.
        services.store.delete(job.id)
        raise
    annotate_job(job.id)
    logger.info("job accepted", extra={"door": door.value, "model": request.model})
    emit(Metric.JOBS_ACCEPTED, door=door.value)
    return Accepted(job)


def _check_webhook_url(services: Services, request: VideoRequest) -> None:
    """https on a public host (local mode's --allow-private-webhooks: any http(s) URL). A name is judged again,
    resolved, when the result is delivered (videogen.webhooks)."""
    if request.webhook_url is None:
        return
    try:
        check_webhook_url(request.webhook_url, allow_private=services.settings.videogen_webhooks_allow_private)
    except ValueError as exc:
        raise RequestRejected("request validation failed", [FieldError("webhook_url", str(exc))], 422) from None


def _budgeted(services: Services, owner: Owner) -> bool:
    return bool(services.settings.budgets_table) and services.budgets.limits(owner.id).any


def _preflight(services: Services, request: VideoRequest) -> None:
    """Fetch every https reference as a provider would (videogen.preflight), unless VIDEOGEN_PREFLIGHT=off."""
    if not services.settings.videogen_preflight:
        return
    references = [(f, u) for f, u in request.reference_urls() if u.startswith(("https://", "http://"))]
    if not references:
        return
    if failures := services.preflight.check_all(references):
        raise RequestRejected(
            "a reference could not be fetched as a provider would fetch it",
            [FieldError(failure.field, failure.message) for failure in failures],
            422,
            reason="preflight",
        )


def _estimate_and_reserve(
    services: Services, request: VideoRequest, owner: Owner, job_id: str
) -> tuple[Decimal | None, list[dict[str, Any]]]:
    """The job's estimated cost, and the budget reservation to write with it (none without a budget)."""
    model = (services.catalog.models() or {}).get(request.model)
    estimate = estimate_cost_usd(request, model) if model is not None else None
    if not services.settings.budgets_table:
        return estimate, []
    limits = services.budgets.limits(owner.id)
    if not limits.any:
        return estimate, []
    if estimate is None:
        raise RequestRejected(
            "cost cannot be estimated under a budget",
            [FieldError("model", f"{request.model}'s prices are not understood, so no budget can be kept")],
            402,
            reason="budget",
        )
    try:
        return estimate, services.budgets.reservation(owner.id, job_id, estimate, limits)
    except OverBudget:
        raise _over_budget(owner, estimate) from None


def _over_budget(owner: Owner, estimate: Decimal | None) -> RequestRejected:
    return RequestRejected(
        "budget exceeded",
        [FieldError("body", f"the estimated {estimate} USD does not fit what is left of {owner.id}'s budget")],
        402,
        reason="budget",
    )


def _rejected(door: Door, rejected: RequestRejected) -> RequestRejected:
    """Count and log a refusal (never its body: only the reason and the fields named)."""
    emit(Metric.JOBS_REJECTED, door=door.value, reason=rejected.reason)
    logger.info(
        "request rejected",
        extra={"door": door.value, "reason": rejected.message, "fields": [e.field for e in rejected.errors]},
    )
    return rejected


def _previous_openrouter_job(services: Services, request: VideoRequest, owner: Owner) -> str | None:
    """OpenRouter's id of the completed job ``previous_job_id`` names, which must be the same owner's (any
    other job is 404, as on the API: whether it exists is not the caller's to learn)."""
    if request.previous_job_id is None:
        return None
    previous = services.store.get(request.previous_job_id)
    if previous is None or not owns(owner.id, previous.caller):
        raise RequestRejected(
            f"no video job {request.previous_job_id}",
            [FieldError("previous_job_id", "no such job of yours")],
            404,
            reason="not_found",
        )
    if previous.status is not JobStatus.COMPLETED or not previous.openrouter_job_id:
        raise RequestRejected(
            "previous job not completed",
            [
                FieldError(
                    "previous_job_id",
                    f"job {previous.id} is {previous.status.value}: only a completed job can be continued",
                )
            ],
        )
    return previous.openrouter_job_id


def find_earlier(
    services: Services, identity: RequestIdentity, request_hash: str | None = None, enqueue: bool = True
) -> Accepted | None:
    """The job an earlier delivery of this request made, if any (re-queued if it is still queued, unless
    ``enqueue`` is False: the caller does it). With ``request_hash``, a job made from another request is
    refused (the API's key reused for a new body)."""
    job = services.store.get(identity.job_id)
    if job is None:
        return None
    if request_hash is not None and job.request_fingerprint not in (None, request_hash):
        raise RequestRejected(
            "request does not match the earlier request with the same identity",
            [
                FieldError(
                    identity.field,
                    f"{identity.field} was already used for job {job.id} with another request body; "
                    "use a new key for a new request",
                )
            ],
            422,
            reason="idempotency_mismatch",
        )
    annotate_job(job.id)
    if job.status is JobStatus.QUEUED and enqueue:
        # The first delivery may have died between its write and its queue message. Another message is
        # harmless: submit claims the job before sending it, so it is sent once however often it is queued.
        services.queue.enqueue(job.id)
    logger.info("request replayed", extra={"door": identity.door.value, "status": job.status.value})
    return Accepted(job, replayed=True)


def reject_event(services: Services, door: Door, source: str, rejected: RequestRejected) -> None:
    """S3 and EventBridge callers get no HTTP answer: tell them through a VideoRejected event."""
    services.publisher.publish(
        DetailType.REJECTED,
        {"door": door.value, "source": source, **rejected.to_body()["error"]},  # type: ignore[dict-item]
    )
