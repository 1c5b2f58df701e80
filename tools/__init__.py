"""Developer tools: the history recorder, the order schema writer and a local OIDC issuer."""
