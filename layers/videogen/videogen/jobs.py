"""The job store (DynamoDB). Status only moves forward, and a terminal status never changes:
every transition is a conditional write, so concurrent or repeated Lambda invocations cannot undo
each other's work."""

from __future__ import annotations

import base64
import contextlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import cache
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from videogen.aws import cancellation_reasons, client, transact_write
from videogen.models import TERMINAL_STATUSES, Job, JobStatus, OpenRouterJob, Usage, VideoObject, utcnow

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
CALLER_INDEX = "by_caller"
# Sparse (only submitted jobs carry openrouter_job_id), keys only: a callback names OpenRouter's id, and the
# one consistent read of the job that follows gets the rest.
OPENROUTER_INDEX = "by_openrouter_job_id"
# What a LastEvaluatedKey of the by_caller index holds: its key (caller, created_at) and the table's (id).
PAGE_KEY_ATTRIBUTES = frozenset({"caller", "created_at", "id"})
_ATTRIBUTE = {"#s": "status"}
# create_many's concurrent PutItems: within botocore's connection pool (videogen.aws, 10 per client).
CREATE_WRITERS = 8
_TERMINAL = sorted(status.value for status in TERMINAL_STATUSES)


@cache
def _writers() -> ThreadPoolExecutor:
    """One pool per process, made on first use: an execution environment reuses it across invocations."""
    return ThreadPoolExecutor(max_workers=CREATE_WRITERS, thread_name_prefix="create-job")


class Claim(StrEnum):
    CLAIMED = "claimed"  # this attempt may submit
    BUSY = "busy"  # another attempt holds a fresh claim: try again later
    STALE = "stale"  # an earlier attempt claimed and vanished: its outcome is unknown
    DONE = "done"  # already submitted or finished: nothing to send


