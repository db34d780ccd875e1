"""The service's Logger and its metric catalogue; every module and handler imports these.

Service name and namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE so the
template controls them. Every custom metric is declared once in ``Metric`` with its unit and its
(low-cardinality) dimensions: the CloudWatch dashboard in template.yaml charts exactly these, and
tests/e2e checks the dashboard against what an end-to-end run really emits.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "videogen")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "videogen")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
# X-Ray through Powertools; it switches itself off outside Lambda (tests, local mode). Only the two
# libraries the service calls through are patched: patching everything the X-Ray SDK supports makes it
# try to import a dozen database drivers at every cold start.
tracer = Tracer(service=SERVICE, patch_modules=("botocore", "httpx"))


JOB_LOG_KEYS = ("job_id", "openrouter_job_id")


def annotate_job(job_id: str, openrouter_job_id: str | None = None) -> None:
    """Correlate every log line and the trace of this invocation with the job (and OpenRouter's job).

    The keys stay until the handler's next invocation clears them (``inject_lambda_context(clear_state=True)``
    on every handler) or, in a handler that works on several jobs in one invocation, until the end of
    its ``job_log_scope``."""
    keys = {"job_id": job_id} | ({"openrouter_job_id": openrouter_job_id} if openrouter_job_id else {})
    logger.append_keys(**keys)
    for key, value in keys.items():
        tracer.put_annotation(key=key, value=value)


@contextmanager
def job_log_scope(job_id: str | None = None, openrouter_job_id: str | None = None) -> Iterator[None]:
    """The log lines inside the block belong to one job (a record of a batch): its keys are added on entry
    if known (or later, by ``annotate_job``) and removed on exit, whatever was added in between, so the
    next record's lines cannot carry this job's id."""
    if job_id is not None:
        annotate_job(job_id, openrouter_job_id)
    try:
        yield
    finally:
        logger.remove_keys(list(JOB_LOG_KEYS))


class Metric(Enum):
    """name, unit, dimensions (besides ``service``)."""

    JOBS_ACCEPTED = ("JobsAccepted", MetricUnit.Count, ("door",))
    JOBS_REJECTED = ("JobsRejected", MetricUnit.Count, ("door", "reason"))
    JOBS_SUBMITTED = ("JobsSubmitted", MetricUnit.Count, ())
    POLLS = ("Polls", MetricUnit.Count, ("openrouter_status",))
    JOBS_COMPLETED = ("JobsCompleted", MetricUnit.Count, ())
    JOBS_FAILED = ("JobsFailed", MetricUnit.Count, ("status",))
    END_TO_END_SECONDS = ("EndToEndSeconds", MetricUnit.Seconds, ())
    GENERATION_SECONDS = ("GenerationSeconds", MetricUnit.Seconds, ())
    DOWNLOAD_BYTES = ("DownloadBytes", MetricUnit.Bytes, ())
    DOWNLOAD_SECONDS = ("DownloadSeconds", MetricUnit.Seconds, ())
    OPENROUTER_ERRORS = ("OpenRouterErrors", MetricUnit.Count, ("http_status",))
    COST_USD = ("CostUSD", MetricUnit.NoUnit, ())
    # Budgets (videogen.budgets): what an owner's ended jobs cost, and how much of its budget is committed
    # (reserved + spent, the fuller of the month and the day; 1 = all of it), per owner and at most over all.
    SPEND_USD = ("SpendUSD", MetricUnit.NoUnit, ("owner",))
    BUDGET_USED = ("BudgetUsedRatio", MetricUnit.NoUnit, ("owner",))
    BUDGET_USED_MAX = ("BudgetUsedRatioMax", MetricUnit.NoUnit, ())
    # Outbound webhooks (videogen.webhooks): attempts by outcome (delivered, retrying, failed, refused), and how
    # long each receiver took to answer.
    WEBHOOK_DELIVERIES = ("WebhookDeliveries", MetricUnit.Count, ("outcome",))
    WEBHOOK_LATENCY = ("WebhookLatency", MetricUnit.Milliseconds, ())
    # The credit breaker (videogen.breaker): 1 while submission is paused (each pause and each refused probe),
    # 0 when a probe closes it; and the submissions put back on the queue, by reason: the breaker's, or
    # rate_limited / no_provider (a 429 / 503) and paced (no token yet) from the adaptive pressure.
    SUBMIT_BREAKER_OPEN = ("SubmitBreakerOpen", MetricUnit.NoUnit, ())
    SUBMISSIONS_PAUSED = ("SubmissionsPaused", MetricUnit.Count, ("reason",))
    # Batches (videogen.batches): manifest lines made jobs or refused (per invocation's reading), batches ended.
    BATCH_LINES = ("BatchLines", MetricUnit.Count, ("outcome",))
    BATCHES_COMPLETED = ("BatchesCompleted", MetricUnit.Count, ())
    # Adaptive pressure (videogen.pressure): the shared submission rate as a window opens and after each judged one.
    SUBMIT_RATE = ("SubmitRate", MetricUnit.NoUnit, ())

    @property
    def metric_name(self) -> str:
        name: str = self.value[0]
        return name


def emit(metric: Metric, value: float = 1, **dimensions: str) -> None:
    name, unit, dimension_names = metric.value
    if set(dimensions) != set(dimension_names):
        raise ValueError(f"{name} takes dimensions {dimension_names}, got {sorted(dimensions)}")
    if not dimension_names:
        metrics.add_metric(name=name, unit=unit, value=value)
        return
    # A metric with its own dimensions is flushed on its own, so it does not drag them onto the others.
    with single_metric(name=name, unit=unit, value=value, namespace=NAMESPACE) as single:
        single.add_dimension(name="service", value=SERVICE)
        for key in dimension_names:
            single.add_dimension(name=key, value=dimensions[key] or "unknown")


__all__ = ["Metric", "MetricUnit", "annotate_job", "emit", "job_log_scope", "logger", "metrics", "tracer"]
