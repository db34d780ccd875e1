"""`videogen redrive`: move dead-lettered submit messages back to the submit queue after a fix.

Messages are moved one batch at a time (receive, send to the source, delete from the DLQ), so an
interruption loses nothing: at worst a message is in both queues, and the submit step is idempotent.
SQS's own StartMessageMoveTask does the same on AWS; this works on moto too.
"""

from __future__ import annotations

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
