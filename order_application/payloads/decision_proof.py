"""A decision signed with the order key: the sender proves it holds the key, and the worker checks
the signature once, before the workflow sees the decision."""

import json
from typing import Any

from temporalio import workflow
from temporalio.converter import PayloadCodec
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from payloads.codec import EncryptionCodec
from shared import ApproveOrder, RejectOrder

DECISION_UPDATES = frozenset({"approve", "reject"})
PROOF_REFUSED = "DecisionProofRefused"
"""`type` of the error with which a decision update is refused when its proof does not hold."""


def _signed_text(order_id: str, update: str, by: str, reason: str) -> bytes:
    # The order and the update are in it: a signature copied from one decision proves nothing
    # about another order, or about the opposite decision.
    return json.dumps([order_id, update, by, reason]).encode()


def proof(
    codec: PayloadCodec | None, order_id: str, update: str, decision: ApproveOrder | RejectOrder
) -> str:
    """The decision's proof, for a client that holds the order key; empty for one without."""
    if not isinstance(codec, EncryptionCodec):
        return ""
    return codec.sign(_signed_text(order_id, update, decision.by, decision.reason))


class DecisionProofs(Interceptor):
    """Refuses an `approve` or `reject` update whose proof does not hold, in its validator.

    The SDK runs validators only when an update arrives, never when a worker replays a history:
    a decision accepted with a proof stays proven after the keys rotate. A decision without a
    proof goes on, and the order records its name as given, not verified.
    """

    def __init__(self, codec: PayloadCodec | None) -> None:
        self._codec = codec

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        codec = self._codec

        class _CheckProof(WorkflowInboundInterceptor):
            def handle_update_validator(self, input: HandleUpdateInput) -> None:
                decision = _decision(input)
                if decision is not None and decision.proof:
                    order_id = workflow.info().workflow_id
                    text = _signed_text(order_id, input.update, decision.by, decision.reason)
                    if not (
                        isinstance(codec, EncryptionCodec) and codec.signed(text, decision.proof)
                    ):
                        raise ApplicationError(
                            f"the proof of this {input.update} does not hold: it was not signed"
                            f" for order {order_id} with its key",
                            type=PROOF_REFUSED,
                            non_retryable=True,
                        )
                super().handle_update_validator(input)

        return _CheckProof


def _decision(input: HandleUpdateInput) -> ApproveOrder | RejectOrder | None:
    if input.update not in DECISION_UPDATES or len(input.args) != 1:
        return None
    arg: Any = input.args[0]
    return arg if isinstance(arg, ApproveOrder | RejectOrder) else None
