"""`videogen dashboard` without a browser: the template's body resolved for the local stack, EMF lines
aggregated the way CloudWatch does, SEARCH matching, and every widget of the template rendered."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from videogen_local import dashboard
from videogen_local.dashboard import DashboardError, MetricStore, Timeline
from videogen_local.localmode import metrics
from videogen_local.localmode.executions import STARTED, STOPPED, ExecutionWatcher
from videogen_local.localmode.names import Names
from videogen_local.localmode.output import LineWriter

ROOT = Path(__file__).resolve().parents[2]
NAMES = Names(stack="videogen-local")
NAMESPACE = NAMES.stack
T0 = 1_800_000_000.0  # a multiple of every period used below


def emf(timestamp: float, namespace: str, dimensions: dict[str, str], **values: float | list[float]) -> str:
    """An EMF line as Powertools prints it."""
    return json.dumps(
        {
            "_aws": {
                "Timestamp": int(timestamp * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": namespace,
                        "Dimensions": [list(dimensions)],
                        "Metrics": [{"Name": name, "Unit": "Count"} for name in values],
                    }
                ],
            },
            **dimensions,
            **values,
        }
    )


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return dashboard.load_template(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def body(template: dict[str, Any]) -> dict[str, Any]:
    return dashboard.dashboard_body(template, NAMES)


@pytest.fixture
def recording(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "metrics.jsonl"
    metrics.open_file(path)
    try:
        yield path
    finally:
        metrics.close_file()


def metric_widgets(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [widget for widget in body["widgets"] if widget["type"] == "metric"]


def test_the_body_is_the_templates_with_the_local_stacks_names(template: dict[str, Any], body: dict[str, Any]) -> None:
    text = json.dumps(body)
    assert "${" not in text
    assert f'"{NAMESPACE}", "JobsSubmitted", "service", "videogen"' in text
    assert f"SEARCH('{{{NAMESPACE},service,door}} MetricName=\\\"JobsAccepted\\\"', 'Sum', 300)" in text
    assert NAMES.state_machine_arn in text and NAMES.function("submit") in text and NAMES.api in text
    (alarms,) = [widget["properties"]["alarms"] for widget in body["widgets"] if widget["type"] == "alarm"]
    assert f"arn:aws:cloudwatch:us-east-1:{NAMES.account}:alarm:videogen-local-submit-dlq-not-empty" in alarms
    described = dashboard.alarm_descriptions(template, NAMES)
    assert {arn.rsplit(":", 1)[1] for arn in alarms} == set(described) and all(described.values())


def test_a_reference_local_mode_cannot_resolve_is_an_error(template: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(template))
    broken["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"] = '{"x": "${SubmitQueue.Arn}"}'
    with pytest.raises(DashboardError, match=r"SubmitQueue\.Arn"):
        dashboard.dashboard_body(broken, NAMES)


@pytest.mark.parametrize(
    ("stat", "expected"),
    [
        ("Sum", 5050.0),
        ("Average", 50.5),
        ("Maximum", 100.0),
        ("Minimum", 1.0),
        ("SampleCount", 100.0),
        ("p50", 50.0),
        ("p90", 90.0),
        ("p99", 99.0),
        ("p99.9", 100.0),
        ("p100", 100.0),
    ],
)
def test_statistics(stat: str, expected: float) -> None:
    assert dashboard.statistic(stat, [float(v) for v in reversed(range(1, 101))]) == expected


def test_an_unknown_statistic_is_refused() -> None:
    with pytest.raises(DashboardError, match="tm90"):
        dashboard.statistic("tm90", [1.0])


def test_values_are_aggregated_per_period_with_each_rows_stat() -> None:
    lines = [
        # Powertools writes a list when a metric was added several times before a flush.
        emf(T0 + 1, NAMESPACE, {"service": "videogen"}, JobsCompleted=[1.0, 1.0], EndToEndSeconds=[4.0, 8.0]),
        emf(T0 + 3, NAMESPACE, {"service": "videogen"}, JobsCompleted=1.0, EndToEndSeconds=30.0),
        emf(T0 + 12, NAMESPACE, {"service": "videogen"}, JobsCompleted=1.0, EndToEndSeconds=6.0),
        "not json",
        '{"_aws": {"Timestamp": 1',
    ]
    store = MetricStore.from_lines(lines)
    assert (store.records, store.skipped) == (3, 2)
    timeline = Timeline.covering(store.time_range, 10)
    assert (timeline.start, timeline.periods) == (T0, 2)
    rows = {
        "metrics": [
            [NAMESPACE, "JobsCompleted", "service", "videogen", {"label": "completed"}],
            [".", "EndToEndSeconds", ".", ".", {"stat": "p50", "label": "p50"}],
            [".", "EndToEndSeconds", ".", ".", {"stat": "Maximum", "label": "max", "yAxis": "right"}],
            [".", "EndToEndSeconds", ".", ".", {"stat": "SampleCount", "label": "hidden", "visible": False}],
            [NAMESPACE, "JobsCompleted", "service", "other", {"label": "other service"}],
        ],
        "stat": "Sum",
    }
    completed, p50, maximum, other = dashboard.widget_series(rows, store, timeline)
    assert completed.points == [(T0, 3.0), (T0 + 10, 1.0)]
    assert p50.points == [(T0, 8.0), (T0 + 10, 6.0)] and p50.stat == "p50"
    assert maximum.points == [(T0, 30.0), (T0 + 10, 6.0)] and maximum.y_axis == "right"
    assert other.points == []


def test_search_matches_the_metric_name_and_exactly_the_dimension_keys() -> None:
    lines = [
        emf(T0, NAMESPACE, {"service": "videogen", "door": "api"}, JobsAccepted=1.0),
        emf(T0 + 1, NAMESPACE, {"service": "videogen", "door": "api"}, JobsAccepted=1.0),
        emf(T0 + 2, NAMESPACE, {"service": "videogen", "door": "s3"}, JobsAccepted=1.0),
        emf(T0, NAMESPACE, {"service": "videogen", "door": "api", "extra": "x"}, JobsAccepted=5.0),
        emf(T0, NAMESPACE, {"service": "videogen"}, JobsAccepted=7.0),
        emf(T0, "another-stack", {"service": "videogen", "door": "api"}, JobsAccepted=9.0),
        emf(T0, NAMESPACE, {"service": "videogen", "door": "api"}, JobsRejected=1.0),
    ]
    store = MetricStore.from_lines(lines)
    expression = f"SEARCH('{{{NAMESPACE},service,door}} MetricName=\"JobsAccepted\"', 'Sum', 300)"
    widget = {"metrics": [[{"expression": expression, "id": "s1", "label": "accepted"}]]}
    found = dashboard.widget_series(widget, store, Timeline.covering(store.time_range, 60))
    assert [(s.label, s.dimensions, s.points) for s in found] == [
        ("accepted api", {"door": "api", "service": "videogen"}, [(T0, 2.0)]),
        ("accepted s3", {"door": "s3", "service": "videogen"}, [(T0, 1.0)]),
    ]
    missing = expression.replace("JobsAccepted", "JobsFailed")
    (empty,) = dashboard.widget_series(
        {"metrics": [[{"expression": missing, "label": "failed"}]]}, store, Timeline(T0, 1, 60)
    )
    assert empty.points == [] and empty.label == "failed"


def every_charted_metric(body: dict[str, Any]) -> list[str]:
    """An EMF line for every metric row and SEARCH of the template, as if a run had emitted them all."""
    lines = []
    for widget in metric_widgets(body):
        for row in widget["properties"]["metrics"]:
            if isinstance(row[0], dict):
                match = dashboard.SEARCH.fullmatch(row[0]["expression"])
                assert match, row[0]["expression"]
                namespace, *keys = match.group(1).split(",")
                dimensions = {key: "videogen" if key == "service" else "some-value" for key in keys}
                lines.append(emf(T0, namespace, dimensions, **{match.group(2): 2.0}))
            else:
                fields = row[:-1] if isinstance(row[-1], dict) else row
                dimensions = dict(zip(fields[2::2], fields[3::2], strict=True))
                lines.append(emf(T0 + 30, fields[0], dimensions, **{fields[1]: 3.0}))
    return lines


def test_every_widget_of_the_template_renders_with_data(body: dict[str, Any]) -> None:
    store = MetricStore.from_lines(every_charted_metric(body))
    rendered = dashboard.render_page(body, store, NAMES, log_lines=[])
    assert rendered.widgets == len(body["widgets"])
    assert rendered.series == rendered.series_with_data > 40
    assert rendered.period == 2  # fitted to the 30 s the lines span (at most 24 points)
    page = rendered.html
    for widget in body["widgets"]:
        title = widget["properties"].get("title")
        assert title is None or dashboard._e(title) in page
        place = f"grid-column: {widget['x'] + 1} / span {widget['width']}; grid-row: {widget['y'] + 1} / span"
        assert place in page
    assert page.count('class="series"') == rendered.series
    assert "no data locally" not in page
    assert "<h1>videogen (videogen-local)</h1>" in page and f"<strong>{NAMESPACE}</strong>" in page
    assert "Alarm state: not available locally" in page and "videogen-local-daily-cost" in page
    assert "fields @timestamp, job_id, status, error" in page
    # Self-contained: nothing is fetched (the only URL is the SVG namespace).
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert set(re.findall(r"https?://[^\s\"'<)]+", page)) == {"http://www.w3.org/2000/svg"}


def test_series_without_points_say_so(body: dict[str, Any]) -> None:
    rendered = dashboard.render_page(body, MetricStore(), NAMES)
    assert rendered.series_with_data == 0
    assert "(no data locally)" in rendered.html and ">no data locally</text>" in rendered.html
    assert "0 EMF records" in rendered.html and "no data yet" in rendered.html


def test_stacked_series_are_drawn_on_top_of_each_other() -> None:
    first = dashboard.Series("a", "n", "m", "Sum", {}, [(T0, 1.0), (T0 + 10, 2.0)])
    second = dashboard.Series("b", "n", "m", "Sum", {}, [(T0 + 10, 5.0)])
    bottom, top = dashboard.drawn_values([first, second], stacked=True)
    assert [(d.lower, d.upper, d.raw) for d in top] == [(1.0, 1.0, None), (2.0, 7.0, 5.0)]
    assert [(d.lower, d.upper) for d in bottom] == [(0.0, 1.0), (0.0, 2.0)]


def test_what_local_mode_records_is_what_the_dashboard_charts(recording: Path, body: dict[str, Any]) -> None:
    """The synthetic AWS/* lines carry the namespaces and dimensions the template's widgets ask for."""
    metrics.record_lambda(NAMES.function("submit"), 12.5, error=True)
    metrics.record_api(NAMES.api, "v1", 502, 40.0)
    metrics.record_execution(NAMES.state_machine_arn, "ExecutionsStarted")
    metrics.record_queue_depth(NAMES.dead_letter_queue, 2)
    assert metrics.take_emf('{"_aws": {"Timestamp": 0, "CloudWatchMetrics": []}}') is True
    assert metrics.take_emf('{"level": "INFO", "message": "not a metric"}') is False
    store = MetricStore.from_file(recording)
    assert store.records == 5
    timeline = Timeline.covering(store.time_range, 60)
    charted = {
        (series.label, tuple(point[1] for point in series.points))
        for widget in metric_widgets(body)
        for series in dashboard.widget_series(widget["properties"], store, timeline)
        if series.points
    }
    assert charted == {
        ("submit errors", (1.0,)),
        ("submit throttles", (0.0,)),
        ("submit p50", (12.5,)),
        ("submit p99", (12.5,)),
        ("requests", (1.0,)),
        ("4xx", (0.0,)),
        ("5xx", (1.0,)),
        ("p50", (40.0,)),
        ("p99", (40.0,)),
        ("started", (1.0,)),
        ("submit DLQ", (2.0,)),
    }


def test_nothing_is_recorded_without_a_metrics_file() -> None:
    assert not metrics.recording()
    metrics.record_lambda("f", 1.0, error=False)  # a no-op, not an error


def test_line_writer_copies_or_diverts_emf_lines(recording: Path) -> None:
    line = emf(T0, NAMESPACE, {"service": "videogen"}, JobsSubmitted=1.0)
    copied, diverted = io.StringIO(), io.StringIO()
    LineWriter(copied, hook=metrics.copy_emf).write(f"log line\n{line}\npartial")
    LineWriter(diverted, hook=metrics.take_emf).write(f"log line\n{line}\n")
    assert copied.getvalue() == f"log line\n{line}\n"
    assert diverted.getvalue() == "log line\n"
    assert recording.read_text() == f"{line}\n{line}\n"


def test_the_execution_watcher_counts_each_execution_once(recording: Path) -> None:
    # What moto's interpreter reports (executions.hook_moto), and DescribeExecution as Step Functions answers it.
    executions: dict[str, str] = {}
    described: list[str] = []
    put: list[dict[str, Any]] = []

    class Sfn:
        def describe_execution(self, executionArn: str) -> dict[str, Any]:
            described.append(executionArn)
            return {
                "executionArn": executionArn,
                "status": executions[executionArn],
                "stateMachineArn": NAMES.state_machine_arn,
                "name": executionArn,
                "input": "{}",
                "startDate": None,
                "stopDate": None,
            }

    class Events:
        fail = False

        def put_events(self, Entries: list[dict[str, Any]]) -> None:
            if self.fail:
                raise RuntimeError("PutEvents failed")
            put.extend(Entries)

    events = Events()
    watcher = ExecutionWatcher(Sfn(), events, NAMES.state_machine_arn)

    def report(change: str, arn: str, status: str = "RUNNING", machine: str = NAMES.state_machine_arn) -> None:
        executions[arn] = status
        watcher.notify(change, arn, machine, None)

    for n in range(5):
        report(STARTED, f"e{n}")
        report(STOPPED, f"e{n}", "SUCCEEDED")
    report(STARTED, "e5")
    report(STARTED, "other", machine="arn:aws:states:us-east-1:123456789012:stateMachine:another")
    assert watcher.poll_once() == 11  # six started, five ended (another state machine's are not this watcher's)
    described.clear()
    # Nothing new: nothing to read.
    assert watcher.poll_once() == 0 and described == []
    report(STOPPED, "e5", "FAILED")
    report(STARTED, "e6")
    report(STOPPED, "e6", "TIMED_OUT")
    events.fail = True  # the events of both endings are not put: a later tick puts them
    with pytest.raises(RuntimeError):
        watcher.poll_once()
    events.fail = False
    assert watcher.poll_once() == 2 and watcher.poll_once() == 0
    assert sorted(json.loads(entry["Detail"])["status"] for entry in put) == ["FAILED", "TIMED_OUT"]
    names = Counter(json.loads(line)["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] for line in recording.open())
    assert names == {"ExecutionsStarted": 7, "ExecutionsSucceeded": 5, "ExecutionsFailed": 1, "ExecutionsTimedOut": 1}


def test_markdown_of_text_widgets() -> None:
    text = "# Title **bold**\nA *note* with `code` and [a link](https://example.com).\n\n- one\n- <two>\n## Sub"
    assert dashboard.markdown(text) == (
        "<h1>Title <strong>bold</strong></h1>"
        '<p>A <em>note</em> with <code>code</code> and <a href="https://example.com">a link</a>.</p>'
        "<ul><li>one</li><li>&lt;two&gt;</li></ul><h2>Sub</h2>"
    )


def test_the_logs_widget_query_runs_on_local_log_lines(body: dict[str, Any]) -> None:
    (widget,) = [widget for widget in body["widgets"] if widget["type"] == "log"]

    def line(function: str, status: str, at: str, error: str | None = None) -> str:
        record = {"message": "job finished", "function_name": NAMES.function(function), "status": status}
        return json.dumps(record | {"timestamp": at, "job_id": f"{function}-{at}", "error": error})

    lines = [
        line("fail", "failed", "2026-01-01 10:00:01", "boom"),
        line("poll", "failed", "2026-01-01 10:00:02"),  # not a SOURCE of the query
        line("download", "completed", "2026-01-01 10:00:03"),
        line("submit", "failed", "2026-01-01 10:00:04", "refused"),
        emf(T0, NAMESPACE, {"service": "videogen"}, JobsFailed=1.0),
        "plain text",
    ]
    columns, rows, skipped = dashboard.logs_insights(widget["properties"]["query"], lines)
    assert columns == ["@timestamp", "job_id", "status", "error"] and skipped == ""
    assert [(row["job_id"], row["error"]) for row in rows] == [
        ("submit-2026-01-01 10:00:04", "refused"),
        ("fail-2026-01-01 10:00:01", "boom"),
    ]


def test_the_command_without_chromium_writes_the_html_and_says_how_to_get_the_png(
    tmp_path: Path, body: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from videogen_local.main import main

    metrics_file = tmp_path / "metrics.jsonl"
    metrics_file.write_text("\n".join(every_charted_metric(body)) + "\n")
    monkeypatch.setattr(dashboard, "find_chromium", lambda: None)
    html, png = tmp_path / "d.html", tmp_path / "d.png"
    assert main(["dashboard", "--metrics", str(metrics_file), "--html", str(html), "--png", str(png)]) == 3
    assert "apt-get install chromium" in capsys.readouterr().err
    assert html.is_file() and not png.exists()
    assert main(["dashboard", "--metrics", str(tmp_path / "none.jsonl"), "--html", str(html), "--no-png"]) == 2
    assert "videogen local serve" in capsys.readouterr().err
