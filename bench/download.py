"""Benchmarks 1 and 2: the download Lambda's code streaming a video from a loopback host into S3.

1. Memory: each size in a fresh worker process; peak RSS growth over the worker's RSS just before the
   transfer (after a 1 MiB warm-up, so imports and clients are already paid for). Target: at most
   2 × part size + 32 MiB, and flat across sizes.
2. Throughput: the same transfer against each leg alone, in the same worker and run: HTTP read to
   nothing, and a multipart upload of as many bytes from memory. Target: at least 0.8 × the slower leg.
"""

from __future__ import annotations

import os
import statistics
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.harness import Aws, LambdaWorker, MiB, moto_server, video_server
from bench.video_server import expected_sha256

PART_BYTES = 8 * MiB


@contextmanager
def pointed_at(aws: Aws) -> Iterator[None]:
    """This process's videogen clients on the benchmark's moto server (to seed and read job records)."""
    from videogen.aws import reset_clients

    env = aws.lambda_env("http://127.0.0.1:9")
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    reset_clients()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_clients()


def _new_job(aws: Aws) -> str:
    from bench.harness import TABLE
    from videogen.jobs import JobStore
    from videogen.models import Job, JobStatus, VideoRequest

    job_id = uuid.uuid4().hex
    request = VideoRequest.model_validate({"prompt": "benchmark"})
    with pointed_at(aws):
        JobStore(TABLE).create(Job(id=job_id, status=JobStatus.IN_PROGRESS, request=request, openrouter_job_id="or-1"))
    return job_id


def download(worker: LambdaWorker, aws: Aws, video_url: str, size: int) -> dict[str, Any]:
    """One real download invocation; checks the stored object against the served bytes."""
    from bench.harness import BUCKET

    job_id = _new_job(aws)
    event = {"job_id": job_id, "openrouter_job_id": "or-1", "unsigned_urls": [f"{video_url}/video?bytes={size}"]}
    reply = worker.call("invoke", event=event)
    if reply["result"] != {"status": "completed"}:
        raise AssertionError(f"download of {size} bytes ended {reply['result']}")
    from bench.harness import TABLE
    from videogen.jobs import JobStore

    with pointed_at(aws):
        job = JobStore(TABLE).get(job_id)
    assert job is not None and job.video is not None
    if job.video.bytes != size or job.video.sha256 != expected_sha256(size):
        raise AssertionError(f"stored video differs from the served one ({job.video.bytes} of {size} bytes)")
    aws.client("s3").delete_object(Bucket=BUCKET, Key=f"videos/{job_id}.mp4")  # moto holds objects in memory
    return reply


def memory(sizes_mib: list[int], part_bytes: int = PART_BYTES) -> dict[str, Any]:
    rows = []
    with moto_server() as aws, video_server() as video:
        env = {**aws.lambda_env("http://127.0.0.1:9"), "DOWNLOAD_PART_BYTES": str(part_bytes)}
        for size_mib in sizes_mib:
            worker = LambdaWorker("download", env)
            try:
                download(worker, aws, video, MiB)  # warm-up: imports, clients, first-call caches
                reply = download(worker, aws, video, size_mib * MiB)
            finally:
                worker.close()
            growth = max(0, reply["peak_rss"] - reply["rss_before"])
            rows.append(
                {
                    "size_mib": size_mib,
                    "rss_before_mib": round(reply["rss_before"] / MiB, 1),
                    "peak_rss_mib": round(reply["peak_rss"] / MiB, 1),
                    "peak_growth_mib": round(growth / MiB, 1),
                    "seconds": round(reply["seconds"], 2),
                }
            )
    limit_mib = 2 * part_bytes / MiB + 32
    growths = [row["peak_growth_mib"] for row in rows]
    return {
        "part_mib": part_bytes / MiB,
        "target_growth_mib": limit_mib,
        "runs": rows,
        "max_growth_mib": max(growths),
        "growth_spread_mib": round(max(growths) - min(growths), 1),
        "met": max(growths) <= limit_mib,
    }


def throughput(size_mib: int, repeats: int = 3, part_bytes: int = PART_BYTES) -> dict[str, Any]:
    size = size_mib * MiB
    read, upload, both = [], [], []
    with moto_server() as aws, video_server() as video:
        env = {**aws.lambda_env("http://127.0.0.1:9"), "DOWNLOAD_PART_BYTES": str(part_bytes)}
        worker = LambdaWorker("download", env)
        try:
            download(worker, aws, video, MiB)
            for _ in range(repeats):  # interleaved, so that drift in the machine's load hits every leg alike
                read.append(worker.call("read", url=f"{video}/video?bytes={size}")["seconds"])
                upload.append(worker.call("upload", bytes=size, part_bytes=part_bytes)["seconds"])
                both.append(download(worker, aws, video, size)["seconds"])
        finally:
            worker.close()

    def rate(samples: list[float]) -> float:
        return round(size_mib / statistics.median(samples), 1)

    slower = min(rate(read), rate(upload))
    ratio = round(rate(both) / slower, 2)
    return {
        "size_mib": size_mib,
        "repeats": repeats,
        "read_leg_mib_s": rate(read),
        "upload_leg_mib_s": rate(upload),
        "download_mib_s": rate(both),
        "ratio_to_slower_leg": ratio,
        "sequential_bound": round(1 / (1 / rate(read) + 1 / rate(upload)) / slower, 2),
        "target_ratio": 0.8,
        "met": ratio >= 0.8,
    }
