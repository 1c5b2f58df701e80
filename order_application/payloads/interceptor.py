"""The worker's interceptor for what the converter never sees: how many arguments came."""

import inspect
import typing
from collections.abc import Sequence
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ExecuteWorkflowInput,
    HandleQueryInput,
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from payloads.converter import MALFORMED_MESSAGE, refusal


class OneArgumentPerMessage(Interceptor):
    """Refuses a start, signal or update that came with a number of arguments its handler cannot
    take, as the SDK refuses a malformed one; queries, and updates that take no input, drop any
    arguments sent.

    The SDK would call the handler all the same, and the TypeError would fail the workflow task.
    """

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _OneArgument


def _count_problem(args: Sequence[Any], optional: bool) -> str | None:
    if len(args) > 1:
        return f"expected one argument, got {len(args)}"
    if not args and not optional:
        return "got no input"
    return None


class _OneArgument(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        if problem := _count_problem(input.args, optional=False):
            raise refusal(_first_parameter(input.run_fn), f"input: {problem}")
        return await super().execute_workflow(input)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        if problem := _count_problem(input.args, optional=True):
            workflow.logger.warning(
                "Order %s: ignored %s signal, %s",
                workflow.info().workflow_id,
                input.signal,
                problem,
            )
            return
        await super().handle_signal(input)

    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        if problem := _count_problem(input.args, optional=True):
            raise ApplicationError(
                f"{input.update}: {problem}", type=MALFORMED_MESSAGE, non_retryable=True
            )
        super().handle_update_validator(input)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        # The SDK reads the arguments afresh after the validator, and runs no validator for an
        # update without one: drop them here for a handler that takes none.
        handler = workflow.get_update_handler(input.update)
        if handler is not None and not _parameters(handler):
            input.args = []
        return await super().handle_update_handler(input)

    async def handle_query(self, input: HandleQueryInput) -> Any:
        input.args = []
        return await super().handle_query(input)


def _parameters(function: Any) -> list[str]:
    return [name for name in inspect.signature(function).parameters if name != "self"]


def _first_parameter(function: Any) -> Any:
    hints = typing.get_type_hints(function)
    hints.pop("return", None)
    return next(iter(hints.values()), None)
