"""Benchmark 6: Lambda memory sizing. One job end to end with each function in a process of its own (a
warm container, bench/lambda_worker.py), AWS on a moto server and OpenRouter's simulator on loopback:
API → submit (SQS record) → polls until completed → download, plus the S3 and EventBridge doors, the
fail function and the outbox relay (publish) on the jobs table's stream. Peak RSS per function is what
its MemorySize must hold; the download's peak while streaming large videos comes from benchmark 1.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

from bench.harness import BUCKET, Aws, LambdaWorker, MiB, moto_server

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
QUEUE = "bench-submit"


def _event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


BATCHES_TABLE = "bench-batches"


def _request() -> dict[str, Any]:
    from videogen_local.chaos import reference_data_url

    reference = {"type": "image_url", "image_url": {"url": reference_data_url()}}
    return {"prompt": "sizing run [sim:polls=3]", "resolution": "480p", "input_references": [reference]}


def _env(aws: Aws, openrouter_url: str, api_key: str) -> dict[str, str]:
    sqs = aws.client("sqs")
    queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    machine = aws.client("stepfunctions").create_state_machine(
        name="bench-video-job",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/bench",
    )["stateMachineArn"]
    from videogen_local.localmode.stack import create_batches_table

    create_batches_table(aws.client("dynamodb"), BATCHES_TABLE)
    return {
        **aws.lambda_env(openrouter_url),
        "BATCHES_TABLE": BATCHES_TABLE,
        "BATCH_QUEUE_URL": sqs.create_queue(QueueName="bench-sizing-batch")["QueueUrl"],
        "OPENROUTER_API_KEY": api_key,
        "QUEUE_URL": queue_url,
        "STATE_MACHINE_ARN": machine,
    }


def _one_job(workers: dict[str, LambdaWorker], aws: Aws, env: dict[str, str]) -> dict[str, Any]:
    api_event = _event("api_post_videos.json")
    api_event["body"] = json.dumps(_request())
    accepted = workers["api"].call("invoke", event=api_event)["result"]
    if accepted["statusCode"] != 202:
        raise AssertionError(f"POST /videos answered {accepted}")
    job_id = json.loads(accepted["body"])["id"]

    [message] = aws.client("sqs").receive_message(QueueUrl=env["QUEUE_URL"], MaxNumberOfMessages=1)["Messages"]
    record = copy.deepcopy(_event("sqs_submit.json")["Records"][0])
    record.update({"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"]})
    record["body"] = message["Body"]
    submitted = workers["submit"].call("invoke", event={"Records": [record]})["result"]
    if submitted.get("batchItemFailures"):
        raise AssertionError(f"submit failed: {submitted}")

    from bench.download import pointed_at
    from bench.harness import TABLE
    from videogen.jobs import JobStore

    with pointed_at(aws):
        job = JobStore(TABLE).get(job_id)
    assert job is not None and job.openrouter_job_id
    poll = {"job_id": job_id, "openrouter_job_id": job.openrouter_job_id, "polling_url": job.polling_url}
    for count in range(1, 20):
        polled = workers["poll"].call("invoke", event={**poll, "poll_count": count - 1})["result"]
        if polled["status"] != "in_progress" and polled["status"] != "pending":
            break
        time.sleep(0.05)
    if polled["status"] != "completed":
        raise AssertionError(f"poll ended {polled}")
    download = {"job_id": job_id, "openrouter_job_id": job.openrouter_job_id, "unsigned_urls": polled["unsigned_urls"]}
    if workers["download"].call("invoke", event=download)["result"] != {"status": "completed"}:
        raise AssertionError("download did not complete")
    return {"job_id": job_id, "polls": count}


def _relay_ended_jobs(publish: LambdaWorker, aws: Aws) -> None:
    """The outbox relay on what the run left in the jobs table's stream: the template's filter and batches."""
    from bench.harness import TABLE
    from videogen_local.localmode.stream_poller import StreamPoller, StreamSource

    source = StreamSource.outbox()
    arn = aws.client("dynamodb").describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    answers: list[Any] = []

    def invoke(event: dict[str, Any]) -> Any:
        answers.append(publish.call("invoke", event=event)["result"])
        return answers[-1]

    relayed = StreamPoller(aws.client("dynamodbstreams"), arn, invoke, "publish", source, aws.client("sqs"), "")
    if relayed.poll_once() < 3 or any(answer.get("batchItemFailures") for answer in answers):
        raise AssertionError(f"the outbox relay did not announce the run's jobs: {answers}")


def run(download_peak_mib: float | None = None) -> dict[str, Any]:
    from bench.workflow_cost import template_memory
    from videogen_local.localmode.names import FUNCTIONS
    from videogen_local.sim.server import OpenRouterSimulator, SimulatorConfig

    configured = template_memory()
    with moto_server() as aws, OpenRouterSimulator(SimulatorConfig(max_render_height=144)) as simulator:
        env = _env(aws, simulator.base_url, simulator.config.api_key)
        workers = {folder: LambdaWorker(folder, env) for folder in FUNCTIONS}
        try:
            baseline = {folder: worker.ready["peak_rss"] for folder, worker in workers.items()}
            jobs = [_one_job(workers, aws, env) for _ in range(3)]  # later jobs run on warm containers
            # The other doors and the fail function, with their sample events.
            request = _request()
            aws.client("s3").put_object(Bucket=BUCKET, Key="requests/sizing.json", Body=json.dumps(request).encode())
            s3_event = _event("s3_request_created.json")
            s3_event["Records"][0]["s3"]["bucket"]["name"] = BUCKET
            s3_event["Records"][0]["s3"]["object"]["key"] = "requests/sizing.json"
            workers["intake_s3"].call("invoke", event=s3_event)
            bridge_event = _event("eventbridge_video_requested.json")
            bridge_event["detail"] = request
            workers["intake_event"].call("invoke", event=bridge_event)
            # A batch of 20 lines through the S3 door and the batch function (bench/batch_intake.py measures
            # its memory at 1,000 and 100,000 lines).
            from bench.batch_intake import one_batch

            one_batch(aws, env, 20, workers["intake_s3"], workers["batch"])
            fail_event = {"job_id": jobs[0]["job_id"], "status": "failed", "error": "sizing"}
            workers["fail"].call("invoke", event=fail_event)
            _relay_ended_jobs(workers["publish"], aws)
            peaks = {folder: worker.call("memory")["peak_rss"] for folder, worker in workers.items()}
        finally:
            for worker in workers.values():
                worker.close()
    rows = []
    for folder in FUNCTIONS:
        peak_mib = peaks[folder] / MiB
        if folder == "download" and download_peak_mib:
            peak_mib = max(peak_mib, download_peak_mib)
        rows.append(
            {
                "function": folder,
                "rss_after_import_mib": round(baseline[folder] / MiB, 1),
                "peak_rss_mib": round(peak_mib, 1),
                "by_memory_mb": by_memory(peak_mib),
                "configured_mb": configured[folder],
                "headroom": round(configured[folder] / peak_mib, 2),
            }
        )
    return {
        "jobs": len(jobs),
        "rule": f"MemorySize >= {HEADROOM} x peak RSS, in steps of 128 MB from 128",
        "functions": rows,
        "met": all(row["configured_mb"] >= row["by_memory_mb"] for row in rows),
    }


HEADROOM = 2  # payloads vary (four 32 KiB data: URLs, long poll histories) and the GC lets RSS drift


def by_memory(peak_mib: float) -> int:
    """The smallest MemorySize, in 128 MB steps, that leaves HEADROOM × the measured peak."""
    return max(128, -(-int(peak_mib * HEADROOM) // 128) * 128)
