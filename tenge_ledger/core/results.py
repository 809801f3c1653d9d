"""The closed set of outcomes of applying an operation. A rejection is a value, not an exception."""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class ResultCode(StrEnum):
    ok = "ok"
    exists = "exists"
    exists_with_different_fields = "exists_with_different_fields"
    invalid_operation = "invalid_operation"
    bad_signature = "bad_signature"
    signer_not_allowed = "signer_not_allowed"
    unknown_account = "unknown_account"
    account_exists = "account_exists"
    account_frozen = "account_frozen"
    account_closed = "account_closed"
    account_not_empty = "account_not_empty"
    same_account = "same_account"
    insufficient_funds = "insufficient_funds"
    limit_exceeded = "limit_exceeded"
    policy_denied = "policy_denied"
    tag_expired = "tag_expired"
    tag_expiry_conflict = "tag_expiry_conflict"
    hold_not_found = "hold_not_found"
    hold_not_pending = "hold_not_pending"
    hold_amount_exceeded = "hold_amount_exceeded"
    batch_failed = "batch_failed"

    @property
    def succeeded(self) -> bool:
        return self in (ResultCode.ok, ResultCode.exists)


class Result(NamedTuple):
    """What the ledger answers for one operation (a named tuple: immutable, and one is made per operation)."""

    op_id: str
    code: ResultCode
    message: str
    seq: int | None = None  # journal sequence number of the applied operation
    reports: tuple[dict, ...] = ()  # reports filed by policy rules (agency, reason, rule)

    @property
    def succeeded(self) -> bool:
        return self.code.succeeded

    def to_json(self) -> dict:
        out: dict = {"id": self.op_id, "code": self.code.value, "message": self.message}
        if self.seq is not None:
            out["seq"] = self.seq
        if self.reports:
            out["reports"] = list(self.reports)
        return out
