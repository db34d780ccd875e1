"""Streaming upload to S3 on moto: real multipart, MP4 check and size limit before anything is visible."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from videogen.aws import client
from videogen.errors import NotAnMp4, RequestRejected, VideoTooLarge
from videogen.storage import MIN_PART_BYTES, VideoStorage, parse_s3_uri

pytestmark = pytest.mark.usefixtures("aws")
MP4_HEAD = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"


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
