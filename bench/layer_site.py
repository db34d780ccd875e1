"""What a deployed function imports from: the layer's pinned packages plus the boto3 the Lambda runtime
ships, in one folder, for CPython 3.12 (the template's runtime) when it is on this machine.

The project venv is no stand-in: it also holds the test and local-mode tools, and some change what a
handler imports (httpx loads its command line, with rich and click, when they are installed)."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".bench"
LAYER = ROOT / "layers" / "videogen"


def runtime_python() -> str:
    """python3.12 like the deployed runtime, else this interpreter."""
    pyenv = Path.home() / ".pyenv" / "versions"
    for candidate in [shutil.which("python3.12"), *map(str, sorted(pyenv.glob("3.12.*/bin/python3.12")))]:
        # A pyenv shim exists even where it cannot run the version, and works only with the environment
        # it saw: ask it for the interpreter itself.
        if candidate:
            ask = [candidate, "-c", "import sys; print(sys.executable)"]
            found = subprocess.run(ask, capture_output=True, text=True)
            if found.returncode == 0 and found.stdout.strip():
                return found.stdout.strip()
    return sys.executable


def _runtime_boto3() -> list[str]:
    pins = (ROOT / "requirements-dev.txt").read_text()
    return re.findall(r"^(?:boto3|botocore)==\S+", pins, flags=re.MULTILINE)


def layer_site(python: str | None = None) -> tuple[str, Path]:
    """(interpreter, folder for PYTHONPATH); built on first use and cached under .bench/."""
    python = python or runtime_python()
    inputs = [LAYER / "requirements.txt", LAYER / "requirements-nodeps.txt", *sorted((LAYER / "videogen").glob("*.py"))]
    key = hashlib.sha256(python.encode() + b"".join(p.read_bytes() for p in inputs)).hexdigest()[:12]
    target = CACHE / f"layer-site-{key}"
    if not (target / ".complete").exists():
        shutil.rmtree(target, ignore_errors=True)
        pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target", str(target)]
        quiet = {"check": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        subprocess.run([*pip, "-r", str(LAYER / "requirements.txt"), *_runtime_boto3()], **quiet)  # type: ignore[call-overload]
        subprocess.run([*pip, "--no-deps", "-r", str(LAYER / "requirements-nodeps.txt")], **quiet)  # type: ignore[call-overload]
        subprocess.run([*pip, "--no-deps", str(LAYER)], **quiet)  # type: ignore[call-overload]
        (target / ".complete").touch()
    return python, target
