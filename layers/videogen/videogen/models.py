"""Pydantic models: the caller's request, the job record, OpenRouter's payloads and our events."""

from __future__ import annotations

import base64
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from videogen.addresses import check_public_https_url
from videogen.settings import DEFAULT_MODEL

# Limits of the request we accept. OpenRouter documents none; ours keep a hostile caller
# from making us carry megabytes through SQS, DynamoDB (400 KB items) and logs.
MAX_PROMPT_CHARS = 4000
MAX_INPUT_REFERENCES = 4
MAX_FRAME_IMAGES = 2
MAX_URL_CHARS = 2048
# Small enough that a request with every image inline still fits a 400 KB DynamoDB item.
MAX_DATA_URL_BYTES = 32 * 1024

Resolution = Literal["480p", "720p", "768p", "1080p", "1K", "2K", "4K"]
AspectRatio = Literal["16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9", "9:21"]
FrameType = Literal["first_frame", "last_frame"]


def _timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _is_control(char: str) -> bool:
    """C0 and C1 control characters (and DEL) other than tab, line feed and carriage return. (Lone
    surrogates never get here: pydantic refuses them as not a valid string.)"""
    code = ord(char)
    return (code < 0x20 and char not in "\t\n\r") or 0x7F <= code <= 0x9F


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Strict(BaseModel):
    # Unknown fields are a caller's typo or an attempt to smuggle parameters: reject them. Strict types:
    # `"duration": true` or `"seed": "42"` is a caller's bug, not something to guess at. Validation runs
    # in Python mode on parsed JSON and on job records read back from DynamoDB (numbers as int/float,
    # see jobs._plain), both of which strict mode accepts as they are.
    model_config = ConfigDict(extra="forbid", strict=True)


class MediaUrl(_Strict):
    """A reference's URL: https on a public host, an s3:// object of the service's references/, or a small
    inline ``data:<kind>/...;base64`` URL of the reference's own kind."""

    KIND: ClassVar[str] = "image"
    url: Annotated[str, Field(min_length=1)]

    @field_validator("url")
    @classmethod
    def _scheme_allowed(cls, url: str) -> str:
        if url.startswith("data:"):
            return _check_data_url(url, cls.KIND)
        if len(url) > MAX_URL_CHARS:
            raise ValueError(f"URL longer than {MAX_URL_CHARS} characters")
        if url.startswith("s3://"):
            return url
        if url.startswith("https://"):
            return check_public_https_url(url)
        raise ValueError(f"must be an https:// URL, an s3:// URI in the service bucket, or a data:{cls.KIND}/... URL")


class ImageUrl(MediaUrl):
    KIND: ClassVar[str] = "image"


class AudioUrl(MediaUrl):
    KIND: ClassVar[str] = "audio"


class VideoUrl(MediaUrl):
    KIND: ClassVar[str] = "video"


def _check_data_url(url: str, kind: str = "image") -> str:
    header, _, payload = url.partition(",")
    if not header.startswith(f"data:{kind}/") or not header.endswith(";base64"):
        raise ValueError(f"data URLs must be data:{kind}/<type>;base64,...")
    # Cheap bound first (4 characters per 3 bytes, so a far larger payload is refused without decoding),
    # then the exact decoded size: the estimate alone miscounts padding.
    if len(payload) > (MAX_DATA_URL_BYTES + 2) // 3 * 4:
        raise ValueError(f"data URL {kind} larger than {MAX_DATA_URL_BYTES} bytes; upload it to S3 instead")
    try:
        media = base64.b64decode(payload, validate=True)
    except ValueError as exc:
        raise ValueError("data URL is not valid base64") from exc
    if len(media) > MAX_DATA_URL_BYTES:
        raise ValueError(f"data URL {kind} larger than {MAX_DATA_URL_BYTES} bytes; upload it to S3 instead")
    return url


ReferenceType = Literal["image_url", "audio_url", "video_url"]


