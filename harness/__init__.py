"""Real processes for tests, the benchmark and the history recorder: servers, workers, scripts."""
