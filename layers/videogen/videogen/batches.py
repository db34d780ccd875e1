"""Batches: a manifest of requests (one JSON object a line) made into one job per valid line, followed as one
thing, answered with one results file and one ``BatchCompleted`` event.

Where the pieces are, and why:

* The manifest is read as a stream (a ranged S3 GET, line by line), never held whole: memory stays one read
  chunk plus one line (a line is at most intake.MAX_REQUEST_BYTES, longer ones are refused unread) plus ten
  job ids waiting for their SendMessageBatch, whatever the manifest's size.
* A line's job id derives from (door ``batch``, batch id, line number) through intake.RequestIdentity, so
  the job record is the line's dedupe record: a crash, a redelivered message or a continuation that reads a
  line again finds its job (one conditional write made it) and never makes a second one.
* Progress is a checkpoint on the batch record (next line, its byte offset, the counts so far), written
  only after the queue messages of every line before it were sent. An invocation near its time limit
  saves it and queues its own continuation on the batch queue; a crash is retried by SQS from the last
  checkpoint. One invocation works on a batch at a time (a lease on the record); a message that finds the
  lease held is dropped, and the holder looks at the record again after giving the lease back, so a
  change made meanwhile (a cancel, the last job's end) is never missed.
* Jobs' ends are counted by the outbox (publish, ``count_end``): a transaction marks the job counted and
  adds one to its status on the batch record, so a redelivered end counts once. When the intake has read
  every line and every job has ended, the batch function writes ``batches/<id>/results.jsonl`` (the jobs
  from the ``by_batch`` index, merged with the refused lines, streamed into S3) and publishes one
  ``BatchCompleted``; a conditional write on the record makes the ending happen once.

Items of the batches table (key ``batch_id``, ``item``): ``batch`` (the record) and ``error#<line>`` (each
refused line's errors, written as it is read: an S3 object cannot be appended to across invocations, so
``errors.jsonl`` is written from them when the intake ends).
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from videogen import intake
from videogen.aws import cancellation_reasons, client
from videogen.cancel import cancel_job
from videogen.errors import FieldError, RequestRejected
from videogen.events import DetailType
from videogen.intake import BatchLine, RequestIdentity
from videogen.jobs import BATCH_INDEX, dynamo_values, plain_item
from videogen.models import TERMINAL_STATUSES, Door, Job, JobStatus, utcnow
from videogen.observability import Metric, emit, logger
from videogen.owners import Owner
from videogen.services import Services, new_job_id
from videogen.storage import ObjectChanged

MAX_LINES = 100_000
MAX_CLIENT_REF_CHARS = 256
# The API's size limit: Lambda takes at most 6 MB of synchronous request (the whole API Gateway event, of
# which the body is most); API Gateway's own 10 MB is never reached.
MAX_API_BODY_BYTES = 5 * 1024 * 1024
# Lines between checkpoints: a crash reads at most this many lines again (each finds its job).
CHECKPOINT_LINES = 500
# Lines' jobs held before they are written (intake.accept's ``defer``): their queue messages follow.
WRITE_BATCH = 10
RECORD = "batch"
ENDED = sorted(status.value for status in TERMINAL_STATUSES)
# A refused line's status in counts and results.
REJECTED = "rejected"

Action = Literal["intake", "cancel", "complete"]


class Batch(BaseModel):
    """The batch record (item ``batch``) and, through ``view``, the body of GET /batches/{id}."""

    model_config = ConfigDict(extra="ignore")

    batch_id: str
    owner: str
    door: Door
    # The S3 object the manifest came from (its version or ETag), or "api".
    source: str
    manifest_bucket: str
    manifest_key: str
    manifest_etag: str | None = None
    manifest_version_id: str | None = None
    # The S3 door: the request object's receipt (requests/<name>.batch.json) and its notification's sequencer.
    receipt_key: str | None = None
    sequencer: str | None = None
    errors_key: str
    fingerprint: str | None = None  # the API's Idempotency-Key: sha256 of the body it came with
    created_at: str = Field(default_factory=utcnow)
    finished_at: str | None = None
    next_line: int = 1
    next_offset: int = 0
    lines: int = 0
    accepted: int = 0
    rejected: int = 0
    ended: dict[str, int] = Field(default_factory=lambda: dict.fromkeys(ENDED, 0))
    intake_done: bool = False
    intake_error: str | None = None
    errors_written: bool = False
    cancelled_at: str | None = None
    cancel_swept: bool = False
    results: str | None = None
    completed_event_at: str | None = None

    @property
    def ended_total(self) -> int:
        return sum(self.ended.values())

    @property
    def status(self) -> str:
        if self.finished_at:
            return "finished"
        return "running" if self.intake_done else "reading"

    @property
    def counts(self) -> dict[str, int]:
        """Lines by status so far: refused, not ended yet, and each terminal status."""
        return {REJECTED: self.rejected, "pending": self.accepted - self.ended_total, **self.ended}

    @property
    def complete(self) -> bool:
        return self.intake_done and self.ended_total >= self.accepted

    def work_due(self) -> bool:
        """Whether the batch function has something to do for it."""
        if self.completed_event_at:
            return False
        return not self.intake_done or (self.cancelled_at is not None and not self.cancel_swept) or self.complete

    def view(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "status": self.status,
            "source": self.source,
            "door": self.door.value,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "cancelled_at": self.cancelled_at,
            "lines": self.lines,
            "jobs": self.accepted,
            "counts": self.counts,
            "errors": f"s3://{self.manifest_bucket}/{self.errors_key}" if self.errors_written else None,
            "results": self.results,
            "intake_error": self.intake_error,
        }


# --- the manifest ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManifestLine:
    number: int  # 1-based, as an editor numbers it
    end: int  # byte offset just past its line feed: where the next line starts
    text: bytes | None  # None: longer than intake.MAX_REQUEST_BYTES, skipped unread


def read_lines(
    chunks: Iterable[bytes],
    *,
    start_offset: int = 0,
    start_line: int = 1,
    max_line_bytes: int = intake.MAX_REQUEST_BYTES,
) -> Iterator[ManifestLine]:
    """The lines of a manifest read from ``start_offset`` (the start of line ``start_line``). Holds one line
    at most: the bytes of a line longer than ``max_line_bytes`` are dropped as they come."""
    buffer = bytearray()
    overlong = False
    start = start_offset  # where the current line starts
    size = 0  # its bytes so far
    number = start_line
    for chunk in chunks:
        pos = 0
        while pos < len(chunk):
            newline = chunk.find(b"\n", pos)
            stop = len(chunk) if newline < 0 else newline + 1
            if not overlong:
                if size + stop - pos > max_line_bytes + 2:  # + its CR LF
                    overlong = True
                    buffer = bytearray()
                else:
                    buffer += chunk[pos:stop]
            size += stop - pos
            pos = stop
            if newline >= 0:
                start += size
                yield ManifestLine(number, start, None if overlong else bytes(buffer).rstrip(b"\r\n"))
                number, size, buffer, overlong = number + 1, 0, bytearray(), False
    if size:
        yield ManifestLine(number, start + size, None if overlong else bytes(buffer).rstrip(b"\r\n"))


def split_line(text: bytes | None) -> tuple[dict[str, Any], str | None]:
    """A line → (the request object, the caller's ``client_ref``), or RequestRejected naming the field."""
    if text is None:
        raise RequestRejected(
            "line too large",
            [FieldError("body", f"a line holds at most {intake.MAX_REQUEST_BYTES} bytes")],
            413,
            reason="too_large",
        )
    try:
        value = json.loads(text)
    except RecursionError:
        raise RequestRejected(
            "line nested too deeply", [FieldError("body", "nested too deeply")], 400, reason="malformed"
        ) from None
    except ValueError as exc:  # bad JSON or bad UTF-8
        raise RequestRejected(
            "line is not valid JSON", [FieldError("body", str(exc))], 400, reason="malformed"
        ) from None
    if not isinstance(value, dict):
        raise RequestRejected("line must be a JSON object", [FieldError("body", "expected an object")], 400)
    ref = value.pop("client_ref", None)
    if ref is not None and (not isinstance(ref, str) or not 1 <= len(ref) <= MAX_CLIENT_REF_CHARS):
        raise RequestRejected(
            "invalid client_ref", [FieldError("client_ref", f"a string of 1 to {MAX_CLIENT_REF_CHARS} characters")]
        )
    return value, ref


def api_manifest(body: str | bytes | None) -> Iterator[bytes]:
    """The body of POST /batches as manifest lines: a JSON array (one line per element) or JSONL as it is.
    RequestRejected (400/413/422 naming ``body``) when it is no manifest at all; a bad line is the line's."""
    if body is None or not body.strip():
        raise RequestRejected("request body is empty", [FieldError("body", "a JSON array or JSON lines")], 400)
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if len(data) > MAX_API_BODY_BYTES:
        raise RequestRejected(
            "batch too large",
            [FieldError("body", f"at most {MAX_API_BODY_BYTES} bytes; larger manifests go to S3 requests/*.jsonl")],
            413,
            reason="too_large",
        )
    if data.lstrip()[:1] == b"[":
        try:
            items = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise RequestRejected(
                "request body is not a valid JSON array", [FieldError("body", str(exc)[:200])], 400, reason="malformed"
            ) from None
        if not isinstance(items, list) or not items:
            raise RequestRejected("a batch needs at least one line", [FieldError("body", "an empty array")])
        lines: list[bytes] = [json.dumps(item, separators=(",", ":")).encode() for item in items]
    else:
        lines = data.split(b"\n")
        while lines and not lines[-1].strip():
            lines.pop()
    if len(lines) > MAX_LINES:
        raise RequestRejected("too many lines", [FieldError("body", f"at most {MAX_LINES} lines")], 413)
    return (line.rstrip(b"\r") + b"\n" for line in lines)


# --- the store ---------------------------------------------------------------------------------------


class BatchExists(Exception):
    """A batch with this id is already recorded."""


@dataclass
class BatchStore:
    table: str
    jobs_table: str

    def create(self, batch: Batch) -> None:
        item = {"item": RECORD, **batch.model_dump(mode="json", exclude_none=True)}
        try:
            client("dynamodb").put_item(
                TableName=self.table, Item=dynamo_values(item), ConditionExpression="attribute_not_exists(batch_id)"
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise BatchExists(batch.batch_id) from None
            raise

    def get(self, batch_id: str) -> Batch | None:
        found = client("dynamodb").get_item(TableName=self.table, Key=_key(batch_id), ConsistentRead=True).get("Item")
        return Batch.model_validate(plain_item(found)) if found else None

    def update(self, batch_id: str, update: str, condition: str | None, values: dict[str, Any]) -> Batch | None:
        """An update of the record (None: its condition failed). Attributes are written ``#name``."""
        names = {f"#{n}": n for n in _names(f"{update} {condition or ''}")}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": _key(batch_id),
            "UpdateExpression": update,
            "ConditionExpression": f"attribute_exists(batch_id) AND ({condition})"
            if condition
            else "attribute_exists(batch_id)",
            "ReturnValues": "ALL_NEW",
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if values:
            kwargs["ExpressionAttributeValues"] = dynamo_values(values)
        try:
            return Batch.model_validate(plain_item(client("dynamodb").update_item(**kwargs)["Attributes"]))
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise

    def claim(self, batch_id: str, holder: str, seconds: int) -> bool:
        now = time.time()
        return (
            self.update(
                batch_id,
                "SET #lease_holder = :holder, #lease_until = :until",
                "attribute_not_exists(#lease_until) OR #lease_until < :now OR #lease_holder = :holder",
                {":holder": holder, ":until": now + seconds, ":now": now},
            )
            is not None
        )

    def release(self, batch_id: str, holder: str) -> None:
        self.update(batch_id, "REMOVE #lease_holder, #lease_until", "#lease_holder = :holder", {":holder": holder})

    def checkpoint(self, batch: Batch, *, done: bool, error: str | None = None) -> Batch:
        """Save how far the intake read (the counts with it), unless another invocation saved a later point:
        the record as it is now either way."""
        values: dict[str, Any] = {
            ":line": batch.next_line,
            ":offset": batch.next_offset,
            ":lines": batch.lines,
            ":accepted": batch.accepted,
            ":rejected": batch.rejected,
            ":done": done,
        }
        update = "SET #next_line = :line, #next_offset = :offset, #lines = :lines, #accepted = :accepted, "
        update += "#rejected = :rejected, #intake_done = :done"
        if error is not None:
            update += ", #intake_error = :error"
            values[":error"] = error
        saved = self.update(
            batch.batch_id, update, "#next_line <= :line AND #intake_done = :false", {**values, ":false": False}
        )
        current = saved or self.get(batch.batch_id)
        assert current is not None
        return current

    def put_error(self, batch_id: str, line: int, client_ref: str | None, errors: list[FieldError]) -> None:
        item: dict[str, Any] = {
            "batch_id": batch_id,
            "item": f"error#{line:07d}",
            "line": line,
            "errors": [{"field": e.field, "message": e.message} for e in errors],
        }
        if client_ref is not None:
            item["client_ref"] = client_ref
        client("dynamodb").put_item(TableName=self.table, Item=dynamo_values(item))

    def errors(self, batch_id: str) -> Iterator[dict[str, Any]]:
        """The refused lines in line order, page by page."""
        paginator = client("dynamodb").get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table,
            KeyConditionExpression="batch_id = :b AND begins_with(#item, :prefix)",
            ExpressionAttributeNames={"#item": "item"},
            ExpressionAttributeValues=dynamo_values({":b": batch_id, ":prefix": "error#"}),
            ConsistentRead=True,
        ):
            yield from (plain_item(item) for item in page["Items"])

    def jobs(
        self, batch_id: str, *, status: str | None = None, limit: int | None = None, page_token: str | None = None
    ) -> tuple[list[Job], str | None]:
        """One page of the batch's jobs in line order (the ``by_batch`` index); (jobs, next page token)."""
        kwargs = self._jobs_query(batch_id, status)
        if limit is not None:
            kwargs["Limit"] = limit
        if page_token:
            kwargs["ExclusiveStartKey"] = _decode_token(page_token, batch_id)
        page = client("dynamodb").query(**kwargs)
        last = page.get("LastEvaluatedKey")
        return [Job.model_validate(plain_item(i)) for i in page.get("Items", [])], _encode_token(last) if last else None

    def all_jobs(self, batch_id: str, *, not_ended: bool = False) -> Iterator[Job]:
        kwargs = self._jobs_query(batch_id, None)
        if not_ended:
            placeholders = {f":t{i}": s for i, s in enumerate(ENDED)}
            kwargs["FilterExpression"] = f"NOT (#s IN ({', '.join(placeholders)}))"
            kwargs["ExpressionAttributeNames"] = {"#s": "status"}
            kwargs["ExpressionAttributeValues"].update(dynamo_values(placeholders))
        for page in client("dynamodb").get_paginator("query").paginate(**kwargs):
            yield from (Job.model_validate(plain_item(item)) for item in page["Items"])

    def _jobs_query(self, batch_id: str, status: str | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "TableName": self.jobs_table,
            "IndexName": BATCH_INDEX,
            "KeyConditionExpression": "batch_id = :b",
            "ExpressionAttributeValues": dynamo_values({":b": batch_id}),
        }
        if status:
            kwargs["FilterExpression"] = "#s = :status"
            kwargs["ExpressionAttributeNames"] = {"#s": "status"}
            kwargs["ExpressionAttributeValues"].update(dynamo_values({":status": status}))
        return kwargs

    def count_end(self, job: Job) -> bool:
        """Add the ended job to its batch's counts, once: the job is marked counted in the same transaction.
        False if it was counted before (a redelivered end) or its batch is gone."""
        assert job.batch_id and job.status.terminal
        try:
            client("dynamodb").transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.jobs_table,
                            "Key": {"id": {"S": job.id}},
                            "UpdateExpression": "SET batch_counted = :status",
                            "ConditionExpression": "attribute_exists(id) AND attribute_not_exists(batch_counted)",
                            "ExpressionAttributeValues": {":status": {"S": job.status.value}},
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": _key(job.batch_id),
                            "UpdateExpression": "ADD #ended.#status :one",
                            "ConditionExpression": "attribute_exists(batch_id)",
                            "ExpressionAttributeNames": {"#ended": "ended", "#status": job.status.value},
                            "ExpressionAttributeValues": {":one": {"N": "1"}},
                        }
                    },
                ]
            )
        except ClientError as exc:
            if "ConditionalCheckFailed" in cancellation_reasons(exc):
                return False
            raise
        return True