class InputReference(_Strict):
    """OpenRouter's InputReference: an image, audio or video reference, its URL under the key its type
    names. Audio and video references are honoured by some providers only (e.g. Seedance 2); others use
    the image references and ignore the rest."""

    type: ReferenceType = "image_url"
    image_url: ImageUrl | None = None
    audio_url: AudioUrl | None = None
    video_url: VideoUrl | None = None

    @model_validator(mode="after")
    def _one_url_of_its_type(self) -> InputReference:
        given = [key for key in ("image_url", "audio_url", "video_url") if getattr(self, key) is not None]
        if given != [self.type]:
            raise ValueError(f"a reference of type {self.type!r} carries {self.type!r} (and no other URL)")
        return self

    @property
    def media(self) -> MediaUrl:
        media: MediaUrl = getattr(self, self.type)
        return media


class FrameImage(_Strict):
    type: Literal["image_url"] = "image_url"
    image_url: ImageUrl
    frame_type: FrameType


class ProviderOptions(_Strict):
    """``provider.options.<slug>``: parameters passed through to that provider, each allowed by the model's
    ``allowed_passthrough_parameters`` (checked against the catalogue at intake)."""

    parameters: dict[str, Any] = Field(default_factory=dict)


class ProviderConfig(_Strict):
    options: Annotated[dict[str, ProviderOptions], Field(max_length=16)] = Field(default_factory=dict)


class VideoRequest(_Strict):
    """What a caller asks for: OpenRouter's VideoGenerationRequest fields we support."""

    model: Annotated[str, Field(min_length=1, max_length=200)] = DEFAULT_MODEL
    # Optional for a request with image input (OpenRouter: "optional for models that support generating a
    # video from image input alone"); intake.parse_request requires it otherwise.
    prompt: Annotated[str, Field(min_length=1, max_length=MAX_PROMPT_CHARS)] | None = None
    duration: Annotated[int, Field(ge=1, le=120)] | None = None
    resolution: Resolution | None = None
    aspect_ratio: AspectRatio | None = None
    size: Annotated[str, Field(pattern=r"^[1-9][0-9]{1,4}x[1-9][0-9]{1,4}$")] | None = None
    generate_audio: bool | None = None
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None
    input_references: Annotated[list[InputReference], Field(max_length=MAX_INPUT_REFERENCES)] = Field(
        default_factory=list
    )
    frame_images: Annotated[list[FrameImage], Field(max_length=MAX_FRAME_IMAGES)] = Field(default_factory=list)
    provider: ProviderConfig | None = None
    # A completed videogen job of the same owner to edit or extend; OpenRouter gets that job's own id.
    previous_job_id: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    # Where the job's result is POSTed, signed (videogen.webhooks). Its shape is checked here; whether it may
    # be used (https on a public host, deployed) is intake's check, which knows local mode's flags.
    webhook_url: Annotated[str, Field(min_length=1, max_length=MAX_URL_CHARS)] | None = None
    # Only so that it can be refused with a reason: see _no_callback_url.
    callback_url: str | None = None

    @field_validator("callback_url")
    @classmethod
    def _no_callback_url(cls, url: str | None) -> str | None:
        if url is not None:
            raise ValueError(
                "callback_url is videogen's own (OpenRouter calls the service back); to be told when your "
                "video is done, use webhook_url (a signed POST of the result) or "
                "the VideoCompleted / VideoFailed events"
            )
        return url

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url_shape(cls, url: str | None) -> str | None:
        if url is not None and (not url.startswith(("https://", "http://")) or any(c.isspace() for c in url)):
            raise ValueError("webhook_url must be an https:// URL")
        return url

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, prompt: str | None) -> str | None:
        if prompt is None:
            return prompt
        # Control characters have no place in a prompt and NULs break logs and downstream tools; tab and
        # line breaks are ordinary text.
        bad = next((c for c in prompt if _is_control(c)), None)
        if bad is not None:
            raise ValueError(f"prompt must not contain control character U+{ord(bad):04X}")
        # "Blank" is anything without a visible character: whitespace, but also zero-width and format
        # characters (U+200B, U+FEFF, ...), which strip() keeps, and combining marks with nothing to combine
        # with. Visible: a letter, number, punctuation or symbol.
        if not any(unicodedata.category(c)[0] in "LNPS" for c in prompt):
            raise ValueError("prompt must contain at least one visible character")
        return prompt

    @field_validator("frame_images")
    @classmethod
    def _frames_distinct(cls, frames: list[FrameImage]) -> list[FrameImage]:
        # A field validator, not a model validator: the error then names frame_images, not the whole body.
        kinds = [frame.frame_type for frame in frames]
        if len(kinds) != len(set(kinds)):
            raise ValueError("each frame_type may appear once")
        return frames

    @property
    def has_image_input(self) -> bool:
        return bool(self.frame_images) or any(ref.type == "image_url" for ref in self.input_references)

    def reference_urls(self) -> list[tuple[str, str]]:
        """(field path, URL) of every reference and frame image, as errors name them."""
        urls = [(f"input_references[{i}].{ref.type}.url", ref.media.url) for i, ref in enumerate(self.input_references)]
        urls += [(f"frame_images[{i}].image_url.url", f.image_url.url) for i, f in enumerate(self.frame_images)]
        return urls

    def image_urls(self) -> list[str]:
        return [ref.media.url for ref in self.input_references if ref.type == "image_url"] + [
            f.image_url.url for f in self.frame_images
        ]

    def to_openrouter(
        self, resolve_url: Callable[[str], str] = str, previous_openrouter_job_id: str | None = None
    ) -> dict[str, Any]:
        """The body for POST /api/v1/videos: unset fields left out, reference URLs passed through
        ``resolve_url`` (which turns s3:// URIs into presigned HTTPS URLs), ``previous_job_id`` replaced by
        the OpenRouter id of the job it names."""
        # webhook_url is videogen's own (the caller's receiver), never OpenRouter's to see.
        body = self.model_dump(mode="json", exclude_none=True, exclude={"webhook_url"})
        for key in ("input_references", "frame_images"):
            if not body.get(key):
                body.pop(key, None)
                continue
            for item in body[key]:
                media = item[item.get("type", "image_url")]
                media["url"] = resolve_url(media["url"])
        if body.get("provider") == {"options": {}}:
            body.pop("provider")
        if self.previous_job_id is not None:
            assert previous_openrouter_job_id, "a previous job is sent by its OpenRouter id"
            body["previous_job_id"] = previous_openrouter_job_id
        return body


