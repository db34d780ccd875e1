"""Invoke a function's handler with a sample event from events/, as Lambda would (same loader and
context as local mode)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from videogen_local.localmode.handlers import load_function
from videogen_local.localmode.patches import LocalContext

ROOT = Path(__file__).resolve().parents[2]


def sample_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / f"{name}.json").read_text())
    return event


def invoke(folder: str, event: dict[str, Any]) -> Any:
    name = f"videogen-{folder}"
    context = LocalContext(
        function_name=name, invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    )
    return load_function(folder, ROOT).lambda_handler(event, context)
