"""Benchmark 5: throughput and loss. Many jobs through `videogen local serve` (the simulator, a 0-second
wait, no injected faults): every job must complete exactly once. Reports accepted requests per second at
the API, POST /videos latency p50/p99 and end-to-end jobs per second. It is `videogen chaos` with the
fault rate at zero, so it checks the same things: events, duplicates, S3 objects against the render."""

from __future__ import annotations

from typing import Any


def run(jobs: int = 500, concurrency: int = 16) -> dict[str, Any]:
    from videogen_local.chaos import run_chaos

    # The API alone: its accepted requests per second and latencies are what this benchmark measures.
    figures = run_chaos(jobs, fault_rate=0.0, seed=1, concurrency=concurrency, timeout=1800, doors=("api",))
    completed = figures["outcomes"].get("completed", 0)
    return {
        "jobs": jobs,
        "completed": completed,
        "lost": figures["lost"],
        "duplicate_events": figures["jobs_with_duplicate_events"],
        "duplicate_submissions": figures["duplicate_submissions"],
        "videos_verified": figures["completed_videos_verified"],
        **figures["api"],
        "jobs_per_second": figures["jobs_per_second"],
        # The outbox relay is invoked per batch of ended jobs, so under load it costs less than one a job.
        "lambda_invocations": figures["lambda_invocations"],
        "publish_invocations_per_job": round(figures["lambda_invocations"]["publish"] / max(completed, 1), 3),
        "wall_seconds": figures["wall_seconds"],
        "met": figures["passed"] and completed == jobs,
    }
