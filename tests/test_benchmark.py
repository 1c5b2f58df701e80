"""Smoke tests of benchmarks/throughput.py (a tiny run of each mode completes, reports, draws),
and of the baseline workflow's approval by update."""

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from support.benchmark_runs import run_to_end
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from benchmarks.baseline import (
    STEPS_AFTER_APPROVAL,
    STEPS_BEFORE_APPROVAL,
    BaselineWorkflow,
    no_op,
)
from benchmarks.load import approve_by_update, until_waiting

pytestmark = pytest.mark.e2e

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "throughput.py"
# A tiny run takes ten seconds or so; past this something hangs.
RUN_TIMEOUT_SECONDS = 90


def run_benchmark(tmp_path: Path, *args: str) -> tuple[str, dict[str, Any], list[str]]:
    """Runs the benchmark on dev servers of its own; returns what it printed, its JSON, and the
    names of the charts it drew next to the JSON."""
    output = tmp_path / "result.json"
    stdout = run_to_end(
        BENCHMARK, *args, "--output", str(output), timeout_seconds=RUN_TIMEOUT_SECONDS
    )
    charts = sorted(tmp_path.glob("result-*.png"))
    for chart in charts:
        assert chart.read_bytes().startswith(b"\x89PNG"), chart
        assert f"Chart: {chart}" in stdout
    return stdout, json.loads(output.read_text()), [chart.name for chart in charts]


def test_throughput_mode_runs_every_order_of_both_sides(tmp_path: Path) -> None:
    stdout, report, charts = run_benchmark(tmp_path, "--orders", "10", "--single-orders", "3")

    for line in ("orders per second", "latency p99", "single-order latency", "worker CPU"):
        assert line in stdout
    assert report["mode"] == "throughput"
    assert [(p["kind"], p["round"]) for p in report["phases"]] == [
        ("project", 1),
        ("baseline", 1),
        ("baseline", 2),
        ("project", 2),
    ]
    for side in ("project", "baseline"):
        result = report["results"][side]
        assert result["completed"] == result["orders"] == 20
        assert result["orders_per_second"] > 0
        assert set(result["latency_ms"]) >= {"p50", "p95", "p99"}
        assert result["single_order_latency_ms"]["samples"] == 3
        assert result["cpu_ms_per_order"]["worker"] > 0
        assert result["cpu_ms_per_order"]["server"] > 0
        assert result["worker_peak_rss_mb"] > 0
    assert set(report["ratios"]) >= {
        "orders_per_second",
        "single_order_latency",
        "worker_cpu_per_order",
    }
    assert [t["name"] for t in report["targets"]] == [
        "throughput ratio",
        "worker CPU per order ratio",
        "single-order latency ratio",
        "server CPU per order ratio",
    ]
    server_target = report["targets"][-1]
    assert server_target["measured"] == pytest.approx(report["ratios"]["server_cpu_per_order"])
    assert server_target["limit"] == 1.10
    assert "server CPU per order (ms)" in stdout
    assert report["all_completed"] is True
    assert charts == ["result-latency-cdf.png"]


def test_in_flight_mode_runs_both_sides_at_every_level(tmp_path: Path) -> None:
    stdout, report, charts = run_benchmark(
        tmp_path, "--mode", "in-flight", "--levels", "1,4", "--orders", "6", "--rounds", "1",
        "--warm-up", "0", "--pass-through-sample", "--no-bytecode-cache",
    )  # fmt: skip

    assert "In-flight curve" in stdout
    # The settings the candidates of a leaner worker are measured against.
    assert "Workers: bytecode cache off, sample passed through the sandbox, encryption on" in stdout
    assert report["settings"]["pass_through_sample"] is True
    assert report["settings"]["bytecode_cache"] is False
    assert report["points"] == [1, 4]
    assert [(p["kind"], p["in_flight"]) for p in report["phases"]] == [
        ("project", 1),
        ("baseline", 1),
        ("baseline", 4),
        ("project", 4),
    ]
    for side in ("project", "baseline"):
        for point in report["results"][side]:
            assert point["completed"] == point["orders"] == 6
            assert point["orders_per_second"] > 0
            assert len(point["latency_cuts_ms"]) == 99
    assert len(report["ratios"]) == 2
    assert report["all_completed"] is True
    assert charts == ["result-latency-cdf.png", "result-throughput.png"]


def test_workers_mode_runs_both_sides_on_several_worker_processes(tmp_path: Path) -> None:
    # One point only, to stay quick: every other mode runs one worker per side.
    stdout, report, charts = run_benchmark(
        tmp_path, "--mode", "workers", "--workers", "2", "--orders", "6", "--concurrency", "3",
        "--rounds", "1", "--warm-up", "0",
    )  # fmt: skip

    assert "Worker curve" in stdout
    assert [(p["kind"], p["workers"]) for p in report["phases"]] == [
        ("project", 2),
        ("baseline", 2),
    ]
    for side in ("project", "baseline"):
        [point] = report["results"][side]
        assert point["workers"] == 2
        assert point["completed"] == point["orders"] == 6
        assert point["cpu_ms_per_order"]["worker"] > 0
    assert report["all_completed"] is True
    assert charts == ["result-workers.png"]


def test_waiting_mode_approves_by_update_on_both_sides_and_by_signal(tmp_path: Path) -> None:
    stdout, report, charts = run_benchmark(tmp_path, "--mode", "waiting", "--orders", "10")

    for line in (
        "worker RSS, all waiting",
        "start to first approval",
        "approving all",
        "first approval to all completed",
        "approving all, project / baseline by update",
        "first approval to all completed, project / baseline by signal",
        "first approval to all completed, project / baseline by update",
    ):
        assert line in stdout
    assert report["mode"] == "waiting"
    assert {side: result["approved_by"] for side, result in report["results"].items()} == {
        "baseline_update": "update",
        "project": "update",
        "baseline": "signal",
    }
    for result in report["results"].values():
        assert result["completed"] == result["orders"] == 10
        assert result["worker_rss_all_waiting_mb"] > 0
        assert result["server_rss_all_waiting_mb"] > 0
        assert 0 < result["seconds_to_first_approval"] <= result["seconds_to_approve_all"]
        assert result["seconds_from_first_approval_to_all_completed"] > 0
        assert result["rss_samples"][0]["waiting"] == 0
        assert result["rss_samples"][-1]["waiting"] == 10
    assert set(report["ratios"]) == {
        "approving_all_by_update",
        "first_approval_to_all_completed_by_signal",
        "first_approval_to_all_completed_by_update",
        "worker_rss_all_waiting",
    }
    assert [(t["name"], t["comparison"], t["limit"]) for t in report["targets"]] == [
        ("worker RSS (MB) with 10 orders waiting", "<", 250),
        ("approving all, project / baseline by update", "<=", 1.3),
        ("first approval to all completed, project / baseline by signal", "<=", 1.3),
    ]
    assert report["all_completed"] is True
    assert charts == ["result-rss.png"]


async def test_baseline_order_approved_by_update_completes(
    dev_server_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = dev_server_env.client
    async with Worker(
        client, task_queue=task_queue, workflows=[BaselineWorkflow], activities=[no_op]
    ):
        # Unapproved, it would time out after this long and fail.
        handle = await client.start_workflow(
            BaselineWorkflow.run, 60.0, id=f"baseline-{uuid.uuid4()}", task_queue=task_queue
        )
        await until_waiting(handle)

        await approve_by_update(handle)

        assert await handle.result() == len(STEPS_BEFORE_APPROVAL) + len(STEPS_AFTER_APPROVAL)
