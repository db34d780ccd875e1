"""`videogen dashboard`: the CloudWatch dashboard of template.yaml, drawn from a local run's metrics.

`videogen local serve` (and `videogen demo`) record every EMF line of the handlers, plus what
Lambda, Step Functions, API Gateway and SQS would publish, in a JSON Lines file
(localmode/metrics.py). This module reads the dashboard body from the template exactly as
CloudFormation would substitute it for the local stack, aggregates the file the way CloudWatch does
(per period, with each metric's statistic, SEARCH expressions matched on metric name and dimension
keys) and writes one self-contained HTML page: the same widgets in the same 24-column grid, charts as
inline SVG. Headless Chromium turns it into a PNG.

A local run lasts minutes, not the dashboard's six hours: unless ``--period`` says otherwise, every
chart uses one period fitted to the run (about 24 points), and each chart says which period the
deployed widget uses.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from videogen_local import cfn
from videogen_local.localmode.handlers import repository_root
from videogen_local.localmode.names import Names

PAGE_WIDTH = 1600
PADDING = 12
GAP = 8
COLUMN = (PAGE_WIDTH - 2 * PADDING - 23 * GAP) / 24
ROW = 40
HEADER_HEIGHT = 74
WIDGET_TITLE = 26
# d3's category10, which CloudWatch's graphs use too.
COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
NICE_PERIODS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
TARGET_POINTS = 24
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
SEARCH = re.compile(r"SEARCH\(\s*'\{([^}]*)\}\s+MetricName=\"([^\"]+)\"'\s*,\s*'([\w.]+)'\s*,\s*(\d+)\s*\)")
SUBSTITUTION = re.compile(r"\$\{([^}!]+)\}")


class DashboardError(Exception):
    """The template, the metrics file or a widget cannot be rendered; the message says why."""


# --------------------------------------------------------------------------------------- the template


def load_template(path: Path) -> dict[str, Any]:
    try:
        return cfn.load_template(path)
    except cfn.TemplateError as exc:
        raise DashboardError(str(exc)) from None


def dashboard_body(template: dict[str, Any], names: Names) -> dict[str, Any]:
    """The `Dashboard` resource's body with its ``!Sub`` resolved for ``names``' stack."""
    try:
        text = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    except (KeyError, TypeError):
        raise DashboardError("the template has no Dashboard resource with a DashboardBody: !Sub") from None
    if not isinstance(text, str):
        raise DashboardError("DashboardBody: !Sub with a variable map is not supported")
    resolved = SUBSTITUTION.sub(lambda match: _resolve(match.group(1), template, names), text)
    body: dict[str, Any] = json.loads(resolved)
    return body


def _pseudo(names: Names) -> dict[str, str]:
    return {
        "AWS::StackName": names.stack,
        "AWS::Region": names.region,
        "AWS::AccountId": names.account,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
    }


def _sub(value: Any, names: Names) -> str:
    """A physical name written as a plain string or a ``!Sub`` of pseudo parameters."""
    text = value.get("Fn::Sub") if isinstance(value, dict) else value
    if not isinstance(text, str):
        raise DashboardError(f"cannot resolve {value!r} locally")
    pseudo = _pseudo(names)
    return SUBSTITUTION.sub(lambda match: pseudo.get(match.group(1), match.group(0)), text)


def _resolve(reference: str, template: dict[str, Any], names: Names) -> str:
    """What CloudFormation puts in for ``${reference}``, for the resources a dashboard refers to."""
    pseudo = _pseudo(names)
    if reference in pseudo:
        return pseudo[reference]
    logical, _, attribute = reference.partition(".")
    resource = template["Resources"].get(logical)
    if not isinstance(resource, dict):
        raise DashboardError(f"${{{reference}}}: no resource {logical} in the template")
    kind = resource.get("Type")
    properties = resource.get("Properties") or {}
    region, account = names.region, names.account
    if kind == "AWS::CloudWatch::Alarm" and attribute in ("", "Arn"):
        alarm = _sub(properties["AlarmName"], names)
        return f"arn:aws:cloudwatch:{region}:{account}:alarm:{alarm}" if attribute else alarm
    if kind in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine") and attribute in ("", "Arn"):
        machine = _sub(properties.get("Name") or properties.get("StateMachineName"), names)
        return f"arn:aws:states:{region}:{account}:stateMachine:{machine}"
    if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function") and attribute in ("", "Arn"):
        function = _sub(properties["FunctionName"], names)
        return f"arn:aws:lambda:{region}:{account}:function:{function}" if attribute else function
    if kind == "AWS::SQS::Queue" and attribute == "QueueName":
        return _sub(properties["QueueName"], names)
    raise DashboardError(f"${{{reference}}} ({kind}) is not resolved locally")


def alarm_descriptions(template: dict[str, Any], names: Names) -> dict[str, str]:
    """Alarm name -> its AlarmDescription, to say in the alarm widget what each one watches."""
    found: dict[str, str] = {}
    for resource in template["Resources"].values():
        if isinstance(resource, dict) and resource.get("Type") == "AWS::CloudWatch::Alarm":
            properties = resource.get("Properties") or {}
            if "AlarmName" in properties:
                found[_sub(properties["AlarmName"], names)] = str(properties.get("AlarmDescription", ""))
    return found


# --------------------------------------------------------------------------------------- the metrics


Dimensions = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class MetricKey:
    namespace: str
    name: str
    dimensions: Dimensions  # sorted by key: a metric is its namespace, name and exact dimension set

    @property
    def dimension_map(self) -> dict[str, str]:
        return dict(self.dimensions)


@dataclass
class MetricStore:
    """Every datapoint of a metrics file, by metric (CloudWatch's identity: namespace, name, dimensions)."""

    points: dict[MetricKey, list[tuple[float, float]]] = field(default_factory=dict)
    records: int = 0
    skipped: int = 0

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> MetricStore:
        store = cls()
        for line in lines:
            if line.strip():
                store.add_line(line)
        return store

    @classmethod
    def from_file(cls, path: Path) -> MetricStore:
        if not path.is_file():
            raise DashboardError(
                f"no metrics file at {path}: run `videogen local serve` or `videogen demo` first "
                "(or pass --metrics PATH)"
            )
        with path.open(encoding="utf-8") as lines:
            return cls.from_lines(lines)

    def add_line(self, line: str) -> None:
        try:
            document = json.loads(line)
            self.add_emf(document)
        except (ValueError, KeyError, TypeError, AttributeError):
            # A line cut short by a stack that was killed mid-write, or not EMF: CloudWatch drops those too.
            self.skipped += 1
            return
        self.records += 1

    def add_emf(self, document: dict[str, Any]) -> None:
        envelope = document["_aws"]
        timestamp = float(envelope["Timestamp"]) / 1000
        added: list[tuple[MetricKey, float]] = []
        for directive in envelope["CloudWatchMetrics"]:
            namespace = str(directive["Namespace"])
            for dimension_set in directive["Dimensions"]:
                dimensions = tuple(sorted((str(key), str(document[key])) for key in dimension_set))
                for metric in directive["Metrics"]:
                    raw = document[metric["Name"]]
                    for value in raw if isinstance(raw, list) else [raw]:
                        if isinstance(value, bool) or not isinstance(value, int | float):
                            raise TypeError(f"{metric['Name']}: {value!r} is not a number")
                        added.append((MetricKey(namespace, str(metric["Name"]), dimensions), float(value)))
        for key, value in added:
            self.points.setdefault(key, []).append((timestamp, value))

    @property
    def time_range(self) -> tuple[float, float] | None:
        stamps = [stamp for points in self.points.values() for stamp, _ in points]
        return (min(stamps), max(stamps)) if stamps else None

    def get(self, namespace: str, name: str, dimensions: dict[str, str]) -> list[tuple[float, float]]:
        return self.points.get(MetricKey(namespace, name, tuple(sorted(dimensions.items()))), [])

    def search(self, namespace: str, keys: Sequence[str], name: str) -> list[MetricKey]:
        """CloudWatch's SEARCH schema ``{namespace,key,...} MetricName="name"``: the metrics with exactly
        these dimension keys, one per distinct set of values."""
        wanted = set(keys)
        found = [
            key
            for key in self.points
            if key.namespace == namespace and key.name == name and {k for k, _ in key.dimensions} == wanted
        ]
        return sorted(found, key=lambda key: key.dimensions)

    def constant_dimensions(self, namespace: str) -> set[tuple[str, str]]:
        """Dimensions with one value across the namespace (``service``): left out of series labels."""
        values: dict[str, set[str]] = {}
        for key in self.points:
            if key.namespace == namespace:
                for name, value in key.dimensions:
                    values.setdefault(name, set()).add(value)
        return {(name, next(iter(seen))) for name, seen in values.items() if len(seen) == 1}


def statistic(stat: str, values: Sequence[float]) -> float:
    """CloudWatch's statistics over one period; percentiles by nearest rank."""
    if not values:
        raise ValueError("no values")
    if stat == "Sum":
        return math.fsum(values)
    if stat == "Average":
        return math.fsum(values) / len(values)
    if stat == "Maximum":
        return max(values)
    if stat == "Minimum":
        return min(values)
    if stat == "SampleCount":
        return float(len(values))
    percentile = re.fullmatch(r"p(\d+(?:\.\d+)?)", stat)
    if percentile and 0 <= float(percentile.group(1)) <= 100:
        ordered = sorted(values)
        rank = max(1, math.ceil(float(percentile.group(1)) / 100 * len(ordered)))
        return ordered[rank - 1]
    raise DashboardError(f"statistic {stat!r} is not supported locally")


def auto_period(span: float) -> int:
    """The smallest usual period giving at most about 24 points over ``span`` seconds."""
    for period in NICE_PERIODS:
        if span / period <= TARGET_POINTS:
            return period
    return NICE_PERIODS[-1]


@dataclass
class Series:
    label: str
    namespace: str
    metric: str
    stat: str
    dimensions: dict[str, str]
    points: list[tuple[float, float]]  # (period start, statistic), periods with data only
    y_axis: str = "left"
    note: str = ""


@dataclass
class Timeline:
    """The dashboard's time range, cut in periods: every chart shares it, as on CloudWatch."""

    start: float
    periods: int
    period: int

    @classmethod
    def covering(cls, time_range: tuple[float, float] | None, period: int) -> Timeline:
        first, last = time_range or (0.0, 0.0)
        start = math.floor(first / period) * period
        return cls(start, int((last - start) // period) + 1, period)

    def aggregate(self, points: Sequence[tuple[float, float]], stat: str) -> list[tuple[float, float]]:
        buckets: dict[int, list[float]] = {}
        for stamp, value in points:
            buckets.setdefault(int((stamp - self.start) // self.period), []).append(value)
        return [(self.start + index * self.period, statistic(stat, buckets[index])) for index in sorted(buckets)]


def widget_series(properties: dict[str, Any], store: MetricStore, timeline: Timeline) -> list[Series]:
    """One series per metric row and per SEARCH match, aggregated with the row's (or widget's) stat."""
    default_stat = str(properties.get("stat", "Average"))
    series: list[Series] = []
    previous: list[Any] = []
    for row in properties.get("metrics", []):
        if row and isinstance(row[0], dict):
            series.extend(_expression_series(row[0], store, timeline))
            continue
        options = row[-1] if row and isinstance(row[-1], dict) else {}
        fields = list(row[:-1] if options else row)
        # CloudWatch's shorthand: "." repeats the previous row's value at that position.
        fields = [previous[i] if value == "." and i < len(previous) else value for i, value in enumerate(fields)]
        previous = fields
        if options.get("visible") is False or len(fields) < 2:
            continue
        namespace, metric = str(fields[0]), str(fields[1])
        dimensions = {str(fields[i]): str(fields[i + 1]) for i in range(2, len(fields) - 1, 2)}
        stat = str(options.get("stat", default_stat))
        series.append(
            Series(
                label=str(options.get("label") or metric),
                namespace=namespace,
                metric=metric,
                stat=stat,
                dimensions=dimensions,
                points=timeline.aggregate(store.get(namespace, metric, dimensions), stat),
                y_axis=str(options.get("yAxis", "left")),
            )
        )
    return series


def _expression_series(expression: dict[str, Any], store: MetricStore, timeline: Timeline) -> list[Series]:
    text = str(expression.get("expression", ""))
    label = str(expression.get("label") or expression.get("id") or text)
    match = SEARCH.fullmatch(text.strip())
    if not match:
        note = "only SEARCH('{namespace,keys} MetricName=\"...\"', stat, period) is evaluated locally"
        return [Series(label, "", "", "", {}, [], note=note)]
    namespace, *keys = [part.strip() for part in match.group(1).split(",")]
    metric, stat = match.group(2), match.group(3)
    matches = store.search(namespace, keys, metric)
    if not matches:
        return [Series(label, namespace, metric, stat, dict.fromkeys(keys, "*"), [])]
    constant = store.constant_dimensions(namespace)
    found = []
    for key in matches:
        varying = [value for name, value in key.dimensions if (name, value) not in constant]
        found.append(
            Series(
                label=" ".join([label, *varying]),
                namespace=namespace,
                metric=metric,
                stat=stat,
                dimensions=key.dimension_map,
                points=timeline.aggregate(store.points[key], stat),
            )
        )
    return found


# --------------------------------------------------------------------------------------- drawing


def _number(value: float) -> str:
    """Short axis and tooltip numbers: 1.5k, 2.25, 0.004."""
    magnitude = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return f"{value / limit:.3g}{suffix}"
    if magnitude == 0 or magnitude >= 1:
        return f"{value:.4g}"
    return f"{value:.2g}"


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        candidate = step * 10.0**exponent
        if candidate >= value:
            return candidate
    return 10.0 ** (exponent + 1)


def _divisions(scale: float) -> int:
    """Grid lines at round values: 2.5 and 5 (x 10^n) split in 5, 1 and 2 in 4."""
    mantissa = round(scale / 10.0 ** math.floor(math.log10(scale)), 3)
    return 5 if mantissa in (2.5, 5.0) else 4


def _clock(stamp: float, seconds: bool = True) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%H:%M:%S" if seconds else "%H:%M")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


@dataclass
class Chart:
    width: float
    height: float
    left: float = 46
    right: float = 12
    top: float = 8
    bottom: float = 20

    @property
    def plot_width(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> float:
        return self.height - self.top - self.bottom


def _legend_rows(series: Sequence[Series], width: float) -> list[list[tuple[int, Series]]]:
    """Legend entries flowed into rows (about 6.2 px per character at 11 px)."""
    rows: list[list[tuple[int, Series]]] = [[]]
    used = 0.0
    for index, item in enumerate(series):
        text = item.label + ("" if item.points else " (no data locally)")
        needed = 22 + len(text) * 6.2
        if rows[-1] and used + needed > width:
            rows.append([])
            used = 0.0
        rows[-1].append((index, item))
        used += needed
    return rows


@dataclass(frozen=True)
class Drawn:
    """One period of a series as drawn: stacked charts add each series on top of those before it."""

    stamp: float
    lower: float
    upper: float
    raw: float | None  # None: a period without data, drawn as 0 so that the stack stays continuous


def drawn_values(series: Sequence[Series], stacked: bool) -> list[list[Drawn]]:
    if not stacked:
        return [[Drawn(stamp, 0.0, value, value) for stamp, value in item.points] for item in series]
    stamps = sorted({stamp for item in series for stamp, _ in item.points})
    running: dict[tuple[str, float], float] = {}
    drawn = []
    for item in series:
        row = []
        if item.points:
            values = dict(item.points)
            for stamp in stamps:
                lower = running.get((item.y_axis, stamp), 0.0)
                raw = values.get(stamp)
                running[(item.y_axis, stamp)] = lower + (raw or 0.0)
                row.append(Drawn(stamp, lower, lower + (raw or 0.0), raw))
        drawn.append(row)
    return drawn


def render_chart(
    series: Sequence[Series], timeline: Timeline, width: float, height: float, view: str, stacked: bool
) -> str:
    """One metric widget's chart as inline SVG: axes, one line (or bars / stacked areas) per series, legend."""
    legend = _legend_rows(series, width - 8)
    legend_height = 16 * len(legend) + 4
    right_axis = any(item.y_axis == "right" for item in series)
    chart = Chart(width, max(60.0, height - legend_height), right=46 if right_axis else 12)
    colours = {index: COLOURS[index % len(COLOURS)] for index in range(len(series))}
    values = drawn_values(series, stacked)

    def scale_for(axis: str) -> float:
        peaks = [d.upper for index, item in enumerate(series) if item.y_axis == axis for d in values[index]]
        return _nice_ceiling(max(peaks, default=0.0))

    scales = {"left": scale_for("left"), "right": scale_for("right")}
    slot = chart.plot_width / max(1, timeline.periods)

    def x_of(stamp: float) -> float:
        """The middle of the stamp's period, as a bar would stand."""
        return chart.left + ((stamp - timeline.start) / timeline.period + 0.5) * slot

    def y_of(value: float, axis: str) -> float:
        return chart.top + chart.plot_height * (1 - value / scales[axis])

    parts = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img">'
    ]
    divisions = {axis: _divisions(scale) for axis, scale in scales.items()}
    for step in range(divisions["left"] + 1):
        fraction = step / divisions["left"]
        y = chart.top + chart.plot_height * (1 - fraction)
        parts.append(
            f'<line x1="{chart.left:.1f}" x2="{chart.left + chart.plot_width:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
            f'class="grid"/>'
        )
        parts.append(
            f'<text x="{chart.left - 6:.1f}" y="{y + 3.5:.1f}" class="tick" text-anchor="end">'
            f"{_number(scales['left'] * fraction)}</text>"
        )
    if right_axis:
        for step in range(divisions["right"] + 1):
            fraction = step / divisions["right"]
            y = chart.top + chart.plot_height * (1 - fraction)
            parts.append(
                f'<text x="{chart.left + chart.plot_width + 6:.1f}" y="{y + 3.5:.1f}" class="tick">'
                f"{_number(scales['right'] * fraction)}</text>"
            )
    every = max(1, math.ceil(timeline.periods / 6))
    for index in range(0, timeline.periods, every):
        stamp = timeline.start + index * timeline.period
        parts.append(
            f'<text x="{x_of(stamp):.1f}" y="{chart.height - 6:.1f}" class="tick" text-anchor="middle">'
            f"{_clock(stamp, timeline.period < 60)}</text>"
        )
    if not any(item.points for item in series):
        parts.append(
            f'<text x="{chart.left + chart.plot_width / 2:.1f}" y="{chart.top + chart.plot_height / 2:.1f}" '
            f'class="nodata" text-anchor="middle">no data locally</text>'
        )
    bar_width = max(1.0, slot * 0.8 / max(1, len(series)))
    for index, item in enumerate(series):
        colour = colours[index]
        attributes = (
            f'class="series" data-label="{_e(item.label)}" data-namespace="{_e(item.namespace)}" '
            f'data-metric="{_e(item.metric)}" data-stat="{_e(item.stat)}" data-points="{len(item.points)}"'
        )
        parts.append(f"<g {attributes}>")
        drawn = values[index]
        if view == "bar":
            for d in drawn:
                left = x_of(d.stamp) - slot * 0.4 + index * bar_width
                top, bottom = y_of(d.upper, item.y_axis), y_of(d.lower, item.y_axis)
                parts.append(
                    f'<rect x="{left:.1f}" y="{top:.1f}" width="{bar_width:.1f}" height="{bottom - top:.1f}" '
                    f'fill="{colour}">{_tooltip(item, d)}</rect>'
                )
        else:
            upper = [(x_of(d.stamp), y_of(d.upper, item.y_axis)) for d in drawn]
            if stacked and upper:
                lower = [(x_of(d.stamp), y_of(d.lower, item.y_axis)) for d in reversed(drawn)]
                polygon = " ".join(f"{x:.1f},{y:.1f}" for x, y in [*upper, *lower])
                parts.append(f'<polygon points="{polygon}" fill="{colour}" fill-opacity="0.3" stroke="none"/>')
            if len(upper) > 1:
                line = " ".join(f"{x:.1f},{y:.1f}" for x, y in upper)
                parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="1.8"/>')
            for (x, y), d in zip(upper, drawn, strict=True):
                if d.raw is not None:
                    parts.append(
                        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.6" fill="{colour}">{_tooltip(item, d)}</circle>'
                    )
        parts.append("</g>")
    y = chart.height + 12
    for row in legend:
        x = 4.0
        for index, item in row:
            text = item.label + ("" if item.points else " (no data locally)")
            tone = "legend" if item.points else "legend empty"
            tip = ", ".join(f"{k}={v}" for k, v in item.dimensions.items()) or item.note
            parts.append(
                f'<g class="{tone}"><title>{_e(item.namespace)} {_e(item.metric)} {_e(tip)} {_e(item.stat)}</title>'
                f'<rect x="{x:.1f}" y="{y - 8:.1f}" width="12" height="4" fill="{colours[index]}"/>'
                f'<text x="{x + 16:.1f}" y="{y:.1f}">{_e(text)}</text></g>'
            )
            x += 22 + len(text) * 6.2
        y += 16
    parts.append("</svg>")
    return "".join(parts)


def _tooltip(item: Series, drawn: Drawn) -> str:
    value = "no data" if drawn.raw is None else f"{_number(drawn.raw)} ({item.stat})"
    return f"<title>{_e(item.label)}: {value} at {_clock(drawn.stamp)} UTC</title>"


def _inline_markdown(line: str) -> str:
    line = _e(line)
    line = re.sub(r"`([^`]+)`", r"<code>\1</code>", line)
    line = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", line)
    line = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", line)
    return re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', line)


def markdown(text: str) -> str:
    """The markdown CloudWatch text widgets use most: headings, paragraphs, lists, bold, italics, links, code."""
    blocks: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []

    def close() -> None:
        if paragraph:
            blocks.append("<p>" + "<br>".join(paragraph) + "</p>")
            paragraph.clear()
        if items:
            blocks.append("<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>")
            items.clear()

    for line in text.splitlines():
        heading = re.match(r"(#{1,6})\s+(.*)", line)
        bullet = re.match(r"\s*[-*]\s+(.*)", line)
        if heading:
            close()
            level = min(len(heading.group(1)), 3)
            blocks.append(f"<h{level}>{_inline_markdown(heading.group(2))}</h{level}>")
        elif bullet:
            if paragraph:
                close()
            items.append(_inline_markdown(bullet.group(1)))
        elif not line.strip():
            close()
        else:
            if items:
                close()
            paragraph.append(_inline_markdown(line))
    close()
    return "".join(blocks)


# --------------------------------------------------------------------------------------- logs widget


def logs_insights(query: str, log_lines: Iterable[str]) -> tuple[list[str], list[dict[str, Any]], str]:
    """The part of Logs Insights the dashboard's query uses (SOURCE, fields, filter with = / != joined by
    ``and``, sort, limit) over local serve's JSON log lines; returns (columns, rows, what was skipped)."""
    sources: set[str] = set()
    columns: list[str] = []
    conditions: list[tuple[str, str, str]] = []
    order: tuple[str, bool] | None = None
    limit = 1000
    skipped: list[str] = []
    for command in (part.strip() for part in query.split(" | ")):
        if source := re.fullmatch(r"SOURCE\s+'([^']+)'", command):
            sources.add(source.group(1).rsplit("/", 1)[-1])
        elif command.startswith("fields "):
            columns = [name.strip() for name in command[len("fields ") :].split(",")]
        elif command.startswith("filter "):
            for clause in re.split(r"\s+and\s+", command[len("filter ") :]):
                condition = re.fullmatch(r"([@\w.]+)\s*(!=|=)\s*'([^']*)'", clause.strip())
                if condition:
                    conditions.append((condition.group(1), condition.group(2), condition.group(3)))
                else:
                    skipped.append(clause)
        elif sort := re.fullmatch(r"sort\s+([@\w.]+)(?:\s+(asc|desc))?", command):
            order = (sort.group(1), sort.group(2) == "desc")
        elif limit_match := re.fullmatch(r"limit\s+(\d+)", command):
            limit = int(limit_match.group(1))
        elif command:
            skipped.append(command)

    def field_of(record: dict[str, Any], name: str) -> Any:
        return record.get("timestamp") if name == "@timestamp" else record.get(name)

    rows = []
    for line in log_lines:
        if not line.startswith("{") or line.startswith('{"_aws"'):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        # @log is the log group (CloudWatch's own field; local serve stamps it on each line).
        function = str(record.get("@log") or "").rsplit("/", 1)[-1] or record.get("function_name")
        if sources and function not in sources:
            continue
        if all((str(field_of(record, name)) == value) == (op == "=") for name, op, value in conditions):
            rows.append(record)
    if order:
        rows.sort(key=lambda record: str(field_of(record, order[0]) or ""), reverse=order[1])
    shown = [{name: field_of(record, name) for name in columns} for record in rows[:limit]]
    return columns, shown, "; ".join(skipped)


# --------------------------------------------------------------------------------------- the page


@dataclass
class Rendered:
    html: str
    height: int
    widgets: int
    series: int
    series_with_data: int
    period: int


CSS = """
* { box-sizing: border-box; }
body { margin: 0; background: #f2f3f3; font: 13px/1.35 "DejaVu Sans", Arial, Helvetica, sans-serif; color: #16191f; }
header { height: %(header)dpx; padding: 10px %(pad)dpx 0; }
header h1 { font-size: 18px; margin: 0 0 4px; }
header p { margin: 0; color: #545b64; font-size: 12px; }
.grid { display: grid; grid-template-columns: repeat(24, %(column).4fpx); grid-auto-rows: %(row)dpx;
  gap: %(gap)dpx; padding: 0 %(pad)dpx %(pad)dpx; width: %(width)dpx; }
.widget { background: #fff; border: 1px solid #d5dbdb; border-radius: 2px; overflow: hidden; padding: 4px 6px; }
.widget h2 { font-size: 13px; font-weight: bold; margin: 0; height: %(title)dpx; line-height: 18px;
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.widget h2 small { font-weight: normal; color: #687078; margin-left: 6px; }
.text h1 { font-size: 18px; margin: 2px 0 4px; } .text h2 { font-size: 15px; } .text p { margin: 0 0 4px; }
svg.chart text { font: 11px "DejaVu Sans", Arial, sans-serif; fill: #16191f; }
svg.chart .tick { fill: #687078; font-size: 10px; }
svg.chart .grid { stroke: #eaeded; stroke-width: 1; }
svg.chart .nodata { fill: #879596; font-size: 13px; }
svg.chart .legend.empty text { fill: #879596; }
.alarms ul { margin: 4px 0; padding-left: 18px; } .alarms li { margin: 1px 0; font-size: 11px; line-height: 1.3; }
.note { color: #687078; font-size: 12px; margin: 2px 0 6px; }
pre { white-space: pre-wrap; font-size: 11px; background: #f8f8f8; padding: 4px 6px; margin: 0 0 6px; }
table { border-collapse: collapse; font-size: 11px; width: 100%%; }
th, td { text-align: left; border-bottom: 1px solid #eaeded; padding: 2px 6px; vertical-align: top; }
"""

# Runs in the browser: records on each series what the layout engine made of it, so a headless
# browser's DOM dump proves the charts were really laid out (tests/e2e/test_dashboard.py).
SCRIPT = """
(function () {
  var drawn = 0;
  document.querySelectorAll("svg.chart g.series").forEach(function (group) {
    var box = group.getBBox();
    group.setAttribute("data-rendered", Math.round(box.width) + "x" + Math.round(box.height));
    if (box.width > 0 || box.height > 0) { drawn += 1; }
  });
  document.body.setAttribute("data-rendered-series", String(drawn));
})();
"""


def _box(widget: dict[str, Any]) -> tuple[float, float]:
    width = int(widget.get("width", 6)) * COLUMN + (int(widget.get("width", 6)) - 1) * GAP
    height = int(widget.get("height", 6)) * ROW + (int(widget.get("height", 6)) - 1) * GAP
    return width, height


def render_page(
    body: dict[str, Any],
    store: MetricStore,
    names: Names,
    period: int | None = None,
    alarms: dict[str, str] | None = None,
    log_lines: Sequence[str] | None = None,
    source: str = "",
) -> Rendered:
    span = store.time_range
    chosen = period or auto_period(span[1] - span[0] if span else 0)
    timeline = Timeline.covering(span, chosen)
    widgets = body.get("widgets", [])
    cells: list[str] = []
    total_series = with_data = 0
    for widget in widgets:
        kind = widget.get("type")
        properties = widget.get("properties", {})
        width, height = _box(widget)
        inner_width, inner_height = width - 14, height - 10
        place = (
            f'style="grid-column: {int(widget.get("x", 0)) + 1} / span {int(widget.get("width", 6))}; '
            f'grid-row: {int(widget.get("y", 0)) + 1} / span {int(widget.get("height", 6))}"'
        )
        title = _e(properties.get("title", ""))
        if kind == "metric":
            series = widget_series(properties, store, timeline)
            total_series += len(series)
            with_data += sum(1 for item in series if item.points)
            deployed = properties.get("period", 300)
            caption = f"{_e(properties.get('stat', 'Average'))}, period {chosen} s"
            if deployed != chosen:
                caption += f" (deployed: {deployed} s)"
            chart = render_chart(
                series,
                timeline,
                inner_width,
                inner_height - WIDGET_TITLE,
                str(properties.get("view", "timeSeries")),
                bool(properties.get("stacked", False)),
            )
            content = f"<h2>{title}<small>{caption}</small></h2>{chart}"
        elif kind == "text":
            content = f'<div class="text">{markdown(str(properties.get("markdown", "")))}</div>'
        elif kind == "alarm":
            content = _alarm_widget(title, properties, alarms or {})
        elif kind == "log":
            content = _log_widget(title, properties, log_lines)
        else:
            content = f'<h2>{title}</h2><p class="note">widget type {_e(kind)} is not rendered locally</p>'
        cells.append(f'<section class="widget {_e(kind)}" data-type="{_e(kind)}" {place}>{content}</section>')

    rows = max((int(w.get("y", 0)) + int(w.get("height", 6)) for w in widgets), default=0)
    height = HEADER_HEIGHT + rows * ROW + max(0, rows - 1) * GAP + PADDING
    if span:
        first = datetime.fromtimestamp(span[0], UTC).strftime("%Y-%m-%d %H:%M:%S")
        data_range = f"{first} to {_clock(span[1])} UTC ({span[1] - span[0]:.0f} s)"
    else:
        data_range = "no data yet"
    skipped = f", {store.skipped} unreadable lines skipped" if store.skipped else ""
    summary = (
        f"Data {data_range} · {store.records} EMF records{skipped} · period {chosen} s · "
        f"{with_data} of {total_series} series with data · region {names.region} · "
        "no alarm state locally · from template.yaml's Dashboard"
    )
    css = CSS % {
        "header": HEADER_HEIGHT,
        "pad": PADDING,
        "column": COLUMN,
        "row": ROW,
        "gap": GAP,
        "width": PAGE_WIDTH,
        "title": WIDGET_TITLE - 6,
    }
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(names.stack)} dashboard (local)</title><style>{css}</style></head>"
        f'<body data-stack="{_e(names.stack)}" data-records="{store.records}" data-period="{chosen}">'
        f"<header><h1>{_e(names.stack)}: dashboard from local metrics</h1><p>{_e(summary)}</p>"
        f"<p>{_e(source)}</p></header>"
        f'<main class="grid">{"".join(cells)}</main><script>{SCRIPT}</script></body></html>\n'
    )
    return Rendered(page, height, len(widgets), total_series, with_data, chosen)


def _alarm_widget(title: str, properties: dict[str, Any], descriptions: dict[str, str]) -> str:
    entries = []
    for arn in properties.get("alarms", []):
        name = str(arn).rsplit(":alarm:", 1)[-1]
        # The first sentence: the widget is the size CloudWatch gives its alarm tiles, the rest is in the template.
        description = re.split(r"(?<=[.;])\s", descriptions.get(name, ""), maxsplit=1)[0]
        entries.append(f"<li><strong>{_e(name)}</strong> {_inline_markdown(description)}</li>")
    return (
        f'<div class="alarms"><h2>{title}</h2><p class="note">Alarm state: not available locally '
        "(CloudWatch evaluates alarms only when deployed).</p>"
        f"<ul>{''.join(entries)}</ul></div>"
    )


def _log_widget(title: str, properties: dict[str, Any], log_lines: Sequence[str] | None) -> str:
    query = str(properties.get("query", ""))
    parts = [f"<h2>{title}<small>Logs Insights</small></h2><pre>{_e(query)}</pre>"]
    if log_lines is None:
        parts.append('<p class="note">Pass --logs with local serve\'s stderr to run this query on it.</p>')
        return "".join(parts)
    columns, rows, skipped = logs_insights(query, log_lines)
    if skipped:
        parts.append(f'<p class="note">not evaluated locally: {_e(skipped)}</p>')
    if not rows:
        parts.append('<p class="note">no matching log lines locally</p>')
        return "".join(parts)
    header = "".join(f"<th>{_e(column)}</th>" for column in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e('' if row[c] is None else row[c])}</td>" for c in columns) + "</tr>" for row in rows
    )
    parts.append(f'<table class="logs" data-rows="{len(rows)}"><tr>{header}</tr>{body}</table>')
    return "".join(parts)


# --------------------------------------------------------------------------------------- Chromium


def find_chromium() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        found = candidate if Path(candidate).is_file() else shutil.which(candidate)
        if found:
            return found
    return None


def _chromium(chromium: str, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    # A fresh profile each time: no first-run state, no lock shared with another Chromium.
    with tempfile.TemporaryDirectory(prefix="videogen-chromium-") as profile:
        command = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            *args,
        ]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def screenshot(chromium: str, page: Path, png: Path, height: int) -> None:
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    done = _chromium(
        chromium, f"--window-size={PAGE_WIDTH},{height}", f"--screenshot={png.resolve()}", page.resolve().as_uri()
    )
    if not png.is_file():
        raise DashboardError(f"Chromium wrote no screenshot (exit {done.returncode}):\n{done.stderr[-2000:]}")


def dump_dom(chromium: str, page: Path) -> str:
    """The DOM after Chromium loaded the page and ran its script."""
    done = _chromium(chromium, f"--window-size={PAGE_WIDTH},1000", "--dump-dom", page.resolve().as_uri())
    if done.returncode != 0 or "<html" not in done.stdout:
        raise DashboardError(f"Chromium --dump-dom failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


# --------------------------------------------------------------------------------------- the command


def run(args: argparse.Namespace) -> int:
    names = Names(stack=args.stack_name)
    template_path = args.template or repository_root() / "template.yaml"
    try:
        template = load_template(template_path)
        body = dashboard_body(template, names)
        store = MetricStore.from_file(args.metrics)
        log_lines = args.logs.read_text(encoding="utf-8", errors="replace").splitlines() if args.logs else None
        rendered = render_page(
            body,
            store,
            names,
            period=args.period,
            alarms=alarm_descriptions(template, names),
            log_lines=log_lines,
            source=f"metrics: {args.metrics} · template: {args.template or 'template.yaml (this checkout)'}",
        )
    except DashboardError as error:
        print(f"videogen dashboard: {error}", file=sys.stderr)
        return 2
    args.html.parent.mkdir(parents=True, exist_ok=True)
    args.html.write_text(rendered.html, encoding="utf-8")
    summary: dict[str, Any] = {
        "html": str(args.html),
        "png": None,
        "records": store.records,
        "widgets": rendered.widgets,
        "series": rendered.series,
        "series_with_data": rendered.series_with_data,
        "period": rendered.period,
        "size": [PAGE_WIDTH, rendered.height],
    }
    if args.no_png:
        print(json.dumps(summary))
        return 0
    chromium = find_chromium()
    if chromium is None:
        print(json.dumps(summary))
        print(
            f"videogen dashboard: wrote {args.html}; the PNG needs Chromium, which is not installed "
            "(Debian/Ubuntu: apt-get install chromium, or: make browser). Pass --no-png for the HTML only.",
            file=sys.stderr,
        )
        return 3
    try:
        screenshot(chromium, args.html, args.png, rendered.height)
    except (DashboardError, subprocess.TimeoutExpired) as error:
        print(json.dumps(summary))
        print(f"videogen dashboard: {error}", file=sys.stderr)
        return 3
    summary["png"] = str(args.png)
    print(json.dumps(summary))
    return 0
