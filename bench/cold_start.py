"""Benchmark 3: cold start. Import time of each handler module in a fresh interpreter, against
``import boto3`` alone, medians of runs interleaved so that the machine's drift hits both alike.

The interpreter sees what a deployed function sees: the layer's packages and the runtime's boto3
(bench/layer_site.py, CPython 3.12 when available) and no site-packages, with a function's environment
(AWS_LAMBDA_FUNCTION_NAME, LAMBDA_TASK_ROOT, tracing on), because Powertools and the X-Ray SDK decide
at import what to load from it. Target: each handler at most 1.5 × boto3.

Measured in the same runs, as floors: the libraries the service is built on imported alone, the way the
handlers use them (pydantic for the models; Powertools Logger, Metrics and Tracer with its X-Ray patches;
httpx). A handler cannot start faster than they load; its ratio to the floor is our own code's share.
"""

from __future__ import annotations

import json
import statistics
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.5

FLOORS = {
    "boto3": "import boto3",
    "boto3_pydantic": "import boto3\nfrom pydantic import BaseModel",
    "libraries": (
        "import boto3, httpx\nfrom pydantic import BaseModel\n"
        "from aws_lambda_powertools import Logger, Metrics, Tracer\n"
        "Tracer(service='videogen', patch_modules=('botocore', 'httpx'))"
    ),
}

_MEASURE = """
import importlib.util, json, sys, time
started = time.perf_counter()
if not sys.argv[1].endswith(".py"):
    exec(sys.argv[1])
else:
    spec = importlib.util.spec_from_file_location("app", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
print(json.dumps({"ms": (time.perf_counter() - started) * 1000, "modules": len(sys.modules)}))
"""


def lambda_env(function: str, site: Path) -> dict[str, str]:
    return {
        "PYTHONPATH": str(site),
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / function),
        "AWS_LAMBDA_FUNCTION_NAME": f"videogen-{function}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "POWERTOOLS_SERVICE_NAME": "videogen",
        "POWERTOOLS_METRICS_NAMESPACE": "videogen",
        "JOBS_TABLE": "videogen-jobs",
        "BUCKET": "videogen-bucket",
        "PATH": "/usr/bin:/bin",
        "TMPDIR": "/tmp",
    }


def _once(python: str, target: str, env: dict[str, str]) -> dict[str, Any]:
    output = subprocess.run(
        [python, "-S", "-c", _MEASURE, target], env=env, capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, Any] = json.loads(output)
    return result


def run(runs: int = 9) -> dict[str, Any]:
    from bench.layer_site import layer_site
    from videogen_local.localmode.names import FUNCTIONS

    python, site = layer_site()
    floors: dict[str, list[float]] = {name: [] for name in FLOORS}
    handlers: dict[str, list[float]] = {folder: [] for folder in FUNCTIONS}
    modules: dict[str, int] = {}
    for _ in range(runs):
        for name, code in FLOORS.items():
            floors[name].append(_once(python, code, lambda_env("poll", site))["ms"])
        for folder in FUNCTIONS:
            measured = _once(python, str(ROOT / "functions" / folder / "app.py"), lambda_env(folder, site))
            handlers[folder].append(measured["ms"])
            modules[folder] = measured["modules"]
    floor_ms = {name: statistics.median(samples) for name, samples in floors.items()}
    baseline = floor_ms["boto3"]
    rows: list[dict[str, Any]] = [
        {
            "function": folder,
            "import_ms": round(statistics.median(samples), 1),
            "ratio_to_boto3": round(statistics.median(samples) / baseline, 2),
            "ratio_to_libraries": round(statistics.median(samples) / floor_ms["libraries"], 2),
            "modules_loaded": modules[folder],
        }
        for folder, samples in handlers.items()
    ]
    worst = max(float(row["ratio_to_boto3"]) for row in rows)
    return {
        "python": subprocess.run([python, "--version"], capture_output=True, text=True).stdout.strip(),
        "runs": runs,
        "boto3_import_ms": round(baseline, 1),
        "floors": {
            name: {"import_ms": round(ms, 1), "ratio_to_boto3": round(ms / baseline, 2)}
            for name, ms in floor_ms.items()
            if name != "boto3"
        },
        "handlers": rows,
        "worst_ratio": worst,
        "target_ratio": TARGET_RATIO,
        "met": worst <= TARGET_RATIO,
    }
