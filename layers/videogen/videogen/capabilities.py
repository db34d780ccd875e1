"""Check a request against the model's capabilities from ``GET /api/v1/videos/models``.

OpenRouter answers 400 for a value outside a model's capability lists, after the job has gone through
our queue. Checking at the edge turns that into an immediate 422 naming the field. A null capability
means "unknown": we let the value through rather than reject what the model may well support.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from videogen.errors import FieldError, RequestRejected
from videogen.models import VideoModel, VideoRequest
from videogen.observability import logger


def check_capabilities(request: VideoRequest, model: VideoModel) -> None:
    errors: list[FieldError] = []

    def check(field: str, value: object, allowed: list[str] | list[int] | None) -> None:
        if value is not None and allowed is not None and value not in allowed:
            shown = ", ".join(str(v) for v in allowed)
            errors.append(FieldError(field, f"{value!r} is not supported by {model.id}; supported: {shown}"))

    check("duration", request.duration, model.supported_durations)
    check("resolution", request.resolution, model.supported_resolutions)
    check("aspect_ratio", request.aspect_ratio, model.supported_aspect_ratios)
    check("size", request.size, model.supported_sizes)
    for index, frame in enumerate(request.frame_images):
        check(f"frame_images[{index}].frame_type", frame.frame_type, model.supported_frame_images)
    if request.generate_audio and model.generate_audio is False:
        errors.append(FieldError("generate_audio", f"{model.id} cannot generate audio"))
    if request.seed is not None and model.seed is False:
        errors.append(FieldError("seed", f"{model.id} does not accept a seed"))
    if request.provider is not None and model.allowed_passthrough_parameters is not None:
        allowed = model.allowed_passthrough_parameters
        for slug, options in request.provider.options.items():
            for key in options.parameters:
                if key not in allowed:
                    shown = ", ".join(allowed) or "none"
                    errors.append(
                        FieldError(
                            f"provider.options.{slug}.parameters.{key}",
                            f"{key!r} is not a passthrough parameter of {model.id}; allowed: {shown}",
                        )
                    )
    if errors:
        raise RequestRejected(f"request does not fit the capabilities of {model.id}", errors, reason="capabilities")


class ModelCatalog:
    """The video model list, cached per Lambda container for ``ttl_seconds``.

    If OpenRouter cannot be reached, a stale list is used; with no list at all the request is let
    through (logged), because refusing every request while OpenRouter's catalogue hiccups would
    turn a cosmetic outage into a real one; OpenRouter still validates on submit.
    """

    def __init__(self, fetch: Callable[[], list[VideoModel]], ttl_seconds: float = 600.0) -> None:
        self._fetch = fetch
        self._ttl = ttl_seconds
        self._models: dict[str, VideoModel] | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def models(self) -> dict[str, VideoModel] | None:
        with self._lock:
            if self._models is None or time.monotonic() - self._fetched_at > self._ttl:
                try:
                    self._models = {model.id: model for model in self._fetch()}
                    self._fetched_at = time.monotonic()
                except Exception as exc:
                    logger.warning("video model list unavailable", extra={"reason": f"{type(exc).__name__}: {exc}"})
            return self._models

    def validate(self, request: VideoRequest) -> None:
        models = self.models()
        if models is None:
            return
        model = models.get(request.model)
        if model is None:
            raise RequestRejected(
                f"unknown model {request.model!r}",
                [FieldError("model", f"{request.model!r} is not an OpenRouter video model")],
                reason="capabilities",
            )
        check_capabilities(request, model)
