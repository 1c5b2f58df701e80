"""The benchmark's charts: PNG files drawn from a run's JSON report, written next to it."""

# The benchmark draws them after each run; `uv run benchmarks/charts.py RESULT.json ...` draws
# them again from a report already written.

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter, NullLocator

# The JSON's names of the two sides, and how each is drawn in every chart.
STYLE = {
    "project": {"color": "tab:blue", "label": "project (the order sample)"},
    "baseline": {"color": "tab:orange", "label": "baseline (same shape, no-ops)"},
}
# The waiting mode's third side: the baseline approved by update, as the project is.
WAITING_STYLE = {
    **STYLE,
    "baseline_update": {"color": "tab:red", "label": "baseline approved by update"},
}
PERCENT = [float(percent) for percent in range(1, 100)]
"""The y of the latency CDFs: the report's cut points are p1 to p99."""


def draw(report: dict[str, Any], json_path: Path) -> list[Path]:
    """Writes the mode's charts as JSON_STEM-CHART.png next to the report; returns their paths."""
    paths = []
    for name, chart in CHARTS[report["mode"]]:
        figure = Figure(figsize=(11, 4.8), layout="constrained")
        chart(figure, report)
        figure.supxlabel(caption(report), fontsize=8, color="dimgray")
        path = json_path.with_name(f"{json_path.stem}-{name}.png")
        figure.savefig(path, dpi=100)
        paths.append(path)
    return paths


def caption(report: dict[str, Any]) -> str:
    host = report["machine"]
    return (
        f"{report['started_at']}, {host['cpus']} CPUs ({host['cpu_model']}),"
        f" load average {host['load_average'][0]:.1f} at start; server: {report['server']['kind']}"
    )


def latency_axes(axes: Axes, title: str) -> None:
    axes.set_title(title)
    axes.set_xlabel("latency, start to completion (ms)")
    axes.set_ylabel("orders completed within it (%)")
    axes.set_ylim(0, 100)
    axes.grid(alpha=0.3)


def plain_ticks(axis: Axis) -> None:
    """Ticks of a log scale as plain numbers (200, not 2 x 10^2); minor ones over a short span."""
    axis.set_major_formatter(LogFormatter(labelOnlyBase=False))
    axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def legend(figure: Figure, axes: Axes) -> None:
    """The legend of `axes`, for the whole figure, at its right: clear of every line."""
    handles, labels = axes.get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside right upper", fontsize=9)


def throughput_cdfs(figure: Figure, report: dict[str, Any]) -> None:
    settings = report["settings"]
    loaded, single = figure.subplots(1, 2)
    for side, style in STYLE.items():
        result = report["results"][side]
        loaded.plot(result["latency_cuts_ms"], PERCENT, **style)
        single.plot(result["single_order_latency_cuts_ms"], PERCENT, **style)
    latency_axes(
        loaded,
        f"Under load: {settings['concurrency']} in flight, {settings['orders']} orders per phase",
    )
    latency_axes(single, f"Single orders, one at a time: {settings['single_orders']} per side")
    figure.suptitle("Latency CDF, project against baseline")
    legend(figure, loaded)


def throughput_curve(figure: Figure, report: dict[str, Any]) -> None:
    rate, latency = figure.subplots(1, 2)
    points = report["points"]
    for side, style in STYLE.items():
        results = report["results"][side]
        rate.plot(points, [r["orders_per_second"] for r in results], marker="o", **style)
        color = style["color"]
        latency.plot(points, [r["latency_ms"]["p50"] for r in results], marker="o", color=color)
        latency.plot(
            points,
            [r["latency_ms"]["p99"] for r in results],
            marker="s",
            color=color,
            linestyle="--",
        )
    rate.set_title("Throughput")
    rate.set_ylabel("orders completed per second")
    rate.set_ylim(bottom=0)
    latency.set_title("Latency: p50 solid, p99 dashed")
    latency.set_ylabel("latency, start to completion (ms)")
    latency.set_yscale("log")
    plain_ticks(latency.yaxis)
    for axes in (rate, latency):
        axes.set_xscale("log")
        axes.set_xticks(points, [str(point) for point in points])
        axes.xaxis.set_minor_locator(NullLocator())
        axes.set_xlabel("orders in flight")
        axes.grid(alpha=0.3)
    figure.suptitle(f"Cost against orders in flight: {report['settings']['orders']} orders a point")
    legend(figure, rate)


