"""The floor's worker: FloorWorkflow (benchmarks/baseline.py) and its no-op activity."""

# Plain values, no services, no encryption, the SDK's default worker. starter_latency.py runs
# this as a process of its own, as `python floor_worker.py HOST:PORT TASK_QUEUE`; it prints
# "ready" once it polls, and runs until it is terminated.

import asyncio
import sys
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

# Run as a script: the top folder on the path, for the workflow beside the baseline. (The sandbox
# imports a workflow's module afresh for each run, and could not run this one's path change.)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.baseline import FloorWorkflow, no_op


async def main(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    async with Worker(client, task_queue=task_queue, workflows=[FloorWorkflow], activities=[no_op]):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
