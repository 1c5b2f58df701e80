"""Smoke tests of benchmarks/throughput.py: a tiny run of each mode completes and reports."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "throughput.py"
# A tiny run takes ten seconds or so; past this something hangs.
RUN_TIMEOUT_SECONDS = 90


def run_benchmark(tmp_path: Path, *args: str) -> tuple[str, dict[str, Any]]:
    """Runs the benchmark on a dev server of its own; returns what it printed and its JSON."""
    output = tmp_path / "result.json"
    # Without TEMPORAL_ADDRESS the benchmark starts (and stops) a server of its own.
    environment = {k: v for k, v in os.environ.items() if k != "TEMPORAL_ADDRESS"}
    with subprocess.Popen(
        [sys.executable, str(BENCHMARK), *args, "--output", str(output)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    ) as benchmark:
        try:
            stdout, stderr = benchmark.communicate(timeout=RUN_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            # SIGTERM, not SIGKILL: the benchmark then stops its server and workers itself.
            benchmark.send_signal(signal.SIGTERM)
            stdout, stderr = benchmark.communicate(timeout=30)
            raise AssertionError(f"the benchmark hung:\n{stdout}\n{stderr}") from None
    assert benchmark.returncode == 0, f"exit code {benchmark.returncode}:\n{stdout}\n{stderr}"
    return stdout, json.loads(output.read_text())


def test_throughput_mode_runs_every_order_of_both_sides(tmp_path: Path) -> None:
    stdout, report = run_benchmark(tmp_path, "--orders", "10", "--single-orders", "3")

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
    ]
    assert report["all_completed"] is True


def test_waiting_mode_completes_every_order_held_for_approval(tmp_path: Path) -> None:
    stdout, report = run_benchmark(tmp_path, "--mode", "waiting", "--orders", "20")

    assert "worker RSS, all waiting" in stdout
    assert report["mode"] == "waiting"
    for side in ("project", "baseline"):
        result = report["results"][side]
        assert result["completed"] == result["orders"] == 20
        assert result["worker_rss_all_waiting_mb"] > 0
        assert result["seconds_from_approval_to_all_completed"] > 0
    assert report["targets"][0]["name"] == "worker RSS (MB) with 20 orders waiting"
    assert report["all_completed"] is True
