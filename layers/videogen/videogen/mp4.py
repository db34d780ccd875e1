"""A structural check of an ISO BMFF / MP4 body while it streams, without decoding it.

The download feeds every chunk to :class:`Mp4Inspector` on its way into the multipart upload, so the
verdict is known before the object becomes visible. Only box headers are read at the top level:
``mdat`` (and any other box but ``moov``) is skipped by counting its bytes, never kept, so the check
costs a few integer operations per chunk and no memory beyond the ``moov`` box, which is kept (up to
:data:`MAX_MOOV_BYTES`) and parsed when it ends, wherever it is (at the start, "faststart", or at the
end after ``mdat``).

A body passes when it starts with ``ftyp``, has exactly one ``moov`` whose ``mvhd`` gives a duration
above zero, at least one ``vide`` track whose first sample entry is a codec players know, and media
data (an ``mdat`` with a payload; in a fragmented file the ``moof``/``mdat`` pairs). Anything else is
:class:`~videogen.errors.NotAnMp4` with the reason.

Why not a parser from PyPI: ``pymp4`` (construct-based) parses a box with its payload, ``mdat``
included, so it would hold the whole video; the few boxes needed here fit in this module and keep the
Lambda layer free of a new dependency.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from videogen.errors import NotAnMp4

MAX_MOOV_BYTES = 32 * 1024 * 1024  # a real moov is kilobytes to a few MiB; this bounds the memory kept
# Sample entries of the video codecs MP4 players decode; the fourcc is what `codec` records.
VIDEO_CODECS = frozenset({"avc1", "avc3", "hvc1", "hev1", "av01", "vp09"})
# Boxes inside moov that hold other boxes and lead to what is read here (nothing else is descended into).
_CONTAINERS = frozenset({b"trak", b"mdia", b"minf", b"stbl", b"mvex"})
_Buffer = bytes | bytearray
_UNKNOWN_DURATION = {0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF}  # all ones: "duration not known" (ISO/IEC 14496-12)


@dataclass(frozen=True)
class Mp4Info:
    """What the check learnt; recorded on the job's video and in VideoCompleted."""

    duration_seconds: float
    width: int
    height: int
    codec: str
    has_audio: bool
    fragmented: bool  # the moov announces movie fragments (mvex)


def _reject(reason: str) -> NotAnMp4:
    return NotAnMp4(f"not a playable MP4: {reason}")


def _fourcc(raw: bytes) -> str:
    return raw.decode("latin-1")


