"""Requests the simulator tests send: the guide's shape with a small real reference image."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.images import reference_data_url
from videogen_local.sim import OpenRouterSimulator


def video_request(prompt: str = "a backpack", **extra: Any) -> dict[str, Any]:
    return {
        "model": "bytedance/seedance-2.0-fast",
        "prompt": prompt,
        "duration": 4,
        "resolution": "720p",
        "aspect_ratio": "16:9",
        "input_references": [{"type": "image_url", "image_url": {"url": reference_data_url()}}],
        **extra,
    }


def submit(sim: OpenRouterSimulator, request: dict[str, Any]) -> dict[str, Any]:
    """POST the request with the simulator's key; it must be accepted."""
    headers = {"Authorization": f"Bearer {sim.config.api_key}"}
    response = httpx.post(f"{sim.base_url}/api/v1/videos", json=request, headers=headers)
    assert response.status_code == 202, response.text
    accepted: dict[str, Any] = response.json()
    return accepted
