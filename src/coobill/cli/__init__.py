"""The `coobill` command: a thin adapter over the service layer."""
