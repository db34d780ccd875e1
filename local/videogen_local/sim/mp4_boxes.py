"""Hand-built ISO BMFF boxes: a structurally valid MP4 head (ftyp + a small moov with one H.264 track)
followed by an ``mdat`` of any size, without encoding anything.

The benchmarks stream hundreds of MiB through the download's MP4 check; rendering that much video
would measure the encoder, so they serve this head and then filler as the ``mdat`` payload. The tests
use the same builders to make the malformed files the check must refuse.
"""

from __future__ import annotations

import struct

FTYP = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"


def box(box_type: bytes, payload: bytes = b"", *, largesize: bool = False) -> bytes:
    """One box; ``largesize`` writes the 64-bit size form (size field 1)."""
    if largesize:
        return struct.pack(">I4sQ", 1, box_type, 16 + len(payload)) + payload
    return struct.pack(">I4s", 8 + len(payload), box_type) + payload


def full_box(box_type: bytes, version: int, payload: bytes, flags: int = 0) -> bytes:
    return box(box_type, struct.pack(">I", (version << 24) | flags) + payload)


def mvhd(timescale: int = 1000, duration: int = 5000, version: int = 0) -> bytes:
    if version == 1:
        times = struct.pack(">QQIQ", 0, 0, timescale, duration)
    else:
        times = struct.pack(">IIII", 0, 0, timescale, duration)
    rest = struct.pack(">IH10x36x24xI", 0x00010000, 0x0100, 2)  # rate, volume, matrix, pre_defined, next_track_ID
    return full_box(b"mvhd", version, times + rest)


def tkhd(width: int, height: int, version: int = 0) -> bytes:
    head = struct.pack(">QQI4xQ", 0, 0, 1, 0) if version == 1 else struct.pack(">III4xI", 0, 0, 1, 0)
    rest = struct.pack(">8xhhH2x36xII", 0, 0, 0, width << 16, height << 16)
    return full_box(b"tkhd", version, head + rest, flags=3)


def hdlr(handler: bytes) -> bytes:
    return full_box(b"hdlr", 0, struct.pack(">I4s12x", 0, handler) + b"\x00")


def visual_entry(codec: bytes, width: int, height: int) -> bytes:
    payload = struct.pack(">6xH16xHHIIIH32xHh", 1, width, height, 0x00480000, 0x00480000, 0, 1, 0x18, -1)
    return box(codec, payload)


def stsd(*entries: bytes) -> bytes:
    return full_box(b"stsd", 0, struct.pack(">I", len(entries)) + b"".join(entries))


def trak(handler: bytes, entry: bytes, width: int = 0, height: int = 0) -> bytes:
    stbl = box(b"stbl", stsd(entry))
    mdia = box(b"mdia", hdlr(handler) + box(b"minf", stbl))
    return box(b"trak", tkhd(width, height) + mdia)


def video_trak(codec: bytes = b"avc1", width: int = 1280, height: int = 720) -> bytes:
    return trak(b"vide", visual_entry(codec, width, height), width, height)


def audio_trak() -> bytes:
    return trak(b"soun", box(b"mp4a", bytes(28)))


def moov(*children: bytes) -> bytes:
    return box(b"moov", b"".join(children))


def default_moov(*, audio: bool = False) -> bytes:
    return moov(mvhd(), video_trak(), *([audio_trak()] if audio else []))


def streaming_head() -> bytes:
    """ftyp + moov + the header of an ``mdat`` of size 0 ("to the end of the file"): any bytes after it
    make a valid MP4 of 1280×720 H.264, 5 s, whatever their number."""
    return FTYP + default_moov() + struct.pack(">I4s", 0, b"mdat")
