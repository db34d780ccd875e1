"""S3: reference images in, videos out.

Videos are streamed into a multipart upload part by part (the next part is read while the last one
uploads), so a Lambda holds at most two parts in memory whatever the video's size. The object
becomes visible only when the upload completes, after the MP4 structure and size checks passed, so
``videos/`` never holds a partial or rejected file.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from videogen.aws import client
from videogen.errors import FieldError, RequestRejected, VideoTooLarge
from videogen.mp4 import Mp4Info, Mp4Inspector

MIN_PART_BYTES = 5 * 1024 * 1024  # S3's minimum for every part but the last
STREAM_WINDOW_BYTES = 1024 * 1024  # what a streamed read holds at a time (one ranged GET)
# The only prefix callers may point at: the functions can read nothing else (requests, videos stay private).
REFERENCES_PREFIX = "references/"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc or not parts.path.strip("/"):
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    return parts.netloc, parts.path.lstrip("/")


class ObjectChanged(Exception):
    """The object a notification named is gone (``missing``) or was replaced by a newer upload."""

    def __init__(self, *, missing: bool) -> None:
        super().__init__("object deleted" if missing else "object replaced by a newer upload")
        self.missing = missing


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

    def get_bytes(self, key: str) -> bytes:
        """The object as stored: a caller's request object is decoded (strictly) by intake, which can
        refuse bytes that are not UTF-8 with a reason instead of failing here."""
        body: bytes = client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def get_text(self, key: str) -> str:
        return self.get_bytes(key).decode("utf-8")

    def get_text_if_exists(self, key: str) -> str | None:
        try:
            return self.get_text(key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        except UnicodeDecodeError:
            return None

    def get_request(self, key: str, *, etag: str | None, version_id: str | None, max_bytes: int) -> bytes:
        """The bytes of the upload a notification named (its version, or the object while its ETag still
        matches: the key may hold a newer upload by now, which its own notification handles), at most
        ``max_bytes`` + 1 of them (enough to tell a request that is too large). Raises ObjectChanged."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Range": f"bytes=0-{max_bytes}"}
        if version_id:
            kwargs["VersionId"] = version_id
        elif etag:
            kwargs["IfMatch"] = etag
        try:
            body: bytes = client("s3").get_object(**kwargs)["Body"].read()
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in ("NoSuchKey", "NoSuchVersion", "404"):
                raise ObjectChanged(missing=True) from None
            if code in ("PreconditionFailed", "412"):
                raise ObjectChanged(missing=False) from None
            if code == "InvalidRange":  # an empty object: Range cannot be satisfied
                return b""
            raise
        return body

    def stream(
        self, key: str, *, start: int = 0, etag: str | None = None, version_id: str | None = None
    ) -> Iterator[bytes]:
        """The object from byte ``start`` on, one ranged GET of STREAM_WINDOW_BYTES at a time (memory stays
        one window whatever the object's size), of the upload named by ``version_id`` or while its ETag is
        ``etag``. Each window is read whole before it is handed on: a consumer that takes minutes over a
        window never holds a connection open that S3 (or anything in between) would drop. Raises
        ObjectChanged."""
        s3 = client("s3")
        position = start
        while True:
            kwargs: dict[str, Any] = {
                "Bucket": self.bucket,
                "Key": key,
                "Range": f"bytes={position}-{position + STREAM_WINDOW_BYTES - 1}",
            }
            if version_id:
                kwargs["VersionId"] = version_id
            elif etag:
                kwargs["IfMatch"] = etag
            try:
                response = s3.get_object(**kwargs)
            except ClientError as exc:
                code = exc.response["Error"]["Code"]
                if code in ("NoSuchKey", "NoSuchVersion", "404"):
                    raise ObjectChanged(missing=True) from None
                if code in ("PreconditionFailed", "412"):
                    raise ObjectChanged(missing=False) from None
                if code == "InvalidRange":  # at (or past) the end: nothing left
                    return
                raise
            window: bytes = response["Body"].read()
            if not window:
                return
            yield window
            position += len(window)
            total = int(str(response.get("ContentRange", "")).rpartition("/")[2] or 0)
            if len(window) < STREAM_WINDOW_BYTES or (total and position >= total):
                return

    def upload_lines(self, key: str, lines: Iterable[bytes], content_type: str = "application/x-ndjson") -> int:
        """Write ``lines`` (each with its line feed) to ``key`` as they come: one PUT when they fit a part,
        else a multipart upload of MIN_PART_BYTES parts, so memory stays one part whatever the total.
        Returns the bytes written. The object appears whole or not at all."""
        s3 = client("s3")
        part = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        total = 0
        try:
            for line in lines:
                part += line
                total += len(line)
                if len(part) >= MIN_PART_BYTES:
                    if upload_id is None:
                        upload_id = s3.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type)[
                            "UploadId"
                        ]
                    parts.append(self.upload_part(key, upload_id, len(parts) + 1, part))
                    part = bytearray()
            if upload_id is None:
                s3.put_object(Bucket=self.bucket, Key=key, Body=bytes(part), ContentType=content_type)
                return total
            if part:
                parts.append(self.upload_part(key, upload_id, len(parts) + 1, part))
            s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            if upload_id is not None:
                self.abort_upload(key, upload_id)
            raise
        return total

    def put_bytes(self, key: str, body: bytes, content_type: str) -> str:
        """Write a small object; its ETag (quoted, as S3 gives it)."""
        etag: str = client("s3").put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)["ETag"]
        return etag

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
        parts_in_flight: int = 1,
    ) -> StoredObject:
        """Stream ``chunks`` into ``s3://bucket/key``; check it is a playable MP4 (see ``videogen.mp4``)
        no larger than ``max_bytes``. A body that fails raises ``NotAnMp4`` and the upload is aborted.

        While ``parts_in_flight`` parts upload on background threads, the next part is read, so the
        transfer runs at the pace of the slower leg rather than the sum of both, and memory stays
        at most ``(parts_in_flight + 1) * part_bytes`` whatever the video's size.

        Uploads of the same key left by an earlier attempt that died before it could abort them (a Lambda
        time-out or crash runs no ``except`` block) are aborted first.
        """
        part_bytes = max(part_bytes, MIN_PART_BYTES)
        s3 = client("s3")
        self.abort_stale_uploads(key)
        upload_id: str = s3.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type)["UploadId"]
        total = 0
        try:
            with _PartUploader(self, key, upload_id, parts_in_flight) as uploader:
                part = bytearray()
                # Reads the boxes as they pass (it keeps only the moov), so a body that is not a
                # playable MP4 is refused before the upload completes, often after its first chunk.
                inspector = Mp4Inspector()
                for chunk in chunks:
                    if not chunk:
                        continue
                    total += len(chunk)
                    if total > max_bytes:
                        raise VideoTooLarge(f"video larger than the {max_bytes}-byte limit")
                    inspector.feed(chunk)
                    view = memoryview(chunk)
                    while view:
                        room = part_bytes - len(part)
                        part += view[:room]
                        view = view[room:]
                        if len(part) == part_bytes:
                            uploader.upload(part)  # the part is handed over, not copied
                            part = bytearray()
                mp4 = inspector.finish()
                if part or not uploader.started:
                    uploader.upload(part)
                parts, sha256 = uploader.finish()
            s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            # Leave no incomplete upload behind (they cost storage until the lifecycle rule reaps them).
            # _PartUploader has waited for the parts in flight, so the abort is final.
            self.abort_upload(key, upload_id)
            raise
        return StoredObject(
            s3_uri=f"s3://{self.bucket}/{key}", bytes=total, sha256=sha256, content_type=content_type, mp4=mp4
        )

    def abort_stale_uploads(self, key: str) -> None:
        # Listed rather than remembered: an attempt can die between creating its upload and recording it.
        # The video key is the job's own, and one download of a job runs at a time: the state machine's and a
        # callback's take the job's download claim first (JobStore.claim_download), so a live upload is never hit.
        listed = client("s3").list_multipart_uploads(Bucket=self.bucket, Prefix=key).get("Uploads", [])
        for upload in listed:
            if upload["Key"] == key:
                self.abort_upload(key, upload["UploadId"])

    def abort_upload(self, key: str, upload_id: str) -> None:
        try:
            client("s3").abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NoSuchUpload":  # completed or aborted already
                raise

    def upload_part(self, key: str, upload_id: str, number: int, body: bytes | bytearray) -> dict[str, Any]:
        response = client("s3").upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        return {"PartNumber": number, "ETag": response["ETag"]}


