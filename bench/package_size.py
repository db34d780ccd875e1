"""Benchmark 3, second half: the deployment package as `sam build` makes it (the layer and each function,
unzipped and zipped), since what Lambda downloads and unpacks is part of every cold start."""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / ".aws-sam" / "build"
MiB = 1024 * 1024


def _sizes(folder: Path) -> tuple[int, int]:
    raw = 0
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                raw += path.stat().st_size
                archive.write(path, path.relative_to(folder))
    return raw, buffer.tell()


def run(build: bool = True) -> dict[str, Any]:
    if build:
        result = subprocess.run(["make", "build"], cwd=ROOT, capture_output=True, text=True, env=os.environ)
        if result.returncode != 0:
            return {"built": False, "error": (result.stdout + result.stderr)[-1500:]}
    if not BUILD.exists():
        return {"built": False, "error": "no .aws-sam/build: run `make build`"}
    artifacts = []
    for folder in sorted(p for p in BUILD.iterdir() if p.is_dir()):
        raw, zipped = _sizes(folder)
        artifacts.append({"artifact": folder.name, "unzipped_bytes": raw, "zipped_bytes": zipped})
    return {"built": True, "artifacts": artifacts}
