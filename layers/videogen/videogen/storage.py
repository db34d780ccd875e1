"""S3: reference images in, videos out.

Videos are streamed into a multipart upload part by part, so a Lambda holds at most one part in
memory whatever the video's size. The object becomes visible only when the upload completes, after
the MP4 and size checks passed, so ``videos/`` never holds a partial or rejected file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from videogen.aws import client
from videogen.errors import FieldError, NotAnMp4, RequestRejected, VideoTooLarge

MIN_PART_BYTES = 5 * 1024 * 1024  # S3's minimum for every part but the last
# The only prefix callers may point at: the functions can read nothing else (requests, videos stay private).
REFERENCES_PREFIX = "references/"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc or not parts.path.strip("/"):
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    return parts.netloc, parts.path.lstrip("/")


@dataclass
class VideoStorage:
    bucket: str
    presign_seconds: int = 3600

    def presign(self, key: str, bucket: str | None = None) -> str:
        url: str = client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": bucket or self.bucket, "Key": key}, ExpiresIn=self.presign_seconds
        )
        return url

    def check_reference(self, uri: str, field: str) -> None:
        """An s3:// reference must name an existing object in the service bucket (nowhere else:
        the service must not become a way to read other buckets)."""
        try:
            bucket, key = parse_s3_uri(uri)
        except ValueError as exc:
            raise RequestRejected("invalid reference URI", [FieldError(field, str(exc))], reason="reference") from None
        if bucket != self.bucket or not key.startswith(REFERENCES_PREFIX):
            raise RequestRejected(
                "reference outside the service bucket's references/",
                [
                    FieldError(
                        field, f"s3:// references must be under s3://{self.bucket}/{REFERENCES_PREFIX} (got {uri})"
                    )
                ],
            )
        try:
            client("s3").head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                raise RequestRejected(
                    "reference not found", [FieldError(field, f"{uri} does not exist")], reason="reference"
                ) from None
            raise

    def resolve_reference(self, url: str) -> str:
        """What OpenRouter gets for an image URL: s3:// becomes a presigned HTTPS GET."""
        if url.startswith("s3://"):
            bucket, key = parse_s3_uri(url)
            return self.presign(key, bucket)
        return url

    def delete(self, key: str) -> None:
        client("s3").delete_object(Bucket=self.bucket, Key=key)

    def get_text(self, key: str) -> str:
        body: bytes = client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body.decode("utf-8")

    def put_json(self, key: str, body: str) -> None:
        client("s3").put_object(Bucket=self.bucket, Key=key, Body=body.encode(), ContentType="application/json")

    def upload_video(
        self,
        key: str,
        chunks: Iterable[bytes],
        *,
        part_bytes: int,
        max_bytes: int,
        content_type: str = "video/mp4",
    ) -> StoredObject:
        """Stream ``chunks`` into ``s3://bucket/key``; check it is an MP4 no larger than ``max_bytes``."""
        part_bytes = max(part_bytes, MIN_PART_BYTES)
        s3 = client("s3")
        upload_id = s3.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type)["UploadId"]
        digest = hashlib.sha256()
        parts: list[dict[str, Any]] = []
        buffer = bytearray()
        total = 0
        checked = False
        try:
            for chunk in chunks:
                if not chunk:
                    continue
                total += len(chunk)
                if total > max_bytes:
                    raise VideoTooLarge(f"video larger than the {max_bytes}-byte limit")
                digest.update(chunk)
                buffer += chunk
                # The buffer still holds the file's first bytes here: parts are at least 5 MiB.
                if not checked and len(buffer) >= 8:
                    _check_mp4_head(bytes(buffer[:8]))
                    checked = True
                while len(buffer) >= part_bytes:
                    parts.append(self._upload_part(key, upload_id, len(parts) + 1, bytes(buffer[:part_bytes])))
                    del buffer[:part_bytes]
            if not checked:
                raise NotAnMp4(f"body of {total} bytes is too short to be an MP4")
            if buffer or not parts:
                parts.append(self._upload_part(key, upload_id, len(parts) + 1, bytes(buffer)))
            s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            # Leave no incomplete upload behind (they cost storage until the lifecycle rule reaps them).
            s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise
        return StoredObject(
            s3_uri=f"s3://{self.bucket}/{key}", bytes=total, sha256=digest.hexdigest(), content_type=content_type
        )

    def _upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        etag = client("s3").upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)[
            "ETag"
        ]
        return {"PartNumber": number, "ETag": etag}


@dataclass
class StoredObject:
    s3_uri: str
    bytes: int
    sha256: str
    content_type: str


def _check_mp4_head(head: bytes) -> None:
    """ISO base media files start with a box whose type is ``ftyp`` (bytes 4..8)."""
    if head[4:8] != b"ftyp":
        raise NotAnMp4("body does not start with an MP4 'ftyp' box")
