"""How an order stops a step that is cancelled, and undoes the steps it took (the saga pattern)."""
