"""Property tests (hypothesis): whatever JSON arrives, parse_request returns a VideoRequest or raises
RequestRejected with a 400/413/422 naming at least one field; nothing else ever escapes."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from videogen.errors import RequestRejected
from videogen.intake import parse_request
from videogen.models import VideoRequest

FIELDS = ["model", "prompt", "duration", "resolution", "aspect_ratio", "size", "generate_audio", "seed"]
LISTS = ["input_references", "frame_images"]

# Any unicode (surrogates and controls included), not just printable text.
anything_text = st.text(st.characters(codec=None), max_size=40)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | anything_text
    | st.sampled_from(["720p", "16:9", "first_frame", "image_url", "https://example.com/a.png", "1280x720", "5"])
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(anything_text, children, max_size=6),
    max_leaves=40,
)
image = st.fixed_dictionaries(
    {"image_url": st.fixed_dictionaries({"url": json_values})},
    optional={"type": json_values, "frame_type": json_values},
)
requests = st.dictionaries(
    st.sampled_from([*FIELDS, *LISTS, "extra"]) | anything_text,
    json_values | st.lists(image, max_size=3),
    max_size=8,
)


@st.composite
def deep(draw: st.DrawFn) -> Any:
    """A value nested hundreds or thousands of levels deep, in lists, objects or both."""
    depth = draw(st.integers(min_value=1, max_value=3000))
    value: Any = draw(scalars)
    kinds = draw(st.lists(st.booleans(), min_size=1, max_size=4))
    for level in range(depth):
        value = [value] if kinds[level % len(kinds)] else {"a": value}
    return value


def check(payload: Any) -> None:
    try:
        request = parse_request(payload)
    except RequestRejected as rejected:
        assert rejected.status_code in (400, 413, 422), rejected
        assert rejected.errors and all(e.field and e.message for e in rejected.errors), rejected
        json.dumps(rejected.to_body())  # always serialisable: the HTTP answer, the .error.json, the event
        return
    assert isinstance(request, VideoRequest)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(requests | json_values)
def test_any_json_value_as_object_text_or_bytes(payload: Any) -> None:
    check(payload)
    try:
        text = json.dumps(payload)
    except (ValueError, RecursionError):
        return
    check(text)
    check(text.encode("utf-8", "surrogatepass"))  # lone surrogates become invalid UTF-8 bytes


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None)
@given(deep(), st.booleans())
def test_deep_values_as_object_and_text(value: Any, inside: bool) -> None:
    payload = {"prompt": "p", "extra": value} if inside else value
    check(payload)
    # json.dumps itself recurses: write the text level by level so any depth can be sent.
    levels, leaf = [], value
    while isinstance(leaf, list | dict):
        levels.append(isinstance(leaf, list))
        leaf = leaf[0] if isinstance(leaf, list) else leaf["a"]
    text = "".join("[" if is_list else '{"a":' for is_list in levels) + json.dumps(leaf)
    text += "".join("]" if is_list else "}" for is_list in reversed(levels))
    if inside:
        text = '{"prompt": "p", "extra": ' + text + "}"
    check(text)
    check(text.encode("utf-8", "surrogatepass"))


@given(st.binary(max_size=300))
def test_arbitrary_bytes(body: bytes) -> None:
    check(body)
