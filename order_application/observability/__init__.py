"""What an operator sees of the orders: search attributes, metrics and the worker's log."""
