"""Every benchmark of `make bench` in a tiny configuration, so that none of them can rot. These check
that each one runs and that what it measures is real (bytes verified, jobs accounted for); the
performance targets themselves are reported by `make bench`, not asserted here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import batch_intake, cold_start, download, sizing, throughput, workflow_cost
from bench.report import END, START, markdown, update_readme
from videogen_local.localmode.names import FUNCTIONS

pytestmark = pytest.mark.slow


def test_download_memory_is_measured_in_a_process_of_its_own() -> None:
    result = download.memory([6], part_bytes=5 * 1024 * 1024)
    [run] = result["runs"]
    assert run["size_mib"] == 6 and 0 < run["peak_growth_mib"] < 200
    assert run["rss_before_mib"] > 20  # a real interpreter with the layer imported, not this process
    assert result["target_growth_mib"] == 2 * 5 + 32


def test_download_throughput_compares_the_transfer_with_each_leg() -> None:
    result = download.throughput(6, repeats=1)
    assert result["read_leg_mib_s"] > 0 and result["upload_leg_mib_s"] > 0 and result["download_mib_s"] > 0
    assert result["ratio_to_slower_leg"] == pytest.approx(
        result["download_mib_s"] / min(result["read_leg_mib_s"], result["upload_leg_mib_s"]), abs=0.02
    )


def test_cold_start_measures_every_handler_against_boto3() -> None:
    result = cold_start.run(runs=1)
    assert {row["function"] for row in result["handlers"]} == set(FUNCTIONS)  # every function, as deployed
    assert result["boto3_import_ms"] > 0 and all(row["import_ms"] > 0 for row in result["handlers"])
    assert set(result["floors"]) == {"boto3_pydantic", "libraries"}
    assert all(floor["import_ms"] > 0 for floor in result["floors"].values())


def test_workflow_cost_counts_transitions_and_invocations_from_a_real_execution() -> None:
    result = workflow_cost.run(max_polls=3, typical_polls=2)
    typical, worst = result["jobs"]["typical"], result["jobs"]["worst_case"]
    assert typical["status"] == "completed" and typical["polls"] == 2
    assert worst["status"] == "timed_out" and worst["polls"] == 3
    # Per the definition in statemachine/: Wait, Poll, Route per cycle; one invocation per poll + 3.
    assert result["transitions_per_poll_cycle"] == 3
    # The outbox relay announces each ended job: one batch of one for a lone job.
    assert typical["lambda_invocations"] == {"api": 1, "submit": 1, "poll": 2, "download": 1, "publish": 1}
    assert worst["lambda_invocations"] == {"api": 1, "submit": 1, "poll": 3, "fail": 1, "publish": 1}
    assert result["pipeline_invocations_minus_polls"] == 3 and result["lambda_invocations_minus_polls"] == 4
    assert typical["aws_calls"]["events:PutEvents"] == 1 and worst["aws_calls"]["events:PutEvents"] == 1
    assert typical["aws_calls"]["s3:CompleteMultipartUpload"] == 1
    assert 0 < typical["cost_usd"]["total"] < worst["cost_usd"]["total"]


def test_throughput_run_accounts_for_every_job() -> None:
    result = throughput.run(jobs=4, concurrency=2)
    assert result["completed"] == 4 and result["lost"] == 0 and result["videos_verified"] == 4
    assert result["duplicate_events"] == 0 and result["duplicate_submissions"] == 0
    assert result["post_videos_ms_p50"] > 0 and result["jobs_per_second"] > 0
    # Every job is announced by the relay, at most one invocation each (batches can hold several).
    invocations = result["lambda_invocations"]
    assert invocations["api"] == 4 and invocations["submit"] >= 1 and 1 <= invocations["publish"] <= 4


def test_sizing_measures_each_function_in_its_own_process() -> None:
    result = sizing.run()
    assert [row["function"] for row in result["functions"]] == list(FUNCTIONS)
    for row in result["functions"]:
        assert row["peak_rss_mib"] >= row["rss_after_import_mib"] > 20
        assert row["by_memory_mb"] % 128 == 0 and row["configured_mb"] >= row["by_memory_mb"], row


def test_the_readme_table_is_replaced_between_its_markers(tmp_path: Path) -> None:
    results = json.loads(json.dumps({"machine": {"date": "d", "cpu": "c", "cores": 2, "memory_gib": 1,
        "python": "3", "commit": "x"}, "quick": True, "benchmarks": {}}))  # fmt: skip
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nold table\n{END}\noutro\n")
    update_readme(readme, markdown(results))
    text = readme.read_text()
    assert "old table" not in text and "Measured d on 2 cores" in text and text.endswith(f"{END}\noutro\n")


def test_callbacks_measure_both_ways_through_local_serve() -> None:
    from bench import callbacks

    result = callbacks.run(jobs=2, poll_interval=2, generation=(1.0, 3.0))
    on, off = result["modes"]["callbacks"], result["modes"]["polling"]
    assert on["completed_events"] == off["completed_events"] == 2
    assert on["callbacks"].startswith("on") and off["callbacks"].startswith("off")
    assert 0 <= on["delay_p50_s"] <= on["delay_max_s"] and off["openrouter_polls_per_job"] >= 1


def test_batch_intake_measures_the_batch_function_in_a_process_of_its_own() -> None:
    result = batch_intake.run([20, 60])
    assert [run["lines"] for run in result["runs"]] == [20, 60]
    for run in result["runs"]:
        # Every line made a job and one submit message (checked in the benchmark), in a real interpreter.
        assert run["submit_messages"] == run["lines"] and run["lines_per_second"] > 0
        assert run["peak_rss_mib"] > 20 and run["invocations"] >= 1
    assert result["peak_spread_mib"] == round(
        abs(result["runs"][1]["peak_rss_mib"] - result["runs"][0]["peak_rss_mib"]), 1
    )


def test_spend_measures_the_preflight_and_holds_a_budget_under_a_race() -> None:
    from bench import spend

    result = spend.run(references=20, concurrency=8, fits=3)
    assert result["preflight"]["fetches"] == 20 and 0 < result["preflight"]["p50_ms"] <= result["preflight"]["p99_ms"]
    race = result["budget_race"]
    assert race["accepted"] == 3 and race["refused_402"] == 5 and race["overspend_usd"] == 0 and result["met"]


def test_a_batch_under_pushback_ends_every_line_once() -> None:
    from bench import batch_pressure

    result = batch_pressure.run(jobs=8, pushback_rate=0.5)
    assert result["ended"] == 8 and result["lost"] == 0 and result["outcomes"] == {"completed": 8}
    assert result["duplicate_submissions"] == 0 and result["batch_completed_events"] == 1
    assert result["counts_match_results"] and result["pushbacks_429"] > 0
    assert result["peak_submissions_in_flight"] <= result["max_concurrency"]
