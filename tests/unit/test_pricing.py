"""Cost estimates from the pricing SKU shapes OpenRouter's models use (notes §5, §9)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from videogen.models import VideoModel, VideoRequest
from videogen.pricing import estimate_cost_usd

IMAGE = [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]


def model(skus: dict[str, str] | None, **capabilities: Any) -> VideoModel:
    return VideoModel.model_validate(
        {"id": "m", "pricing_skus": skus, "supported_durations": [4, 6, 8], **capabilities}
    )


def request(**fields: Any) -> VideoRequest:
    return VideoRequest.model_validate({"prompt": "p", **fields})


VEO = {
    "duration_seconds_with_audio": "0.15",
    "duration_seconds_without_audio": "0.10",
    "duration_seconds_with_audio_4k": "0.40",
    "duration_seconds_without_audio_4k": "0.35",
}


@pytest.mark.parametrize(
    ("skus", "fields", "capabilities", "expected"),
    [
        ({"generate": "0.50"}, {}, {}, "0.50"),
        ({"duration_seconds": "0.10"}, {"duration": 6}, {}, "0.60"),
        (VEO, {"duration": 4, "generate_audio": True, "resolution": "720p"}, {}, "0.60"),
        (VEO, {"duration": 4, "generate_audio": False, "resolution": "720p"}, {}, "0.40"),
        (VEO, {"duration": 4, "generate_audio": False, "resolution": "4K"}, {}, "1.40"),
        (VEO, {"duration": 8}, {"generate_audio": True}, "3.20"),  # no resolution: the dearest; audio by default
        ({"text_to_video_duration_seconds_720p": "0.10", "image_to_video_duration_seconds_720p": "0.12"},
         {"duration": 5, "resolution": "720p", "input_references": IMAGE}, {}, "0.60"),
        ({"text_to_video_duration_seconds_720p": "0.10", "image_to_video_duration_seconds_720p": "0.12"},
         {"duration": 5, "resolution": "720p"}, {}, "0.50"),
        # Seedance: video tokens = 1280 x 720 x 24 fps x 4 s / 1024, at 0.0000014 USD each.
        ({"video_tokens": "0.0000014"}, {"duration": 4, "resolution": "720p", "aspect_ratio": "16:9"}, {}, "0.120960"),
        ({"video_tokens": "0.0000014"}, {"duration": 4, "size": "720x1280"}, {}, "0.120960"),
    ],
)  # fmt: skip
def test_each_sku_shape_is_understood(
    skus: dict[str, str], fields: dict[str, Any], capabilities: dict[str, Any], expected: str
) -> None:
    assert estimate_cost_usd(request(**fields), model(skus, **capabilities)) == Decimal(expected)


@pytest.mark.parametrize("skus", [None, {}, {"per_request_unicorns": "1"}, {"duration_seconds": "not a price"}])
def test_skus_not_understood_estimate_nothing(skus: dict[str, str] | None) -> None:
    assert estimate_cost_usd(request(duration=4), model(skus)) is None


def test_a_missing_duration_counts_as_the_longest_supported() -> None:
    assert estimate_cost_usd(request(), model({"duration_seconds": "0.10"})) == Decimal("0.80")
