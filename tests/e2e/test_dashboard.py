"""What a developer sees locally is what operators will see: jobs through `videogen local serve`, then
`videogen dashboard` draws template.yaml's dashboard from the metrics serve recorded, and a real
headless Chromium (Debian's package; `make browser`) loads the page and screenshots it."""

from __future__ import annotations

import json
import re
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.e2e.conftest import VIDEOGEN, Served
from tests.support.images import reference_data_url
from videogen_local.dashboard import COLOURS, PAGE_WIDTH, dump_dom, find_chromium

pytestmark = pytest.mark.e2e
CHROMIUM = find_chromium()


class SeriesParser(HTMLParser):
    """The chart series of the DOM as Chromium left it (its script adds data-rendered)."""

    def __init__(self) -> None:
        super().__init__()
        self.series: list[dict[str, str]] = []
        self.body: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "g" and values.get("class") == "series":
            self.series.append(values)
        elif tag == "body":
            self.body = values


def metric_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        for directive in json.loads(line)["_aws"]["CloudWatchMetrics"]:
            names |= {metric["Name"] for metric in directive["Metrics"]}
    return names


def wait_for_metrics(path: Path, wanted: set[str], timeout: float = 20) -> None:
    """A job's record is final before its handler flushes its metrics: wait for the lines."""
    deadline = time.monotonic() + timeout
    while not wanted <= (seen := metric_names(path)):
        assert time.monotonic() < deadline, f"never recorded: {wanted - seen}"
        time.sleep(0.1)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: make browser (apt-get install chromium)")
def test_the_local_dashboard_charts_a_run_in_a_real_browser(served: Served, tmp_path: Path) -> None:
    assert CHROMIUM is not None
    started = time.monotonic()
    reference = [{"type": "image_url", "image_url": {"url": reference_data_url()}}]
    jobs = [
        served.api("POST", "/videos", json={"prompt": prompt, "resolution": "480p", "input_references": reference})
        for prompt in ("dashboard: completes", "dashboard: fails [sim:outcome=failed]")
    ]
    assert [job.status_code for job in jobs] == [202, 202]
    assert [served.wait_job(job.json()["id"])["status"] for job in jobs] == ["completed", "failed"]
    metrics_file = Path(served.info["metrics_file"])
    wait_for_metrics(metrics_file, {"JobsAccepted", "JobsCompleted", "JobsFailed", "Invocations", "Count"})

    html, png = tmp_path / "dashboard.html", tmp_path / "dashboard.png"
    command = [str(VIDEOGEN), "dashboard", "--metrics", str(metrics_file), "--html", str(html), "--png", str(png)]
    done = subprocess.run(
        [*command, "--logs", served.info["stderr_log"]], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    assert summary["png"] == str(png) and summary["records"] > 10
    assert summary["series_with_data"] >= 20, summary

    # The DOM after Chromium laid the page out and ran its script.
    parser = SeriesParser()
    parser.feed(dump_dom(CHROMIUM, html))
    assert parser.body["data-stack"] == "videogen-local"
    assert int(parser.body["data-rendered-series"]) == summary["series_with_data"]

    def drawn(namespace: str, metric: str, label: str = "") -> list[dict[str, str]]:
        return [
            series
            for series in parser.series
            if series["data-namespace"] == namespace
            and series["data-metric"] == metric
            and series["data-label"].startswith(label)
            and int(series["data-points"]) > 0
            and re.fullmatch(r"[1-9]\d*x\d+", series["data-rendered"])
        ]

    assert drawn("videogen-local", "JobsAccepted", "accepted")
    assert drawn("videogen-local", "JobsCompleted", "completed")
    assert drawn("videogen-local", "JobsFailed", "failed")
    assert drawn("AWS/Lambda", "Duration", "submit p50") and drawn("AWS/Lambda", "Errors", "api errors")
    assert drawn("AWS/ApiGateway", "Count", "requests")
    # The Logs Insights widget's query, run on serve's log, lists the failed job.
    assert jobs[1].json()["id"] in html.read_text().split("Latest failed jobs", 1)[1]

    # The screenshot: the whole page at the computed size, with the charts' colours on it.
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size == tuple(summary["size"]) and image.size[0] == PAGE_WIDTH
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50, "a blank or flat page"
    counts = {rgb: count for count, rgb in colours}
    series_colours = [tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)) for c in COLOURS[:3]]
    assert all(counts.get(rgb, 0) > 100 for rgb in series_colours), [counts.get(rgb) for rgb in series_colours]
    print(f"dashboard test: {time.monotonic() - started:.1f} s, {summary}")