class Mp4Inspector:
    """Feed the body chunk by chunk with :meth:`feed`, then :meth:`finish` for the verdict.

    Raises :class:`NotAnMp4` as early as the body allows (a first box that is not ``ftyp``, a
    ``moov`` over the cap or without a video track as soon as it ends), else at :meth:`finish`.
    """

    def __init__(self, max_moov_bytes: int = MAX_MOOV_BYTES) -> None:
        self._max_moov = max_moov_bytes
        self._offset = 0  # bytes of the body seen so far
        self._header = bytearray()  # a top-level box header being gathered (at most 16 bytes)
        self._box_type = b""
        self._box_end: int | None = None  # absolute end of the current box; None: it runs to the end of the body
        self._in_box = False
        self._moov: bytearray | None = None  # the moov being gathered
        self._boxes = 0
        self._media_bytes = 0  # mdat payload bytes
        self._info: Mp4Info | None = None  # the parsed moov

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        view = memoryview(chunk).cast("B")
        while view:
            if not self._in_box:
                view = self._read_header(view)
                continue
            take = len(view) if self._box_end is None else min(len(view), self._box_end - self._offset)
            self._consume(view[:take])
            view = view[take:]
            self._offset += take
            if self._box_end is not None and self._offset == self._box_end:
                self._close_box()

    def finish(self) -> Mp4Info:
        """The verdict once the body has ended."""
        if self._header:
            raise _reject(f"the body ends inside a box header at byte {self._offset}")
        if self._in_box:
            if self._box_end is not None:
                raise _reject(
                    f"the body ends inside the '{_fourcc(self._box_type)}' box "
                    f"(at byte {self._offset} of {self._box_end}): truncated"
                )
            self._close_box()  # size 0: the last box runs to the end of the body
        if self._boxes == 0:
            raise _reject("empty body")
        if self._info is None:
            raise _reject("no moov box")
        if self._media_bytes == 0:
            raise _reject("no media data (no mdat box with a payload)")
        return self._info

    # The top level: box headers, then payloads consumed by length.

    def _read_header(self, view: memoryview) -> memoryview:
        need = 16 if len(self._header) >= 4 and self._header[:4] == b"\x00\x00\x00\x01" else 8
        take = min(len(view), need - len(self._header))
        self._header += view[:take]
        self._offset += take
        view = view[take:]
        if len(self._header) < need:
            return view
        size, box_type = struct.unpack_from(">I4s", self._header)
        if size == 1 and need == 8:
            return view  # a 64-bit largesize follows: gather 8 more bytes
        header_bytes = need
        if size == 1:
            (size,) = struct.unpack_from(">Q", self._header, 8)
        self._header.clear()
        start = self._offset - header_bytes
        if self._boxes == 0 and box_type != b"ftyp":
            raise NotAnMp4("body does not start with an MP4 'ftyp' box")
        if not all(0x20 <= byte <= 0x7E for byte in box_type):
            # Top-level box types are printable fourccs; anything else is not ISO BMFF (garbage, or a
            # size that pointed into the middle of something).
            raise _reject(f"unreadable box type {box_type!r} at byte {start}")
        if size != 0 and size < header_bytes:
            raise _reject(f"box '{_fourcc(box_type)}' at byte {start} declares {size} bytes, less than its header")
        self._boxes += 1
        self._box_type = box_type
        self._box_end = None if size == 0 else start + size
        self._in_box = True
        if box_type == b"moov":
            if self._info is not None or self._moov is not None:
                raise _reject("more than one moov box")
            if size - header_bytes > self._max_moov:
                raise _reject(f"moov box of {size} bytes is larger than the {self._max_moov}-byte limit")
            self._moov = bytearray()
        if self._box_end == self._offset:
            self._close_box()  # an empty box
        return view

    def _consume(self, data: memoryview) -> None:
        if self._box_type == b"mdat":
            self._media_bytes += len(data)
        elif self._moov is not None:
            if len(self._moov) + len(data) > self._max_moov:  # a moov of size 0 runs to the end: still capped
                raise _reject(f"moov box larger than the {self._max_moov}-byte limit")
            self._moov += data
        # Any other box is skipped: its bytes are counted by the offset and dropped.

    def _close_box(self) -> None:
        self._in_box = False
        if self._moov is not None:
            moov, self._moov = self._moov, None
            self._info = parse_moov(moov)  # parsed in place: no second copy of a moov of up to the cap


# The moov: a bounded in-memory parse.


