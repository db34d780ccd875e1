"""The dashboard and alarms in template.yaml chart the code's metric catalogue, no more, no less."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

from tests.template.cfn_template import load_template
from videogen.observability import Metric

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = {metric.metric_name: set(metric.value[2]) for metric in Metric}


def resources() -> dict[str, Any]:
    found: dict[str, Any] = load_template(ROOT / "template.yaml")["Resources"]
    return found


def dashboard_body() -> dict[str, Any]:
    text = resources()["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    body: dict[str, Any] = json.loads(text)
    return body


def charted_custom_metrics(body: dict[str, Any]) -> dict[str, set[str]]:
    """Custom metric name → the dimension names it is charted with (SEARCH keys or the metric row)."""
    charted: dict[str, set[str]] = {}
    for widget in body["widgets"]:
        for row in widget.get("properties", {}).get("metrics", []):
            if isinstance(row[0], dict):
                match = re.fullmatch(r"SEARCH\('\{(.*)\} MetricName=\"(\w+)\"', '\w+', \d+\)", row[0]["expression"])
                assert match, row[0]["expression"]
                namespace, *keys = match.group(1).split(",")
                if namespace == "${AWS::StackName}":
                    charted[match.group(2)] = set(keys) - {"service"}
            elif row[0] == "${AWS::StackName}":
                charted[row[1]] = set(row[2:-1:2]) - {"service"}
    return charted


def test_template_body_is_what_the_generator_renders() -> None:
    spec = importlib.util.spec_from_file_location("render_dashboard", ROOT / "scripts" / "render_dashboard.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert dashboard_body() == json.loads(module.render()), "run: .venv/bin/python scripts/render_dashboard.py --write"


def test_every_catalogued_metric_is_charted_with_its_dimensions() -> None:
    assert charted_custom_metrics(dashboard_body()) == CATALOGUE


def test_dashboard_has_the_operational_widgets() -> None:
    body = json.dumps(dashboard_body())
    for needle in (
        "AWS/ApiGateway",
        "5XXError",
        "Latency",
        "ApproximateAgeOfOldestMessage",
        "submit-dlq",
        "AWS/Lambda",
        "Throttles",
        "p99",
        "ExecutionsTimedOut",
        "Latest failed jobs",
        "CostUSD",
    ):
        assert needle in body, needle
    alarm_widget = next(w for w in dashboard_body()["widgets"] if w["type"] == "alarm")
    alarms = {name for name, r in resources().items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert {a.removeprefix("${").removesuffix(".Arn}") for a in alarm_widget["properties"]["alarms"]} == alarms


def test_alarms_notify_the_topic_and_use_catalogued_metrics() -> None:
    alarms = {name: r["Properties"] for name, r in resources().items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert set(alarms) == {
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
    }
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        stats = [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m]
        stats += [alarm] if "MetricName" in alarm else []
        for metric in stats:
            if metric.get("Namespace") == {"Ref": "AWS::StackName"}:
                dims = {d["Name"] for d in metric.get("Dimensions", [])} - {"service"}
                assert CATALOGUE[metric["MetricName"]] == dims, (name, metric["MetricName"])
