"""The download's MP4 check (videogen.mp4) on real files rendered with PyAV and on hand-built broken ones."""

from __future__ import annotations

import contextlib
import struct
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from videogen.errors import NotAnMp4
from videogen.mp4 import Mp4Info, Mp4Inspector, parse_moov
from videogen_local.sim.mp4_boxes import (
    FTYP,
    audio_trak,
    box,
    default_moov,
    full_box,
    moov,
    mvhd,
    streaming_head,
    trak,
    video_trak,
    visual_entry,
)

WIDTH, HEIGHT, FPS, FRAMES = 64, 48, 12, 6  # 0.5 s: tiny, so that six renders cost well under a second


@cache
def render(codec: str, *, audio: bool = False, faststart: bool = False, tag: str | None = None) -> bytes:
    """A real MP4 from PyAV's muxer. faststart (moov moved before mdat) needs a seekable file."""
    with tempfile.TemporaryDirectory() as folder:
        return _render(Path(folder) / "v.mp4", codec, audio=audio, faststart=faststart, tag=tag)


def _render(path: Path, codec: str, *, audio: bool, faststart: bool, tag: str | None) -> bytes:
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), mode="w", format="mp4", options=options) as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        if tag:
            stream.codec_tag = tag
        sound = container.add_stream("aac", rate=16000) if audio else None
        for index in range(FRAMES):
            frame = av.VideoFrame.from_ndarray(np.full((HEIGHT, WIDTH, 3), index * 40, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if sound is not None:
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            samples.sample_rate = 16000
            for packet in [*sound.encode(samples), *sound.encode()]:
                container.mux(packet)
    return path.read_bytes()


def top_level(data: bytes) -> list[str]:
    found, position = [], 0
    while position < len(data):
        size, kind = struct.unpack_from(">I4s", data, position)
        found.append(kind.decode())
        position += size
    return found


def inspect(data: bytes, chunk: int = 1 << 20) -> Mp4Info:
    inspector = Mp4Inspector()
    for start in range(0, len(data), chunk):
        inspector.feed(data[start : start + chunk])
    return inspector.finish()


def rejected(data: bytes, chunk: int = 1 << 20) -> str:
    with pytest.raises(NotAnMp4) as caught:
        inspect(data, chunk)
    return str(caught.value)


@pytest.mark.parametrize("faststart", [False, True], ids=["moov-at-end", "faststart"])
@pytest.mark.parametrize("audio", [False, True], ids=["video-only", "with-audio"])
def test_real_h264_files_pass_in_any_chunking(faststart: bool, audio: bool) -> None:
    data = render("libx264", audio=audio, faststart=faststart)
    order = top_level(data)
    assert order.index("moov") < order.index("mdat") if faststart else order.index("moov") > order.index("mdat")
    expected = Mp4Info(
        duration_seconds=FRAMES / FPS, width=WIDTH, height=HEIGHT, codec="avc1", has_audio=audio, fragmented=False
    )
    assert inspect(data) == expected
    assert inspect(data, chunk=1) == expected  # box headers and the moov split at every byte
    assert inspect(data, chunk=7) == expected


@pytest.mark.parametrize(
    ("encoder", "tag", "codec"),
    [("libx265", None, "hev1"), ("libx265", "hvc1", "hvc1"), ("libsvtav1", None, "av01"), ("libvpx-vp9", None, "vp09")],
)
def test_real_files_in_the_other_codecs_pass(encoder: str, tag: str | None, codec: str) -> None:
    if encoder not in av.codecs_available:
        pytest.skip(f"PyAV here has no {encoder}")
    info = inspect(render(encoder, tag=tag))
    assert (info.codec, info.width, info.height, info.duration_seconds) == (codec, WIDTH, HEIGHT, FRAMES / FPS)


def test_the_simulators_render_passes() -> None:
    from videogen_local.sim.render import backpack_png, render_reference_video

    data = render_reference_video(backpack_png(64), width=96, height=64, seconds=0.25)
    info = inspect(data)
    assert (info.width, info.height, info.codec) == (96, 64, "avc1") and info.duration_seconds > 0


@pytest.mark.parametrize("faststart", [False, True], ids=["moov-at-end", "faststart"])
def test_truncated_files_are_refused(faststart: bool) -> None:
    data = render("libx264", audio=True, faststart=faststart)
    order = top_level(data)
    offsets, position = {}, 0
    for kind in order:
        offsets[kind] = position
        position += struct.unpack_from(">I", data, position)[0]
    moov_at, mdat_at = offsets["moov"], offsets["mdat"]
    assert "ends inside the 'moov' box" in rejected(data[: moov_at + 40])  # cut inside moov
    assert "ends inside the 'mdat' box" in rejected(data[: mdat_at + 20])  # cut inside mdat
    assert "ends inside a box header" in rejected(data[: moov_at + 3])
    if not faststart:
        assert "no moov box" in rejected(data[:moov_at])  # cut right before moov: a complete box sequence


def test_garbage_after_ftyp_is_refused() -> None:
    assert "unreadable box type" in rejected(FTYP + bytes(range(256)) * 20)
    assert "less than its header" in rejected(FTYP + b"\x00\x00\x00\x04free" + bytes(100))
    assert "'ftyp'" in rejected(b"<html><body>Access denied</body></html>")
    assert "empty body" in rejected(b"")


def test_a_moov_without_a_video_track_or_a_known_codec_is_refused() -> None:
    mdat = box(b"mdat", bytes(100))
    assert rejected(FTYP + moov(mvhd(), audio_trak()) + mdat) == "not a playable MP4: no video track"
    mpeg4 = trak(b"vide", visual_entry(b"mp4v", 640, 480), 640, 480)
    assert "supported codec (found mp4v)" in rejected(FTYP + moov(mvhd(), mpeg4) + mdat)
    assert "no mvhd" in rejected(FTYP + moov(video_trak()) + mdat)


def test_a_zero_duration_or_timescale_is_refused() -> None:
    mdat = box(b"mdat", bytes(100))
    assert "duration (mvhd) is 0" in rejected(FTYP + moov(mvhd(duration=0), video_trak()) + mdat)
    assert "duration (mvhd) is 0" in rejected(FTYP + moov(mvhd(duration=0xFFFFFFFF), video_trak()) + mdat)
    assert "duration (mvhd) is 0" in rejected(FTYP + moov(mvhd(timescale=10**7, duration=1), video_trak()) + mdat)
    assert "timescale is 0" in rejected(FTYP + moov(mvhd(timescale=0), video_trak()) + mdat)


def test_mvhd_version_1_and_a_fragmented_files_mehd_give_the_duration() -> None:
    mdat = box(b"mdat", bytes(100))
    info = inspect(FTYP + moov(mvhd(timescale=90000, duration=90000 * 12, version=1), video_trak()) + mdat)
    assert info.duration_seconds == 12.0
    mvex = box(b"mvex", full_box(b"mehd", 1, struct.pack(">Q", 2500)))
    fragmented = FTYP + moov(mvhd(duration=0), video_trak(), mvex) + box(b"moof", bytes(16)) + mdat
    info = inspect(fragmented)
    assert info.duration_seconds == 2.5 and info.fragmented


def test_media_data_must_be_present() -> None:
    assert "no media data" in rejected(FTYP + default_moov())
    assert "no media data" in rejected(FTYP + default_moov() + box(b"mdat"))


def test_largesize_boxes_and_a_last_box_of_size_zero() -> None:
    body = FTYP + box(b"free", bytes(10), largesize=True) + default_moov() + box(b"mdat", bytes(500), largesize=True)
    assert inspect(body, chunk=3).codec == "avc1"
    moov_last = FTYP + box(b"mdat", bytes(500)) + struct.pack(">I4s", 0, b"moov") + default_moov(audio=True)[8:]
    assert inspect(moov_last, chunk=5).has_audio  # a moov of size 0 runs to the end
    assert inspect(streaming_head() + bytes(1000)).width == 1280  # an mdat of size 0


def test_a_moov_over_the_cap_is_refused_before_it_is_read() -> None:
    inspector = Mp4Inspector(max_moov_bytes=1000)
    inspector.feed(FTYP)
    with pytest.raises(NotAnMp4, match="larger than the 1000-byte limit"):
        inspector.feed(struct.pack(">I4s", 8 + 1001, b"moov"))  # refused on its header alone
    inspector = Mp4Inspector(max_moov_bytes=1000)
    inspector.feed(FTYP + struct.pack(">I4s", 0, b"moov"))
    with pytest.raises(NotAnMp4, match="larger than the 1000-byte limit"):
        inspector.feed(bytes(1001))  # a moov of size 0 is capped as it streams
    assert "more than one moov" in rejected(FTYP + default_moov() + default_moov() + box(b"mdat", b"x"))


def test_mdat_bytes_are_not_kept() -> None:
    """What the check holds after a 64 MiB mdat: the moov it parsed, nothing of the payload."""
    inspector = Mp4Inspector()
    inspector.feed(FTYP + default_moov() + struct.pack(">I4sQ", 1, b"mdat", 16 + 64 * (1 << 20)))
    block = bytes(1 << 20)
    for _ in range(64):
        inspector.feed(block)
    assert inspector.finish().codec == "avc1"
    assert all(len(value) < 1024 for value in vars(inspector).values() if isinstance(value, bytes | bytearray))


def good_files() -> Iterator[bytes]:
    yield render("libx264", audio=True, faststart=True)
    yield FTYP + default_moov(audio=True) + box(b"mdat", bytes(64))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.sampled_from([0, 1]),
    mutations=st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.none() | st.integers(min_value=0),
    chunk=st.sampled_from([1, 13, 4096, 1 << 20]),
)
def test_mutated_files_are_accepted_or_refused_never_crash(
    which: int, mutations: list[tuple[int, int]], cut: int | None, chunk: int
) -> None:
    data = bytearray(list(good_files())[which])
    for position, value in mutations:
        data[position % len(data)] = value
    if cut is not None:
        del data[cut % len(data) :]
    try:
        info = inspect(bytes(data), chunk)
    except NotAnMp4 as exc:
        assert str(exc)
    else:
        assert info.duration_seconds > 0 and info.width > 0 and info.height > 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_any_moov_payload_is_parsed_or_refused(payload: bytes) -> None:
    with contextlib.suppress(NotAnMp4):
        parse_moov(payload)
    wrapped = default_moov()[8:] + payload  # a valid moov followed by noise inside it
    with contextlib.suppress(NotAnMp4):
        parse_moov(wrapped)
