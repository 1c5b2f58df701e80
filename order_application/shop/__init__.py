"""The shop the activities call: its rules and its simulated services, with their ledger."""
