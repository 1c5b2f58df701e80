"""The benchmark's report: targets met or missed, and a table per mode for the terminal."""

from typing import Any

SIDES = ("project", "baseline")
"""The keys of each side's results in the JSON report."""


def target(name: str, measured: float, comparison: str, limit: float) -> dict[str, Any]:
    """A target from the issue, as the JSON records it: reported, never enforced."""
    passed = {">=": measured >= limit, "<=": measured <= limit, "<": measured < limit}[comparison]
    return {
        "name": name,
        "measured": measured,
        "comparison": comparison,
        "limit": limit,
        "passed": passed,
    }


def table(report: dict[str, Any]) -> str:
    """The report of any mode as the terminal shows it."""
    tables = {
        "throughput": throughput_table,
        "in-flight": curve_table,
        "workers": curve_table,
        "waiting": waiting_table,
    }
    return tables[report["mode"]](report)


def row(label: str, project: float, baseline: float, digits: int = 1, target: str = "") -> str:
    ratio = project / baseline if baseline else float("nan")
    line = f"{label:<36}{project:>10.{digits}f}{baseline:>10.{digits}f}{ratio:>8.3f}  {target}"
    return line.rstrip()


def verdict(check: dict[str, Any]) -> str:
    return f"{check['comparison']} {check['limit']:g}  {'PASS' if check['passed'] else 'FAIL'}"


def machine_line(report: dict[str, Any]) -> str:
    host = report["machine"]
    settings = report["settings"]
    workers = ", ".join(
        [
            "bytecode cache " + ("on" if settings.get("bytecode_cache", True) else "off"),
            "sample passed through the sandbox"
            if settings.get("pass_through_sample")
            else "standard sandbox",
            f"encryption {settings.get('encryption', 'on')}",
        ]
    )
    return (
        f"Machine: {host['cpus']} CPUs ({host['cpu_model']}), {host['memory_gb']} GB,"
        f" load average {host['load_average'][0]:.1f} at start; server: {report['server']['kind']}"
        f"\nWorkers: {workers}"
    )


def sides_header() -> str:
    return f"{'':<36}{'project':>10}{'baseline':>10}{'ratio':>8}  target"


def throughput_table(report: dict[str, Any]) -> str:
    project, baseline = (report["results"][side] for side in SIDES)
    checks = {check["name"]: verdict(check) for check in report["targets"]}
    settings = report["settings"]
    lines = [
        f"Throughput: {settings['orders']} orders per phase, {settings['concurrency']} in flight,"
        " phases " + ", ".join(f"{p['kind']} #{p['round']}" for p in report["phases"]),
        f"Single orders: {settings['single_orders']} per side, one at a time, the sides in turn",
        machine_line(report),
        "",
        sides_header(),
        row(
            "orders per second",
            project["orders_per_second"],
            baseline["orders_per_second"],
            target=checks["throughput ratio"],
        ),
        *(
            row(f"latency {cut} (ms)", project["latency_ms"][cut], baseline["latency_ms"][cut])
            for cut in ("p50", "p95", "p99")
        ),
        row(
            "single-order latency, median (ms)",
            project["single_order_latency_ms"]["p50"],
            baseline["single_order_latency_ms"]["p50"],
            target=checks["single-order latency ratio"],
        ),
        row(
            "worker CPU per order (ms)",
            project["cpu_ms_per_order"]["worker"],
            baseline["cpu_ms_per_order"]["worker"],
            target=checks["worker CPU per order ratio"],
        ),
        row("worker peak RSS (MB)", project["worker_peak_rss_mb"], baseline["worker_peak_rss_mb"]),
        *(
            row(
                f"{name.replace('_', ' ')} CPU per order (ms)",
                project["cpu_ms_per_order"][name],
                baseline["cpu_ms_per_order"][name],
                target=checks.get(f"{name} CPU per order ratio", ""),
            )
            for name in project["cpu_ms_per_order"]
            if name != "worker"
        ),
        "",
        "CPU cores busy during the batches:",
        *(
            f"  {side:<9}"
            + ", ".join(
                f"{name.replace('_', ' ')} {cores:.2f}"
                for name, cores in report["results"][side]["cpu_cores_busy"].items()
            )
            + f" (of {report['machine']['cpus']})"
            for side in SIDES
        ),
        "",
        *phase_lines(report["phases"]),
    ]
    return "\n".join(lines)


def phase_lines(phases: list[dict[str, Any]]) -> list[str]:
    return [
        f"{'Phase':<40}{'orders/s':>9}{'p50 ms':>9}{'worker CPU':>11}{'server CPU':>11}"
        "  (CPU in ms per order)",
        *(
            f"{phase_name(phase):<40}{phase['orders_per_second']:>9.1f}"
            f"{phase['latency_ms']['p50']:>9.0f}"
            f"{phase['cpu_ms_per_order']['worker']:>11.1f}"
            f"{phase['cpu_ms_per_order'].get('server', float('nan')):>11.1f}"
            for phase in phases
        ),
    ]


def phase_name(phase: dict[str, Any]) -> str:
    workers = f", {phase['workers']} workers" if phase["workers"] > 1 else ""
    return f"{phase['kind']} #{phase['round']}, {phase['in_flight']} in flight{workers}"


