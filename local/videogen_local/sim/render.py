"""A real, playable H.264 MP4 derived from a reference image: a slow push-in and pan over it
(a "Ken Burns" move), cover-fitted to the requested frame. Stands in for the generated video."""

from __future__ import annotations

import io

import av
from PIL import Image

HEIGHTS = {"480p": 480, "720p": 720, "768p": 768, "1080p": 1080, "1K": 1080, "2K": 1080, "4K": 1080}


def frame_size(
    resolution: str | None, aspect_ratio: str | None, size: str | None, max_height: int | None
) -> tuple[int, int]:
    """Width and height (even numbers, as yuv420p needs) for the request's shape."""
    if size:
        width, height = (int(v) for v in size.split("x"))
    else:
        height = HEIGHTS.get(resolution or "720p", 720)
        w, h = (int(v) for v in (aspect_ratio or "16:9").split(":"))
        if w >= h:
            width = round(height * w / h)
        else:  # portrait: the resolution names the short side
            width, height = height, round(height * h / w)
    if max_height and height > max_height:
        width, height = round(width * max_height / height), max_height
    return max(2, width - width % 2), max(2, height - height % 2)


# Encoders whose MP4 sample entry the download's check accepts (avc1, vp09, av01), best first. PyAV's
# wheels ship libx264; the others are for FFmpeg builds without it. mpeg4 (mp4v) is FFmpeg's own and
# always there, but the download refuses it: a simulator left with it renders videos that fail the check.
ENCODERS = ("libx264", "libopenh264", "libvpx-vp9", "libsvtav1", "libaom-av1")


def _encoder() -> str:
    return next((name for name in ENCODERS if name in av.codecs_available), "mpeg4")


def render_reference_video(image_bytes: bytes, *, width: int, height: int, seconds: float, fps: int = 24) -> bytes:
    source = Image.open(io.BytesIO(image_bytes)).convert("RGB")
    # Cover-fit: the largest window of the source with the frame's aspect ratio.
    src_w, src_h = source.size
    target = width / height
    if src_w / src_h > target:
        crop_w, crop_h = src_h * target, float(src_h)
    else:
        crop_w, crop_h = float(src_w), src_w / target
    frames = max(1, round(seconds * fps))
    output = io.BytesIO()
    with av.open(output, mode="w", format="mp4") as container:
        codec = _encoder()
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "veryfast", "crf": "26"}
        for index in range(frames):
            t = index / max(1, frames - 1)
            zoom = 1.0 + 0.18 * t  # slow push-in
            w, h = crop_w / zoom, crop_h / zoom
            left = (src_w - w) * (0.35 + 0.3 * t)  # drifting pan, left to right
            top = (src_h - h) * 0.5
            picture = source.resize((width, height), Image.Resampling.BILINEAR, box=(left, top, left + w, top + h))
            for packet in stream.encode(av.VideoFrame.from_image(picture)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return output.getvalue()


def backpack_png(size: int = 768) -> bytes:
    """The demo's bundled reference image (regenerate local/videogen_local/assets/backpack.png with it)."""
    from PIL import ImageDraw

    image = Image.new("RGB", (size, size), (236, 232, 224))
    draw = ImageDraw.Draw(image)
    s = size / 768
    draw.rounded_rectangle((214 * s, 170 * s, 554 * s, 660 * s), radius=int(90 * s), fill=(196, 64, 44))  # body
    draw.rounded_rectangle(
        (300 * s, 95 * s, 468 * s, 200 * s), radius=int(50 * s), outline=(120, 36, 24), width=int(22 * s)
    )  # handle
    draw.rounded_rectangle((262 * s, 420 * s, 506 * s, 620 * s), radius=int(40 * s), fill=(168, 50, 34))  # pocket
    draw.line((262 * s, 470 * s, 506 * s, 470 * s), fill=(90, 28, 20), width=int(8 * s))  # zip
    draw.ellipse((344 * s, 250 * s, 424 * s, 330 * s), fill=(250, 214, 70))  # logo
    draw.rectangle((150 * s, 230 * s, 214 * s, 560 * s), fill=(120, 36, 24))  # strap
    draw.rectangle((554 * s, 230 * s, 618 * s, 560 * s), fill=(120, 36, 24))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