class JobStatus(StrEnum):
    QUEUED = "queued"
    SUBMITTED = "submitted"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    TIMED_OUT = "timed_out"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.EXPIRED, JobStatus.TIMED_OUT}
)
FAILURE_STATUSES = TERMINAL_STATUSES - {JobStatus.COMPLETED}


class Door(StrEnum):
    """Where a request came in; recorded on the job and used as a metric dimension."""

    API = "api"
    S3 = "s3"
    EVENTBRIDGE = "eventbridge"
    # A line of a batch manifest (videogen.batches): only a request identity's door, never a job's (a line's
    # job records the door its batch came through, s3 or api).
    BATCH = "batch"


class Usage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    cost: float | None = None
    is_byok: bool | None = None


class VideoObject(BaseModel):
    s3_uri: str
    bytes: int
    sha256: str
    content_type: str = "video/mp4"
    # Read from the MP4's boxes by the download's check (None on records stored before it).
    duration_seconds: float | None = None
    width: int | None = None
    height: int | None = None
    codec: str | None = None  # the video track's sample entry fourcc: avc1, hvc1, av01...
    has_audio: bool | None = None
    url: str | None = None  # presigned GET, filled in when the job is read, never stored


class Job(BaseModel):
    """The job record in DynamoDB and the body of GET /videos/{id}."""

    model_config = ConfigDict(extra="ignore")

    id: str
    status: JobStatus
    request: VideoRequest
    door: Door = Door.API
    # The owner (owners.py): an IAM principal or role, ``s3:<bucket>``, ``eventbridge:<account>:<source>``.
    caller: str = "anonymous"
    # The IAM session that made the request (an assumed role's session ARN), for audit; never the owner.
    caller_session: str | None = None
    # Where the request came from, per door: the S3 object (with its version or ETag) or the event id.
    source: str | None = None
    # sha256 of the validated request: a replay with the same Idempotency-Key must carry the same request.
    request_fingerprint: str | None = None
    # OpenRouter's id of the job ``request.previous_job_id`` names (resolved at intake, sent by submit).
    previous_openrouter_job_id: str | None = None
    # From the model's pricing_skus before the job was queued (videogen.pricing); None: not understood.
    estimated_cost_usd: float | None = None
    # A batch line's job (videogen.batches): its batch, its line in the manifest and the caller's reference.
    batch_id: str | None = None
    batch_line: int | None = None
    client_ref: str | None = None
    openrouter_job_id: str | None = None
    polling_url: str | None = None
    polls: list[str] = Field(default_factory=list)
    openrouter_status: str | None = None
    error: str | None = None
    usage: Usage | None = None
    video: VideoObject | None = None
    submit_attempts: int = 0
    # OpenRouter gave signed output URLs (never stored: the download asks for them again), valid until this.
    signed_outputs: bool = False
    outputs_expire_at: str | None = None
    # Outbound webhook (videogen.webhooks): delivered, retrying, failed or refused, and every attempt made.
    webhook_state: str | None = None
    webhook_attempts: list[dict[str, Any]] = Field(default_factory=list)
    created_at: str = Field(default_factory=utcnow)
    updated_at: str = Field(default_factory=utcnow)
    submitted_at: str | None = None
    finished_at: str | None = None

    def public(self) -> dict[str, Any]:
        """The caller's view: internal bookkeeping stays out, progress at a glance goes in."""
        body = self.model_dump(mode="json", exclude={"submit_attempts", "polling_url", "request_fingerprint"})
        body["request"] = self.request.model_dump(mode="json", exclude_none=True)
        end = _timestamp(self.finished_at) if self.finished_at else datetime.now(UTC)
        body["elapsed_seconds"] = round((end - _timestamp(self.created_at)).total_seconds(), 1)
        body["poll_count"] = len(self.polls)
        body["cost_usd"] = self.usage.cost if self.usage else None
        return body


