"""`videogen redrive`: move dead-lettered submit messages back to the submit queue after a fix.
`videogen republish`: send the result events the outbox could not (see ``videogen.outbox``).

Messages are moved one batch at a time (receive, send to the source, delete from the DLQ), so an
interruption loses nothing: at worst a message is in both queues, and the submit step is idempotent.
SQS's own StartMessageMoveTask does the same on AWS; this works on moto too.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any


def redrive(sqs: Any, dead_letter_queue_url: str, queue_url: str, limit: int | None = None) -> int:
    moved = 0
    while limit is None or moved < limit:
        batch = min(10, limit - moved) if limit is not None else 10
        messages = sqs.receive_message(
            QueueUrl=dead_letter_queue_url, MaxNumberOfMessages=batch, MessageAttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            send: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                send["MessageAttributes"] = message["MessageAttributes"]
            sqs.send_message(**send)
            sqs.delete_message(QueueUrl=dead_letter_queue_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved


def republish_unannounced(
    table: str,
    event_bus: str,
    older_than_minutes: float,
    *,
    endpoint_url: str | None = None,
    outbox_dlq_url: str | None = None,
) -> dict[str, Any]:
    """Announce the jobs that ended ``older_than_minutes`` ago or more without their result event. The
    outbox DLQ's failure records only name stream positions, which expire with the stream (24 h); the
    table is what says which jobs are still unannounced. The DLQ is emptied only when all went out, so
    its alarm clears exactly when nothing is left to send."""
    if endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = endpoint_url  # read by every client the core package makes
    from videogen.aws import client, reset_clients
    from videogen.outbox import republish
    from videogen.services import Services
    from videogen.settings import Settings

    reset_clients()
    services = Services(Settings(jobs_table=table, event_bus=event_bus))
    result = republish(services, datetime.now(UTC) - timedelta(minutes=older_than_minutes))
    cleared = 0
    if outbox_dlq_url and not result.failed:
        sqs = client("sqs")
        while messages := sqs.receive_message(QueueUrl=outbox_dlq_url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                sqs.delete_message(QueueUrl=outbox_dlq_url, ReceiptHandle=message["ReceiptHandle"])
                cleared += 1
    return {"announced": result.announced, "failed": result.failed, "dlq_messages_cleared": cleared}
