#!/usr/bin/env -S uv run --script
# /// script
# requires-python = ">=3.11"
# dependencies = ["temporalio==1.35.0"]
# ///
"""The floor of starter.py's answer: a bare client's Update-with-Start, and nothing else."""

# starter_latency.py times this script against `starter.py --no-wait`, both run by `uv run
# --script`: the same Temporal call (start a workflow and wait for its update's answer, which
# comes after three activities) without the sample's own work (its options, models, encryption,
# messages). Usage: floor_starter.py HOST:PORT TASK_QUEUE, against floor_worker.py's worker.

import asyncio
import os
import sys
import uuid
from typing import Any

from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy


async def main(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    workflow_id = f"floor-{uuid.uuid4().hex[:8]}"
    start: WithStartWorkflowOperation[Any, None] = WithStartWorkflowOperation(
        "FloorWorkflow",
        id=workflow_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
    )
    answer = await client.execute_update_with_start_workflow(
        "payment_settled", start_workflow_operation=start, result_type=str
    )
    print(f"Workflow {workflow_id} answered: {answer}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} HOST:PORT TASK_QUEUE")
    asyncio.run(main(*sys.argv[1:]))
    # Leaves as starter.py does, without interpreter finalization (command_line/exit.py says why:
    # the SDK's native threads can crash a finalizing interpreter, exit code 134 or 139).
    os._exit(0)
