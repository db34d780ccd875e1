"""The S3 and EventBridge doors: a delivery becomes a job once, however often it is delivered.

S3 notifications and EventBridge events are delivered at least once, and Lambda retries a failed
asynchronous invocation twice. Each delivery carries what identifies its request (intake.RequestIdentity):
for S3 the object's version id, or its ETag and the notification's sequencer where the bucket is not
versioned (a new PUT of the same bytes gets a new sequencer, a redelivery keeps it); for EventBridge the
event's id. A redelivery finds the job its first delivery made and answers with it again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from videogen import batches, intake
from videogen.errors import FieldError, RequestRejected
from videogen.intake import RequestIdentity
from videogen.models import Door
from videogen.observability import logger
from videogen.owners import eventbridge_owner, s3_owner
from videogen.services import Services
from videogen.storage import ObjectChanged

RECEIPT_SUFFIXES = (".job.json", ".error.json", ".batch.json", ".errors.jsonl")
# A manifest: one request per line, made into a batch (videogen.batches) instead of a job.
MANIFEST_SUFFIX = ".jsonl"


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # a new job
    REPLAYED = "replayed"  # a redelivery: the job its first delivery made, answered again
    REJECTED = "rejected"  # invalid: an error receipt and a VideoRejected event
    SUPERSEDED = "superseded"  # the object was replaced since: the newer upload's notification handles it
    SKIPPED = "skipped"  # not a request (a receipt, or a key outside requests/)


@dataclass(frozen=True)
class RequestObject:
    """An S3 request object as its notification names it (the key already URL-decoded)."""

    bucket: str
    key: str
    etag: str | None
    sequencer: str | None
    version_id: str | None = None

    @property
    def identity(self) -> RequestIdentity:
        version = f"version={self.version_id}" if self.version_id else f"etag={self.etag},sequencer={self.sequencer}"
        return RequestIdentity(Door.S3, self.bucket, f"{self.key}#{version}")

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def source(self) -> str:
        return f"{self.uri}?versionId={self.version_id}" if self.version_id else f"{self.uri}#etag={self.etag}"


def take_s3_request(services: Services, obj: RequestObject) -> tuple[Outcome, str | None]:
    """One record of a notification: (outcome, job id). Bad input is answered here (receipt + event) and
    never raised; what is raised is transient (throttling, S3 or DynamoDB unavailable), worth a retry."""
    if obj.key.endswith(RECEIPT_SUFFIXES) or not obj.key.startswith("requests/"):
        return Outcome.SKIPPED, None
    if obj.bucket != services.settings.bucket:
        logger.warning("notification from another bucket ignored", extra={"bucket": obj.bucket})
        return Outcome.SKIPPED, None
    if obj.key.endswith(MANIFEST_SUFFIX):
        return take_s3_batch(services, obj)
    base = obj.key.removesuffix(".json")
    identity = obj.identity
    # A redelivery: its job exists (answered again without reading the object), or its rejection was answered.
    accepted = intake.find_earlier(services, identity)
    if accepted is None and _same_upload(_receipt(services, f"{base}.error.json"), obj):
        logger.info("request already rejected", extra={"door": Door.S3.value, "request": obj.key})
        return Outcome.REJECTED, None
    try:
        if accepted is None:
            payload = services.storage.get_request(
                obj.key, etag=obj.etag, version_id=obj.version_id, max_bytes=intake.MAX_REQUEST_BYTES
            )
            accepted = intake.accept(
                services, payload, door=Door.S3, owner=s3_owner(obj.bucket), identity=identity, source=obj.source
            )
    except ObjectChanged as changed:
        if changed.missing:
            rejected = RequestRejected(
                "request object no longer exists",
                [FieldError("key", f"{obj.key} was deleted before it was read")],
                404,
                reason="missing",
            )
            _answer_rejection(services, obj, base, rejected)
            return Outcome.REJECTED, None
        logger.info("request superseded by a newer upload", extra={"door": Door.S3.value, "request": obj.key})
        return Outcome.SUPERSEDED, None
    except RequestRejected as rejected:
        _answer_rejection(services, obj, base, rejected)
        return Outcome.REJECTED, None
    job = accepted.job
    _write_receipt(
        services,
        obj,
        f"{base}.job.json",
        {"request": obj.key, "id": job.id, "status": "queued"},
        stale=f"{base}.error.json",
    )
    return (Outcome.REPLAYED if accepted.replayed else Outcome.ACCEPTED), job.id


def take_s3_batch(services: Services, obj: RequestObject) -> tuple[Outcome, str | None]:
    """A manifest ``requests/<name>.jsonl``: its batch, started once per upload (the batch id derives from
    the object's identity as a single request's job id does), answered with ``<name>.batch.json``."""
    base = obj.key.removesuffix(MANIFEST_SUFFIX)
    try:
        # Read against the upload the notification names, as a single request is: a newer upload of the key
        # has its own notification, and a deleted one is answered.
        services.storage.get_request(obj.key, etag=obj.etag, version_id=obj.version_id, max_bytes=0)
    except ObjectChanged as changed:
        if not changed.missing:
            logger.info("manifest superseded by a newer upload", extra={"door": Door.S3.value, "request": obj.key})
            return Outcome.SUPERSEDED, None
        rejected = RequestRejected(
            "manifest no longer exists", [FieldError("key", f"{obj.key} was deleted before it was read")], 404
        )
        _answer_rejection(services, obj, base, rejected)
        return Outcome.REJECTED, None
    version = f"version={obj.version_id}" if obj.version_id else f"etag={obj.etag},sequencer={obj.sequencer}"
    batch, created = batches.start(
        services,
        batches.Batch(
            batch_id=batches.s3_batch_id(obj.bucket, obj.key, version),
            owner=s3_owner(obj.bucket).id,
            door=Door.S3,
            source=obj.source,
            manifest_bucket=obj.bucket,
            manifest_key=obj.key,
            manifest_etag=obj.etag,
            manifest_version_id=obj.version_id,
            receipt_key=f"{base}.batch.json",
            sequencer=obj.sequencer,
            errors_key=f"{base}.errors.jsonl",
        ),
    )
    batch_receipt(services, batch)
    return (Outcome.ACCEPTED if created else Outcome.REPLAYED), batch.batch_id


def batch_receipt(services: Services, batch: batches.Batch) -> None:
    """``requests/<name>.batch.json``: the batch id and its counts so far (rewritten as the batch goes on;
    never over the receipt of a newer upload of the same key)."""
    if batch.receipt_key is None:
        return
    obj = RequestObject(
        batch.manifest_bucket, batch.manifest_key, batch.manifest_etag, batch.sequencer, batch.manifest_version_id
    )
    _write_receipt(services, obj, batch.receipt_key, {"request": obj.key, **batch.view()}, stale=None)


def take_event_request(
    services: Services, event_id: str, account: str, source: str, detail: Any
) -> tuple[Outcome, dict[str, Any]]:
    """A ``VideoRequested`` event: (outcome, the answer the handler returns)."""
    try:
        accepted = intake.accept(
            services,
            detail if isinstance(detail, dict) else json.dumps(detail),
            door=Door.EVENTBRIDGE,
            owner=eventbridge_owner(account, source),
            identity=RequestIdentity(Door.EVENTBRIDGE, account, event_id),
            source=f"events:{event_id}",
        )
    except RequestRejected as rejected:
        intake.reject_event(services, Door.EVENTBRIDGE, f"events:{event_id}", rejected)
        return Outcome.REJECTED, {"status": "rejected", "error": rejected.to_body()["error"]}
    outcome = Outcome.REPLAYED if accepted.replayed else Outcome.ACCEPTED
    return outcome, {"status": accepted.job.status.value, "id": accepted.job.id, "replayed": accepted.replayed}


def _answer_rejection(services: Services, obj: RequestObject, base: str, rejected: RequestRejected) -> None:
    body = {"request": obj.key, **rejected.to_body()}
    if _write_receipt(services, obj, f"{base}.error.json", body, stale=None):
        intake.reject_event(services, Door.S3, obj.uri, rejected)


def _write_receipt(
    services: Services, obj: RequestObject, key: str, body: dict[str, Any], *, stale: str | None
) -> bool:
    """Write a receipt unless one about a newer upload of the same key is there: a late redelivery of an
    older upload must never overwrite the answer to a newer one. Returns whether it was written."""
    current = _receipt(services, key)
    if _newer(current.get("sequencer"), obj.sequencer):
        logger.info("receipt of a newer upload kept", extra={"door": Door.S3.value, "request": obj.key})
        return False
    services.storage.put_json(key, json.dumps({**body, "source": obj.source, "sequencer": obj.sequencer}, indent=2))
    if stale is not None and not _newer(_receipt(services, stale).get("sequencer"), obj.sequencer):
        services.storage.delete(stale)  # the other receipt answered an older upload of this key
    return True


def _same_upload(receipt: dict[str, Any], obj: RequestObject) -> bool:
    """Whether a receipt answered the upload this notification names, by the rule of RequestObject.identity:
    its version id, else its ETag and its sequencer (the same bytes uploaded again have a new sequencer and
    are a new upload, answered again; a redelivery keeps the sequencer)."""
    if receipt.get("source") != obj.source:
        return False
    return bool(obj.version_id) or receipt.get("sequencer") == obj.sequencer


def _receipt(services: Services, key: str) -> dict[str, Any]:
    text = services.storage.get_text_if_exists(key)
    if text is None:
        return {}
    try:
        body = json.loads(text)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _newer(theirs: object, ours: str | None) -> bool:
    """S3's rule: sequencers of one key compare as hex strings once the shorter is left-padded with zeros."""
    if not isinstance(theirs, str) or not ours:
        return False
    width = max(len(theirs), len(ours))
    return theirs.rjust(width, "0").upper() > ours.rjust(width, "0").upper()
