"""The order's saga: what undoes each step it took, run newest first when it cannot go on."""

# Runs inside OrderWorkflow: workflow.py passes this module through the sandbox, so nothing here
# may do I/O or keep state outside a workflow's own objects.

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError
from temporalio.workflow import ActivityHandle

from activities import SERVICE_CALL_TIMEOUT, UNTIL_IT_WORKS, OrderActivities
from observability.metrics import compensation_run
from shared import CompensationResult, Message

R = TypeVar("R")

Compensation = Callable[[OrderActivities, Any], Awaitable[CompensationResult]]
"""An activity that undoes a step, such as refund_payment."""


class Compensations:
    """The compensations of the steps begun so far, and what they undid."""

    def __init__(self) -> None:
        self._pending: list[tuple[Compensation, Message]] = []
        self.undone: list[CompensationResult] = []

    def add(self, undo: Compensation, request: Message) -> None:
        """Registers a step's compensation before the step starts: a step that timed out may
        still have gone through, and undoing what was not done is harmless."""
        self._pending.append((undo, request))

    async def run(self) -> None:
        """Runs every compensation, newest first; each retries until the service answers."""
        for undo, request in reversed(self._pending):
            result = await workflow.execute_activity_method(
                undo,
                request,
                start_to_close_timeout=SERVICE_CALL_TIMEOUT,
                retry_policy=UNTIL_IT_WORKS,
            )
            if result.detail:
                self.undone.append(result)
                compensation_run(result.action)


async def done_or_stopped(activity: ActivityHandle[Any], cancelled: Callable[[], bool]) -> None:
    """Waits until the activity is done or `cancelled()` turns true; then stops the activity and
    waits until it really has, so nothing is compensated while it still runs."""
    try:
        await workflow.wait_condition(lambda: activity.done() or cancelled())
    finally:
        # Also when the workflow is cancelled through Temporal itself, mid-wait.
        if not activity.done():
            activity.cancel()
            await workflow.wait([activity])


async def despite_cancel(work: Awaitable[R]) -> R:
    """Runs `work` to its end, even if the workflow is cancelled through Temporal meanwhile."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        return await task


def reason(failure: FailureError) -> tuple[str, str | None]:
    """Why the order cannot go on, and the error's type."""
    # An activity's failure wraps the service's own error: that is the reason to report.
    cause = failure.cause if isinstance(failure, ActivityError) and failure.cause else failure
    message = cause.message if isinstance(cause, FailureError) else str(cause)
    return message, cause.type if isinstance(cause, ApplicationError) else None
