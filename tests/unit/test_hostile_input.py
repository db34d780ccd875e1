"""Hostile request bodies (issue 10, part 5): each one is a 4xx naming the field, never a crash."""

from __future__ import annotations

import base64
import json

import pytest

from videogen.errors import RequestRejected
from videogen.intake import MAX_NESTING, MAX_REQUEST_BYTES, parse_request
from videogen.jobs import _decode_token, _encode_token
from videogen.models import MAX_DATA_URL_BYTES, Job, JobStatus, VideoRequest


def rejection(payload: object) -> RequestRejected:
    with pytest.raises(RequestRejected) as info:
        parse_request(payload)  # type: ignore[arg-type]
    assert info.value.errors, "every rejection names at least one field"
    return info.value


@pytest.mark.parametrize(
    "body", ["[" * 2000, '{"a":' * 2000, "[" * 2000 + "]" * 2000, '{"prompt": "p", "x": ' + "[" * 100]
)
def test_deeply_nested_json_is_400_naming_body(body: str) -> None:
    rejected = rejection(body)
    assert rejected.status_code == 400 and [e.field for e in rejected.errors] == ["body"]
    assert rejection(body.encode()).status_code == 400


def test_nesting_up_to_the_cap_is_parsed_and_brackets_in_strings_do_not_count() -> None:
    # Reaches the model (422 for the unknown field), not the nesting check.
    nested = "[" * (MAX_NESTING - 1) + "]" * (MAX_NESTING - 1)
    assert rejection('{"prompt": "p", "x": ' + nested + "}").status_code == 422
    assert parse_request(json.dumps({"prompt": "[[[[{{{{" * 100})).prompt.startswith("[[[[")


def test_deeply_nested_dict_from_eventbridge_is_400() -> None:
    value: object = "leaf"
    for _ in range(5000):
        value = {"a": value}
    rejected = rejection({"prompt": "p", "x": value})
    assert rejected.status_code == 400 and rejected.errors[0].field == "body"


def test_non_utf8_bytes_are_400_not_utf8() -> None:
    rejected = rejection(b'{"prompt": "caf\xe9"}')
    assert rejected.status_code == 400 and rejected.message == "request is not UTF-8 JSON"
    assert rejected.errors[0].field == "body"
    assert parse_request('{"prompt": "café"}'.encode()).prompt == "café"


def test_size_limit_counts_utf8_bytes_not_characters() -> None:
    # 210,000 "é" are 420,000 bytes: over the limit although fewer characters than MAX_REQUEST_BYTES.
    body = json.dumps({"prompt": "é" * 210_000}, ensure_ascii=False)
    assert len(body) < MAX_REQUEST_BYTES < len(body.encode())
    assert rejection(body).status_code == 413
    assert rejection(body.encode()).status_code == 413


def data_url(size: int) -> str:
    return "data:image/png;base64," + base64.b64encode(b"\x89" * size).decode()


def with_image(url: str) -> dict[str, object]:
    return {"prompt": "p", "input_references": [{"type": "image_url", "image_url": {"url": url}}]}


def test_data_url_of_exactly_the_limit_is_accepted_and_one_byte_more_refused() -> None:
    assert parse_request(with_image(data_url(MAX_DATA_URL_BYTES))).input_references
    rejected = rejection(with_image(data_url(MAX_DATA_URL_BYTES + 1)))
    assert rejected.status_code == 422 and rejected.errors[0].field == "input_references[0].image_url.url"


@pytest.mark.parametrize("prompt", ["\u200b", "\ufeff\u200b\u200c\u200d", " \u2060 ", "\u00a0\u3000", "\u200e"])
def test_prompt_of_invisible_characters_is_blank(prompt: str) -> None:
    rejected = rejection({"prompt": prompt})
    assert rejected.status_code == 422 and rejected.errors[0].field == "prompt"
    assert "visible" in rejected.errors[0].message


@pytest.mark.parametrize("prompt", ["\x00", "a cat\x00", "a\x07cat", "a\x1bcat", "a\x7fcat", "a\x85cat"])
def test_prompt_with_control_characters_is_refused(prompt: str) -> None:
    rejected = rejection({"prompt": prompt})
    assert rejected.errors[0].field == "prompt" and "control character" in rejected.errors[0].message


def test_lone_surrogates_are_refused_on_the_prompt() -> None:
    assert rejection('{"prompt": "a\\ud800cat"}').errors[0].field == "prompt"


def test_tabs_and_line_breaks_are_ordinary_prompt_text() -> None:
    assert parse_request({"prompt": "a cat\n\tjumps\r\n"}).prompt == "a cat\n\tjumps\r\n"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("duration", True),
        ("duration", "5"),
        ("duration", 5.0),
        ("seed", "42"),
        ("seed", True),
        ("generate_audio", "yes"),
        ("generate_audio", 1),
        ("prompt", 42),
        ("resolution", 720),
    ],
)
def test_no_loose_coercion(field: str, value: object) -> None:
    payload = {"prompt": "p", field: value}
    rejected = rejection(payload)
    assert rejected.status_code == 422 and rejected.errors[0].field == field
    rejected = rejection(json.dumps(payload))  # the same through the JSON text doors
    assert rejected.errors[0].field == field


def test_strict_image_models() -> None:
    assert rejection(with_image(42)).errors[0].field == "input_references[0].image_url.url"  # type: ignore[arg-type]
    frame = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}, "frame_type": 1}
    assert rejection({"prompt": "p", "frame_images": [frame]}).errors[0].field == "frame_images[0].frame_type"


def test_job_records_as_the_store_returns_them_still_load() -> None:
    # jobs._plain hands back ints and floats for DynamoDB numbers, strings for the rest.
    request = VideoRequest.model_validate(
        {"prompt": "p", "duration": 4, "seed": 7, "generate_audio": True, "frame_images": []}
    )
    item = Job(id="j", status=JobStatus.QUEUED, request=request).model_dump(mode="json", exclude_none=True)
    assert Job.model_validate(json.loads(json.dumps(item))).request == request


def test_duplicate_frame_type_is_reported_on_frame_images() -> None:
    frame = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}, "frame_type": "first_frame"}
    rejected = rejection({"prompt": "p", "frame_images": [frame, frame]})
    assert [e.field for e in rejected.errors] == ["frame_images"]


GOOD_KEY = {"caller": {"S": "arn:aws:iam::1:user/a"}, "created_at": {"S": "2026-12-01T00:00:00.000Z"}, "id": {"S": "j"}}


def token(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def test_a_page_token_we_made_decodes() -> None:
    assert _decode_token(_encode_token(GOOD_KEY)) == GOOD_KEY


@pytest.mark.parametrize(
    "forged",
    [
        token({"caller": {"S": "a"}}),
        token({**GOOD_KEY, "extra": {"S": "x"}}),
        token({**GOOD_KEY, "id": {"N": "1"}}),
        token({**GOOD_KEY, "id": {"S": 1}}),
        token({**GOOD_KEY, "id": {"S": "j", "N": "1"}}),
        token({**GOOD_KEY, "id": "j"}),
        token({**GOOD_KEY, "id": {"S": ""}}),
        token([GOOD_KEY]),
        token("x"),
        base64.urlsafe_b64encode(b"[" * 5000).decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        "not base64!",
    ],
)
def test_forged_page_tokens_are_refused(forged: str) -> None:
    with pytest.raises(ValueError, match="invalid page token"):
        _decode_token(forged)