class _PartUploader:
    """Uploads parts on background threads, at most ``in_flight`` at a time: ``upload`` blocks while
    that many are under way, which bounds memory and lets the reader run ahead by exactly one part.
    The sha256 is computed here too, part by part in order on a thread of its own (hashlib releases
    the GIL), so that hashing does not slow the reading of the next part."""

    def __init__(self, storage: VideoStorage, key: str, upload_id: str, in_flight: int) -> None:
        self._storage = storage
        self._key = key
        self._upload_id = upload_id
        self._in_flight = max(1, in_flight)
        self._pool = ThreadPoolExecutor(max_workers=self._in_flight, thread_name_prefix="upload-part")
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")  # one thread: in order
        self._digest = hashlib.sha256()
        self._hashing: deque[Future[None]] = deque()
        self._pending: deque[Future[dict[str, Any]]] = deque()
        self._done: list[dict[str, Any]] = []
        self.started = False

    def __enter__(self) -> _PartUploader:
        return self

    def __exit__(self, *exc: object) -> None:
        # On an error, parts not yet started are dropped and running ones finish before the abort.
        for future in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True)
        self._hasher.shutdown(wait=True)

    def upload(self, body: bytearray) -> None:
        self.started = True
        while len(self._pending) >= self._in_flight:
            self._done.append(self._pending.popleft().result())
        while len(self._hashing) >= self._in_flight:  # a part waiting to be hashed is a part in memory
            self._hashing.popleft().result()
        self._hashing.append(self._hasher.submit(self._digest.update, body))
        number = len(self._done) + len(self._pending) + 1
        self._pending.append(self._pool.submit(self._storage.upload_part, self._key, self._upload_id, number, body))

    def finish(self) -> tuple[list[dict[str, Any]], str]:
        """The uploaded parts and the sha256 of the whole body."""
        while self._pending:
            self._done.append(self._pending.popleft().result())
        while self._hashing:
            self._hashing.popleft().result()
        return self._done, self._digest.hexdigest()


@dataclass
class StoredObject:
    s3_uri: str
    bytes: int
    sha256: str
    content_type: str
    mp4: Mp4Info
