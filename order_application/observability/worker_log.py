"""The worker's log: one short line per step of an order, and per failure it expects."""

import logging
import re

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

from local.errors import UserError
from shop.services import ServiceUnavailableError

# Failures the order is built to meet: retried (a service down) or final (a declined card, an item
# out of stock). Their tracebacks would only bury the story in the worker's terminal.
EXPECTED_FAILURES = (ServiceUnavailableError, ApplicationError)

# How the SDK names the signal it drops because its input is not the handler's model.
_DROPPED_SIGNAL = re.compile(r"Failed deserializing signal input for (\S+) ")


class ExpectedFailuresOnOneLine(logging.Filter):
    """Shortens the SDK's report of a failed activity attempt to one line when the failure is one
    an order expects (a service that is down, a declined card); anything else keeps its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, EXPECTED_FAILURES):
            activity_info = getattr(record, "temporal_activity", {})
            record.msg = "Order %s: %s failed (attempt %s): %s"
            record.args = (
                activity_info.get("workflow_id"),
                activity_info.get("activity_type"),
                activity_info.get("attempt"),
                # A final failure's message may hold customer data ("card expired 12/23"); the
                # history keeps it encrypted, and the log names only its type.
                error.type if isinstance(error, ApplicationError) else error,
            )
            record.exc_info = None
        return True


class WorkflowProblemsOnOneLine(logging.Filter):
    """Shortens two of the SDK's workflow reports to one line: a signal it dropped because its
    input was malformed (a warning naming the order, the signal and the problem), and a workflow
    task that failed on a UserError, such as an encryption key it cannot read (it fails again at
    every retry, and the one line is the whole story)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        dropped = _DROPPED_SIGNAL.match(record.getMessage())
        if dropped and isinstance(error, ApplicationError):
            order_id = getattr(record, "temporal_workflow", {}).get("workflow_id")
            record.msg, record.args = (
                "Order %s: ignored %s signal, %s",
                (
                    order_id,
                    dropped[1],
                    error.message,
                ),
            )
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = None
        elif isinstance(error, UserError):
            record.args = (record.getMessage(), error)
            record.msg = "%s: %s"
            record.exc_info = None
        return True


def configure_logging() -> None:
    """One short line per step of an order, with the time."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    # Every message names its order; the SDK's context dictionary on each line is only noise here.
    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False
    # The worker's own progress notes (such as the shutdown notice) would only repeat what this
    # script prints; its warnings, such as a failing workflow task, still show.
    logging.getLogger("temporalio.worker").setLevel(logging.WARNING)
    logging.getLogger("temporalio.activity").addFilter(ExpectedFailuresOnOneLine())
    for name in ("temporalio.worker._workflow", "temporalio.worker._workflow_instance"):
        logging.getLogger(name).addFilter(WorkflowProblemsOnOneLine())
