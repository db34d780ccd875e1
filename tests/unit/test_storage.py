"""Streaming upload to S3 on moto: real multipart, MP4 check and size limit before anything is visible."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from videogen.aws import client
from videogen.errors import NotAnMp4, RequestRejected, VideoTooLarge
from videogen.storage import MIN_PART_BYTES, VideoStorage, parse_s3_uri
from videogen_local.sim.mp4_boxes import FTYP, streaming_head

pytestmark = pytest.mark.usefixtures("aws")
# ftyp + a small moov + an mdat running to the end: valid whatever follows (the check reads the boxes).
MP4_HEAD = streaming_head()


def chunks(total: int, size: int = 1024 * 1024, head: bytes = MP4_HEAD) -> Iterator[bytes]:
    data = head + bytes(range(256)) * ((total - len(head)) // 256 + 1)
    data = data[:total]
    for start in range(0, total, size):
        yield data[start : start + size]


def leftovers() -> list[object]:
    return client("s3").list_multipart_uploads(Bucket="videogen-bucket").get("Uploads", [])


def test_large_video_is_uploaded_in_parts_with_sha256() -> None:
    total = 2 * MIN_PART_BYTES + 1234
    expected = hashlib.sha256(b"".join(chunks(total))).hexdigest()
    stored = VideoStorage("videogen-bucket").upload_video("videos/a.mp4", chunks(total), part_bytes=1, max_bytes=10**9)
    assert stored.bytes == total and stored.sha256 == expected
    head = client("s3").head_object(Bucket="videogen-bucket", Key="videos/a.mp4")
    assert head["ContentLength"] == total and head["ContentType"] == "video/mp4"
    assert head["ETag"].endswith('-3"')  # three parts: 5 MiB, 5 MiB, the rest
    assert leftovers() == []


def test_small_video_is_a_single_part() -> None:
    stored = VideoStorage("videogen-bucket").upload_video(
        "videos/s.mp4", chunks(5000), part_bytes=MIN_PART_BYTES, max_bytes=10**6
    )
    assert stored.bytes == 5000
    body = client("s3").get_object(Bucket="videogen-bucket", Key="videos/s.mp4")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == stored.sha256


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (chunks(6000, head=b"<html><body>Access denied</body></html>"), NotAnMp4),
        (iter([b"\x00\x00"]), NotAnMp4),
        (chunks(6000, head=FTYP), NotAnMp4),  # ftyp, then no box structure: the old head check let it through
        (chunks(20000), VideoTooLarge),
    ],
)
def test_rejected_bodies_leave_nothing_behind(body: Iterator[bytes], error: type[Exception]) -> None:
    with pytest.raises(error):
        VideoStorage("videogen-bucket").upload_video("videos/bad.mp4", body, part_bytes=MIN_PART_BYTES, max_bytes=10000)
    assert client("s3").list_objects_v2(Bucket="videogen-bucket").get("KeyCount") == 0
    assert leftovers() == []


def test_interrupted_stream_aborts_the_upload() -> None:
    def broken() -> Iterator[bytes]:
        yield from chunks(MIN_PART_BYTES + 10)
        raise ConnectionResetError("peer went away")

    with pytest.raises(ConnectionResetError):
        VideoStorage("videogen-bucket").upload_video(
            "videos/x.mp4", broken(), part_bytes=MIN_PART_BYTES, max_bytes=10**9
        )
    assert leftovers() == []
    assert client("s3").list_objects_v2(Bucket="videogen-bucket").get("KeyCount") == 0


def test_references_must_exist_in_the_service_bucket() -> None:
    storage = VideoStorage("videogen-bucket")
    client("s3").put_object(Bucket="videogen-bucket", Key="references/a b.png", Body=b"png")
    storage.check_reference("s3://videogen-bucket/references/a b.png", "f")
    for uri, reason in [
        ("s3://other-bucket/references/a.png", "outside"),
        ("s3://videogen-bucket/videos/someone-elses.mp4", "outside"),
        ("s3://videogen-bucket/references/missing.png", "not found"),
        ("s3://videogen-bucket", "invalid"),
    ]:
        with pytest.raises(RequestRejected, match=reason):
            storage.check_reference(uri, "f")


def test_s3_references_become_presigned_https_for_openrouter() -> None:
    url = VideoStorage("videogen-bucket").resolve_reference("s3://videogen-bucket/references/a.png")
    assert url.startswith("https://") and "X-Amz-Signature=" in url and "references/a.png" in url
    assert parse_s3_uri("s3://b/k/e y") == ("b", "k/e y")


def test_the_next_part_is_read_while_the_last_one_uploads() -> None:
    """The first part's upload waits until the reader has moved past it: without overlap this would stall."""
    import threading

    read_ahead = threading.Event()
    overlapped: list[bool] = []

    def first_part_waits(params: dict[str, object], **_: object) -> None:
        if params["PartNumber"] == 1:
            overlapped.append(read_ahead.wait(timeout=10))

    def body() -> Iterator[bytes]:
        for index, chunk in enumerate(chunks(3 * MIN_PART_BYTES)):
            if index * 1024 * 1024 > MIN_PART_BYTES:
                read_ahead.set()
            yield chunk

    s3 = client("s3")
    s3.meta.events.register("before-parameter-build.s3.UploadPart", first_part_waits)
    try:
        stored = VideoStorage("videogen-bucket").upload_video(
            "videos/o.mp4", body(), part_bytes=MIN_PART_BYTES, max_bytes=10**9
        )
    finally:
        s3.meta.events.unregister("before-parameter-build.s3.UploadPart", first_part_waits)
    assert overlapped == [True]
    assert stored.bytes == 3 * MIN_PART_BYTES and leftovers() == []


