"""The worker's interceptors: what the converter never sees (how many arguments came), and who
decided (the proof a decision carries)."""

import inspect
import typing
from collections.abc import Sequence
from typing import Any

from temporalio import workflow
from temporalio.converter import PayloadCodec
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

from payloads.codec import EncryptionCodec
from payloads.converter import MALFORMED_MESSAGE, refusal
from payloads.decision_proof import (
    DECISION_SIGNALS,
    DECISION_UPDATES,
    PLACE,
    PLACING_UPDATE,
    PROOF_REFUSED,
    Tickets,
    signed_text,
)
from shared import SIGNED_IN_PROOF


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


class DecisionProofs(Interceptor):
    """Refuses a decision or a placing whose proof does not hold, in the update's validator. With
    `tickets` (--approvers oidc), refuses every decision without a ticket, and ignores decision
    signals; without, refuses every ticket, which it cannot check.

    The SDK runs validators only when an update arrives, never when a worker replays a history:
    a decision accepted with a proof stays proven after keys rotate and tokens expire.
    """

    def __init__(self, codec: PayloadCodec | None, tickets: Tickets | None = None) -> None:
        self._codec, self._tickets = codec, tickets
        self._signed_in_only = tickets is not None

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        check = self._problem
        signed_in_only = self._signed_in_only

        class _CheckProof(WorkflowInboundInterceptor):
            def handle_update_validator(self, input: HandleUpdateInput) -> None:
                if problem := check(workflow.info().workflow_id, input):
                    raise ApplicationError(problem, type=PROOF_REFUSED, non_retryable=True)
                super().handle_update_validator(input)

            async def handle_signal(self, input: HandleSignalInput) -> None:
                # A signal has no validator: no proof of one can be checked once and kept.
                if signed_in_only and input.signal in DECISION_SIGNALS:
                    workflow.logger.warning(
                        "Order %s: ignored %s signal: decisions here need a sign-in",
                        workflow.info().workflow_id,
                        input.signal,
                    )
                    return
                await super().handle_signal(input)

        return _CheckProof

    def _problem(self, order_id: str, input: HandleUpdateInput) -> str | None:
        """Why the update's proof does not hold; None when it holds or there is none to check."""
        if input.update not in DECISION_UPDATES | {PLACING_UPDATE}:
            return None
        action = PLACE if input.update == PLACING_UPDATE else input.update
        arg: Any = input.args[0] if len(input.args) == 1 else None  # None: a bare one.
        by, reason, given = (
            getattr(arg, "by", ""),
            getattr(arg, "reason", ""),
            getattr(arg, "proof", ""),
        )
        if given.startswith(SIGNED_IN_PROOF):
            if self._tickets and self._tickets.holds(order_id, action, by, reason, given):
                return None
            return f"the sign-in of this {input.update} does not hold for order {order_id}"
        if self._signed_in_only and action in DECISION_UPDATES:
            return (
                f"order {order_id} takes decisions from signed-in approvers only: sign in"
                " (approve.py --token-file, or the inbox)"
            )
        if not given:
            return None
        key = self._codec
        if action == PLACE or not isinstance(key, EncryptionCodec):
            return f"the proof of this {input.update} does not hold for order {order_id}"
        if key.signed(signed_text(order_id, action, by, reason), given):
            return None
        return (
            f"the proof of this {input.update} does not hold: it was not signed for order"
            f" {order_id} with its key"
        )
