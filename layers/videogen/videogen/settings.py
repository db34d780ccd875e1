"""Service configuration, read once from the environment.

Every Lambda function, local mode and the tests build their settings here, so the
environment variable names below are the contract with ``template.yaml`` and
``videogen_local``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

DEFAULT_BASE_URL = "https://openrouter.ai"
DEFAULT_MODEL = "bytedance/seedance-2.0-fast"


def openrouter_base(url: str) -> str:
    """OPENROUTER_BASE_URL as every URL is built from it: the origin (``https://openrouter.ai``, as OpenRouter's
    guide writes it), with the path of a proxy in front if there is one. The SDKs' form, the server URL
    ``https://openrouter.ai/api/v1``, means the same and is understood; ``…/api`` alone is refused, since it
    cannot be told from a proxy's path. Never ``/api/v1/api/v1/...``."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"OPENROUTER_BASE_URL must be an absolute http(s) URL such as https://openrouter.ai, got {url!r}"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"OPENROUTER_BASE_URL takes no query or fragment, got {url!r}")
    # The SDK's suffix is taken off once; what is left is then checked like any other path, so that
    # ``…/api/v1/api/v1`` (the suffix given twice) is refused instead of building ``/api/v1/api/v1/videos``.
    path = parts.path.rstrip("/").removesuffix("/api/v1").rstrip("/")
    if path.endswith("/api") or "/api/" in path:
        raise ValueError(
            f"OPENROUTER_BASE_URL {url!r}: give the origin (https://openrouter.ai) or the SDK's server URL "
            "(https://openrouter.ai/api/v1), with /api/v1 at most once and no other /api path; "
            "the service adds /api/v1/... itself"
        )
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    jobs_table: str = Field(default="videogen-jobs", description="env JOBS_TABLE")
    keys_table: str = Field(default="videogen-keys", description="env KEYS_TABLE (tenant API keys)")
    # Budgets per owner (videogen.budgets); empty: none are enforced.
    budgets_table: str = Field(default="", description="env BUDGETS_TABLE")
    bucket: str = Field(default="videogen-bucket", description="env BUCKET")
    queue_url: str = Field(default="", description="env QUEUE_URL (the submit queue)")
    event_bus: str = Field(default="default", description="env EVENT_BUS")
    state_machine_arn: str = Field(default="", description="env STATE_MACHINE_ARN")
    # Batches (videogen.batches): their records, and the queue that drives each batch's intake and ending.
    batches_table: str = Field(default="videogen-batches", description="env BATCHES_TABLE")
    batch_queue_url: str = Field(default="", description="env BATCH_QUEUE_URL")
    # The batch function's hold on a batch (one invocation works on a batch at a time): its timeout + margin.
    batch_lease_seconds: int = Field(default=960, ge=1, description="env BATCH_LEASE_SECONDS")
    # An invocation stops reading a manifest this long before its time is up, saves where it stopped and
    # queues its continuation; BATCH_LINES_PER_INVOCATION > 0 also stops it after that many lines.
    batch_margin_seconds: float = Field(default=30.0, ge=0, description="env BATCH_MARGIN_SECONDS")
    batch_lines_per_invocation: int = Field(default=0, ge=0, description="env BATCH_LINES_PER_INVOCATION")

    openrouter_base_url: str = Field(default=DEFAULT_BASE_URL, description="env OPENROUTER_BASE_URL")
    # Deployed: the key lives in Secrets Manager and only its id is in the environment.
    openrouter_api_key_secret: str = Field(default="", description="env OPENROUTER_API_KEY_SECRET")
    # Local mode and tests may pass the key directly; it is never logged (SecretStr).
    openrouter_api_key: SecretStr | None = Field(default=None, description="env OPENROUTER_API_KEY")
    openrouter_timeout_seconds: float = Field(default=30.0, description="env OPENROUTER_TIMEOUT_SECONDS")
    openrouter_max_attempts: int = Field(default=4, ge=1, description="env OPENROUTER_MAX_ATTEMPTS")
    openrouter_backoff_seconds: float = Field(default=1.0, ge=0, description="env OPENROUTER_BACKOFF_SECONDS")
    # Completion callbacks (callbacks.py): on only when a signing secret is configured. Deployed the secret is in
    # Secrets Manager (an empty value means "not configured"); local mode and tests may pass it directly.
    openrouter_webhook_secret_id: str = Field(default="", description="env OPENROUTER_WEBHOOK_SECRET_ID")
    openrouter_webhook_secret: SecretStr | None = Field(default=None, description="env OPENROUTER_WEBHOOK_SECRET")
    # Where OpenRouter is asked to POST: the service's own receiver, <api url>/webhooks/openrouter.
    openrouter_callback_url: str = Field(default="", description="env OPENROUTER_CALLBACK_URL")
    callback_queue_url: str = Field(default="", description="env CALLBACK_QUEUE_URL (verified callbacks' nudges)")
    # A download claim older than this belongs to an attempt that died (the download timeout + margin).
    download_claim_seconds: int = Field(default=960, ge=1, description="env DOWNLOAD_CLAIM_SECONDS")

    default_model: str = Field(default=DEFAULT_MODEL, description="env DEFAULT_MODEL")
    models_cache_seconds: int = Field(default=600, ge=0, description="env MODELS_CACHE_SECONDS")

    poll_interval_seconds: int = Field(default=30, ge=0, description="env POLL_INTERVAL_SECONDS")
    max_polls: int = Field(default=60, ge=1, description="env MAX_POLLS")
    max_submit_attempts: int = Field(default=3, ge=1, description="env MAX_SUBMIT_ATTEMPTS")
    # A submit claim older than this belongs to an attempt that died (function timeout + margin).
    submit_claim_seconds: int = Field(default=120, ge=1, description="env SUBMIT_CLAIM_SECONDS")

    # The credit breaker (videogen.breaker): its state lives in the control table (empty: no breaker, and an
    # account-wide refusal fails the job as any refusal does). Probes start this far apart and double up to
    # the maximum; a job waits for credits at most SUBMIT_PAUSE_LIMIT_SECONDS from its first pause.
    control_table: str = Field(default="", description="env CONTROL_TABLE")
    breaker_probe_seconds: float = Field(default=30.0, gt=0, description="env BREAKER_PROBE_SECONDS")
    breaker_max_probe_seconds: float = Field(default=900.0, gt=0, le=900, description="env BREAKER_MAX_PROBE_SECONDS")
    submit_pause_limit_seconds: float = Field(
        default=3 * 24 * 3600.0, gt=0, description="env SUBMIT_PAUSE_LIMIT_SECONDS"
    )

    # Adaptive pressure (videogen.pressure), in the same control table: the shared submission rate's ceiling
    # (calm: no pacing at all) and floor, the window its answers are judged over, the refused share that slows
    # it down and what a better window adds back.
    submit_max_rate: float = Field(default=10.0, gt=0, description="env SUBMIT_MAX_RATE (submissions/s)")
    submit_min_rate: float = Field(default=0.2, gt=0, description="env SUBMIT_MIN_RATE (submissions/s)")
    pressure_window_seconds: float = Field(default=5.0, gt=0, description="env PRESSURE_WINDOW_SECONDS")
    pressure_slow_share: float = Field(default=0.5, gt=0, le=1, description="env PRESSURE_SLOW_SHARE")
    pressure_min_answers: int = Field(default=20, ge=1, description="env PRESSURE_MIN_ANSWERS")
    pressure_recovery_step: float = Field(default=1.0, gt=0, description="env PRESSURE_RECOVERY_STEP")

    download_part_bytes: int = Field(default=8 * 1024 * 1024, ge=1, description="env DOWNLOAD_PART_BYTES")
    download_parts_in_flight: int = Field(
        default=1, ge=1, le=8, description="env DOWNLOAD_PARTS_IN_FLIGHT: parts uploading while the next is read"
    )
    max_video_bytes: int = Field(default=2 * 1024**3, ge=1, description="env MAX_VIDEO_BYTES")
    presign_seconds: int = Field(default=3600, ge=60, description="env PRESIGN_SECONDS")
    # Reference preflight (videogen.preflight): on unless VIDEOGEN_PREFLIGHT=off (template ReferencePreflight,
    # `videogen local serve --no-preflight`). allow_private: local mode and tests only (loopback, plain http).
    videogen_preflight: bool = Field(default=True, description="env VIDEOGEN_PREFLIGHT (on/off)")
    videogen_preflight_allow_private: bool = Field(default=False, description="env VIDEOGEN_PREFLIGHT_ALLOW_PRIVATE")

    # Outbound webhooks (videogen.webhooks): the per-owner signing table, the signing key they are derived from
    # (Secrets Manager deployed; tests and local mode may pass it directly), the delivery queue and schedule.
    webhook_signing_table: str = Field(default="", description="env WEBHOOK_SIGNING_TABLE")
    webhook_signing_key_secret: str = Field(default="", description="env WEBHOOK_SIGNING_KEY_SECRET")
    webhook_signing_key: SecretStr | None = Field(default=None, description="env WEBHOOK_SIGNING_KEY")
    webhook_queue_url: str = Field(default="", description="env WEBHOOK_QUEUE_URL")
    webhook_retry_delays: str = Field(
        default="5,300,1800,7200,18000,36000,36000", description="env WEBHOOK_RETRY_DELAYS (seconds, comma-separated)"
    )
    webhook_connect_seconds: float = Field(default=3.0, gt=0, description="env WEBHOOK_CONNECT_SECONDS")
    webhook_read_seconds: float = Field(default=10.0, gt=0, description="env WEBHOOK_READ_SECONDS")
    # Local mode and tests only (`videogen local serve --allow-private-webhooks`): loopback and plain http.
    videogen_webhooks_allow_private: bool = Field(default=False, description="env VIDEOGEN_WEBHOOKS_ALLOW_PRIVATE")

    @field_validator("openrouter_base_url")
    @classmethod
    def _base_url(cls, url: str) -> str:
        return openrouter_base(url)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for name in cls.model_fields:
            raw = env.get(name.upper())
            if raw:
                values[name] = raw
        return cls.model_validate(values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process (cached: Lambda environments do not change)."""
    return Settings.from_env()
