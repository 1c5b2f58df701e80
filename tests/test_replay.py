"""Determinism: OrderWorkflow must replay the recorded history of every scenario.

A change that would break orders already running (steps added, removed or reordered without
workflow.patched) fails here. See tools/record_histories.py for when and how to re-record.
"""

import json
import os
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from deploys.releases import OrderWorkflowRelease1, OrderWorkflowUnpatched
from workflow import OrderWorkflow

# This module defines workflows, so the sandbox imports it afresh to check them: what it imports
# besides is passed through, as workflow.py passes its own (cryptography cannot load twice).
with workflow.unsafe.imports_passed_through():
    from payloads.codec import EncryptionCodec
    from payloads.converter import PLAIN
    from payloads.interceptor import DecisionProofs, OneArgumentPerMessage
    from shared import Order, OrderResult, Proof

HISTORIES = Path(__file__).parent / "histories"

SCENARIOS = [
    "happy_path",
    "approval_timed_out",
    "card_expired",
    "inventory_outage",
    "rejected",
    "cancelled",
    "cancelled_during_outage",
    "cancelled_through_temporal",
    "no_approval_needed",
    "packed",
    "out_of_stock",
    "policy_denied",
    "workflow_bug_fixed",
    "malformed_messages",
    "invalid_order",
    "fraud_recheck",
    "fraud_flagged",
    "release1_awaiting_approval",
    "release1_delivered",
    "early_return_decided",
    "early_return_card_expired",
    "malformed_decisions",
    "proven_decision",
]
"""The release1_* histories were recorded on release 1, before the fraud re-check; the others on
release 2, the code in workflow.py."""


def recorded(scenario: str) -> WorkflowHistory:
    text = (HISTORIES / f"{scenario}.json").read_text()
    return WorkflowHistory.from_json(f"order-{scenario}", text)


@workflow.defn(name="OrderWorkflow")
class OrderWorkflowWithNewFirstStep(OrderWorkflow):
    """A careless deploy: a pause before the policy check, which orders in flight never had."""

    @workflow.run
    async def run(self, order: Order) -> OrderResult:
        await workflow.sleep(1)
        return await super().run(order)


def test_every_recorded_history_is_replayed() -> None:
    assert sorted(path.stem for path in HISTORIES.glob("*.json")) == sorted(SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_order_workflow_replays_recorded_history(scenario: str) -> None:
    await Replayer(
        workflows=[OrderWorkflow], interceptors=[OneArgumentPerMessage()], data_converter=PLAIN
    ).replay_workflow(recorded(scenario))


async def test_a_proven_decision_replays_after_the_keys_change() -> None:
    """A decision's proof is checked when it arrives, never on replay: a worker whose key file
    has none of the keys of that time replays the order, which still says who proved it."""
    history = recorded("proven_decision")
    other_keys = DecisionProofs(EncryptionCodec([os.urandom(32)]))
    await Replayer(
        workflows=[OrderWorkflow],
        interceptors=[OneArgumentPerMessage(), other_keys],
        data_converter=PLAIN,
    ).replay_workflow(history)

    completed = history.events[-1].workflow_execution_completed_event_attributes
    result = OrderResult.model_validate(json.loads(completed.result.payloads[0].data), strict=False)
    assert result.decision is not None
    assert result.decision.proof == Proof.ORDER_KEY


async def test_replay_fails_for_a_nondeterministic_change() -> None:
    """Proves the replays above can fail: the same history, a workflow that changed under it."""
    replayer = Replayer(workflows=[OrderWorkflowWithNewFirstStep], data_converter=PLAIN)
    with pytest.raises(workflow.NondeterminismError):
        await replayer.replay_workflow(recorded("happy_path"))


@pytest.mark.parametrize("scenario", ["release1_awaiting_approval", "release1_delivered"])
async def test_release_2_without_its_patch_cannot_replay_release_1_orders(scenario: str) -> None:
    """What workflow.patched prevents: the re-check scheduled where release 1 had the timer."""
    replayer = Replayer(
        workflows=[OrderWorkflowUnpatched],
        interceptors=[OneArgumentPerMessage()],
        data_converter=PLAIN,
    )
    with pytest.raises(workflow.NondeterminismError, match="TimerStarted"):
        await replayer.replay_workflow(recorded(scenario))


@pytest.mark.parametrize("scenario", ["fraud_recheck", "fraud_flagged"])
async def test_release_1_cannot_replay_release_2_orders(scenario: str) -> None:
    """Why a rollback needs care too: release 1 knows nothing of the re-check it would meet."""
    replayer = Replayer(
        workflows=[OrderWorkflowRelease1],
        interceptors=[OneArgumentPerMessage()],
        data_converter=PLAIN,
    )
    with pytest.raises(workflow.NondeterminismError):
        await replayer.replay_workflow(recorded(scenario))
