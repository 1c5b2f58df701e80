"""A deliberately broken deploy of OrderWorkflow, run by `./worker.py --workflow-bug`."""

from temporalio import workflow

from workflow import OrderWorkflow

with workflow.unsafe.imports_passed_through():
    from shared import Order, OrderResult


@workflow.defn(name="OrderWorkflow")
class BuggyOrderWorkflow(OrderWorkflow):
    """Same name, same history up to the approval, then a bug.

    A plain Python exception (not a Temporal failure) fails the workflow *task*, not the
    workflow: the server keeps the execution Running and retries the task, so a worker with the
    fix picks the very same execution up where it stopped.
    """

    @workflow.run
    async def run(self, order: Order) -> OrderResult:
        return await super().run(order)

    def before_reserving(self, order: Order) -> None:
        raise RuntimeError("workflow bug!")
