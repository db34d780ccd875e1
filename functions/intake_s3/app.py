"""S3 door: a request JSON put under requests/ becomes a job.

The job id is written back next to the request as ``requests/<name>.job.json``; a rejected request
gets ``requests/<name>.error.json`` with the reason (and a VideoRejected event). Those receipts also
match the bucket notification, so they are recognised and skipped here.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen import intake
from videogen.errors import RequestRejected
from videogen.models import Door
from videogen.observability import logger, metrics, tracer
from videogen.services import get_services

RECEIPT_SUFFIXES = (".job.json", ".error.json")


def handle_object(key: str) -> None:
    services = get_services()
    base = key.removesuffix(".json")
    try:
        job = intake.accept(
            services, services.storage.get_bytes(key), door=Door.S3, caller=f"s3://{services.settings.bucket}/{key}"
        )
    except RequestRejected as rejected:
        services.storage.put_json(f"{base}.error.json", json.dumps({"request": key, **rejected.to_body()}, indent=2))
        intake.reject_event(services, Door.S3, f"s3://{services.settings.bucket}/{key}", rejected)
        return
    services.storage.put_json(
        f"{base}.job.json", json.dumps({"request": key, "id": job.id, "status": job.status.value})
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_source(data_class=S3Event)
def lambda_handler(event: S3Event, context: LambdaContext) -> dict[str, Any]:
    handled = []
    for record in event.records:
        # Notification keys are URL-encoded (a space arrives as '+'); S3 APIs want the real key.
        key = unquote_plus(record.s3.get_object.key)
        if key.endswith(RECEIPT_SUFFIXES):
            continue
        handle_object(key)
        handled.append(key)
    return {"handled": handled}
