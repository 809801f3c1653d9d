"""The plain transfer: the one operation a busy ledger applies most, done without the general path's objects.

A transfer whose signature was checked already, on a ledger whose trace leaves are derived from the journal,
between two active accounts that are neither the central bank nor a system account, that the payer signed,
that the payer can fund and the payee can hold, and on which the policy set (if any) decides nothing: the
general path (`Ledger._apply`) would make a handler call, an `_Applied`, a generic postings check, a legs
comparison and a stored decision of nothing, to end with the rows written here. Anything else (a repeated id,
a rejection of any kind, a rule that matched, a sealed trace) returns None and goes the general way, which
decides it; so this path never rejects. When the policy set was asked already, its answer goes along
(`WorkingSet.decided`), so no rule runs twice for one operation.

`tests/test_plain_transfer.py` applies random workloads (rejections, holds, batches, tags, policies) both ways
and compares every journal row, balance, flow, activity row, trace leaf and result, byte for byte.
"""

from __future__ import annotations

from ..core import limits
from ..core.canonical import canonical_bytes
from ..core.hooks import PolicyEngine, Proposal
from ..core.money import format_tiyn
from ..core.records import AccountKind, AccountStatus, Operation, Posting, Transfer
from ..core.results import Result, ResultCode
from ..store.base import JournalPosting
from ..store.entries import FLAG_LINK_V2, journal_row
from .journal import entry_hash_of_legs, fields_hash
from .working import WorkingSet

_ACTIVE = AccountStatus.active
_UNCHECKED = (AccountKind.central_bank, AccountKind.system)  # the built-in checks skip them: the general path
_OK = ResultCode.ok


def apply_plain_transfer(
    ws: WorkingSet,
    op: Operation,
    at: int,
    ledger_id: str,
    tier_limits: dict[int, int],
    policy: PolicyEngine | None = None,
    central_bank: str = "",
) -> Result | None:
    """Apply `op` if it is a plain transfer that succeeds (see the module), else None and nothing changed but
    the policy set's answer, kept in `ws.decided` for the general path. `policy` is None for no policy set."""
    b = op.body
    if type(b) is not Transfer:
        return None
    payer_handle, payee_handle, amount = b.payer, b.payee, b.amount_tiyn
    if op.signer != payer_handle or payee_handle == payer_handle or type(amount) is not int or amount <= 0:
        return None
    payer = ws.account(payer_handle)
    payee = ws.account(payee_handle)
    if (
        payer is None
        or payee is None
        or payer.status is not _ACTIVE
        or payee.status is not _ACTIVE
        or payer.kind in _UNCHECKED
        or payee.kind in _UNCHECKED
        or ws.operation(op.id) is not None
    ):
        return None
    tag = b.tag or ""
    if ws.bucket(payer_handle, tag) < amount:
        return None
    tier = payee.tier
    if tier is not None and ws.account_total(payee_handle) + amount > tier_limits.get(
        tier, limits.amount_tiyn_max
    ):
        return None
    version = None
    if policy is not None:
        base = (Posting(payer_handle, -amount, tag), Posting(payee_handle, amount, tag))
        try:
            decision = policy.decide(
                Proposal(op, at, payer_handle, payee_handle, amount, tag, base, payer, payee), ws
            )
        except Exception as exc:  # the general path turns it into the same denial it would have made
            ws.decided = (op, exc)
            return None
        if not (
            decision.allowed
            and decision.postings is None
            and decision.hold_timeout_s is None
            and not (decision.rules or decision.reasons or decision.reports or decision.detail)
        ):
            ws.decided = (op, decision)
            return None
        version = policy.version
    digest = fields_hash(canonical_bytes(ledger_id, op))
    seq, prev = ws.head()
    seq += 1
    legs = ((payer_handle, -amount, tag), (payee_handle, amount, tag))
    link = entry_hash_of_legs(prev, seq, at, digest, op.signature, legs, (None, version))
    ws.entries.append(journal_row(seq, op, at, link, FLAG_LINK_V2, None, version, ws.account_id, ws.tag_id))
    ws.operations[op.id] = (seq, digest)
    ws.add_bucket_delta(payer_handle, tag, -amount)
    ws.add_bucket_delta(payee_handle, tag, amount)
    if policy is not None:  # what the set's history windows and counterparty filters read of this chunk
        ws.postings.append(JournalPosting(seq, 0, payer_handle, tag, -amount, at))
        ws.postings.append(JournalPosting(seq, 1, payee_handle, tag, amount, at))
        if ws.root.filters:
            ws.add_filtered(op.kind, b, at, base, central_bank)
    ws.head_value = (seq, link)
    ws.traces.append(seq)
    text = f" [{tag}]" if tag else ""
    return Result(
        op.id, _OK, f"transferred {format_tiyn(amount)} KZT{text} from {payer_handle} to {payee_handle}", seq
    )
