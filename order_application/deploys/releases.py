"""The releases of OrderWorkflow that `./worker.py --release` runs: 1, 2, and 2 unpatched."""

from temporalio import workflow

from workflow import OrderWorkflow

with workflow.unsafe.imports_passed_through():
    from shared import Order, OrderResult


@workflow.defn(name="OrderWorkflow")
class OrderWorkflowRelease1(OrderWorkflow):
    """The deploy before the fraud re-check: no such step, and no fraud-recheck marker."""

    @workflow.run
    async def run(self, order: Order) -> OrderResult:
        return await super().run(order)

    def takes_fraud_recheck(self) -> bool:
        return False


@workflow.defn(name="OrderWorkflow")
class OrderWorkflowUnpatched(OrderWorkflow):
    """Release 2 as it would be without `workflow.patched`: every order takes the re-check, even on
    replay of one that passed that point on release 1, whose history then no longer matches."""

    @workflow.run
    async def run(self, order: Order) -> OrderResult:
        return await super().run(order)

    def takes_fraud_recheck(self) -> bool:
        return True


CURRENT_RELEASE = "2"
RELEASES: dict[str, type[OrderWorkflow]] = {
    "1": OrderWorkflowRelease1,
    CURRENT_RELEASE: OrderWorkflow,
    "2-unpatched": OrderWorkflowUnpatched,
}
"""What each `--release` runs; 2, the code in workflow.py, is the current one."""
