"""The Markdown table of a bench run (bench/results.md, and README.md between the bench markers)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

START = "<!-- bench:start -->"
END = "<!-- bench:end -->"


def _met(result: dict[str, Any]) -> str:
    return "yes" if result.get("met") else "**no**"


def _size(count: int) -> str:
    return f"{count / 1024**2:.1f} MiB" if count >= 1024**2 else f"{count / 1024:.0f} KiB"


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    b = results["benchmarks"]
    lines = [
        f"Measured {m['date']} on {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, "
        f"Python {m['python']}, commit {m['commit']}{' (quick run)' if results['quick'] else ''}.",
        "",
        "| # | Benchmark | Measured (side by side, same run) | Target | Met |",
        "|---|---|---|---|---|",
    ]
    if "download_memory" in b:
        r = b["download_memory"]
        runs = " / ".join(f"{x['peak_growth_mib']} MiB ({x['size_mib']} MiB video)" for x in r["runs"])
        lines.append(
            f"| 1 | Download memory (peak RSS growth, {r['part_mib']:g} MiB parts) | {runs} | "
            f"≤ {r['target_growth_mib']:g} MiB and flat | {_met(r)} |"
        )
    if "download_throughput" in b:
        r = b["download_throughput"]
        lines.append(
            f"| 2 | Download throughput ({r['size_mib']} MiB) | {r['download_mib_s']} MiB/s = "
            f"{r['ratio_to_slower_leg']} × the slower leg (HTTP read {r['read_leg_mib_s']} MiB/s, "
            f"S3 upload {r['upload_leg_mib_s']} MiB/s; strictly sequential would be "
            f"{r['sequential_bound']} ×) | ≥ {r['target_ratio']} × | {_met(r)} |"
        )
    if "cold_start" in b:
        r = b["cold_start"]
        ratios = [h["ratio_to_boto3"] for h in r["handlers"]]
        times = [h["import_ms"] for h in r["handlers"]]
        floors = r["floors"]
        to_floor = [h["ratio_to_libraries"] for h in r["handlers"]]
        lines.append(
            f"| 3 | Cold start (handler import, median of {r['runs']}, {r['python']}) | {min(times)}–{max(times)} ms "
            f"= {min(ratios)}–{max(ratios)} × `import boto3` ({r['boto3_import_ms']} ms). Floors in the same runs: "
            f"boto3 + pydantic {floors['boto3_pydantic']['ratio_to_boto3']} ×, the libraries the handlers use "
            f"(+ Powertools Logger/Metrics/Tracer with X-Ray, httpx) {floors['libraries']['ratio_to_boto3']} ×; "
            f"handlers = {min(to_floor)}–{max(to_floor)} × that | ≤ {r['target_ratio']} × | {_met(r)} |"
        )
    if "package_size" in b and b["package_size"].get("built"):
        r = b["package_size"]
        parts = ", ".join(
            f"{a['artifact']} {_size(a['unzipped_bytes'])} ({_size(a['zipped_bytes'])} zipped)" for a in r["artifacts"]
        )
        lines.append(f"| 3 | `sam build` output | {parts} | small | — |")
    if "workflow_cost" in b:
        r = b["workflow_cost"]
        typical, worst = r["jobs"]["typical"], r["jobs"]["worst_case"]
        lines.append(
            f"| 4 | Workflow cost (moto execution history) | {r['transitions_per_poll_cycle']} transitions per poll "
            f"cycle; Lambda invocations = polls + {r['lambda_invocations_minus_polls']} for a lone job "
            f"(polls + {r['pipeline_invocations_minus_polls']} in the pipeline, + 1 outbox relay "
            f"invocation per batch of ended jobs: see 5); "
            f"${typical['cost_usd']['total']:.5f} per {typical['polls']}-poll job, "
            f"${worst['cost_usd']['total']:.5f} for the {worst['polls']}-poll worst case "
            f"(Step Functions: ${typical['cost_usd']['step_functions']:.5f} "
            f"and ${worst['cost_usd']['step_functions']:.5f}) "
            f"| ≤ 3; ≤ polls + 3 | {_met(r)} |"
        )
    if "callbacks" in b:
        r = b["callbacks"]
        on, off = r["modes"]["callbacks"], r["modes"]["polling"]
        lines.append(
            f"| 6 | Completion → `VideoCompleted`, {r['jobs']} jobs each way, "
            f"{r['poll_interval_seconds']} s poll interval, "
            f"generations of {r['generation_seconds'][0]:g}–{r['generation_seconds'][1]:g} s | callbacks p50 "
            f"{on['delay_p50_s']} s, p99 {on['delay_p99_s']} s ({on['openrouter_polls_per_job']} OpenRouter polls per "
            f"job); poll loop alone p50 {off['delay_p50_s']} s, p99 {off['delay_p99_s']} s "
            f"({off['openrouter_polls_per_job']} polls per job) | p50 ≤ {r['target_p50_s']:g} s with callbacks "
            f"| {_met(r)} |"
        )
    if "throughput" in b:
        r = b["throughput"]
        lines.append(
            f"| 5 | Throughput through `videogen local serve` ({r['jobs']} jobs, {r['concurrency']} callers) | "
            f"{r['completed']}/{r['jobs']} completed, {r['lost']} lost, {r['duplicate_events']} duplicate events, "
            f"{r['duplicate_submissions']} duplicate submissions; {r['accepted_per_second']} accepted/s, "
            f"POST /videos p50 {r['post_videos_ms_p50']} ms, p99 {r['post_videos_ms_p99']} ms; "
            f"{r['jobs_per_second']} jobs/s end to end; outbox relay invoked "
            f"{r['publish_invocations_per_job']} times per job | all complete, none lost or duplicated | "
            f"{_met(r)} |"
        )
    if "batch_intake" in b:
        r = b["batch_intake"]
        runs = " / ".join(
            f"{x['lines']:,} lines: {x['lines_per_second']} lines/s, peak RSS {x['peak_rss_mib']} MiB "
            f"(+{x['peak_growth_mib']} MiB)"
            for x in r["runs"]
        )
        lines.append(
            f"| 7 | Batch intake through the S3 door (batch function, one process, moto in another) | {runs}; "
            f"peaks {r['peak_spread_mib']} MiB apart | peaks within {r['target_spread_mib']:g} MiB | {_met(r)} |"
        )
    if "spend" in b:
        r = b["spend"]
        p, race = r["preflight"], r["budget_race"]
        lines.append(
            f"| 8 | Spend control: reference preflight per reference (loopback PNG, {p['references']} checks) and "
            f"the budget race ({race['callers']} callers at once, a budget for {race['budget_fits']}) | preflight "
            f"p50 {p['p50_ms']} ms, p99 {p['p99_ms']} ms (cached {p['cached_ms']} ms); {race['accepted']} accepted, "
            f"{race['refused_402']} × 402, overspend ${race['overspend_usd']:g} | exactly the budget, no overspend "
            f"| {_met(r)} |"
        )
    if "batch_pressure" in b:
        r = b["batch_pressure"]
        lines.append(
            f"| 9 | A batch of {r['jobs']:,} through the S3 door of local serve, 429 on "
            f"{r['pushback_rate_first_half']:.0%} of submissions for its first half | {r['ended']:,} ended "
            f"({r['outcomes'].get('completed', 0):,} completed), {r['lost']} lost, {r['duplicate_submissions']} "
            f"duplicate submissions, {r['pushbacks_429']} × 429, {r['batch_completed_events']} BatchCompleted "
            f"(counts match results: {'yes' if r['counts_match_results'] else 'no'}), "
            f"peak {r['peak_submissions_in_flight']} submissions in flight (max {r['max_concurrency']}); "
            f"{r['wall_seconds']} s, {r['jobs_per_second']} jobs/s "
            f"| all end, < {r['target_seconds']:g} s | {_met(r)} |"
        )
    if "lambda_sizing" in b:
        r = b["lambda_sizing"]
        peaks = ", ".join(f"{f['function']} {f['peak_rss_mib']}" for f in r["functions"])
        lines.append(
            f"| 6 | Lambda sizing (peak RSS MiB, one process per function) | {peaks} | {r['rule']} | {_met(r)} |"
        )
    return "\n".join(lines) + "\n"


def update_readme(readme: Path, table: str) -> None:
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme} has no {START} ... {END} section for the table")
    block = f"{START}\n{table}{END}"
    readme.write_text(re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S))
