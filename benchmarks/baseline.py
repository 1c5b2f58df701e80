"""The benchmarks' yardsticks: workflows of the order's shape that do nothing else."""

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

# "Same shape" as OrderWorkflow running a default order (no packing, nothing fails): the same
# count of activities, in the same places around one approval wait. Three activities before the
# approval (check_policy, process_payment, recheck_fraud), three after (reserve_inventory,
# deliver_order, send_confirmation). The wait has a timeout, as the order's does.
#
# Everything else is left out on purpose, as the least a workflow of this shape can cost: plain
# values in and out (no dataclasses, which the sandbox would rebuild on every run, since they
# would live in this module), no services, no logging. What the order adds on top (its messages,
# services, ledger, logs, step tracking, cancellation handling) is what the benchmark measures.
STEPS_BEFORE_APPROVAL = ("check_policy", "process_payment", "recheck_fraud")
STEPS_AFTER_APPROVAL = ("reserve_inventory", "deliver_order", "send_confirmation")

# The same limit as the order's service calls; a no-op never comes near it.
STEP_TIMEOUT = timedelta(seconds=5)


@activity.defn
async def no_op(step: str) -> str:
    return step


@workflow.defn
class BaselineWorkflow:
    def __init__(self) -> None:
        self._approved = False

    @workflow.run
    async def run(self, approval_timeout_seconds: float) -> int:
        """Returns the number of steps run."""
        for step in STEPS_BEFORE_APPROVAL:
            await workflow.execute_activity(no_op, step, start_to_close_timeout=STEP_TIMEOUT)
        try:
            await workflow.wait_condition(
                lambda: self._approved, timeout=timedelta(seconds=approval_timeout_seconds)
            )
        except TimeoutError:
            raise ApplicationError("approval timed out", non_retryable=True) from None
        for step in STEPS_AFTER_APPROVAL:
            await workflow.execute_activity(no_op, step, start_to_close_timeout=STEP_TIMEOUT)
        return len(STEPS_BEFORE_APPROVAL) + len(STEPS_AFTER_APPROVAL)

    @workflow.signal
    def approve(self) -> None:
        self._approved = True

    # The same approval as an update, for the waiting mode to set beside the order's bulk
    # approval by update: no validator and no answer, the least an update can cost.
    @workflow.update
    def approve_update(self) -> None:
        self._approved = True


# The starter's floor (benchmarks/starter_latency.py, run by floor_worker.py): the order's shape up
# to its payment answer and nothing else. An update that answers after the three steps before the
# approval, as payment_settled does after check_policy, process_payment and recheck_fraud.
@workflow.defn
class FloorWorkflow:
    def __init__(self) -> None:
        self._answer: str | None = None

    @workflow.run
    async def run(self) -> None:
        for step in STEPS_BEFORE_APPROVAL:
            await workflow.execute_activity(no_op, step, start_to_close_timeout=STEP_TIMEOUT)
        self._answer = "paid"
        # The workflow ends once the update has answered, not before.
        await workflow.wait_condition(workflow.all_handlers_finished)

    @workflow.update
    async def payment_settled(self) -> str:
        await workflow.wait_condition(lambda: self._answer is not None)
        assert self._answer is not None
        return self._answer
