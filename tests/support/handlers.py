"""Load a function's ``app.py`` by path (every function module is called ``app``)."""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def load_function(folder: str) -> ModuleType:
    name = f"videogen_functions.{folder}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / folder / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def sample_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events" / f"{name}.json").read_text())
    return event


@dataclass
class FakeContext:
    function_name: str = "videogen-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:videogen-test"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/videogen-test"
    log_stream_name: str = "2026/11/25/[$LATEST]test"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def invoke(folder: str, event: dict[str, Any]) -> Any:
    return load_function(folder).lambda_handler(event, FakeContext(function_name=f"videogen-{folder}"))
