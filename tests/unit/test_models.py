from __future__ import annotations

import base64

import pytest

from videogen.errors import RequestRejected
from videogen.intake import parse_request
from videogen.models import MAX_DATA_URL_BYTES, MAX_INPUT_REFERENCES, MAX_PROMPT_CHARS, VideoRequest

SEED_REQUEST = {
    "model": "bytedance/seedance-2.0-fast",
    "prompt": "Create a 4-second product video of the same backpack from the reference image.",
    "duration": 4,
    "resolution": "720p",
    "aspect_ratio": "16:9",
    "generate_audio": False,
    "input_references": [{"type": "image_url", "image_url": {"url": "https://example.com/backpack.png"}}],
}


def ref(url: str) -> dict[str, object]:
    return {"type": "image_url", "image_url": {"url": url}}


def rejected_fields(payload: object) -> list[str]:
    with pytest.raises(RequestRejected) as info:
        parse_request(payload)  # type: ignore[arg-type]
    return [error.field for error in info.value.errors]


def test_seed_request_is_accepted_and_sent_verbatim() -> None:
    request = parse_request(SEED_REQUEST)
    assert request.to_openrouter() == SEED_REQUEST


def test_default_model_is_seedance_fast() -> None:
    assert parse_request({"prompt": "a cat"}).model == "bytedance/seedance-2.0-fast"


def test_unset_fields_and_empty_lists_are_left_out_of_the_openrouter_body() -> None:
    assert parse_request({"prompt": "a cat"}).to_openrouter() == {
        "model": "bytedance/seedance-2.0-fast",
        "prompt": "a cat",
    }


def test_s3_references_are_resolved_for_openrouter() -> None:
    request = parse_request({"prompt": "p", "input_references": [ref("s3://bucket/references/a.png")]})
    body = request.to_openrouter(lambda url: url.replace("s3://bucket/", "https://signed.example/"))
    assert body["input_references"][0]["image_url"]["url"] == "https://signed.example/references/a.png"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x" * (MAX_PROMPT_CHARS + 1)}, "prompt"),
        ({"prompt": "p", "unknown": 1}, "unknown"),
        ({"prompt": "p", "duration": 0}, "duration"),
        ({"prompt": "p", "duration": "four"}, "duration"),
        ({"prompt": "p", "resolution": "8K"}, "resolution"),
        ({"prompt": "p", "aspect_ratio": "5:4"}, "aspect_ratio"),
        ({"prompt": "p", "size": "big"}, "size"),
        ({"prompt": "p", "seed": -1}, "seed"),
        ({"prompt": "p", "input_references": [ref("http://example.com/a.png")]}, "input_references[0].image_url.url"),
        ({"prompt": "p", "input_references": [ref("file:///etc/passwd")]}, "input_references[0].image_url.url"),
        (
            {"prompt": "p", "input_references": [ref("https://169.254.169.254/latest")]},
            "input_references[0].image_url.url",
        ),
        (
            {"prompt": "p", "input_references": [ref("https://user:pw@example.com/a.png")]},
            "input_references[0].image_url.url",
        ),
        ({"prompt": "p", "input_references": [ref("ftp://example.com/a.png")]}, "input_references[0].image_url.url"),
        ({"prompt": "p", "input_references": [ref("data:text/html;base64,PGI+")]}, "input_references[0].image_url.url"),
        (
            {"prompt": "p", "input_references": [ref("https://e.com/a.png")] * (MAX_INPUT_REFERENCES + 1)},
            "input_references",
        ),
        (
            {"prompt": "p", "input_references": [{"type": "video_url", "image_url": {"url": "https://e.com/a"}}]},
            "input_references[0].type",
        ),
        ({"prompt": "p", "frame_images": [ref("https://e.com/a.png")]}, "frame_images[0].frame_type"),
    ],
)
def test_invalid_requests_name_the_field(payload: dict[str, object], field: str) -> None:
    assert field in rejected_fields(payload)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/a.png",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.5/a.png",
        "https://[::1]/a.png",
        "https://localhost/a.png",
        "https://metadata.google.internal/a.png",
        "https://user:pw@example.com/a.png",
    ],
)
def test_reference_urls_that_only_serve_as_ssrf_probes_are_rejected(url: str) -> None:
    assert rejected_fields({"prompt": "p", "input_references": [ref(url)]}) == ["input_references[0].image_url.url"]


def test_duplicate_frame_types_are_rejected() -> None:
    frame = {**ref("https://e.com/a.png"), "frame_type": "first_frame"}
    with pytest.raises(RequestRejected):
        parse_request({"prompt": "p", "frame_images": [frame, frame]})


def test_small_data_urls_are_accepted_and_large_ones_rejected() -> None:
    small = "data:image/png;base64," + base64.b64encode(b"\x89PNG" + b"0" * 100).decode()
    assert parse_request({"prompt": "p", "input_references": [ref(small)]}).input_references
    large = "data:image/png;base64," + base64.b64encode(b"0" * (MAX_DATA_URL_BYTES + 10)).decode()
    assert rejected_fields({"prompt": "p", "input_references": [ref(large)]}) == ["input_references[0].image_url.url"]


@pytest.mark.parametrize("body", ["", "not json", "[1, 2]", "null"])
def test_bodies_that_are_not_a_json_object_are_400(body: str) -> None:
    with pytest.raises(RequestRejected) as info:
        parse_request(body)
    assert info.value.status_code == 400


def test_error_body_names_fields() -> None:
    with pytest.raises(RequestRejected) as info:
        parse_request({"prompt": "p", "duration": 0})
    body = info.value.to_body()
    assert body["error"]["code"] == 422  # type: ignore[index]
    assert body["error"]["fields"][0]["field"] == "duration"  # type: ignore[index]


def test_video_request_round_trips_through_json() -> None:
    request = parse_request(SEED_REQUEST)
    assert VideoRequest.model_validate_json(request.model_dump_json()) == request
