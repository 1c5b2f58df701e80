"""Smoke test of benchmarks/starter_latency.py: a tiny run times both sides and reports them."""

import json
from pathlib import Path

import pytest
from support.benchmark_runs import run_to_end

pytestmark = pytest.mark.e2e

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "starter_latency.py"
# A tiny run takes half a minute or so (a first run also builds the floor's uv environment); past
# this something hangs.
RUN_TIMEOUT_SECONDS = 240


def test_a_tiny_run_times_the_starters_answer_against_the_floor(tmp_path: Path) -> None:
    output = tmp_path / "result.json"
    stdout = run_to_end(
        BENCHMARK, "--runs", "2", "--output", str(output), timeout_seconds=RUN_TIMEOUT_SECONDS
    )

    assert "to the payment answer, p50 (ms)" in stdout
    assert "to the payment answer, p90 (ms)" in stdout
    report = json.loads(output.read_text())
    assert report["mode"] == "starter-latency"
    for side in ("starter", "floor"):
        result = report["results"][side]
        assert result["runs"] == 2
        assert len(result["answer_samples_ms"]) == 2
        assert 0 < result["answer_ms"]["p50"] <= result["exit_ms"]["p50"]
    starter, floor = (report["results"][side]["answer_ms"]["p50"] for side in ("starter", "floor"))
    assert report["ratios"]["answer_p50"] == pytest.approx(starter / floor)
    [target] = report["targets"]
    assert (target["comparison"], target["limit"]) == ("<=", 1.25)
    assert f"{starter:.1f}" in stdout
    assert f"{floor:.1f}" in stdout
    assert f"{report['ratios']['answer_p50']:.3f}" in stdout
