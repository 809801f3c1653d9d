"""Errors of user input and of the environment. Rejections of operations are not errors: they are Results."""

from __future__ import annotations


class TengeError(Exception):
    """Base of every error a user can cause; the CLI prints its message on one line and exits non-zero."""


class InputError(TengeError):
    """Malformed input: an amount, a date, a handle, an operation document. `where` names the place."""

    def __init__(self, message: str, where: str | None = None) -> None:
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class LedgerStateError(TengeError):
    """The ledger cannot do what was asked in its current state (not initialised, initialised twice, ...)."""


class StoreError(TengeError):
    """The database is unreachable, not a tenge ledger, or of a schema this version cannot open."""


class WriteConflict(Exception):
    """A concurrent writer touched the same rows; the service retries the whole unit. Never reaches a user."""


class InvariantViolation(Exception):
    """A check that protects money failed. This is a bug, not a user mistake: it stops the write."""