def _key(batch_id: str) -> dict[str, Any]:
    return {"batch_id": {"S": batch_id}, "item": {"S": RECORD}}


def _names(expression: str) -> set[str]:
    return set(re.findall(r"#(\w+)", expression))


_TOKEN_KEYS = {"batch_id": "S", "batch_line": "N", "id": "S"}


def _encode_token(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def _decode_token(token: str, batch_id: str) -> dict[str, Any]:
    """A page token back into its ExclusiveStartKey, checked to be exactly one of this batch's listing."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, RecursionError) as exc:
        raise ValueError("invalid page token") from exc
    if (
        not isinstance(key, dict)
        or set(key) != set(_TOKEN_KEYS)
        or not all(
            isinstance(v, dict) and set(v) == {kind} and isinstance(v[kind], str)
            for v, kind in ((key[k], t) for k, t in _TOKEN_KEYS.items())
        )
        or key["batch_id"]["S"] != batch_id
        or not key["batch_line"]["N"].isdigit()
    ):
        raise ValueError("invalid page token")
    return key


# --- ids and starting a batch ------------------------------------------------------------------------


def s3_batch_id(bucket: str, key: str, version: str) -> str:
    """The batch of one upload of a manifest: the same object (version, or ETag + sequencer) is one batch."""
    return RequestIdentity(Door.BATCH, f"s3:{bucket}", f"{key}#{version}").job_id


def api_batch_id(owner: str, idempotency_key: str) -> str:
    return RequestIdentity(Door.BATCH, f"api:{owner}", idempotency_key).job_id


def line_identity(batch_id: str, line: int) -> RequestIdentity:
    return RequestIdentity(Door.BATCH, batch_id, str(line))


@dataclass
class BatchQueue:
    """The queue that drives the batch function: ``{"batch_id": ...}``, one message per thing to look at."""

    queue_url: str

    def send(self, batch_id: str, action: Action = "intake") -> None:
        client("sqs").send_message(
            QueueUrl=self.queue_url, MessageBody=json.dumps({"batch_id": batch_id, "action": action})
        )


def batch_store(services: Services) -> BatchStore:
    return BatchStore(services.settings.batches_table, services.settings.jobs_table)


def start(services: Services, batch: Batch) -> tuple[Batch, bool]:
    """Record the batch and queue its intake; (the batch, False) if it was recorded before (then its
    intake is queued again, in case the first start died before its message)."""
    store = batch_store(services)
    created = True
    try:
        store.create(batch)
    except BatchExists:
        created = False
        existing = store.get(batch.batch_id)
        assert existing is not None
        batch = existing
    if batch.work_due():
        BatchQueue(services.settings.batch_queue_url).send(batch.batch_id)
    logger.info("batch started" if created else "batch replayed", extra={"batch_id": batch.batch_id})
    return batch, created


def start_api_batch(
    services: Services, owner: Owner, body: str | bytes | None, idempotency_key: str | None
) -> tuple[Batch, bool]:
    """POST /batches: the body (a JSON array or JSON lines) stored as the batch's manifest and its intake
    queued; (the batch, whether it is a replay of the same ``Idempotency-Key`` with the same body)."""
    manifest = b"".join(api_manifest(body))
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else (body or b"")
    digest = hashlib.sha256(raw).hexdigest()
    store = batch_store(services)
    batch_id = api_batch_id(owner.id, idempotency_key) if idempotency_key else new_job_id()
    if idempotency_key and (earlier := store.get(batch_id)) is not None:
        if earlier.fingerprint != digest:
            raise RequestRejected(
                "request does not match the earlier request with the same identity",
                [
                    FieldError(
                        "Idempotency-Key",
                        f"Idempotency-Key was already used for batch {batch_id} with another body; "
                        "use a new key for a new batch",
                    )
                ],
                422,
                reason="idempotency_mismatch",
            )
        return start(services, earlier)[0], True
    key = f"batches/{batch_id}/manifest.jsonl"
    etag = services.storage.put_bytes(key, manifest, "application/x-ndjson")
    batch, created = start(
        services,
        Batch(
            batch_id=batch_id,
            owner=owner.id,
            door=Door.API,
            source="api",
            manifest_bucket=services.settings.bucket,
            manifest_key=key,
            manifest_etag=etag.strip('"'),
            errors_key=f"batches/{batch_id}/errors.jsonl",
            fingerprint=digest,
        ),
    )
    return batch, not created


def request_cancel(services: Services, batch_id: str) -> Batch | None:
    """Stop the intake and cancel every job that has not ended (the batch function does it)."""
    store = batch_store(services)
    batch = store.update(batch_id, "SET #cancelled_at = if_not_exists(#cancelled_at, :now)", None, {":now": utcnow()})
    if batch is not None and batch.work_due():
        BatchQueue(services.settings.batch_queue_url).send(batch_id, "cancel")
    return batch


def job_ended(services: Services, job: Job) -> None:
    """The outbox saw a batch line's job end: count it, and queue the batch's ending when it was the last."""
    if not job.batch_id:
        return
    store = batch_store(services)
    if not store.count_end(job):
        logger.info("batch end already counted", extra={"batch_id": job.batch_id, "job_id": job.id})
    batch = store.get(job.batch_id)
    if batch is not None and batch.complete and not batch.completed_event_at:
        BatchQueue(services.settings.batch_queue_url).send(batch.batch_id, "complete")


# --- the batch function ------------------------------------------------------------------------------


@dataclass
class Outcome:
    batch_id: str
    result: str  # busy, continued, done, gone
    lines_read: int = 0


Receipt = Callable[[Services, Batch], None]


def drive(
    services: Services,
    batch_id: str,
    *,
    holder: str,
    seconds_left: Callable[[], float],
    receipt: Receipt | None = None,
) -> Outcome:
    """Do what the batch needs (read its manifest, cancel its jobs, end it), holding its lease. ``receipt``
    answers the S3 door's caller (requests/<name>.batch.json) with the record as it stands."""
    store = batch_store(services)
    settings = services.settings
    read = 0
    while True:
        if not store.claim(batch_id, holder, settings.batch_lease_seconds):
            logger.info("batch held by another invocation", extra={"batch_id": batch_id})
            return Outcome(batch_id, "busy", read)
        try:
            batch = store.get(batch_id)
            if batch is None:
                return Outcome(batch_id, "gone", read)
            result, lines = _work(services, store, batch, seconds_left, receipt)
            read += lines
        finally:
            store.release(batch_id, holder)
        if result == "continued":
            # After the release: the continuation's invocation must find the lease free.
            BatchQueue(settings.batch_queue_url).send(batch_id)
            return Outcome(batch_id, result, read)
        # Anything written while the lease was held (a cancel, the last job's end) found it busy and its
        # message was dropped: look again, now that the lease is free for such messages too.
        again = store.get(batch_id)
        if again is None or not again.work_due():
            return Outcome(batch_id, "done", read)


def _work(
    services: Services, store: BatchStore, batch: Batch, seconds_left: Callable[[], float], receipt: Receipt | None
) -> tuple[str, int]:
    lines = 0
    if not batch.intake_done:
        before = (batch.accepted, batch.rejected)
        batch, lines, finished = _read_manifest(services, store, batch, seconds_left)
        for outcome, count in (("accepted", batch.accepted - before[0]), ("rejected", batch.rejected - before[1])):
            if count > 0:
                emit(Metric.BATCH_LINES, count, outcome=outcome)
        if receipt is not None:
            receipt(services, batch)
        if not finished:
            return "continued", lines
    if not batch.errors_written:
        _write_errors(services, store, batch)
        batch = store.update(batch.batch_id, "SET #errors_written = :true", None, {":true": True}) or batch
        if receipt is not None:
            receipt(services, batch)
    if batch.cancelled_at and not batch.cancel_swept:
        if not _sweep(services, store, batch, seconds_left):
            return "continued", lines
        batch = store.update(batch.batch_id, "SET #cancel_swept = :true", None, {":true": True}) or batch
    if batch.complete and not batch.completed_event_at:
        batch = _complete(services, store, batch)
        if receipt is not None:
            receipt(services, batch)
    return "done", lines


def _read_manifest(
    services: Services, store: BatchStore, batch: Batch, seconds_left: Callable[[], float]
) -> tuple[Batch, int, bool]:
    """Read from the checkpoint on: (the record, lines read, whether the manifest was read to its end)."""
    settings = services.settings
    per_invocation = settings.batch_lines_per_invocation
    storage = services.storage
    pending: list[str] = []  # ids to queue
    unwritten: list[Job] = []  # jobs to write (intake.accept's ``defer``)
    read = 0
    since_checkpoint = 0
    owner = Owner(batch.owner)

    if batch.cancelled_at:
        return store.checkpoint(batch, done=True, error="cancelled before the manifest was read"), 0, True

    def write() -> None:
        if unwritten:
            existing = set(services.store.create_many(unwritten))
            for job in unwritten:
                found = services.store.get(job.id) if job.id in existing else job
                if found is not None and found.status is JobStatus.QUEUED:
                    pending.append(job.id)
            unwritten.clear()

    def flush() -> None:
        write()
        if pending:
            services.submit_batches.enqueue_many(pending)
            pending.clear()

    def save(done: bool, error: str | None = None) -> Batch:
        flush()  # a checkpoint only ever follows the queue messages of the lines before it
        return store.checkpoint(batch, done=done, error=error)

    try:
        chunks = storage.stream(
            batch.manifest_key, start=batch.next_offset, etag=batch.manifest_etag, version_id=batch.manifest_version_id
        )
        for line in read_lines(chunks, start_offset=batch.next_offset, start_line=batch.next_line):
            if line.number > MAX_LINES:
                store.put_error(
                    batch.batch_id,
                    line.number,
                    None,
                    [
                        FieldError(
                            "body", f"a manifest holds at most {MAX_LINES} lines: line {line.number} on was not read"
                        )
                    ],
                )
                batch.rejected += 1
                batch.next_line, batch.next_offset = line.number + 1, line.end
                return save(True, f"longer than {MAX_LINES} lines: the rest was not read"), read, True
            if line.text is not None and not line.text.strip():
                batch.next_line, batch.next_offset = line.number + 1, line.end
                continue  # a blank line is no request
            _take_line(services, store, batch, owner, line, pending, unwritten)
            if len(unwritten) >= WRITE_BATCH:
                write()
            if len(pending) >= 10:
                services.submit_batches.enqueue_many(pending[:10])
                del pending[:10]
            read += 1
            since_checkpoint += 1
            batch.lines = max(batch.lines, line.number)
            batch.next_line, batch.next_offset = line.number + 1, line.end
            out_of_time = seconds_left() < settings.batch_margin_seconds
            if (per_invocation and read >= per_invocation) or out_of_time:
                return save(False), read, False
            if since_checkpoint >= CHECKPOINT_LINES:
                since_checkpoint = 0
                current = save(False)
                if current.cancelled_at:
                    return save(True, "cancelled: the rest of the manifest was not read"), read, True
    except ObjectChanged as changed:
        flush()
        why = "the manifest was deleted" if changed.missing else "the manifest was replaced by a newer upload"
        logger.warning("batch manifest changed while it was read", extra={"batch_id": batch.batch_id, "why": why})
        return store.checkpoint(batch, done=True, error=f"{why}: the rest was not read"), read, True
    return save(True), read, True


def _take_line(
    services: Services,
    store: BatchStore,
    batch: Batch,
    owner: Owner,
    line: ManifestLine,
    pending: list[str],
    unwritten: list[Job],
) -> None:
    client_ref: str | None = None
    try:
        payload, client_ref = split_line(line.text)
        accepted = intake.accept(
            services,
            payload,
            door=batch.door,
            owner=owner,
            identity=line_identity(batch.batch_id, line.number),
            source=f"{batch.source}#line={line.number}",
            batch=BatchLine(batch.batch_id, line.number, client_ref),
            enqueue=False,
            defer=True,
        )
    except RequestRejected as rejected:
        store.put_error(
            batch.batch_id, line.number, client_ref, rejected.errors or [FieldError("body", rejected.message)]
        )
        batch.rejected += 1
        return
    batch.accepted += 1
    if accepted.deferred:
        unwritten.append(accepted.job)
    elif accepted.job.status is JobStatus.QUEUED:
        pending.append(accepted.job.id)


def _write_errors(services: Services, store: BatchStore, batch: Batch) -> None:
    def lines() -> Iterator[bytes]:
        for item in store.errors(batch.batch_id):
            for error in item["errors"]:
                yield (
                    json.dumps({"line": item["line"], "field": error["field"], "message": error["message"]}) + "\n"
                ).encode()

    services.storage.upload_lines(batch.errors_key, lines())


def _sweep(services: Services, store: BatchStore, batch: Batch, seconds_left: Callable[[], float]) -> bool:
    """Cancel every job of the batch that has not ended; False if time ran out first (to be continued)."""
    for job in store.all_jobs(batch.batch_id, not_ended=True):
        if seconds_left() < services.settings.batch_margin_seconds:
            return False
        current = services.store.get(job.id)
        if current is not None and not current.status.terminal:
            cancel_job(services, current)
    return True


def results_key(batch_id: str) -> str:
    return f"batches/{batch_id}/results.jsonl"


def result_lines(services: Services, store: BatchStore, batch: Batch) -> Iterator[bytes]:
    """Every line of the batch, in line order: its job's outcome, or why it was refused."""

    def jobs() -> Iterator[tuple[int, dict[str, Any]]]:
        for job in store.all_jobs(batch.batch_id):
            if not job.status.terminal:
                # The index is eventually consistent: a job that just ended may still show its last status.
                job = services.store.get(job.id) or job
            yield (
                job.batch_line or 0,
                {
                    "line": job.batch_line,
                    "client_ref": job.client_ref,
                    "job_id": job.id,
                    "status": job.status.value,
                    "s3_uri": job.video.s3_uri if job.video else None,
                    "sha256": job.video.sha256 if job.video else None,
                    "error": job.error,
                    "cost": job.usage.cost if job.usage else None,
                },
            )

    def refused() -> Iterator[tuple[int, dict[str, Any]]]:
        for item in store.errors(batch.batch_id):
            message = "; ".join(f"{e['field']}: {e['message']}" for e in item["errors"])
            yield (
                int(item["line"]),
                {
                    "line": item["line"],
                    "client_ref": item.get("client_ref"),
                    "job_id": None,
                    "status": REJECTED,
                    "s3_uri": None,
                    "sha256": None,
                    "error": message,
                    "cost": None,
                },
            )

    for _, row in heapq.merge(jobs(), refused(), key=lambda pair: pair[0]):
        yield (json.dumps(row, ensure_ascii=False) + "\n").encode()


def _complete(services: Services, store: BatchStore, batch: Batch) -> Batch:
    """Write the results file and publish the one BatchCompleted (held under the lease; the record's
    ``completed_event_at`` is written after the event, so a crash in between sends it again: the one
    repeat, as for the jobs' events, carrying the same ``idempotency_key``)."""
    key = results_key(batch.batch_id)
    uri = f"s3://{services.settings.bucket}/{key}"
    if not batch.finished_at:
        services.storage.upload_lines(key, result_lines(services, store, batch))
        batch = (
            store.update(
                batch.batch_id,
                "SET #finished_at = if_not_exists(#finished_at, :now), #results = :uri",
                None,
                {":now": utcnow(), ":uri": uri},
            )
            or batch
        )
    detail = {
        "batch_id": batch.batch_id,
        "idempotency_key": f"{batch.batch_id}:completed",
        "door": batch.door.value,
        "source": batch.source,
        "lines": batch.lines,
        "jobs": batch.accepted,
        "counts": {k: v for k, v in batch.counts.items() if k != "pending"},
        "results": uri,
        "errors": f"s3://{batch.manifest_bucket}/{batch.errors_key}",
        "created_at": batch.created_at,
        "finished_at": batch.finished_at,
    }
    services.publisher.publish(DetailType.BATCH_COMPLETED, detail)
    marked = store.update(
        batch.batch_id,
        "SET #completed_event_at = :now",
        "attribute_not_exists(#completed_event_at)",
        {":now": utcnow()},
    )
    logger.info("batch completed", extra={"batch_id": batch.batch_id, "counts": batch.counts})
    if marked is not None:  # once per batch (a repeat after a crash is not counted again)
        emit(Metric.BATCHES_COMPLETED)
    return marked or batch
