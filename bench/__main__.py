"""`make bench` (python -m bench): run the suite, write bench/results.json and bench/results.md, and put
the table in README.md between its bench markers. `--quick` runs each benchmark in a tiny configuration
(what tests/bench does in `make test`)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import (
    batch_intake,
    batch_pressure,
    callbacks,
    cold_start,
    download,
    package_size,
    sizing,
    spend,
    throughput,
    workflow_cost,
)
from bench.report import markdown, update_readme

ROOT = Path(__file__).resolve().parents[1]

FULL: dict[str, Any] = {
    "memory_sizes_mib": [10, 100, 1024],
    "throughput_mib": 100,
    "throughput_repeats": 3,
    "cold_start_runs": 9,
    "jobs": 500,
    "concurrency": 16,
    "max_polls": 60,
    "callbacks": {"jobs": 20, "poll_interval": 30, "generation": (5.0, 65.0)},
    # Issue 14's sizes: lines through the S3 door at 50 lines/s on moto take about 35 minutes for 100,000.
    "batch_lines": [1_000, 100_000],
    "spend": {"references": 200, "concurrency": 50, "fits": 10},
    "batch_pressure": {"jobs": 2000, "pushback_rate": 0.3},
}
QUICK: dict[str, Any] = {
    "memory_sizes_mib": [6, 12],
    "throughput_mib": 12,
    "throughput_repeats": 1,
    "cold_start_runs": 1,
    "jobs": 6,
    "concurrency": 3,
    "max_polls": 4,
    "callbacks": {"jobs": 2, "poll_interval": 2, "generation": (1.0, 3.0)},
    "batch_lines": [20, 60],
    "spend": {"references": 20, "concurrency": 8, "fits": 3},
    "batch_pressure": {"jobs": 8, "pushback_rate": 0.3},
}


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
        "python": platform.python_version(),
        "commit": commit.strip(),
    }


def run_all(quick: bool, only: set[str] | None, build: bool) -> dict[str, Any]:
    plan = QUICK if quick else FULL
    results: dict[str, Any] = {"machine": machine(), "quick": quick, "benchmarks": {}}

    def step(name: str, work: Any) -> None:
        if only and name not in only:
            return
        print(f"==> {name}", file=sys.stderr, flush=True)
        started = time.monotonic()
        results["benchmarks"][name] = work()
        results["benchmarks"][name]["bench_seconds"] = round(time.monotonic() - started, 1)

    step("download_memory", lambda: download.memory(plan["memory_sizes_mib"]))
    step("download_throughput", lambda: download.throughput(plan["throughput_mib"], plan["throughput_repeats"]))
    step("cold_start", lambda: cold_start.run(plan["cold_start_runs"]))
    step("package_size", lambda: package_size.run(build=build))
    step(
        "workflow_cost", lambda: workflow_cost.run(max_polls=plan["max_polls"], typical_polls=min(5, plan["max_polls"]))
    )
    step("throughput", lambda: throughput.run(plan["jobs"], plan["concurrency"]))
    step("callbacks", lambda: callbacks.run(**plan["callbacks"]))
    step("batch_intake", lambda: batch_intake.run(plan["batch_lines"]))
    step("spend", lambda: spend.run(**plan["spend"]))
    step("batch_pressure", lambda: batch_pressure.run(**plan["batch_pressure"]))
    download_peak = None
    if "download_memory" in results["benchmarks"]:
        download_peak = max(run["peak_rss_mib"] for run in results["benchmarks"]["download_memory"]["runs"])
    step("lambda_sizing", lambda: sizing.run(download_peak_mib=download_peak))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny configuration (smoke test)")
    parser.add_argument("--only", action="append", help="run only this benchmark (repeatable)")
    parser.add_argument("--no-build", action="store_true", help="report package sizes from an existing sam build")
    parser.add_argument("--output", type=Path, default=ROOT / "bench", help="folder for results.json and results.md")
    parser.add_argument("--no-readme", action="store_true", help="leave README.md alone")
    args = parser.parse_args(argv)
    results = run_all(args.quick, set(args.only) if args.only else None, build=not args.no_build and not args.quick)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (args.output / "results.md").write_text(table)
    if not args.no_readme and not args.quick and not args.only:
        update_readme(ROOT / "README.md", table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
