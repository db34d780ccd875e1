"""Benchmark 4: what one job costs on AWS, from real executions in moto (the deployed state machine
definition, the real handlers) with the simulator: a typical 5-poll job and the 60-poll worst case.

Measured: state transitions per poll cycle and per job (execution history), Lambda invocations per
function, AWS API calls per service and operation made by the handlers (botocore hooks), handler
durations. Priced with the table below (us-east-1 list prices, arm64 Lambda; edit when they change).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]

# USD, us-east-1 list prices as of 2026-11. The figures below are computed from these, not measured.
PRICES = {
    "stepfunctions_standard_per_transition": 0.000025,
    "lambda_arm64_per_gb_second": 0.0000133334,
    "lambda_per_request": 0.20 / 1e6,
    "sqs_per_request": 0.40 / 1e6,
    "dynamodb_on_demand_per_write_unit": 0.625 / 1e6,
    "dynamodb_on_demand_per_read_unit": 0.125 / 1e6,
    "s3_per_put_class_request": 0.005 / 1000,  # PUT, POST, LIST, multipart calls
    "s3_per_get_class_request": 0.0004 / 1000,
    "eventbridge_per_custom_event": 1.00 / 1e6,
    "secretsmanager_per_call": 0.05 / 10000,
}
LAMBDA_MIN_BILLED_MS = 1
DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
DYNAMODB_READS = {"GetItem", "Query", "Scan"}
S3_GETS = {"GetObject", "HeadObject"}


def template_memory() -> dict[str, int]:
    """MemorySize per function folder, from template.yaml (the Globals value unless a function sets one)."""
    text = (ROOT / "template.yaml").read_text()
    default = int(re.search(r"Globals:.*?MemorySize: (\d+)", text, re.S).group(1))  # type: ignore[union-attr]
    sizes = {}
    for block in re.split(r"\n  (?=\w+Function:\n)", text):
        name = re.search(r"CodeUri: functions/(\w+)/", block)
        if name:
            memory = re.search(r"\n      MemorySize: (\d+)", block)
            sizes[name.group(1)] = int(memory.group(1)) if memory else default
    return sizes


class _Recorder:
    """Counts what the handlers do: invocations and durations per function, AWS calls per operation."""

    def __init__(self) -> None:
        self.invocations: Counter[str] = Counter()
        self.milliseconds: dict[str, float] = {}
        self.calls: Counter[tuple[str, str]] = Counter()

    def install(self, function_names: dict[str, str]) -> None:
        from videogen.aws import client
        from videogen_local.localmode import patches

        for name, handler in list(patches.HANDLERS.items()):
            folder = function_names.get(name)
            if folder is None:
                continue  # left by another stack that ran in this process (tests)
            patches.HANDLERS[name] = self._timed(handler, folder=folder)
            environments = patches.ENVIRONMENTS.get(name)
            if environments is not None:  # submit's environments (the queue's maximum concurrency)
                environments.wrap(functools.partial(self._timed, folder=folder))
        for service in ("dynamodb", "s3", "sqs", "events", "stepfunctions", "secretsmanager"):
            client(service).meta.events.register("after-call.*.*", self._count)

    def _timed(self, handler: Any, *, folder: str) -> Any:
        def timed(event: Any, context: Any) -> Any:
            started = time.perf_counter()
            try:
                return handler(event, context)
            finally:
                self.invocations[folder] += 1
                elapsed = (time.perf_counter() - started) * 1000
                self.milliseconds[folder] = self.milliseconds.get(folder, 0.0) + elapsed

        return timed

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[(model.service_model.service_name, model.name)] += 1

    def reset(self) -> None:
        self.invocations.clear()
        self.milliseconds.clear()
        self.calls.clear()


def _cycle_length(entered: list[str]) -> int | None:
    """States entered from one WaitBeforePoll to the next: the transitions one poll costs."""
    starts = [index for index, name in enumerate(entered) if name == "WaitBeforePoll"]
    return starts[1] - starts[0] if len(starts) > 1 else None


def _run_job(info: dict[str, Any], prompt: str, recorder: _Recorder) -> dict[str, Any]:
    from videogen_local.chaos import reference_data_url
    from videogen_local.localmode.process import stack_client

    recorder.reset()
    reference = {"type": "image_url", "image_url": {"url": reference_data_url()}}
    body = {"prompt": prompt, "resolution": "480p", "input_references": [reference]}
    response = httpx.post(f"{info['api_url']}/videos", json=body, timeout=30)
    response.raise_for_status()
    job_id = response.json()["id"]
    sfn = stack_client(info, "stepfunctions")
    arn = info["state_machine_arn"].replace(":stateMachine:", ":execution:") + f":{job_id}"
    deadline = time.monotonic() + 300
    while True:
        try:
            if sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
                break
        except sfn.exceptions.ExecutionDoesNotExist:
            pass  # the submit message is still on its way
        if time.monotonic() > deadline:
            raise TimeoutError(job_id)
        time.sleep(0.2)
    history: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        history += page["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")]
    # Read straight from the table: a GET /videos/{id} would count as one more API invocation. The job's
    # result event comes from the outbox relay after the execution ends; its invocation belongs to the job.
    dynamodb = stack_client(info, "dynamodb")
    while "event_published_at" not in (
        item := dynamodb.get_item(TableName=info["jobs_table"], Key={"id": {"S": job_id}}, ConsistentRead=True)["Item"]
    ):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{job_id}: no result event")
        time.sleep(0.1)
    return {
        "status": item["status"]["S"],
        "polls": len(item.get("polls", {}).get("L", [])),
        "state_transitions": len(entered),
        "transitions_per_poll_cycle": _cycle_length(entered),
        "lambda_invocations": dict(sorted(recorder.invocations.items())),
        "lambda_invocations_total": sum(recorder.invocations.values()),
        "handler_ms": {k: round(v, 1) for k, v in sorted(recorder.milliseconds.items())},
        "aws_calls": {f"{service}:{op}": n for (service, op), n in sorted(recorder.calls.items())},
        "job_item_bytes": len(json.dumps(item)),
    }


def price(job: dict[str, Any], memory_mb: dict[str, int]) -> dict[str, float]:
    calls: dict[str, int] = job["aws_calls"]

    def count(service: str, operations: set[str] | None = None) -> int:
        return sum(
            n
            for key, n in calls.items()
            if key.startswith(f"{service}:") and (operations is None or key.split(":", 1)[1] in operations)
        )

    item_kib = job["job_item_bytes"] / 1024
    gb_seconds = sum(memory_mb[f] / 1024 * max(ms, LAMBDA_MIN_BILLED_MS) / 1000 for f, ms in job["handler_ms"].items())
    # SQS: the API's SendMessage (counted) plus the event source mapping's ReceiveMessage and DeleteMessage.
    sqs_requests = count("sqs", {"SendMessage"}) + 2
    costs = {
        "step_functions": job["state_transitions"] * PRICES["stepfunctions_standard_per_transition"],
        "lambda_requests": job["lambda_invocations_total"] * PRICES["lambda_per_request"],
        "lambda_compute": gb_seconds * PRICES["lambda_arm64_per_gb_second"],
        "sqs": sqs_requests * PRICES["sqs_per_request"],
        "dynamodb": count("dynamodb", DYNAMODB_WRITES)
        * math.ceil(item_kib)
        * PRICES["dynamodb_on_demand_per_write_unit"]
        + count("dynamodb", DYNAMODB_READS) * math.ceil(item_kib / 4) * PRICES["dynamodb_on_demand_per_read_unit"],
        "s3": count("s3", S3_GETS) * PRICES["s3_per_get_class_request"]
        + (count("s3") - count("s3", S3_GETS)) * PRICES["s3_per_put_class_request"],
        "eventbridge": count("events", {"PutEvents"}) * PRICES["eventbridge_per_custom_event"],
    }
    costs["total"] = sum(costs.values())
    return {key: round(value, 8) for key, value in costs.items()}


def run(max_polls: int = 60, typical_polls: int = 5) -> dict[str, Any]:
    from videogen_local.localmode.names import FUNCTIONS, Names
    from videogen_local.localmode.stack import LocalStack, LocalStackConfig

    config = LocalStackConfig(
        poll_interval=0,
        max_polls=max_polls,
        simulator_max_render_height=144,
        log_level="ERROR",
        extra_env={"POWERTOOLS_METRICS_DISABLED": "true"},
    )
    recorder = _Recorder()
    # The handlers run in this process: their metric lines would land in the benchmark's own output.
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), LocalStack(config) as stack:
        names = Names(stack.config.stack_name)
        recorder.install({names.function(folder): folder for folder in FUNCTIONS})
        typical = _run_job(stack.info, f"bench: typical [sim:polls={typical_polls}]", recorder)
        worst = _run_job(stack.info, "bench: worst case [sim:outcome=never]", recorder)
    memory = template_memory()
    jobs = {"typical": typical, "worst_case": worst}
    for job in jobs.values():
        job["cost_usd"] = price(job, memory)
    cycle = max(j["transitions_per_poll_cycle"] or 0 for j in jobs.values())
    invocations_over = max(j["lambda_invocations_total"] - j["polls"] for j in jobs.values())
    # The outbox relay (publish) runs once per batch of ended jobs; a lone job is a batch of one.
    pipeline_over = max(
        j["lambda_invocations_total"] - j["lambda_invocations"].get("publish", 0) - j["polls"] for j in jobs.values()
    )
    return {
        "prices_usd": PRICES,
        "lambda_memory_mb": memory,
        "jobs": jobs,
        "transitions_per_poll_cycle": cycle,
        "target_transitions_per_poll_cycle": 3,
        "lambda_invocations_minus_polls": invocations_over,
        "target_lambda_invocations_minus_polls": 3,
        "pipeline_invocations_minus_polls": pipeline_over,
        "met": cycle <= 3 and invocations_over <= 3,
    }