def curve_table(report: dict[str, Any]) -> str:
    settings = report["settings"]
    if report["axis"] == "in_flight":
        title = (
            f"In-flight curve: {settings['orders']} orders per point (at least the level),"
            f" rounds per side: {settings['rounds']}"
        )
        axis_label = "in flight"
    else:
        title = (
            f"Worker curve: {settings['orders']} orders per point, {settings['concurrency']}"
            f" in flight, rounds per side: {settings['rounds']}; the workers share one server"
        )
        axis_label = "workers"
    pair = f"{'project':>9}{'baseline':>9}"
    lines = [
        title,
        machine_line(report),
        "",
        f"{'':<10}{'orders per second':^25}{'p50 latency (ms)':^18}{'p99 latency (ms)':^18}"
        f"{'worker CPU/order (ms)':^25}".rstrip(),
        f"{axis_label:<10}{pair}{'ratio':>7}{pair}{pair}{pair}{'ratio':>7}",
    ]
    results = report["results"]
    for index, point in enumerate(report["points"]):
        project, baseline = (results[side][index] for side in SIDES)
        lines.append(
            f"{point:<10}"
            f"{project['orders_per_second']:>9.1f}{baseline['orders_per_second']:>9.1f}"
            f"{report['ratios'][index]['orders_per_second']:>7.3f}"
            f"{project['latency_ms']['p50']:>9.0f}{baseline['latency_ms']['p50']:>9.0f}"
            f"{project['latency_ms']['p99']:>9.0f}{baseline['latency_ms']['p99']:>9.0f}"
            f"{project['cpu_ms_per_order']['worker']:>9.1f}"
            f"{baseline['cpu_ms_per_order']['worker']:>9.1f}"
            f"{report['ratios'][index]['worker_cpu_per_order']:>7.3f}"
        )
    return "\n".join([*lines, "", *phase_lines(report["phases"])])


WAITING_SIDES = ("project", "baseline_update", "baseline")
"""The waiting mode's sides, each with every order waiting: the project and the baseline approved
by update, and the baseline approved by signal, as the other modes approve it."""
WAITING_ROWS = [
    ("worker RSS, idle (MB)", "worker_idle_rss_mb"),
    ("worker RSS, all waiting (MB)", "worker_rss_all_waiting_mb"),
    ("worker peak RSS until all wait (MB)", "worker_peak_rss_until_all_waiting_mb"),
    ("worker peak RSS, whole run (MB)", "worker_peak_rss_mb"),
    ("server RSS, all waiting (MB)", "server_rss_all_waiting_mb"),
    ("server peak RSS, whole run (MB)", "server_peak_rss_mb"),
    ("placing until all wait (s)", "seconds_to_all_waiting"),
    ("start to first approval (s)", "seconds_to_first_approval"),
    ("approving all (s)", "seconds_to_approve_all"),
    ("first approval to all completed (s)", "seconds_from_first_approval_to_all_completed"),
]
"""The waiting mode's rows of one number per side: label, and key in each side's results."""


def waiting_row(label: str, values: list[Any], target: str = "") -> str:
    cells = "".join(f"{v:>10.1f}" if isinstance(v, float) else f"{v:>10}" for v in values)
    return f"{label:<36}{cells}  {target}".rstrip()


def ratio_row(label: str, ratio: float, target: str = "") -> str:
    return f"{label:<64}{ratio:>8.3f}  {target}".rstrip()


def waiting_table(report: dict[str, Any]) -> str:
    results = [report["results"][side] for side in WAITING_SIDES]
    orders = report["settings"]["orders"]
    rss_check, *ratio_checks = report["targets"]
    ratios = report["ratios"]
    cpu = [result["cpu_seconds_after_approval"] for result in results]
    lines = [
        f"Waiting: {orders} orders waiting for approval at once, then all approved"
        " (each side on a fresh server and worker)",
        machine_line(report),
        "",
        waiting_row("", ["project", "baseline", "baseline"], "target"),
        waiting_row("approved by", [result["approved_by"] for result in results]),
        *(
            waiting_row(
                label,
                [result[key] for result in results],
                verdict(rss_check) if key == "worker_rss_all_waiting_mb" else "",
            )
            for label, key in WAITING_ROWS
            # Server memory and CPU are known only for a dev server the benchmark started.
            if results[0][key] is not None
        ),
        *(
            waiting_row(f"{name} CPU, approving to done (s)", [times[name] for times in cpu])
            for name in ("worker", "server")
            if name in cpu[0]
        ),
        waiting_row("completed", [result["completed"] for result in results], f"of {orders} each"),
        "",
        f"{'':<64}{'ratio':>8}  target",
        *(ratio_row(check["name"], check["measured"], verdict(check)) for check in ratio_checks),
        ratio_row(
            "first approval to all completed, project / baseline by update",
            ratios["first_approval_to_all_completed_by_update"],
        ),
        ratio_row(
            "worker RSS, all waiting, project / baseline by signal",
            ratios["worker_rss_all_waiting"],
        ),
    ]
    return "\n".join(lines)
