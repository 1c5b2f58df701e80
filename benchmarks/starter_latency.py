"""Times `starter.py --no-wait` to its payment answer, against a bare client's floor."""

# Run from the repository root as `uv run benchmarks/starter_latency.py [--runs N]`; README.md
# next to this file ("The starter's answer") says what it measures and what it found.

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The sample is a folder of scripts that import each other by bare name (`from shared import
# ...`), not an installed package: put that folder on the path, and the repository root for
# `benchmarks.*` and `harness.*`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "order_application"))

from temporalio.client import Client, WorkflowExecutionStatus

from benchmarks.measure import latency_cuts_ms, machine
from benchmarks.servers import DEV_SERVER_OPTIONS, BenchmarkError, log_tail
from harness.processes import (
    SCRIPT_TIMEOUT,
    SCRIPTS,
    TEMPORAL_CLI,
    DevServer,
    running_worker,
    script_env,
)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
FLOOR_WORKER = HERE / "floor_worker.py"
FLOOR_TASK_QUEUE = "floor"

# The target: the starter's answer at most this many times the floor's (p50). Reported
# as PASS or FAIL, never enforced.
MAX_RATIO = 1.25
# A warm run answers in about a second; past this, something hangs.
RUN_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Side:
    """A script timed from its start to the line that gives the payment answer."""

    name: str
    command: tuple[str, ...]
    answer: re.Pattern[str]
    """The answer line; its `id` group is the workflow it started."""


STARTER = Side(
    "starter",
    ("uv", "run", "--script", str(SCRIPTS / "starter.py"), "12/30", "--no-wait"),
    re.compile(r"Charged \S+ for order (?P<id>\S+) \(txn-\w+\); .+"),
)


def floor_side(address: str) -> Side:
    return Side(
        "floor",
        ("uv", "run", "--script", str(HERE / "floor_starter.py"), address, FLOOR_TASK_QUEUE),
        re.compile(r"Workflow (?P<id>\S+) answered: paid$"),
    )


@dataclass(frozen=True)
class Timing:
    answer_seconds: float
    """From starting the process to its answer line."""
    exit_seconds: float
    """From starting the process to its exit."""


async def timed_run(
    side: Side, environment: dict[str, str], client: Client, within: float
) -> Timing:
    """Runs the side's script once, checks that it answered, and ends its workflow."""
    began = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *side.command,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    errors = asyncio.ensure_future(process.stderr.read())
    answered_at, workflow_id, printed = None, None, []
    try:
        async with asyncio.timeout(within):
            async for raw in process.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                printed.append(line)
                if answered_at is None and (found := side.answer.fullmatch(line)):
                    answered_at, workflow_id = time.perf_counter(), found["id"]
            code = await process.wait()
    except TimeoutError:
        process.terminate()
        await process.wait()
        raise BenchmarkError(f"{side.name} did not end within {within:g} s") from None
    exited_at = time.perf_counter()
    if code != 0 or answered_at is None or workflow_id is None:
        said = "\n".join([*printed, (await errors).decode(errors="replace")])
        raise BenchmarkError(f"{side.name} gave no payment answer (exit code {code}):\n{said}")
    await errors
    # The order waits 30 s for its approval, then undoes its payment: ended here instead, so that
    # nothing of it runs during a later run. (The floor's workflow has ended already.)
    handle = client.get_workflow_handle(workflow_id)
    if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        await handle.terminate("timed by starter_latency.py")
    return Timing(answered_at - began, exited_at - began)


def summary(timings: list[Timing]) -> dict[str, Any]:
    answers = latency_cuts_ms([timing.answer_seconds for timing in timings])
    exits = latency_cuts_ms([timing.exit_seconds for timing in timings])
    return {
        "runs": len(timings),
        "answer_ms": {"p50": answers[49], "p90": answers[89]},
        "exit_ms": {"p50": exits[49], "p90": exits[89]},
        "answer_samples_ms": [round(timing.answer_seconds * 1000, 1) for timing in timings],
        "exit_samples_ms": [round(timing.exit_seconds * 1000, 1) for timing in timings],
    }


async def measure(runs: int, server: DevServer, environment: dict[str, str]) -> dict[str, Any]:
    """One warm-up run a side, then `runs` a side in turn: starter and floor, then floor and
    starter, and so on, so that the shared machine's drift hits both alike."""
    client = await Client.connect(server.address)
    starter, floor = STARTER, floor_side(server.address)
    for side in (starter, floor):
        # The first run of a script may build its uv environment.
        await timed_run(side, environment, client, SCRIPT_TIMEOUT)
    timings: dict[str, list[Timing]] = {starter.name: [], floor.name: []}
    for index in range(runs):
        for side in (starter, floor) if index % 2 == 0 else (floor, starter):
            timing = await timed_run(side, environment, client, RUN_TIMEOUT_SECONDS)
            timings[side.name].append(timing)
    results = {name: summary(side_timings) for name, side_timings in timings.items()}
    ratio = results["starter"]["answer_ms"]["p50"] / results["floor"]["answer_ms"]["p50"]
    return {
        "results": results,
        "ratios": {
            "answer_p50": ratio,
            "answer_p90": results["starter"]["answer_ms"]["p90"]
            / results["floor"]["answer_ms"]["p90"],
            "exit_p50": results["starter"]["exit_ms"]["p50"] / results["floor"]["exit_ms"]["p50"],
        },
        "targets": [
            {
                "name": "starter's answer p50 over the floor's",
                "measured": ratio,
                "comparison": "<=",
                "limit": MAX_RATIO,
                "passed": ratio <= MAX_RATIO,
            }
        ],
    }


