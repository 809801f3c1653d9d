"""The ledger service: the one path by which operations are checked, decided, applied and traced."""
