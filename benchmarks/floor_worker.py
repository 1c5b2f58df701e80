"""The floor's workflow and its worker: an update that answers after three no-op activities."""

# The order's shape up to its payment answer (check_policy, process_payment, recheck_fraud, then
# payment_settled answers) and nothing else: plain values, no services, no encryption, the SDK's
# default worker. starter_latency.py runs this as a process of its own, as
# `python floor_worker.py HOST:PORT TASK_QUEUE`; it prints "ready" once it polls, and runs until
# it is terminated.

import asyncio
import sys
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

STEPS_BEFORE_THE_ANSWER = ("check_policy", "process_payment", "recheck_fraud")
# The same limit as the order's service calls; a no-op never comes near it.
STEP_TIMEOUT = timedelta(seconds=5)


@activity.defn
async def no_op(step: str) -> str:
    return step


@workflow.defn
class FloorWorkflow:
    def __init__(self) -> None:
        self._answer: str | None = None

    @workflow.run
    async def run(self) -> None:
        for step in STEPS_BEFORE_THE_ANSWER:
            await workflow.execute_activity(no_op, step, start_to_close_timeout=STEP_TIMEOUT)
        self._answer = "paid"
        # The workflow ends once the update has answered, not before.
        await workflow.wait_condition(workflow.all_handlers_finished)

    @workflow.update
    async def payment_settled(self) -> str:
        await workflow.wait_condition(lambda: self._answer is not None)
        assert self._answer is not None
        return self._answer


async def main(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    async with Worker(client, task_queue=task_queue, workflows=[FloorWorkflow], activities=[no_op]):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
