"""The ledger's storage: tables, engines and the unit of work."""
