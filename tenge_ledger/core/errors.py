"""Errors of user input and of the environment. Rejections of operations are not errors: they are Results."""

from __future__ import annotations

import json

from .limits import echoed_input_length_max


class TengeError(Exception):
    """Base of every error a user can cause; the CLI prints its message on one line and exits non-zero."""


class InputError(TengeError):
    """Malformed input: an amount, a date, a handle, an operation document. `where` names the place."""

    def __init__(self, message: str, where: str | None = None) -> None:
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


def quoted(value: object) -> str:
    """How an error message names a bad input: as JSON would write it (`null`, `true`, `"abc"`), and cut to
    `echoed_input_length_max` characters, so that a 100,000-character handle is not echoed whole."""
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            text = type(value).__name__
    if len(text) > echoed_input_length_max:
        size = f"{len(value)} characters" if isinstance(value, str) else type(value).__name__
        text = f"{text[: echoed_input_length_max - 1]}… ({size})"
    return text


class LedgerStateError(TengeError):
    """The ledger cannot do what was asked in its current state (not initialised, initialised twice, ...)."""


class StoreError(TengeError):
    """The database is unreachable, not a tenge ledger, or of a schema this version cannot open."""


class WriteConflict(Exception):
    """A concurrent writer touched the same rows; the service retries the whole unit. Never reaches a user."""


class KnownOperationId(WriteConflict):
    """A change set worked out without reading its operation ids (a committer's, ledger/service.py) has one the
    journal holds already: its unique key refused the write, so nothing of the chunk was written. The ledger
    works the chunk out again reading the ids, and answers `exists`. Never reaches a user."""


class CommitterStopped(StoreError):
    """A store's committer process ended without answering (it could not start, or was killed): what it did not
    confirm may or may not be committed, so the ledger reads the store again and goes on without it."""


class InvariantViolation(Exception):
    """A check that protects money failed. This is a bug, not a user mistake: it stops the write."""
