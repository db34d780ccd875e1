"""The one Logger and Metrics of the service; every module and handler imports these.

Service name and namespace come from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE so the
template controls them; the defaults keep tests and local mode readable.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "videogen")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "videogen")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

__all__ = ["MetricUnit", "logger", "metrics"]
