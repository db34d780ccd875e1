"""Load each function's app.py by path: they are all called ``app``, so each gets a unique module name."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from videogen_local.localmode.names import FUNCTIONS


def repository_root() -> Path:
    """The checkout holding functions/ and statemachine/ (VIDEOGEN_ROOT overrides, for tests)."""
    override = os.environ.get("VIDEOGEN_ROOT")
    return Path(override) if override else Path(__file__).resolve().parents[3]


def load_function(folder: str, root: Path | None = None, environment: int = 0) -> ModuleType:
    """``environment`` > 0: another copy of the module, with module state of its own (another Lambda execution
    environment of the same function)."""
    root = root or repository_root()
    name = f"videogen_functions.{folder}" + (f"__environment{environment}" if environment else "")
    cached = sys.modules.get(name)
    path = root / "functions" / folder / "app.py"
    if cached is not None and getattr(cached, "__file__", None) == str(path):
        return cached
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_all(root: Path | None = None) -> dict[str, ModuleType]:
    return {folder: load_function(folder, root) for folder in FUNCTIONS}
