"""The order's search attributes: how the CLI, the Web UI and approve.py list orders by step."""

# Search attributes are stored and shown in clear, even when every payload is encrypted: they
# hold the step and the total, never anything about the customer.

from temporalio import workflow
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError

from local.errors import UserError
from local.printable import printable
from shared import OrderStep

ORDER_STEP = SearchAttributeKey.for_keyword("OrderStep")
"""Where the order is, as OrderStep's value: `OrderStep = 'awaiting approval'`."""

ORDER_TOTAL_CENTS = SearchAttributeKey.for_int("OrderTotalCents")
"""The order's total in cents: `OrderTotalCents >= 10000`."""

SEARCH_ATTRIBUTES = (ORDER_STEP, ORDER_TOTAL_CENTS)

LISTED_STEPS = frozenset({OrderStep.AWAITING_APPROVAL, OrderStep.COMPLETED, OrderStep.FAILED})
"""Where people list orders by OrderStep, which the order keeps current for them: it is set when
the order starts to await approval, when it stops (to the step it goes on with), and when it
ends. Each change is an event in its history and a write to the server's visibility store, so
the steps in between show only in the get_status query."""

LISTED_AT_MILESTONES = "listed-at-milestones"
"""The patch that made it so: orders placed before upserted OrderStep at every step."""


class StepListing:
    """An order's OrderStep and OrderTotalCents, kept current from inside OrderWorkflow."""

    def __init__(self) -> None:
        self._listed_step: OrderStep | None = None
        self._every_step: bool | None = None

    def show(self, step: OrderStep, total_cents: int) -> None:
        if self._every_step is None:  # At the first step, where orders placed before upserted.
            self._every_step = not workflow.patched(LISTED_AT_MILESTONES)
        # Listed as awaiting approval: it must not stay so once the order has moved on.
        was_awaited = self._listed_step == OrderStep.AWAITING_APPROVAL
        if self._every_step or step in LISTED_STEPS or was_awaited:
            self._listed_step = step
            workflow.upsert_search_attributes(
                [ORDER_STEP.value_set(step), ORDER_TOTAL_CENTS.value_set(total_cents)]
            )


_TYPE_NAMES = {ORDER_STEP: "Keyword", ORDER_TOTAL_CENTS: "Int"}


def dev_server_options() -> list[str]:
    """`temporal server start-dev` options that register the search attributes."""
    return [
        option
        for key in SEARCH_ATTRIBUTES
        for option in ("--search-attribute", f"{key.name}={_TYPE_NAMES[key]}")
    ]


async def require_search_attributes(client: Client) -> None:
    """A one-line UserError naming the command to run when the namespace lacks any of them:
    without them, every order's first workflow task would fail."""
    try:
        registered = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except RPCError as err:  # Such as an API key that may not list them: let the orders tell.
        print(
            "Could not check the search attributes OrderStep and OrderTotalCents:"
            f" {printable(err.message)}"
        )
        return
    missing = [
        key.name for key in SEARCH_ATTRIBUTES if key.name not in registered.custom_attributes
    ]
    if missing:
        raise UserError(
            f"namespace {client.namespace} lacks the search attribute(s) {', '.join(missing)};"
            f" register them with: {create_commands(missing)}"
        )


def create_commands(missing: list[str]) -> str:
    """The `temporal` commands that register the named search attributes, one per type."""
    return " && ".join(
        f"temporal operator search-attribute create --name {key.name} --type {_TYPE_NAMES[key]}"
        for key in SEARCH_ATTRIBUTES
        if key.name in missing
    )


def orders_awaiting_approval(task_queue: str) -> str:
    """The visibility query of the running orders on `task_queue` that await approval."""
    return (
        f"WorkflowType = 'OrderWorkflow' AND ExecutionStatus = 'Running'"
        f" AND TaskQueue = '{task_queue}' AND {ORDER_STEP.name} = '{OrderStep.AWAITING_APPROVAL}'"
    )