def _boxes(data: _Buffer, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes in ``data[start:end]``."""
    found = []
    position = start
    while position < end:
        if end - position < 8:
            raise _reject(f"a box header is cut short inside the moov (byte {position})")
        size, box_type = struct.unpack_from(">I4s", data, position)
        header = 8
        if size == 1:
            if end - position < 16:
                raise _reject("a largesize box header is cut short inside the moov")
            (size,) = struct.unpack_from(">Q", data, position + 8)
            header = 16
        elif size == 0:
            size = end - position  # runs to the end of its parent
        if size < header or position + size > end:
            raise _reject(f"box '{_fourcc(box_type)}' inside the moov overruns its parent")
        found.append((box_type, position + header, position + size))
        position += size
    return found


def _unpack(fmt: str, data: _Buffer, offset: int, end: int, what: str) -> tuple[int, ...]:
    if offset + struct.calcsize(fmt) > end:
        raise _reject(f"the '{what}' box is too short")
    return struct.unpack_from(fmt, data, offset)


def _unpack_bytes(fmt: str, data: _Buffer, offset: int, end: int, what: str) -> bytes:
    if offset + struct.calcsize(fmt) > end:
        raise _reject(f"the '{what}' box is too short")
    (value,) = struct.unpack_from(fmt, data, offset)
    assert isinstance(value, bytes)
    return value


@dataclass
class _Track:
    handler: bytes = b""
    width: int = 0
    height: int = 0
    codec: str = ""
    entry_width: int = 0
    entry_height: int = 0


def parse_moov(moov: _Buffer) -> Mp4Info:
    """Check a moov box's payload (without its header) and read what is recorded."""
    timescale = duration = fragment_duration = 0
    seen_mvhd = fragmented = False
    tracks: list[_Track] = []
    for box_type, start, end in _boxes(moov, 0, len(moov)):
        if box_type == b"mvhd":
            seen_mvhd = True
            (version,) = _unpack(">B", moov, start, end, "mvhd")
            if version == 1:
                timescale, duration = _unpack(">4xQQIQ", moov, start, end, "mvhd")[2:]
            else:
                timescale, duration = _unpack(">4xIIII", moov, start, end, "mvhd")[2:]
        elif box_type == b"trak":
            tracks.append(_parse_trak(moov, start, end))
        elif box_type == b"mvex":  # movie fragments (moof + mdat) follow; the moov has no samples of its own
            fragmented = True
            for inner, s, e in _boxes(moov, start, end):
                if inner == b"mehd":  # a fragmented file's total duration, in the mvhd's timescale
                    (version,) = _unpack(">B", moov, s, e, "mehd")
                    (fragment_duration,) = _unpack(">4xQ" if version == 1 else ">4xI", moov, s, e, "mehd")
    if not seen_mvhd:
        raise _reject("no mvhd box in the moov")
    if timescale == 0:
        raise _reject("the mvhd timescale is 0")
    if duration in _UNKNOWN_DURATION or duration == 0:
        duration = fragment_duration
    seconds = round(duration / timescale, 3)
    if seconds == 0:  # under half a millisecond (a huge timescale) counts as none: nothing a player would show
        raise _reject("the movie's duration (mvhd) is 0")
    videos = [track for track in tracks if track.handler == b"vide"]
    if not videos:
        raise _reject("no video track")
    playable = [track for track in videos if track.codec in VIDEO_CODECS]
    if not playable:
        found = ", ".join(sorted({track.codec or "none" for track in videos}))
        raise _reject(f"no video track in a supported codec (found {found})")
    video = playable[0]
    # tkhd holds the display size (after pixel aspect); the sample entry the coded size, used when tkhd has none.
    width, height = video.width, video.height
    if not width or not height:
        width, height = video.entry_width, video.entry_height
    if not width or not height:
        raise _reject("the video track has no frame size")
    return Mp4Info(
        duration_seconds=seconds,
        width=width,
        height=height,
        codec=video.codec,
        has_audio=any(track.handler == b"soun" for track in tracks),
        fragmented=fragmented,
    )


def _parse_trak(moov: _Buffer, start: int, end: int) -> _Track:
    track = _Track()
    pending = [(box_type, s, e) for box_type, s, e in _boxes(moov, start, end)]
    while pending:
        box_type, s, e = pending.pop(0)
        if box_type in _CONTAINERS:
            pending.extend(_boxes(moov, s, e))
        elif box_type == b"tkhd":
            (version,) = _unpack(">B", moov, s, e, "tkhd")
            at = s + (88 if version == 1 else 76)
            width, height = _unpack(">II", moov, at, e, "tkhd")
            track.width, track.height = width >> 16, height >> 16  # 16.16 fixed point
        elif box_type == b"hdlr":
            track.handler = _unpack_bytes(">8x4s", moov, s, e, "hdlr")
        elif box_type == b"stsd":
            (count,) = _unpack(">4xI", moov, s, e, "stsd")
            entries = _boxes(moov, s + 8, e) if count else []
            if entries:
                entry_type, es, ee = entries[0]
                track.codec = _fourcc(entry_type)
                if ee - es >= 28:  # a visual sample entry: width and height at bytes 24..28 of its payload
                    track.entry_width, track.entry_height = struct.unpack_from(">HH", moov, es + 24)
    return track
