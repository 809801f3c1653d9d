"""The plain transfer: the one operation a busy ledger applies most, done without the general path's objects.

A transfer whose signature was checked already, on a ledger whose trace leaves are derived from the journal,
between two active accounts that are neither the central bank nor a system account, that the payer signed,
that the payer can fund and the payee can hold, whose memo (if any) passes `check_text`, and on which the policy set (if any) decides nothing: the
general path (`Ledger._apply`) would make a handler call, an `_Applied`, a generic postings check, a legs
comparison and a stored decision of nothing, to end with the rows written here. When the set allows it with
effects (a split, a withholding, a report, a note), the ledger's `with_effects` does what the general path
would still do, in the general path's own functions (reshape, built-in checks, journal). Anything else (a
repeated id, a rejection of any kind, a hold, a sealed trace) stops the loop and goes the general way, which
decides it; so this path never rejects. When the policy set was asked already, its answer goes along
(`WorkingSet.decided`), so no rule runs twice for one operation.

Runs of plain transfers are applied in one loop over the working set's own dictionaries: no method call, no
object but the rows, keys and result each transfer leaves. A cache miss (an account, bucket or id the chunk's
prefetch did not read) asks the working set, as the general path would.

`tests/test_plain_transfer.py` applies random workloads (rejections, holds, batches, tags, policies) both ways
and compares every journal row, balance, flow, activity row, trace leaf and result, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from ..core import limits
from ..core.canonical import canonical_prefix, text_is_safe, transfer_canonical
from ..core.chain import chain_tail, link_on, two_leg_suffix
from ..core.hooks import PolicyEngine, Proposal
from ..core.money import TIYN_SHOWN
from ..core.records import LEDGER_KINDS, AccountStatus, Decision, Operation, OpKind, Posting, Transfer
from ..core.results import Result, ResultCode
from ..store.entries import FLAG_LINK_V2, KIND_CODE, body_extra
from .journal import fields_hash
from .working import WorkingSet

_ACTIVE = AccountStatus.active
_OK = ResultCode.ok
_TRANSFER = KIND_CODE[OpKind.transfer]
_MISSING = object()
_TIYN_PER_KZT = limits.tiyn_per_kzt
# a Result made as `Result._make` makes one, without its Python-level checks: every field is given
_new_tuple = tuple.__new__


class PlainContext(NamedTuple):
    """What the loop needs of the ledger, made once per chunk (`plain_context`)."""

    prefix: bytes  # the canonical bytes' start on this ledger (core/canonical.canonical_prefix)
    tail: bytes  # the chain link's last bytes: no stored decision, the policy set's version
    tier_limits: dict[int, int]
    policy: PolicyEngine | None  # None for no policy set
    version: int | None
    central_bank: str
    # The general path's checks and journal for a transfer the set allowed with effects (a reshape, a report, a
    # note): (root, op, at, decision, fields hash) -> its result, or None (nothing changed) if a check refuses.
    with_effects: Callable[[WorkingSet, Operation, int, Decision, bytes], Result | None]


def plain_context(
    ledger_id: str,
    tier_limits: dict[int, int],
    policy: PolicyEngine | None,
    central_bank: str,
    with_effects: Callable[[WorkingSet, Operation, int, Decision, bytes], Result | None],
) -> PlainContext:
    version = None if policy is None else policy.version
    return PlainContext(
        canonical_prefix(ledger_id),
        chain_tail(None, version),
        tier_limits,
        policy,
        version,
        central_bank,
        with_effects,
    )


def apply_plain_transfers(
    ws: WorkingSet,
    ops: Sequence[Operation],
    verified: Sequence[bool],
    start: int,
    results: list[Result],
    at: int,
    ctx: PlainContext,
) -> int:
    """Apply `ops[start:]` while each is a plain transfer that succeeds (see the module), appending a result
    for each; return the index of the first it did not apply (len(ops) when none is left). Nothing of that
    one changed but the policy set's answer, kept in `ws.decided` for the general path. `ws` is the chunk's
    root."""
    if ws.parent is not None:
        raise ValueError("plain transfers apply on the root working set only")
    prefix, tail, tier_limits, policy, version, central_bank, with_effects = ctx
    changed, account_cache = ws.accounts, ws._account_cache
    balance_cache, flows, tags_of = ws._bucket_cache, ws.flow_deltas, ws._tags_by_account
    applied, applied_cache, ids = ws.operations, ws._operation_cache, ws._ids
    pending, ids_unread = ws.state.pending_ops, ws.ids_unread
    entries, plain_entries, traces = ws.entries, ws.plain_entries, ws.traces
    filters = bool(ws.filters)
    # The filters each account meets, once they were worked out for this set: a payment between two accounts
    # that meet none (most) counts in no filtered flow, and the loop skips asking.
    matched = ws.filters_met() if filters else None
    # Deferred: each row keeps its own part of its link (core/chain.two_leg_suffix) where its link goes, for the
    # store to link as it writes it (ChangeSet.links_deferred); the head's link is then unknown, None.
    defer = ws.links_deferred
    head = ws.tip() if defer else ws.head()
    seq, prev = head
    i, n = start, len(ops)
    while i < n:
        op = ops[i]
        b = op.body
        if type(b) is not Transfer or not verified[i]:
            break
        payer_handle, payee_handle, amount = b.payer, b.payee, b.amount_tiyn
        if (
            op.signer != payer_handle
            or payee_handle == payer_handle
            or type(amount) is not int
            or amount <= 0
        ):
            break
        memo = b.memo
        if memo is not None and not text_is_safe(memo):  # the general path refuses it, naming the field
            break
        payer = changed.get(payer_handle) if changed else None  # accounts this chunk changed (mostly none)
        if payer is None:
            payer = account_cache.get(payer_handle, _MISSING)
            if payer is _MISSING:
                payer = ws.account(payer_handle)
        payee = changed.get(payee_handle) if changed else None
        if payee is None:
            payee = account_cache.get(payee_handle, _MISSING)
            if payee is _MISSING:
                payee = ws.account(payee_handle)
        if (
            payer is None
            or payee is None
            or payer.status is not _ACTIVE
            or payee.status is not _ACTIVE
            or payer.kind in LEDGER_KINDS  # the built-in checks skip them: the general path decides
            or payee.kind in LEDGER_KINDS
        ):
            break
        op_id = op.id
        if op_id in applied:
            break
        known = applied_cache.get(op_id, _MISSING)
        # without ids read (WorkingSet.ids_unread): in a chunk the committer holds, or for the store to refuse
        if known is _MISSING:
            known = pending.get(op_id) if ids_unread else ws.operation(op_id)
        if known is not None:
            break
        tag = b.tag or ""
        out_key = (payer_handle, tag)
        out_flow = flows.get(out_key)  # [out, out count, in, in count]: the balance moved by in less out
        balance = balance_cache.get(out_key)
        if balance is None:
            balance = ws.bucket(payer_handle, tag)
        elif out_flow is not None:
            balance += out_flow[2] - out_flow[0]
        if balance < amount:
            break
        tier = payee.tier
        if tier is not None and ws.account_total(payee_handle) + amount > tier_limits.get(
            tier, limits.amount_tiyn_max
        ):
            break
        canonical = transfer_canonical(prefix, op)
        if canonical is None:
            break
        if policy is not None:
            base = (Posting(payer_handle, -amount, tag), Posting(payee_handle, amount, tag))
            try:
                decision = policy.decide(
                    Proposal(op, at, payer_handle, payee_handle, amount, tag, base, payer, payee), ws
                )
            except Exception as exc:  # the general path turns it into the same denial it would have made
                ws.decided = (op, exc)
                break
            if not decision.allowed or decision.hold_timeout_s is not None:
                ws.decided = (op, decision)
                break
            if decision.postings is not None or (
                decision.rules or decision.reasons or decision.reports or decision.detail
            ):
                if seq != head[0]:
                    # what with_effects chains on (linking first what this loop left unlinked)
                    ws.head_value = (seq, None if defer else prev)
                result = with_effects(ws, op, at, decision, fields_hash(canonical))
                if result is None:
                    ws.decided = (op, decision)
                    break
                results.append(result)
                seq, prev = head = ws.head()
                defer = ws.links_deferred
                i += 1
                continue
        digest = fields_hash(canonical)
        seq += 1
        signature = bytearray.fromhex(op.signature)  # a bytearray binds faster than bytes (journal_row)
        # the row's own part of its link, over the signature's text as stored: verification re-derives it
        link = two_leg_suffix(seq, at, digest, signature.hex(), payer_handle, payee_handle, amount, tag, tail)
        if not defer:  # (deferred: the store hashes it on the link before, as it writes the row)
            prev = link_on(prev, link)
            link = bytearray(prev)
        payer_id = ids.get(payer_handle)
        if payer_id is None:
            payer_id = ws.account_id(payer_handle)
        payee_id = ids.get(payee_handle)
        if payee_id is None:
            payee_id = ws.account_id(payee_handle)
        if b.tag is None and b.memo is None:  # tag, body and decision NULL: left out (PLAIN_JOURNAL_COLUMNS)
            plain_entries.append(
                (seq, op_id, _TRANSFER, payer_id, payer_id, payee_id, amount, at, signature, link, FLAG_LINK_V2,
                 version)
            )  # fmt: skip
        else:
            entries.append(
                (seq, op_id, _TRANSFER, payer_id, payer_id, payee_id, amount,
                 None if b.tag is None else ws.tag_id(b.tag), at, signature, link, FLAG_LINK_V2,
                 None if b.memo is None else body_extra(op), None, version)
            )  # fmt: skip
        applied[op_id] = (seq, digest)
        # the buckets' running flows, and so their balances, as WorkingSet.add_legs
        if out_flow is None:
            flows[out_key] = [amount, 1, 0, 0]
        else:
            out_flow[0] += amount
            out_flow[1] += 1
        in_key = (payee_handle, tag)
        flow = flows.get(in_key)
        if flow is None:
            flows[in_key] = [0, 0, amount, 1]
        else:
            flow[2] += amount
            flow[3] += 1
        held = tags_of.get(payer_handle)
        if held is None:
            tags_of[payer_handle] = {tag}
        else:
            held.add(tag)
        held = tags_of.get(payee_handle)
        if held is None:
            tags_of[payee_handle] = {tag}
        else:
            held.add(tag)
        if filters:  # what the set's counterparty-filtered windows read of this chunk
            of_payer = None if matched is None else matched.get(payer_handle)
            of_payee = None if matched is None else matched.get(payee_handle)
            if of_payer is None or of_payee is None or of_payer[1] or of_payee[1]:
                ws.add_filtered(op.kind, b, base, central_bank)
        traces.append(seq)
        kzt, tiyn = divmod(amount, _TIYN_PER_KZT)
        shown = f" [{tag}]" if tag else ""
        message = f"transferred {kzt}.{TIYN_SHOWN[tiyn]} KZT{shown} from {payer_handle} to {payee_handle}"
        results.append(_new_tuple(Result, (op_id, _OK, message, seq, ())))
        i += 1
    if i > start:
        ws.head_value = (seq, None if defer else prev)
    return i
