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
            {"prompt": "p", "input_references": [{"type": "text_url", "image_url": {"url": "https://e.com/a"}}]},
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


# --- the whole request surface of OpenRouter's API (issue 13, part 2) ------------------------------------


def test_audio_and_video_references_pass_with_their_own_kind_of_url() -> None:
    from videogen.intake import parse_request

    request = parse_request(
        {
            "prompt": "p",
            "input_references": [
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                {"type": "audio_url", "audio_url": {"url": "https://example.com/a.mp3"}},
                {"type": "video_url", "video_url": {"url": "data:video/mp4;base64,AAAA"}},
            ],
        }
    )
    assert [ref.type for ref in request.input_references] == ["image_url", "audio_url", "video_url"]
    body = request.to_openrouter(lambda url: url.upper())
    assert body["input_references"][1] == {"type": "audio_url", "audio_url": {"url": "HTTPS://EXAMPLE.COM/A.MP3"}}
    assert request.image_urls() == ["https://example.com/a.png"]


@pytest.mark.parametrize(
    ("reference", "field"),
    [
        ({"type": "audio_url", "image_url": {"url": "https://example.com/a.png"}}, "input_references[0]"),
        (
            {"type": "audio_url", "audio_url": {"url": "data:image/png;base64,AAAA"}},
            "input_references[0].audio_url.url",
        ),
        ({"type": "video_url", "video_url": {"url": "https://127.1/v.mp4"}}, "input_references[0].video_url.url"),
    ],
)
def test_a_reference_carries_the_url_of_its_type(reference: dict[str, object], field: str) -> None:
    assert field in rejected_fields({"prompt": "p", "input_references": [reference]})


def test_the_prompt_is_optional_with_image_input_only() -> None:
    from videogen.intake import parse_request

    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    assert parse_request({"input_references": [image]}).prompt is None
    frame = {**image, "frame_type": "first_frame"}
    assert parse_request({"frame_images": [frame]}).prompt is None
    assert rejected_fields({}) == ["prompt"]
    audio = {"type": "audio_url", "audio_url": {"url": "https://example.com/a.mp3"}}
    assert rejected_fields({"input_references": [audio]}) == ["prompt"]


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"size": "1280x720", "aspect_ratio": "16:9", "resolution": "720p"}, True),
        ({"size": "720x1280", "aspect_ratio": "9:16", "resolution": "720p"}, True),
        ({"size": "1280x720", "aspect_ratio": "9:16"}, False),
        ({"size": "1920x1080", "resolution": "720p"}, False),
        ({"size": "1920x1080", "resolution": "2K"}, True),  # K resolutions are not compared
    ],
)
def test_a_size_agrees_with_resolution_and_aspect_ratio(fields: dict[str, str], ok: bool) -> None:
    from videogen.errors import RequestRejected
    from videogen.intake import parse_request

    if ok:
        parse_request({"prompt": "p", **fields})
    else:
        with pytest.raises(RequestRejected) as rejected:
            parse_request({"prompt": "p", **fields})
        assert [e.field for e in rejected.value.errors] == ["size"]


def test_a_callers_callback_url_is_refused_pointing_to_webhook_url() -> None:
    from videogen.errors import RequestRejected
    from videogen.intake import parse_request

    with pytest.raises(RequestRejected) as rejected:
        parse_request({"prompt": "p", "callback_url": "https://example.com/hook"})
    [error] = rejected.value.errors
    assert error.field == "callback_url" and "webhook_url" in error.message


def test_provider_passthrough_is_kept_and_other_keys_are_refused() -> None:
    from videogen.intake import parse_request

    options = {"google-vertex": {"parameters": {"personGeneration": "allow"}}}
    request = parse_request({"prompt": "p", "provider": {"options": options}})
    assert request.to_openrouter()["provider"] == {"options": options}
    assert "provider.options.google-vertex.output_config" in rejected_fields(
        {"prompt": "p", "provider": {"options": {"google-vertex": {"output_config": {}}}}}
    )