def scripts_environment(
    server: DevServer, workdir: Path, no_bytecode_cache: bool
) -> dict[str, str]:
    """What a user's shell has in the quick start, pointed at this server and folder; Python's
    bytecode cache on (kept in `workdir`, as a user's Python keeps it next to the sources), or
    off."""
    environment = script_env(server, workdir)
    if no_bytecode_cache:
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        environment.pop("PYTHONDONTWRITEBYTECODE", None)
        environment["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    return environment


@contextmanager
def floor_worker(address: str, log: Path) -> Iterator[None]:
    """floor_worker.py polling FLOOR_TASK_QUEUE until the block ends."""
    with open(log, "ab") as errors:
        worker = subprocess.Popen(
            [sys.executable, str(FLOOR_WORKER), address, FLOOR_TASK_QUEUE],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
    try:
        assert worker.stdout is not None
        if worker.stdout.readline().strip() != b"ready":
            raise BenchmarkError(f"the floor's worker did not start{log_tail(log)}")
        yield
    finally:
        worker.terminate()
        worker.wait()


def table(report: dict[str, Any]) -> str:
    starter, floor = report["results"]["starter"], report["results"]["floor"]
    [target] = report["targets"]
    settings = report["settings"]
    verdict = f"<= {target['limit']:g}  {'PASS' if target['passed'] else 'FAIL'}"
    host = report["machine"]
    lines = [
        f"The starter's answer: {settings['runs']} runs a side, in turn, after one warm-up run"
        f" each; bytecode cache {'on' if settings['bytecode_cache'] else 'off'}",
        f"Starter: {settings['starter']}; floor: {settings['floor']}",
        f"Machine: {host['cpus']} CPUs ({host['cpu_model']}), {host['memory_gb']} GB, load"
        f" average {host['load_average'][0]:.1f} at start; server: {report['server']['kind']}",
        "",
        f"{'':<36}{'starter':>10}{'floor':>10}{'ratio':>8}  target",
    ]
    for label, key, cut, check in (
        ("to the payment answer, p50 (ms)", "answer_ms", "p50", verdict),
        ("to the payment answer, p90 (ms)", "answer_ms", "p90", ""),
        ("to exit, p50 (ms)", "exit_ms", "p50", ""),
        ("to exit, p90 (ms)", "exit_ms", "p90", ""),
    ):
        mine, bare = starter[key][cut], floor[key][cut]
        lines.append(f"{label:<36}{mine:>10.1f}{bare:>10.1f}{mine / bare:>8.3f}  {check}".rstrip())
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--runs", type=int, default=20, help="timed runs of each side (default %(default)s)"
    )
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="run the scripts with PYTHONDONTWRITEBYTECODE=1, so that every run compiles"
        " what it imports, as on machines and containers that set it",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="JSON result file (default benchmarks/results/starter-latency-<time>.json)",
    )
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main() -> int:
    args = parse_args()
    # SIGTERM stops the run as Ctrl-C does: the server and the workers are stopped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = datetime.now(UTC)
    output = args.output or RESULTS / f"starter-latency-{started:%Y%m%dT%H%M%SZ}.json"
    host = machine()
    try:
        with ExitStack() as stack:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="starter-")))
            server = DevServer(
                log=workdir / "temporal.log", log_level="warn", options=DEV_SERVER_OPTIONS
            )
            server.start()
            stack.callback(server.stop)
            environment = scripts_environment(server, workdir, args.no_bytecode_cache)
            stack.enter_context(running_worker(environment, workdir / "worker.log"))
            stack.enter_context(floor_worker(server.address, workdir / "floor-worker.log"))
            measured = asyncio.run(measure(args.runs, server, environment))
    except (BenchmarkError, RuntimeError, TimeoutError) as err:
        # BenchmarkError, or a server or worker that did not start (harness/processes.py).
        print(f"\nerror: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    version = subprocess.run(
        [str(TEMPORAL_CLI), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    report = {
        "mode": "starter-latency",
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**host, "load_average_at_end": os.getloadavg()},
        "server": {
            "kind": f"a fresh in-memory dev server, {' '.join(DEV_SERVER_OPTIONS[1:])}",
            "version": version,
        },
        "settings": {
            "runs": args.runs,
            "bytecode_cache": not args.no_bytecode_cache,
            "starter": "./order_application/starter.py 12/30 --no-wait, with ./worker.py and"
            " ORDER_SERVICE_DELAY=0",
            "floor": "./benchmarks/floor_starter.py, with floor_worker.py",
        },
        **measured,
    }
    print(table(report))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nResults: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
