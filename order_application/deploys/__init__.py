"""Other builds of OrderWorkflow: release 1, release 2 unpatched, and a deploy with a bug."""
