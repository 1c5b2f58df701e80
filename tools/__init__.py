"""Developer tools: the history recorder and the order schema writer."""
