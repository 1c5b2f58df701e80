"""What the benchmark measures: processes' CPU time and memory, latency percentiles, the machine."""

import contextlib
import os
import platform
import statistics
from dataclasses import dataclass, field
from typing import Any

# psutil ships no type hints, and types-psutil is not in the dev group.
import psutil  # type: ignore[import-untyped]
import temporalio

MB = 1024 * 1024


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """User and system CPU seconds the processes have spent so far, together."""
    return sum(float(times.user + times.system) for times in (p.cpu_times() for p in processes))


def rss_mb(process: psutil.Process) -> float:
    return float(process.memory_info().rss) / MB


def peak_rss_mb(process: psutil.Process) -> float:
    """The most memory the process ever had resident (Linux's VmHWM); elsewhere, its RSS now."""
    try:
        with open(f"/proc/{process.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / MB
    except FileNotFoundError:
        pass
    return rss_mb(process)


@dataclass
class CpuClock:
    """CPU seconds that groups of processes spend between start() and stop()."""

    processes: dict[str, list[psutil.Process]]
    _started: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self._started = {name: cpu_seconds(group) for name, group in self.processes.items()}

    def stop(self) -> dict[str, float]:
        return {
            name: cpu_seconds(group) - self._started[name] for name, group in self.processes.items()
        }


def latency_cuts_ms(seconds: list[float]) -> list[float]:
    """The 99 cut points (p1 to p99) of the latencies, in milliseconds: their CDF, for charts."""
    # quantiles() wants two points at least; a single latency is each of its own percentiles.
    cuts = statistics.quantiles(
        seconds * 2 if len(seconds) == 1 else seconds, n=100, method="inclusive"
    )
    return [round(cut * 1000, 1) for cut in cuts]


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    cuts = latency_cuts_ms(seconds)
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": round(max(seconds) * 1000, 1)}


def machine() -> dict[str, Any]:
    cpu_model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        cpu_model = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), ""
        )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "temporalio": temporalio.__version__,
        "psutil": psutil.__version__,
    }
