"""Small real images for requests (the simulator renders its video from them)."""

from __future__ import annotations

import base64
import io

from PIL import Image, ImageDraw


def reference_png(size: int = 96) -> bytes:
    image = Image.new("RGB", (size, size), (30, 60, 120))
    draw = ImageDraw.Draw(image)
    draw.rectangle((size // 4, size // 5, 3 * size // 4, 4 * size // 5), fill=(200, 80, 40))
    draw.ellipse((size // 3, size // 3, 2 * size // 3, 2 * size // 3), fill=(240, 220, 60))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def reference_data_url() -> str:
    return "data:image/png;base64," + base64.b64encode(reference_png()).decode()
