"""The worker's log: one short, escaped line per step of an order, and per failure it expects."""

import logging
import re
from collections.abc import Iterator
from types import TracebackType

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

from local.errors import UserError
from local.printable import printable
from shop.services import ServiceUnavailableError

# Failures the order is built to meet: retried (a service down) or final (a declined card, an item
# out of stock). Their tracebacks would only bury the story in the worker's terminal.
EXPECTED_FAILURES = (ServiceUnavailableError, ApplicationError)

# How the SDK names the signal it drops because its input is not the handler's model.
_DROPPED_SIGNAL = re.compile(r"Failed deserializing signal input for (\S+) ")

# How the SDK says it cannot run a workflow task: the run, then (in the error) the workflow type,
# which is whatever the workflow's starter named.
_FAILED_ACTIVATION = re.compile(r"Failed handling activation on workflow with run ID (\S+)")
_UNKNOWN_TYPE = re.compile(r"Workflow class (.*) is not registered on this worker", re.DOTALL)

# Runs of an unknown type already logged, remembered up to this many: a flood of such workflows
# costs a bounded memory, and one forgotten is only logged again.
REMEMBERED_RUNS = 10_000


class EscapedFormatter(logging.Formatter):
    """Every record on one line, escaped (`printable`): workflow IDs and types, and failure text,
    come from whoever started the workflow and must not break the log's lines or send the
    terminal a command. A traceback keeps its lines, with each exception's message escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))

    def formatException(
        self,
        ei: tuple[type[BaseException], BaseException, TracebackType | None]
        | tuple[None, None, None],
    ) -> str:
        text = super().formatException(ei)
        # The traceback's other lines are this program's code; a message may quote a client.
        for error in _chain(ei[1]):
            message = str(error)
            text = text.replace(message, printable(message))
        return text


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    """The error, then the one it was raised from or during, and so on, as a traceback shows."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


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


class UnknownWorkflowTypeOncePerRun(logging.Filter):
    """Logs a workflow of a type this worker does not run once per run, in one line, where the SDK
    logs a traceback at every retry of its workflow task (a retry every 10 s, for as long as it
    runs). Such a workflow is anyone's to start on the task queue; it waits for a worker that runs
    its type, or for someone to terminate it."""

    def __init__(self) -> None:
        super().__init__()
        self._logged_runs: dict[str, None] = {}  # A set that remembers its order.

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        failed = _FAILED_ACTIVATION.match(record.getMessage())
        unknown = _UNKNOWN_TYPE.match(error.message if isinstance(error, ApplicationError) else "")
        if not (failed and unknown):
            return True
        run_id = failed[1]
        if run_id in self._logged_runs:
            return False
        self._logged_runs[run_id] = None
        if len(self._logged_runs) > REMEMBERED_RUNS:
            del self._logged_runs[next(iter(self._logged_runs))]
        record.msg = (
            "Workflow run %s is of type '%s', which this worker does not run: its workflow task"
            " fails at every retry until a worker that runs it polls, or it is terminated"
            " (logged once per run)"
        )
        record.args = (run_id, unknown[1])
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = None
        return True


def configure_logging() -> None:
    """One short line per step of an order, with the time; whatever a client named, escaped."""
    handler = logging.StreamHandler()
    handler.setFormatter(EscapedFormatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    # Every message names its order; the SDK's context dictionary on each line is only noise here.
    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False
    # The worker's own progress notes (such as the shutdown notice) would only repeat what this
    # script prints; its warnings, such as a failing workflow task, still show.
    logging.getLogger("temporalio.worker").setLevel(logging.WARNING)
    logging.getLogger("temporalio.activity").addFilter(ExpectedFailuresOnOneLine())
    for name in ("temporalio.worker._workflow", "temporalio.worker._workflow_instance"):
        logging.getLogger(name).addFilter(WorkflowProblemsOnOneLine())
    logging.getLogger("temporalio.worker._workflow").addFilter(UnknownWorkflowTypeOncePerRun())
