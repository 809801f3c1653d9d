"""The built-in checks every operation's final postings pass, whatever the policies decided.

Pure functions over a view of the ledger: they return a rejection (code, message) or None.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..core import limits
from ..core.hooks import LedgerView
from ..core.money import format_tiyn
from ..core.records import LEDGER_KINDS, AccountStatus, Posting
from ..core.results import ResultCode

Rejection = tuple[ResultCode, str]
_FROZEN, _CLOSED = AccountStatus.frozen, AccountStatus.closed
TIERS_SETTING = "tier_holding_tiyn"  # the ledger's setting: each wallet tier's holding limit, in tiyn


def tier_limits(settings: dict) -> dict[int, int]:
    """The holding limit of each wallet tier, as the ledger's settings set them (else the defaults)."""
    tiers = settings.get(TIERS_SETTING)
    return {int(k): v for k, v in tiers.items()} if tiers else dict(limits.tier_holding_tiyn_default)


def net_by_bucket(postings: Iterable[Posting]) -> dict[tuple[str, str], int]:
    net: dict[tuple[str, str], int] = {}
    for account, amount, tag in postings:
        key = (account, tag)
        net[key] = net.get(key, 0) + amount
    return net


def check_postings(
    view: LedgerView,
    postings: tuple[Posting, ...],
    tier_limits: dict[int, int],
    status_exempt: frozenset[str] = frozenset(),
) -> Rejection | None:
    """Status of every account touched, funds in every debited bucket, holding limits of credited accounts."""
    if sum([p[1] for p in postings]) != 0:
        return ResultCode.invalid_operation, "postings do not sum to zero"
    net = net_by_bucket(postings)
    incoming: dict[str, int] = {}  # a tiered account's net change over its buckets, once one is credited
    credited: list[str] = []
    account_of = view.account
    for (handle, tag), delta in net.items():
        account = account_of(handle)
        if account is None:
            return ResultCode.unknown_account, f"no account {handle!r}"
        if account.kind in LEDGER_KINDS:
            continue
        if handle not in status_exempt:
            status = account.status
            if status is _FROZEN:
                return ResultCode.account_frozen, f"account {handle} is frozen"
            if status is _CLOSED:
                return ResultCode.account_closed, f"account {handle} is closed"
        if delta < 0:
            available = view.bucket(handle, tag)
            if available + delta < 0:
                return (
                    ResultCode.insufficient_funds,
                    f"{handle} has {format_tiyn(available)} KZT {tag or 'untagged'}, "
                    f"needs {format_tiyn(-delta)} KZT",
                )
        elif delta > 0 and account.tier is not None and handle not in incoming:
            credited.append(handle)
            incoming[handle] = 0
    if credited:
        for (handle, _), delta in net.items():
            if handle in incoming:
                incoming[handle] += delta
        for handle in sorted(credited):
            account = account_of(handle)
            assert account is not None and account.tier is not None
            limit = tier_limits.get(account.tier, limits.amount_tiyn_max)
            after = view.account_total(handle) + incoming[handle]
            if after > limit:
                return (
                    ResultCode.limit_exceeded,
                    f"{handle} would hold {format_tiyn(after)} KZT, over the tier {account.tier} holding limit of "
                    f"{format_tiyn(limit)} KZT",
                )
    return None
