"""Wiring: the collaborators each stage needs, built once per Lambda container from Settings.

Handlers call ``get_services()``; tests build ``Services.from_settings(...)`` with their own settings.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from videogen.aws import client
from videogen.breaker import CreditBreaker
from videogen.budgets import Budgets
from videogen.capabilities import ModelCatalog
from videogen.errors import TransientError
from videogen.events import EventPublisher
from videogen.jobs import JobStore
from videogen.models import WorkflowInput
from videogen.pressure import SubmitPressure
from videogen.settings import Settings, get_settings
from videogen.storage import VideoStorage

if TYPE_CHECKING:
    from videogen.openrouter import OpenRouterClient
    from videogen.preflight import Preflight
    from videogen.webhooks import Sender, SigningKeys


def new_job_id() -> str:
    # Also the Step Functions execution name (<= 80 chars of [A-Za-z0-9-_]), which makes starts idempotent.
    return uuid.uuid4().hex


def api_key_provider(settings: Settings) -> Callable[[], str]:
    """The OpenRouter key, fetched when first needed and cached (Powertools parameters, 5 minutes)."""
    if settings.openrouter_api_key is not None:
        return settings.openrouter_api_key.get_secret_value
    if settings.openrouter_api_key_secret:
        secret_id = settings.openrouter_api_key_secret

        def from_secrets_manager() -> str:
            from aws_lambda_powertools.utilities import parameters  # imported here: only 3 functions need it

            value = parameters.get_secret(secret_id, max_age=300)
            return value if isinstance(value, str) else value.decode()

        return from_secrets_manager

    def missing() -> str:
        raise RuntimeError("no OpenRouter API key: set OPENROUTER_API_KEY_SECRET (deployed) or OPENROUTER_API_KEY")

    return missing


# The template creates the signing secret with this placeholder: callbacks stay off until it is replaced.
WEBHOOK_SECRET_UNSET = "unset"


def webhook_secret_provider(settings: Settings) -> Callable[[], str | None]:
    """The callback signing secret, or None when callbacks are off (no secret, or an empty one: the deployed
    secret exists from the start and holds nothing until an operator puts OpenRouter's signing secret in it)."""
    if settings.openrouter_webhook_secret is not None:
        value = settings.openrouter_webhook_secret.get_secret_value()
        return lambda: value or None
    if settings.openrouter_webhook_secret_id:
        secret_id = settings.openrouter_webhook_secret_id

        def from_secrets_manager() -> str | None:
            from aws_lambda_powertools.utilities import parameters

            value = parameters.get_secret(secret_id, max_age=300)
            text = (value if isinstance(value, str) else value.decode()).strip()
            return None if text in ("", WEBHOOK_SECRET_UNSET) else text

        return from_secrets_manager
    return lambda: None


def signing_key_provider(settings: Settings) -> Callable[[], str]:
    """The key every owner's webhook secret is derived from (videogen.webhooks), cached 5 minutes."""
    if settings.webhook_signing_key is not None:
        return settings.webhook_signing_key.get_secret_value
    secret_id = settings.webhook_signing_key_secret

    def from_secrets_manager() -> str:
        if not secret_id:
            raise RuntimeError("no webhook signing key: set WEBHOOK_SIGNING_KEY_SECRET (deployed)")
        from aws_lambda_powertools.utilities import parameters

        value = parameters.get_secret(secret_id, max_age=300)
        return value if isinstance(value, str) else value.decode()

    return from_secrets_manager


@dataclass
class WorkflowStarter:
    state_machine_arn: str

    def start(self, workflow_input: WorkflowInput) -> None:
        """Start the job's execution, named after the job: a second start is a no-op, never a second job."""
        try:
            client("stepfunctions").start_execution(
                stateMachineArn=self.state_machine_arn,
                name=workflow_input.job_id,
                input=workflow_input.model_dump_json(),
            )
        except ClientError as exc:
            # AWS returns the running execution for an identical start; moto raises. Both mean "already started".
            if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise


def _message_value(body: str | None, name: str) -> object:
    try:
        value: object = json.loads(body or "")[name]
    except (ValueError, TypeError, KeyError, IndexError, RecursionError):
        return None
    return value


def message_number(body: str | None, name: str) -> float | None:
    """A numeric field of a queue message's JSON body (``paused_since`` on the submit queue), or None."""
    value = _message_value(body, name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def message_field(body: str | None, name: str) -> str | None:
    """A non-empty string field of a queue message's JSON body (``{"job_id": ...}`` on the submit queue,
    ``{"openrouter_job_id": ...}`` on the callback queue), or None for a body this service never sends."""
    value = _message_value(body, name)
    return value if isinstance(value, str) and value else None


@dataclass
class SubmitQueue:
    queue_url: str

    def enqueue(self, job_id: str) -> None:
        client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=json.dumps({"job_id": job_id}))

    def defer(self, job_id: str, delay_seconds: int, paused_since: float) -> None:
        """Send the job's message again, to arrive after ``delay_seconds`` (SQS allows 0..900): a paused
        submission (videogen.breaker, videogen.pressure). A new message, so the pause never counts towards
        maxReceiveCount."""
        body = {"job_id": job_id, "paused_since": paused_since}
        client("sqs").send_message(
            QueueUrl=self.queue_url, MessageBody=json.dumps(body), DelaySeconds=max(0, min(900, delay_seconds))
        )


@dataclass
class SubmitBatchSender:
    """The submit queue, ten messages a call (SendMessageBatch): what a batch's intake enqueues with."""

    queue_url: str

    def enqueue_many(self, job_ids: list[str], attempts: int = 5) -> None:
        for start in range(0, len(job_ids), 10):
            entries = [
                {"Id": str(n), "MessageBody": json.dumps({"job_id": job_id})}
                for n, job_id in enumerate(job_ids[start : start + 10])
            ]
            for _ in range(attempts):
                failed = client("sqs").send_message_batch(QueueUrl=self.queue_url, Entries=entries).get("Failed", [])
                if not failed:
                    break
                # Entries fail one by one (throttling, an internal error): send those again, the rest went out.
                ids = {entry["Id"] for entry in failed}
                entries = [entry for entry in entries if entry["Id"] in ids]
            else:
                raise TransientError(f"{len(entries)} submit messages could not be sent: {failed[0].get('Code')}")


@dataclass
class CallbackQueue:
    """Verified callbacks become one message each: the receiver answers at once, the consumer polls."""

    queue_url: str

    def enqueue(self, openrouter_job_id: str, idempotency_key: str | None) -> None:
        body = {"openrouter_job_id": openrouter_job_id, "idempotency_key": idempotency_key}
        client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body))