@pytest.mark.parametrize("in_flight", [1, 3])
def test_parts_in_flight_are_bounded(in_flight: int) -> None:
    import threading
    import time

    lock = threading.Lock()
    running = {"now": 0, "max": 0}

    def enter(**_: object) -> None:
        with lock:
            running["now"] += 1
            running["max"] = max(running["max"], running["now"])
        time.sleep(0.05)  # long enough for the reader to try to run ahead

    def leave(**_: object) -> None:
        with lock:
            running["now"] -= 1

    s3 = client("s3")
    s3.meta.events.register("before-call.s3.UploadPart", enter)
    s3.meta.events.register("after-call.s3.UploadPart", leave)
    try:
        total = 6 * MIN_PART_BYTES + 99
        stored = VideoStorage("videogen-bucket").upload_video(
            "videos/b.mp4", chunks(total), part_bytes=MIN_PART_BYTES, max_bytes=10**9, parts_in_flight=in_flight
        )
    finally:
        s3.meta.events.unregister("before-call.s3.UploadPart", enter)
        s3.meta.events.unregister("after-call.s3.UploadPart", leave)
    assert running["max"] == in_flight
    body = client("s3").get_object(Bucket="videogen-bucket", Key="videos/b.mp4")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == stored.sha256 and len(body) == total


def test_uploads_left_by_a_dead_attempt_are_aborted_first() -> None:
    s3 = client("s3")
    stale = s3.create_multipart_upload(Bucket="videogen-bucket", Key="videos/c.mp4")["UploadId"]
    s3.upload_part(Bucket="videogen-bucket", Key="videos/c.mp4", UploadId=stale, PartNumber=1, Body=b"x" * 100)
    other = s3.create_multipart_upload(Bucket="videogen-bucket", Key="videos/c.mp4.other")["UploadId"]
    VideoStorage("videogen-bucket").upload_video(
        "videos/c.mp4", chunks(7000), part_bytes=MIN_PART_BYTES, max_bytes=10**6
    )
    assert [u["UploadId"] for u in leftovers()] == [other]  # another key's upload is not ours to abort
    # An id that is already gone (completed or aborted) is no error.
    VideoStorage("videogen-bucket").abort_upload("videos/c.mp4", stale)
