"""S3 door: a request JSON put under requests/ becomes a job, once per upload.

The job id is written back next to the request as ``requests/<name>.job.json``; a rejected request
gets ``requests/<name>.error.json`` with the reason (and a VideoRejected event). Those receipts also
match the bucket notification, so they are recognised and skipped. Records are independent: each is
idempotent (videogen.doors), one that fails for a transient reason fails the invocation only after the
others were handled, and Lambda's retry then finds their jobs instead of making them again.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.doors import RequestObject, take_s3_request
from videogen.errors import TransientError
from videogen.observability import job_log_scope, logger, metrics, tracer
from videogen.services import get_services


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_source(data_class=S3Event)
def lambda_handler(event: S3Event, context: LambdaContext) -> dict[str, Any]:
    if "Records" not in event.raw_event:
        # S3 sends an s3:TestEvent when the notification is configured; it names no object.
        logger.info(
            "not an object notification (e.g. s3:TestEvent): ignored", extra={"s3_event": event.raw_event.get("Event")}
        )
        return {"records": []}
    outcomes: list[dict[str, Any]] = []
    failed: list[str] = []
    for record in event.records:
        s3_object = record.s3.get_object
        obj = RequestObject(
            bucket=record.s3.bucket.name,
            # Notification keys are URL-encoded (a space arrives as '+'); S3 APIs want the real key.
            key=unquote_plus(s3_object.key),
            etag=s3_object.etag or None,
            sequencer=s3_object.get("sequencer"),
            version_id=s3_object.version_id,
        )
        with job_log_scope():  # each record's lines carry its own job's id, or none
            try:
                outcome, job_id = take_s3_request(get_services(), obj)
            except Exception:
                logger.exception("request not handled: the invocation will be retried", extra={"request": obj.key})
                failed.append(obj.key)
                continue
        outcomes.append({"key": obj.key, "outcome": outcome.value, "id": job_id})
    if failed:
        raise TransientError(f"{len(failed)} of {len(failed) + len(outcomes)} records failed; the others are done")
    return {"records": outcomes}