def in_flight_cdfs(figure: Figure, report: dict[str, Any]) -> None:
    axes = figure.subplots()
    points = report["points"]
    # Levels in a sequential colour map, apart from the sides' colours of the other charts; its
    # palest end would hardly show on white.
    colors = [
        colormaps["viridis"](0.85 * index / max(len(points) - 1, 1)) for index in range(len(points))
    ]
    for side, linestyle in (("project", "-"), ("baseline", "--")):
        for point, color, result in zip(points, colors, report["results"][side], strict=True):
            axes.plot(
                result["latency_cuts_ms"],
                PERCENT,
                color=color,
                linestyle=linestyle,
                label=f"{point} in flight" if side == "project" else "_nolegend_",
            )
    latency_axes(axes, "project solid, baseline dashed")
    axes.set_xscale("log")
    plain_ticks(axes.xaxis)
    figure.suptitle("Latency CDF at each level of orders in flight")
    legend(figure, axes)


def worker_bars(figure: Figure, report: dict[str, Any]) -> None:
    rate, cpu = figure.subplots(1, 2)
    points = report["points"]
    width = 0.38
    for offset, (side, style) in zip((-width / 2, width / 2), STYLE.items(), strict=True):
        results = report["results"][side]
        places = [index + offset for index in range(len(points))]
        rate.bar(places, [r["orders_per_second"] for r in results], width, **style)
        cpu.bar(places, [r["cpu_ms_per_order"]["worker"] for r in results], width, **style)
    rate.set_title("Throughput")
    rate.set_ylabel("orders completed per second")
    cpu.set_title("Worker CPU per order (all workers)")
    cpu.set_ylabel("CPU time per order (ms)")
    for axes in (rate, cpu):
        axes.set_xticks(range(len(points)), [str(point) for point in points])
        axes.set_xlabel("worker processes on one server")
        axes.grid(alpha=0.3, axis="y")
    settings = report["settings"]
    figure.suptitle(
        f"Worker processes: {settings['orders']} orders a point,"
        f" {settings['concurrency']} in flight"
    )
    legend(figure, rate)


def waiting_rss(figure: Figure, report: dict[str, Any]) -> None:
    axes = figure.subplots()
    results = report["results"]
    # Reports from before the baseline approved by update have the other two sides only.
    for side, style in WAITING_STYLE.items():
        if side not in results:
            continue
        samples = results[side]["rss_samples"]
        waiting = [sample["waiting"] for sample in samples]
        color, label = style["color"], style["label"]
        axes.plot(
            waiting,
            [s["worker_rss_mb"] for s in samples],
            color=color,
            marker=".",
            label=f"worker, {label}",
        )
        # Server memory is known only for a dev server the benchmark started.
        if samples[0]["server_rss_mb"] is not None:
            axes.plot(
                waiting,
                [s["server_rss_mb"] for s in samples],
                color=color,
                marker=".",
                linestyle="--",
                label=f"server, {label}",
            )
    axes.set_xlabel("orders waiting for approval")
    axes.set_ylabel("resident memory, RSS (MB)")
    axes.set_xlim(left=0)
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    figure.suptitle(f"Memory against orders waiting: {report['settings']['orders']} per side")
    legend(figure, axes)


CHARTS: dict[str, list[tuple[str, Callable[[Figure, dict[str, Any]], None]]]] = {
    "throughput": [("latency-cdf", throughput_cdfs)],
    "in-flight": [("throughput", throughput_curve), ("latency-cdf", in_flight_cdfs)],
    "workers": [("workers", worker_bars)],
    "waiting": [("rss", waiting_rss)],
}
"""Per mode, the name of each chart and what draws it."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("reports", type=Path, nargs="+", help="JSON reports of the benchmark")
    for path in parser.parse_args().reports:
        for chart in draw(json.loads(path.read_text()), path):
            print(chart)


if __name__ == "__main__":
    main()