class OpenRouterJob(BaseModel):
    """OpenRouter's VideoGenerationResponse (submit and poll)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    polling_url: str | None = None
    status: str
    generation_id: str | None = None
    unsigned_urls: list[str] | None = None
    # Signed, keyless output URLs (until ``expires_at``): bearer secrets, kept out of every repr, record and log.
    urls: list[str] | None = Field(default=None, repr=False)
    expires_at: str | None = None
    usage: Usage | None = None
    error: str | None = None


class VideoModel(BaseModel):
    """One entry of GET /api/v1/videos/models; a null list means "unknown, let it through"."""

    model_config = ConfigDict(extra="allow")

    id: str
    name: str | None = None
    supported_durations: list[int] | None = None
    supported_resolutions: list[str] | None = None
    supported_aspect_ratios: list[str] | None = None
    supported_sizes: list[str] | None = None
    supported_frame_images: list[str] | None = None
    allowed_passthrough_parameters: list[str] | None = None
    pricing_skus: dict[str, str] | None = None
    generate_audio: bool | None = None
    seed: bool | None = None


class PollResult(BaseModel):
    """What the poll function hands back to the state machine (kept small: it lives in the execution history)."""

    status: str
    poll_count: int
    error: str | None = None
    unsigned_urls: list[str] | None = None


class WorkflowInput(BaseModel):
    """Input of a video-job execution (see statemachine/video_job.asl.json)."""

    job_id: str
    openrouter_job_id: str
    polling_url: str
    wait_seconds: int
    max_polls: int
    poll: PollResult = Field(default_factory=lambda: PollResult(status="pending", poll_count=0))
