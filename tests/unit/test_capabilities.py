from __future__ import annotations

import pytest

from videogen.capabilities import ModelCatalog, check_capabilities
from videogen.errors import RequestRejected
from videogen.intake import parse_request
from videogen.models import VideoModel

SEEDANCE = VideoModel(
    id="bytedance/seedance-2.0-fast",
    supported_durations=list(range(4, 16)),
    supported_resolutions=["480p", "720p"],
    supported_aspect_ratios=["1:1", "3:4", "9:16", "4:3", "16:9", "21:9", "9:21"],
    supported_frame_images=["first_frame", "last_frame"],
    generate_audio=True,
    seed=True,
)
UNKNOWN = VideoModel(id="test/nulls-model")
NO_EXTRAS = VideoModel(id="x/y", generate_audio=False, seed=False, supported_frame_images=["first_frame"])


def fields(request: dict[str, object], model: VideoModel) -> list[str]:
    with pytest.raises(RequestRejected) as info:
        check_capabilities(parse_request(request), model)
    return [e.field for e in info.value.errors]


def test_seed_values_fit_seedance() -> None:
    check_capabilities(
        parse_request({"prompt": "p", "duration": 4, "resolution": "720p", "aspect_ratio": "16:9"}), SEEDANCE
    )


def test_every_out_of_set_value_is_named() -> None:
    assert fields({"prompt": "p", "duration": 3, "resolution": "1080p", "aspect_ratio": "3:2"}, SEEDANCE) == [
        "duration",
        "resolution",
        "aspect_ratio",
    ]


def test_null_capabilities_let_everything_through() -> None:
    check_capabilities(
        parse_request(
            {"prompt": "p", "duration": 99, "resolution": "4K", "size": "10x10", "seed": 1, "generate_audio": True}
        ),
        UNKNOWN,
    )


def test_false_capability_flags_reject_audio_seed_and_frame_types() -> None:
    frame = {"type": "image_url", "image_url": {"url": "https://e.com/a.png"}, "frame_type": "last_frame"}
    assert fields({"prompt": "p", "generate_audio": True, "seed": 3, "frame_images": [frame]}, NO_EXTRAS) == [
        "frame_images[0].frame_type",
        "generate_audio",
        "seed",
    ]


def test_catalog_caches_rejects_unknown_models_and_survives_outages() -> None:
    calls: list[int] = []
    failing = False

    def fetch() -> list[VideoModel]:
        calls.append(1)
        if failing:
            raise ConnectionError("down")
        return [SEEDANCE]

    catalog = ModelCatalog(fetch, ttl_seconds=0)
    catalog.validate(parse_request({"prompt": "p"}))
    with pytest.raises(RequestRejected) as info:
        catalog.validate(parse_request({"prompt": "p", "model": "nope/model"}))
    assert info.value.errors[0].field == "model"
    failing = True
    # Stale list still used when OpenRouter cannot be reached.
    with pytest.raises(RequestRejected):
        catalog.validate(parse_request({"prompt": "p", "duration": 2}))
    assert len(calls) == 3


def test_catalog_without_any_list_lets_requests_through() -> None:
    def fetch() -> list[VideoModel]:
        raise ConnectionError("down")

    ModelCatalog(fetch).validate(parse_request({"prompt": "p", "model": "anything/goes"}))


def test_catalog_within_ttl_fetches_once() -> None:
    calls: list[int] = []
    catalog = ModelCatalog(lambda: calls.append(1) or [SEEDANCE], ttl_seconds=600)
    for _ in range(5):
        catalog.validate(parse_request({"prompt": "p"}))
    assert len(calls) == 1
