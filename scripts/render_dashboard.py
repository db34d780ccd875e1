"""Render the CloudWatch dashboard body of template.yaml (the `Dashboard` resource).

The body is JSON inside `!Sub`, so ${...} are CloudFormation substitutions. Edit this script, run
`.venv/bin/python scripts/render_dashboard.py --write`, and the tests check that the template is in
sync and that the custom metrics charted are exactly those the code emits in an end-to-end run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

STACK = "${AWS::StackName}"
REGION = "${AWS::Region}"
FUNCTIONS = [
    "api",
    "intake-s3",
    "intake-event",
    "submit",
    "poll",
    "download",
    "fail",
    "publish",
    "authorizer",
    "openrouter-callback",
    "callback-nudge",
    "webhook-deliver",
    "batch",
]
API = ["ApiName", f"{STACK}-api", "Stage", "v1"]
TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"
MARKER = "      DashboardBody: !Sub |\n"


def search(metric: str, dims: list[str], stat: str = "Sum", period: int = 300, label: str | None = None) -> list[Any]:
    """All dimension values of a custom metric with its own dimensions (e.g. every door)."""
    keys = ",".join(["service", *dims])
    expression = f"SEARCH('{{{STACK},{keys}}} MetricName=\"{metric}\"', '{stat}', {period})"
    return [{"expression": expression, "id": "", "label": label or metric}]


def custom(metric: str, stat: str = "Sum", label: str | None = None, period: int | None = None) -> list[Any]:
    options: dict[str, Any] = {"stat": stat}
    if label:
        options["label"] = label
    if period:
        options["period"] = period
    return [STACK, metric, "service", "videogen", options]


def widget(title: str, metrics: list[Any], x: int, y: int, **props: Any) -> dict[str, Any]:
    properties = {
        "title": title,
        "region": REGION,
        "view": "timeSeries",
        "stacked": False,
        "period": 300,
        "stat": "Sum",
        "metrics": metrics,
    }
    properties.update(props)
    return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6, "properties": properties}


def sqs(metric: str, queue: str, label: str, **extra: Any) -> list[Any]:
    return ["AWS/SQS", metric, "QueueName", f"{STACK}-{queue}", {"label": label, "stat": "Maximum", **extra}]


def lambdas(metric: str, stat: str | None = None) -> list[list[Any]]:
    suffix = f" {stat}" if stat else f" {metric.lower()}"

    def options(function: str) -> dict[str, str]:
        return {"stat": stat, "label": function + suffix} if stat else {"label": function + suffix}

    return [["AWS/Lambda", metric, "FunctionName", f"{STACK}-{f}", options(f)] for f in FUNCTIONS]


def dashboard() -> dict[str, Any]:
    intro = (
        f"# videogen ({STACK})\nJobs in, videos out. Custom metrics in namespace **{STACK}** (Powertools EMF); "
        "alarms notify the stack's SNS topic. Runbook: README.md, *Operations*."
    )
    failed_jobs_query = (
        " | ".join(f"SOURCE '/aws/lambda/{STACK}-{f}'" for f in ["submit", "download", "fail", "api"])
        + " | fields @timestamp, job_id, status, error"
        + " | filter message = 'job finished' and status != 'completed' | sort @timestamp desc | limit 50"
    )
    executions = [
        ("ExecutionsStarted", "started"),
        ("ExecutionsSucceeded", "succeeded"),
        ("ExecutionsFailed", "failed"),
        ("ExecutionsTimedOut", "timed out"),
        ("ExecutionsAborted", "aborted"),
    ]
    alarms = [
        "DeadLetterQueueAlarm",
        "IntakeDeadLetterQueueAlarm",
        "OutboxDeadLetterQueueAlarm",
        "CallbackDeadLetterQueueAlarm",
        "WebhookDeadLetterQueueAlarm",
        "BatchDeadLetterQueueAlarm",
        "OutboxLagAlarm",
        "FailureRatioAlarm",
        "ExecutionsFailedAlarm",
        "Api5xxAlarm",
        "QueueAgeAlarm",
        "DailyCostAlarm",
        "BudgetAlarm",
        "SubmitBreakerAlarm",
    ]
    widgets: list[dict[str, Any]] = [
        {"type": "text", "x": 0, "y": 0, "width": 24, "height": 2, "properties": {"markdown": intro}},
        widget(
            "Jobs",
            [
                search("JobsAccepted", ["door"], label="accepted"),
                search("JobsRejected", ["door", "reason"], label="rejected"),
                custom("JobsSubmitted", label="submitted"),
                custom("JobsCompleted", label="completed"),
                search("JobsFailed", ["status"], label="failed"),
            ],
            0,
            2,
        ),
        widget("Polls by OpenRouter status", [search("Polls", ["openrouter_status"])], 12, 2, stacked=True),
        widget(
            "Duration (s): accept → video in S3, submit → completed",
            [
                custom("EndToEndSeconds", "p50", "end-to-end p50"),
                custom("EndToEndSeconds", "p90", "end-to-end p90"),
                custom("GenerationSeconds", "p50", "generation p50"),
                custom("GenerationSeconds", "p90", "generation p90"),
            ],
            0,
            8,
            stat="p50",
        ),
        widget(
            "Downloads",
            [
                custom("DownloadBytes", "Sum", "bytes"),
                custom("DownloadSeconds", "p50", "seconds p50"),
                custom("DownloadSeconds", "p99", "seconds p99"),
            ],
            12,
            8,
        ),
        widget("OpenRouter errors by HTTP status", [search("OpenRouterErrors", ["http_status"])], 0, 14, stacked=True),
        widget(
            "Daily cost (USD, OpenRouter usage.cost)",
            [custom("CostUSD", "Sum", "cost", 86400)],
            12,
            14,
            period=86400,
            view="bar",
        ),
        widget(
            "API requests and errors",
            [
                ["AWS/ApiGateway", "Count", *API, {"label": "requests"}],
                ["AWS/ApiGateway", "4XXError", *API, {"label": "4xx"}],
                ["AWS/ApiGateway", "5XXError", *API, {"label": "5xx"}],
            ],
            0,
            20,
        ),
        widget(
            "API latency (ms)",
            [
                ["AWS/ApiGateway", "Latency", *API, {"stat": "p50", "label": "p50"}],
                ["AWS/ApiGateway", "Latency", *API, {"stat": "p99", "label": "p99"}],
            ],
            12,
            20,
            stat="p50",
        ),
        widget(
            "Submit queue",
            [
                sqs("ApproximateNumberOfMessagesVisible", "submit", "depth"),
                sqs("ApproximateAgeOfOldestMessage", "submit", "oldest message age (s)", yAxis="right"),
            ],
            0,
            26,
            stat="Maximum",
        ),
        widget(
            "Dead-letter queues (should be 0) and outbox lag",
            [
                sqs("ApproximateNumberOfMessagesVisible", "submit-dlq", "submit DLQ"),
                sqs("ApproximateNumberOfMessagesVisible", "intake-dlq", "intake DLQ"),
                sqs("ApproximateNumberOfMessagesVisible", "outbox-dlq", "outbox DLQ"),
                sqs("ApproximateNumberOfMessagesVisible", "callback-dlq", "callback DLQ"),
                sqs("ApproximateNumberOfMessagesVisible", "webhooks-dlq", "webhook DLQ"),
                sqs("ApproximateNumberOfMessagesVisible", "batch-dlq", "batch DLQ"),
                [
                    "AWS/Lambda",
                    "IteratorAge",
                    "FunctionName",
                    f"{STACK}-publish",
                    {"label": "outbox lag (ms)", "stat": "Maximum", "yAxis": "right"},
                ],
            ],
            12,
            26,
            stat="Maximum",
        ),
        widget("Lambda errors and throttles", lambdas("Errors") + lambdas("Throttles"), 0, 32),
        widget(
            "Lambda duration p50 / p99 (ms)",
            lambdas("Duration", "p50") + lambdas("Duration", "p99"),
            12,
            32,
            stat="p50",
        ),
        widget(
            "Step Functions executions",
            [
                ["AWS/States", metric, "StateMachineArn", "${VideoJobStateMachine}", {"label": label}]
                for metric, label in executions
            ],
            0,
            38,
        ),
        {
            "type": "alarm",
            "x": 12,
            "y": 38,
            "width": 12,
            "height": 6,
            "properties": {"title": "Alarms", "alarms": [f"${{{alarm}.Arn}}" for alarm in alarms]},
        },
        widget("Spend per owner (USD, settled jobs)", [search("SpendUSD", ["owner"])], 0, 52, stacked=True),
        widget(
            "Budget used (committed / budget; the alarm at 0.8)",
            [custom("BudgetUsedRatioMax", "Maximum", "fullest owner"), search("BudgetUsedRatio", ["owner"], "Maximum")],
            12,
            52,
            stat="Maximum",
            annotations={"horizontal": [{"label": "alarm", "value": 0.8}]},
        ),
        widget(
            "Webhook attempts by outcome (delivered, retrying, failed, refused)",
            [search("WebhookDeliveries", ["outcome"])],
            0,
            58,
            stacked=True,
        ),
        widget(
            "Webhook receivers' latency (ms) and results waiting",
            [
                custom("WebhookLatency", "p50", "latency p50"),
                custom("WebhookLatency", "p99", "latency p99"),
                sqs("ApproximateNumberOfMessagesVisible", "webhooks", "waiting (incl. retries)", yAxis="right"),
            ],
            12,
            58,
            stat="p50",
        ),
        widget(
            "Credit breaker: 1 = submissions paused (out of credits or over a limit); pauses by reason",
            [
                custom("SubmitBreakerOpen", "Maximum", "breaker open", 60),
                [{**search("SubmissionsPaused", ["reason"], "Sum", 60, "paused")[0], "yAxis": "right"}],
            ],
            0,
            64,
            stat="Maximum",
            period=60,
        ),
        widget(
            "Batches: manifest lines made jobs / refused, and batches completed",
            [
                search("BatchLines", ["outcome"], label="lines"),
                [STACK, "BatchesCompleted", "service", "videogen", {"label": "batches completed", "yAxis": "right"}],
            ],
            0,
            70,
        ),
        widget(
            "Pressure on OpenRouter: the shared submission rate (per s; none = calm) and paced submissions",
            [
                custom("SubmitRate", "Minimum", "shared rate (min)", 60),
                [{**search("SubmissionsPaused", ["reason"], "Sum", 60, "paused")[0], "yAxis": "right"}],
            ],
            12,
            64,
            stat="Minimum",
            period=60,
        ),
        {
            "type": "log",
            "x": 0,
            "y": 44,
            "width": 24,
            "height": 8,
            "properties": {
                "title": "Latest failed jobs",
                "region": REGION,
                "view": "table",
                "query": failed_jobs_query,
            },
        },
    ]
    expressions = (m[0] for w in widgets for m in w["properties"].get("metrics", []) if isinstance(m[0], dict))
    for number, expression in enumerate(expressions, start=1):
        expression["id"] = f"s{number}"
    return {"start": "-PT6H", "periodOverride": "inherit", "widgets": widgets}


def compact(value: Any, indent: int = 0) -> str:
    """JSON with one metric per line: readable in the template, still plain JSON."""
    pad = "  " * indent
    if isinstance(value, dict):
        flat = all(not isinstance(v, dict | list) for v in value.values())
        if flat and len(json.dumps(value)) < 110:
            return json.dumps(value, ensure_ascii=False)
        items = [f"{pad}  {json.dumps(k)}: {compact(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list):
        if len(json.dumps(value, ensure_ascii=False)) < 150:
            return json.dumps(value, ensure_ascii=False)
        items = [f"{pad}  {compact(v, indent + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(value, ensure_ascii=False)


def render() -> str:
    return compact(dashboard()) + "\n"


def write() -> None:
    text = TEMPLATE.read_text()
    start = text.index(MARKER) + len(MARKER)
    end = text.index("\n\n", start)
    indented = "\n".join("        " + line for line in render().rstrip("\n").split("\n"))
    TEMPLATE.write_text(text[:start] + indented + text[end:])


if __name__ == "__main__":
    if "--write" in sys.argv:
        write()
    else:
        print(render(), end="")
