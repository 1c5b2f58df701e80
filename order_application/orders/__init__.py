"""What a client does to an order, one Temporal call per module: place, decide, cancel, query."""