@dataclass
class JobStore:
    table: str

    # --- reads ----------------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        item = self.raw(job_id)
        return Job.model_validate(item) if item else None

    def raw(self, job_id: str) -> dict[str, Any] | None:
        item = client("dynamodb").get_item(TableName=self.table, Key=_key(job_id), ConsistentRead=True).get("Item")
        return _plain(item) if item else None

    def find_by_openrouter_id(self, openrouter_job_id: str) -> str | None:
        """The id of the job OpenRouter knows as ``openrouter_job_id``, or None. (The index is eventually
        consistent: a callback can only come after the submit that recorded the id, well after.)"""
        page = client("dynamodb").query(
            TableName=self.table,
            IndexName=OPENROUTER_INDEX,
            KeyConditionExpression="openrouter_job_id = :oid",
            ExpressionAttributeValues={":oid": {"S": openrouter_job_id}},
            Limit=1,
        )
        items = page.get("Items", [])
        return str(items[0]["id"]["S"]) if items else None

    def list_by_caller(
        self, caller: str, *, status: str | None = None, limit: int = 20, page_token: str | None = None
    ) -> tuple[list[Job], str | None]:
        """A caller's jobs, newest first, from the ``by_caller`` index; returns (jobs, next page token)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": CALLER_INDEX,
            "KeyConditionExpression": "caller = :caller",
            "ExpressionAttributeValues": {":caller": {"S": caller}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if status:
            kwargs["FilterExpression"] = "#s = :status"
            kwargs["ExpressionAttributeNames"] = {"#s": "status"}
            kwargs["ExpressionAttributeValues"][":status"] = {"S": status}
        if page_token:
            start = _decode_token(page_token)
            if start.get("caller") != {"S": caller}:
                raise ValueError("invalid page token")  # a token from someone else's listing
            kwargs["ExclusiveStartKey"] = start
        page = client("dynamodb").query(**kwargs)
        jobs = [Job.model_validate(_plain(item)) for item in page.get("Items", [])]
        last = page.get("LastEvaluatedKey")
        return jobs, _encode_token(last) if last else None

    # --- transitions ----------------------------------------------------------------------------------

    def create(self, job: Job, with_writes: list[dict[str, Any]] | None = None) -> None:
        """Write a new job. Raises JobExists if a job with its id is already there: for a job whose id comes
        from its request's identity (intake.RequestIdentity) that is an earlier delivery of the same request,
        and this one conditional item is the whole dedupe (no key can exist without its job, or a job
        without its key). ``with_writes``: TransactWriteItems entries written with the job or not at all
        (a budget reservation); a failed condition among them raises WriteRefused."""
        item = job.model_dump(mode="json", exclude_none=True)
        put = {"TableName": self.table, "Item": _dynamo(item), "ConditionExpression": "attribute_not_exists(id)"}
        try:
            if with_writes:
                transact_write([{"Put": put}, *with_writes])
            else:
                client("dynamodb").put_item(**put)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise JobExists(job.id) from None
            reasons = cancellation_reasons(exc)
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise JobExists(job.id) from None
            if "ConditionalCheckFailed" in reasons:
                raise WriteRefused(job.id) from None
            raise

    def create_many(self, jobs: list[Job]) -> list[str]:
        """Write new jobs, each under create's condition; the ids of those that were already recorded (an
        earlier read of the same lines), which are left as they are. One conditional PutItem each, not a
        transaction: they need not be written together (each is its line's own dedupe record), and a
        transaction would fail whole on one existing job. (moto also copies every table per transaction,
        which would make the benchmark measure moto.) Up to CREATE_WRITERS at once: a manifest's intake is
        a round trip per line, and concurrent ones are what makes it several times faster."""

        def created(job: Job) -> str | None:
            try:
                self.create(job)
            except JobExists:
                return job.id
            return None

        if len(jobs) <= 1:
            return [job_id for job_id in map(created, jobs) if job_id is not None]
        return [job_id for job_id in _writers().map(created, jobs) if job_id is not None]

    def delete(self, job_id: str) -> None:
        client("dynamodb").delete_item(TableName=self.table, Key=_key(job_id))

    def migrate_owner(self, job_id: str, recorded: str, owner: str) -> bool:
        """Move a job stored under a session ARN to its owner (owners.normalize_owner), keeping the session
        as ``caller_session``. False if the job's owner changed meanwhile (another migration did it)."""
        try:
            self._update(
                job_id,
                "SET caller = :owner, caller_session = if_not_exists(caller_session, :recorded)",
                "caller = :recorded",
                {":owner": owner, ":recorded": recorded},
            )
        except _ConditionFailed:
            return False
        return True

    def claim_submission(self, job_id: str, now: float, claim_seconds: int) -> Claim:
        """Take the right to send this job's one POST /api/v1/videos."""
        try:
            self._update(
                job_id,
                "SET submit_claimed_at = :now, updated_at = :ts",
                "#s = :queued AND attribute_not_exists(submit_claimed_at)",
                {":now": now, ":ts": utcnow(), ":queued": JobStatus.QUEUED.value},
            )
            return Claim.CLAIMED
        except _ConditionFailed:
            pass
        item = self.raw(job_id)
        if item is None or item.get("status") != JobStatus.QUEUED.value or item.get("openrouter_job_id"):
            return Claim.DONE
        claimed_at = float(item.get("submit_claimed_at", 0))
        return Claim.BUSY if now - claimed_at < claim_seconds else Claim.STALE

    def release_claim(self, job_id: str, reason: str, *, counts: bool = True) -> int:
        """The attempt is known not to have reached OpenRouter (or was refused for an account-wide reason,
        ``counts=False``: a pause is no attempt): let a later attempt try. Returns attempts so far."""
        result = self._update(
            job_id,
            "REMOVE submit_claimed_at SET submit_attempts = if_not_exists(submit_attempts, :zero) + :one, "
            "last_submit_error = :reason, updated_at = :ts",
            "#s = :queued",
            {
                ":zero": 0,
                ":one": 1 if counts else 0,
                ":reason": reason,
                ":ts": utcnow(),
                ":queued": JobStatus.QUEUED.value,
            },
        )
        return int(result.get("submit_attempts", 1))

    def mark_submitted(self, job_id: str, accepted: OpenRouterJob, polling_url: str) -> Job:
        now = utcnow()
        result = self._update(
            job_id,
            "SET #s = :submitted, openrouter_job_id = :oid, polling_url = :purl, submitted_at = :ts, "
            "updated_at = :ts REMOVE submit_claimed_at",
            "#s = :queued",
            {
                ":submitted": JobStatus.SUBMITTED.value,
                ":oid": accepted.id,
                ":purl": polling_url,
                ":ts": now,
                ":queued": JobStatus.QUEUED.value,
            },
        )
        return _to_job(result)

    def record_poll(self, job_id: str, polled: OpenRouterJob) -> Job | None:
        """Append OpenRouter's status to ``polls``. Returns None if the job already ended."""
        names_values: dict[str, Any] = {":p": [polled.status], ":empty": [], ":ts": utcnow()}
        update = "SET polls = list_append(if_not_exists(polls, :empty), :p), openrouter_status = :os, updated_at = :ts"
        names_values[":os"] = polled.status
        if polled.status in ("in_progress", "completed"):
            # Generation under way (or done, with our download still to come): forward-only, never terminal here.
            update += ", #s = :in_progress"
            names_values[":in_progress"] = JobStatus.IN_PROGRESS.value
        if polled.usage is not None:
            update += ", #usage = :usage"
            names_values[":usage"] = polled.usage.model_dump(mode="json")
        if polled.urls:
            # That OpenRouter gave signed output URLs, and until when: never the URLs (bearer secrets), which the
            # download asks OpenRouter for again.
            update += ", signed_outputs = :signed"
            names_values[":signed"] = True
        if polled.expires_at:
            update += ", outputs_expire_at = :expires"
            names_values[":expires"] = polled.expires_at
        try:
            return _to_job(self._update(job_id, update, _not_terminal(names_values), names_values))
        except _ConditionFailed:
            return None

    def claim_download(self, job_id: str, owner: str, now: float, claim_seconds: int) -> bool:
        """Take the right to store this job's video. Two downloads of one job at once (the state machine's
        and a callback's) would abort each other's multipart upload of the same key; only the claim's holder
        downloads. The same owner may claim again (the state machine's retry of its own dead attempt, a
        redelivered callback message); a claim older than ``claim_seconds`` belongs to an attempt that died.
        False: the job ended, or another live attempt holds the claim."""
        values: dict[str, Any] = {":owner": owner, ":now": now, ":stale": now - claim_seconds, ":ts": utcnow()}
        condition = (
            f"{_not_terminal(values)} AND (attribute_not_exists(download_claim) OR download_claim = :owner "
            "OR download_claimed_at < :stale)"
        )
        try:
            self._update(
                job_id, "SET download_claim = :owner, download_claimed_at = :now, updated_at = :ts", condition, values
            )
        except _ConditionFailed:
            return False
        return True

    def release_download(self, job_id: str, owner: str) -> None:
        """Give the claim back after a transient failure, so another attempt need not wait for it to go stale."""
        # A failed condition: taken over meanwhile (it had gone stale) or the job is gone; nothing to give back.
        with contextlib.suppress(_ConditionFailed):
            self._update(
                job_id, "REMOVE download_claim, download_claimed_at", "download_claim = :owner", {":owner": owner}
            )

    def finish(
        self,
        job_id: str,
        status: JobStatus,
        *,
        error: str | None = None,
        video: VideoObject | None = None,
        usage: Usage | None = None,
    ) -> Job | None:
        """Move the job to its terminal status. Returns the job if this call made the transition, None if
        the job had already ended (its status stays). The transition is what the jobs table's stream
        hands to the publish function, which announces it (outbox.py): nothing here publishes."""
        assert status.terminal, status
        values: dict[str, Any] = {":status": status.value, ":ts": utcnow()}
        update = "SET #s = :status, finished_at = :ts, updated_at = :ts"
        for name, value in (("error", error), ("video", video), ("usage", usage)):
            if value is not None:
                update += f", #{name} = :{name}"
                values[f":{name}"] = (
                    value if isinstance(value, str) else value.model_dump(mode="json", exclude_none=True)
                )
        try:
            return _to_job(self._update(job_id, update, _not_terminal(values), values))
        except _ConditionFailed:
            return None

    def mark_event_published(self, job_id: str) -> bool:
        """Record that the job's result event went out. False if it was recorded before (a stream record
        delivered again after the publish function died between the event and this write)."""
        try:
            self._update(
                job_id, "SET event_published_at = :ts", "attribute_not_exists(event_published_at)", {":ts": utcnow()}
            )
        except _ConditionFailed:
            return False
        return True

    def record_webhook_attempt(self, job_id: str, attempt: dict[str, Any], state: str, keep: int = 20) -> bool:
        """Append one outbound webhook attempt (videogen.webhooks) and the state it leaves. A delivered webhook
        stays delivered (a late redelivery's attempt is not recorded over it), and at most ``keep`` attempts
        are kept. False when nothing was written for either reason. The job is terminal, so this write is no
        transition for the outbox's stream filter."""
        values: dict[str, Any] = {":a": [attempt], ":none": [], ":state": state, ":delivered": "delivered"}
        values[":keep"] = keep
        condition = (
            "(attribute_not_exists(webhook_state) OR webhook_state <> :delivered) "
            "AND (attribute_not_exists(webhook_attempts) OR size(webhook_attempts) < :keep)"
        )
        try:
            self._update(
                job_id,
                "SET webhook_attempts = list_append(if_not_exists(webhook_attempts, :none), :a), "
                "webhook_state = :state",
                condition,
                values,
            )
        except _ConditionFailed:
            return False
        return True

    def unannounced(self, ended_before: str) -> list[dict[str, Any]]:
        """Items of jobs that ended before ``ended_before`` (ISO timestamp) with no result event recorded:
        what the publish function could not announce within its retries (they are in the outbox DLQ
        too). Items, not jobs: one that no longer parses must not hide the others."""
        values = {":before": ended_before}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": (
                f"{_terminal(values)} AND attribute_not_exists(event_published_at) AND finished_at < :before"
            ),
            "ExpressionAttributeNames": _ATTRIBUTE,
            "ExpressionAttributeValues": _dynamo(values),
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        for page in client("dynamodb").get_paginator("scan").paginate(**kwargs):
            items.extend(_plain(item) for item in page["Items"])
        return items

    # --- plumbing -------------------------------------------------------------------------------------

    def _update(self, job_id: str, update: str, condition: str | None, values: dict[str, Any]) -> dict[str, Any]:
        # Every attribute is addressed as #name: "status", "error" and friends are DynamoDB reserved words.
        names = {token: _ATTRIBUTE.get(token, token[1:]) for token in re.findall(r"#\w+", f"{update} {condition}")}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": _key(job_id),
            "UpdateExpression": update,
            "ExpressionAttributeValues": _dynamo(values),
            "ReturnValues": "ALL_NEW",
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
        kwargs["ConditionExpression"] = (
            f"attribute_exists(id) AND ({condition})" if condition else "attribute_exists(id)"
        )
        try:
            return _plain(client("dynamodb").update_item(**kwargs)["Attributes"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise _ConditionFailed from None
            raise


class _ConditionFailed(Exception):
    pass


class JobExists(Exception):
    """A job with this id is already recorded."""


class WriteRefused(Exception):
    """A condition of a write made with the job failed (the budget has no room): nothing was written."""


def _terminal(values: dict[str, Any]) -> str:
    placeholders = []
    for index, status in enumerate(_TERMINAL):
        values[f":t{index}"] = status
        placeholders.append(f":t{index}")
    return f"#s IN ({', '.join(placeholders)})"


def _not_terminal(values: dict[str, Any]) -> str:
    return f"NOT ({_terminal(values)})"


def _key(job_id: str) -> dict[str, Any]:
    return {"id": {"S": job_id}}


def _dynamo(values: dict[str, Any]) -> dict[str, Any]:
    # DynamoDB wants Decimal, not float; a JSON round trip converts nested values too.
    converted = json.loads(json.dumps(values, default=str), parse_float=Decimal)
    return {key: _serializer.serialize(value) for key, value in converted.items()}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    plain: dict[str, Any] = json.loads(
        json.dumps({k: _deserializer.deserialize(v) for k, v in item.items()}, default=_decimal)
    )
    return plain


def _decimal(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(type(value))


def _to_job(item: dict[str, Any]) -> Job:
    return Job.model_validate(item)


# For the batch store (videogen.batches), which writes items of its own table the same way.
dynamo_values = _dynamo
plain_item = _plain
BATCH_INDEX = "by_batch"


def job_from_image(image: dict[str, Any]) -> Job:
    """A job from an item: a stream record's image as boto3 deserializes it (numbers are Decimals), or
    one of ``unannounced``."""
    return _to_job(json.loads(json.dumps(image, default=_decimal)))


def _encode_token(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


def _decode_token(token: str) -> dict[str, Any]:
    """A page token back into the ExclusiveStartKey it was made from. It comes from the caller, so it is
    checked to be exactly such a key (the index's and the table's key attributes, each a string):
    anything else would reach DynamoDB as a malformed request (a 5xx) instead of a 422."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, RecursionError) as exc:  # bad base64, bad UTF-8, bad JSON, absurd nesting
        raise ValueError("invalid page token") from exc
    if (
        not isinstance(key, dict)
        or set(key) != PAGE_KEY_ATTRIBUTES
        or not all(
            isinstance(value, dict) and set(value) == {"S"} and isinstance(value["S"], str) and value["S"]
            for value in key.values()
        )
    ):
        raise ValueError("invalid page token")
    return key
