"""What the scripts share: connecting to Temporal, order options, reports and exit codes."""
