"""Status and control API (JSON, token-authenticated)."""
