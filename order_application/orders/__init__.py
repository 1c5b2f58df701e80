"""What a client does to an order, a module per action: place, decide, cancel, look up."""