@dataclass
class Services:
    settings: Settings
    api_key: Callable[[], str] | None = field(default=None, repr=False)

    @cached_property
    def store(self) -> JobStore:
        return JobStore(self.settings.jobs_table)

    @cached_property
    def budgets(self) -> Budgets:
        return Budgets(self.settings.budgets_table)

    @cached_property
    def queue(self) -> SubmitQueue:
        return SubmitQueue(self.settings.queue_url)

    @cached_property
    def breaker(self) -> CreditBreaker | None:
        s = self.settings
        if not s.control_table:
            return None
        return CreditBreaker(
            s.control_table,
            initial_probe_seconds=s.breaker_probe_seconds,
            max_probe_seconds=s.breaker_max_probe_seconds,
            lease_seconds=float(s.submit_claim_seconds),
        )

    @cached_property
    def pressure(self) -> SubmitPressure | None:
        s = self.settings
        if not s.control_table:
            return None
        return SubmitPressure(
            s.control_table,
            max_rate=s.submit_max_rate,
            min_rate=min(s.submit_min_rate, s.submit_max_rate),
            recovery_step=s.pressure_recovery_step,
            window_seconds=s.pressure_window_seconds,
            slow_share=s.pressure_slow_share,
            min_answers=s.pressure_min_answers,
        )

    @cached_property
    def submit_batches(self) -> SubmitBatchSender:
        return SubmitBatchSender(self.settings.queue_url)

    @cached_property
    def callback_queue(self) -> CallbackQueue:
        return CallbackQueue(self.settings.callback_queue_url)

    @cached_property
    def webhook_secret(self) -> Callable[[], str | None]:
        return webhook_secret_provider(self.settings)

    @cached_property
    def publisher(self) -> EventPublisher:
        return EventPublisher(self.settings.event_bus)

    @cached_property
    def storage(self) -> VideoStorage:
        return VideoStorage(self.settings.bucket, self.settings.presign_seconds)

    @cached_property
    def workflow(self) -> WorkflowStarter:
        return WorkflowStarter(self.settings.state_machine_arn)

    @cached_property
    def openrouter(self) -> OpenRouterClient:
        # Imported here: httpx is a cold-start cost the intake doors and the fail function never need.
        from videogen.openrouter import OpenRouterClient

        s = self.settings
        return OpenRouterClient(
            s.openrouter_base_url,
            self.api_key or api_key_provider(s),
            timeout=s.openrouter_timeout_seconds,
            max_attempts=s.openrouter_max_attempts,
            backoff_seconds=s.openrouter_backoff_seconds,
        )

    @cached_property
    def preflight(self) -> Preflight:
        # Imported here, as for openrouter: httpx only when a reference is fetched.
        from videogen.preflight import Preflight

        return Preflight(allow_private=self.settings.videogen_preflight_allow_private)

    @cached_property
    def signing_keys(self) -> SigningKeys:
        from videogen.webhooks import SigningKeys

        return SigningKeys(self.settings.webhook_signing_table, signing_key_provider(self.settings))

    @cached_property
    def webhook_sender(self) -> Sender:
        from videogen.webhooks import Sender

        s = self.settings
        return Sender(
            allow_private=s.videogen_webhooks_allow_private,
            connect_seconds=s.webhook_connect_seconds,
            read_seconds=s.webhook_read_seconds,
        )

    @cached_property
    def catalog(self) -> ModelCatalog:
        return ModelCatalog(self.openrouter.list_models, self.settings.models_cache_seconds)

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        return cls(settings)


_services: Services | None = None


def get_services() -> Services:
    """The container's Services (module-level cache survives warm invocations)."""
    global _services
    if _services is None:
        _services = Services(get_settings())
    return _services


def reset_services() -> None:
    """Forget cached settings and collaborators (tests and local mode change the environment),
    including Powertools' cached secret values and the clients its providers hold."""
    global _services
    _services = None
    get_settings.cache_clear()
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()  # type: ignore[no-untyped-call]
