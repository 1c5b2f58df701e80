"""How each order ended, as an operator sees it: a line in the worker's log, and its count."""

# Called from inside OrderWorkflow: the log line and the count are both skipped while a worker
# replays an order's history, so each order's end is told once.

from temporalio import workflow

from observability.metrics import order_completed, order_failed


def order_ended(order_id: str, failed_at: str | None = None, error_type: str | None = None) -> None:
    """Completed, or failed at a step with an error type, such as CardExpired. The type, never the
    message: "card expired 12/23" is customer data, kept encrypted in the history, while the log
    and the metrics are kept in clear."""
    if failed_at is None:
        workflow.logger.info("Order %s completed", order_id)
        order_completed()
        return
    workflow.logger.info("Order %s ended at %s: %s", order_id, failed_at, error_type or "failed")
    order_failed(error_type or "Unknown")
