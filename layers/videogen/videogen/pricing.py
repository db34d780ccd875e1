"""A job's cost, estimated before it is queued from the model's ``pricing_skus`` (GET /api/v1/videos/models).

OpenRouter lists prices as strings under SKU keys whose shape varies by provider (``../shared/notes/
openrouter-video-api.md`` §5, §9). Understood:

* ``generate``: a price per video;
* ``duration_seconds``: per second of video, optionally ``_with_audio`` / ``_without_audio`` and a resolution
  suffix (``_720p``, ``_1080p``, ``_4k``), optionally prefixed ``text_to_video_`` / ``image_to_video_``;
* ``video_tokens``: per video token, tokens = width × height × 24 fps × seconds / 1024 (Seedance's formula).

An estimate is conservative, since budgets reserve it: a duration left out counts as the model's longest,
a resolution left out as the dearest one listed, audio as on when the model generates it by default. ``None``
when no SKU is understood.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from videogen.models import VideoModel, VideoRequest

_DURATION_SKU = re.compile(
    r"^(?:(?P<mode>text_to_video|image_to_video)_)?duration_seconds"
    r"(?:_(?P<audio>with_audio|without_audio))?(?:_(?P<resolution>\d+p|\d+k))?$"
)
_SHORT_SIDE = {"480p": 480, "720p": 720, "768p": 768, "1080p": 1080, "1k": 1080, "2k": 1440, "4k": 2160}
_ASPECT = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1), "4:3": (4, 3), "3:4": (3, 4), "3:2": (3, 2), "2:3": (2, 3)}
TOKEN_FPS = 24
CENTS = Decimal("0.000001")


def estimate_cost_usd(request: VideoRequest, model: VideoModel) -> Decimal | None:
    skus = _prices(getattr(model, "pricing_skus", None))
    if not skus:
        return None
    seconds = request.duration or max(model.supported_durations or [0]) or None
    if "generate" in skus:
        return skus["generate"].quantize(CENTS)
    if seconds is None:
        return None
    if "video_tokens" in skus:
        width, height = _frame(request)
        tokens = Decimal(width * height * TOKEN_FPS * seconds) / 1024
        return (tokens * skus["video_tokens"]).quantize(CENTS)
    audio = request.generate_audio if request.generate_audio is not None else bool(model.generate_audio)
    mode = "image_to_video" if request.has_image_input else "text_to_video"
    resolution = _resolution(request)
    candidates: list[Decimal] = []
    for key, price in skus.items():
        match = _DURATION_SKU.match(key)
        if match is None:
            continue
        if match["mode"] and match["mode"] != mode:
            continue
        if match["audio"] and (match["audio"] == "with_audio") != audio:
            continue
        if match["resolution"] and resolution is not None and match["resolution"] != resolution:
            continue
        candidates.append(price)
    if not candidates:
        return None
    return (max(candidates) * seconds).quantize(CENTS)


def _prices(skus: object) -> dict[str, Decimal]:
    prices: dict[str, Decimal] = {}
    if isinstance(skus, dict):
        for key, value in skus.items():
            try:
                prices[str(key).lower()] = Decimal(str(value))
            except InvalidOperation:
                continue
    return prices


def _resolution(request: VideoRequest) -> str | None:
    if request.resolution is not None:
        return request.resolution.lower()
    if request.size is not None:
        short = min(int(n) for n in request.size.split("x"))
        return next((name for name, side in _SHORT_SIDE.items() if side == short), None)
    return None


def _frame(request: VideoRequest) -> tuple[int, int]:
    if request.size is not None:
        width, height = (int(n) for n in request.size.split("x"))
        return width, height
    short = _SHORT_SIDE.get((request.resolution or "1080p").lower(), 1080)
    across, down = _ASPECT.get(request.aspect_ratio or "16:9", (16, 9))
    if across >= down:
        return short * across // down, short
    return short, short * down // across
