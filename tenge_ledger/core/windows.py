"""What the ledger and the policy language agree on about history windows: where a calendar window starts, and
the key of a counterparty-filtered aggregate.

A filtered aggregate counts a party's postings whose counterparty (the operation's other party, see
`counterparties`) had a kind, bank or zone when the posting was made, optionally of one tag. Its key is
canonical JSON of its sorted (name, value) pairs, e.g. `[["kind","bank"]]` or `[["tag","meals"],["zone","x"]]`:
the enabled policy set names the keys, the ledger keeps one running total per (account, key), and `tenge check`
rebuilds them from the journal."""

from __future__ import annotations

import bisect
import datetime as dt
import json

from . import limits
from .hooks import PolicyEngine
from .records import HOLDS_ACCOUNT, Account, OpenAccount, Operation, OpKind, UpdateAccount

FILTER_NAMES = ("bank", "kind", "tag", "zone")
ZONE_ATTR = "zone"  # the account attribute a `zone:` filter reads
# The ledger's setting: whether its store keeps `activity`, the snapshots unfiltered history windows read (kept
# only while the enabled policy set reads such a window). A ledger whose settings lack it kept them always, and
# still does; `Ledger.create` starts without.
ACTIVITY_SETTING = "window_activity"


def keeps_activity(settings: dict) -> bool:
    return bool(settings.get(ACTIVITY_SETTING, True))


FILTERS_SETTING = "window_filters"  # the ledger's setting: the filter keys whose flows the store keeps


def kept_filters(settings: dict) -> frozenset[str]:
    return frozenset(settings.get(FILTERS_SETTING) or ())


def history_not_kept(engine: PolicyEngine, keeps: bool, kept: frozenset[str]) -> tuple[bool, frozenset[str]]:
    """What of the history `engine`'s windows read a store lacks that keeps activity snapshots or not (`keeps`)
    and the flows of the filters `kept`: whether the snapshots, and which filters' flows. Read short, such a
    window would make a limit looser."""
    return engine.activity and not keeps, engine.filters - kept


def calendar_start(at: int, unit: str, offset_s: int = limits.ledger_utc_offset_s) -> int:
    """Unix time of the start of the calendar day or month containing `at`, in the zone `offset_s` from UTC."""
    zone = dt.timezone(dt.timedelta(seconds=offset_s))
    local = dt.datetime.fromtimestamp(at, tz=zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "month":
        start = start.replace(day=1)
    return int(start.timestamp())


def window_start(at: int, span: int | str) -> int:
    """Where a window of `span` (seconds, or the calendar's "day" / "month") ending at `at` starts."""
    return calendar_start(at, span) if isinstance(span, str) else at - span


def filter_key(pairs: list[tuple[str, str]]) -> str:
    """The canonical key of a filter given as (name, value) pairs."""
    return json.dumps(sorted([str(n), str(v)] for n, v in pairs), separators=(",", ":"), ensure_ascii=False)


def parse_filter(key: str) -> tuple[tuple[str, str], ...]:
    """A key's (name, value) pairs; ValueError when it is not one filter_key makes."""
    try:
        pairs = json.loads(key)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not a filter key: {key!r}") from exc
    if not isinstance(pairs, list) or not all(
        isinstance(p, list) and len(p) == 2 and p[0] in FILTER_NAMES and isinstance(p[1], str) for p in pairs
    ):
        raise ValueError(f"not a filter key: {key!r}")
    out = tuple((p[0], p[1]) for p in pairs)
    if filter_key(list(out)) != key:
        raise ValueError(f"not a canonical filter key: {key!r}")
    return out


def matches(pairs: tuple[tuple[str, str], ...], kind: str, bank: str, zone: str | None, tag: str) -> bool:
    """Whether a posting of `tag` whose counterparty had this kind, bank ("" when none) and zone attribute then
    counts in the filter's aggregate."""
    for name, value in pairs:
        if name == "kind":
            if kind != value:
                return False
        elif name == "bank":
            if bank != value:
                return False
        elif name == "zone":
            if zone != value:
                return False
        elif tag != value:
            return False
    return True


def party_of(account: Account) -> tuple[str, str, str | None]:
    """What a filter reads of a counterparty: its kind, bank ("" when none) and zone attribute."""
    return account.kind, account.bank or "", account.attr(ZONE_ATTR)


def count_posting(flow: list[int], amount: int) -> None:
    """Count one posting in running flows [out, out count, in, in count, ...]: what every flow of the ledger
    (a bucket's, a filtered one, a chunk's window totals) adds per posting."""
    if amount < 0:
        flow[0] -= amount
        flow[1] += 1
    elif amount > 0:
        flow[2] += amount
        flow[3] += 1


def add_flow(flows: dict, key: tuple, amount: int, minute: int) -> tuple[int, int, int, int] | None:
    """Add one posting to a running flow, `flows[key]` = [out, out count, in, in count, last minute], as a chunk's
    write does; returns its snapshot (its flows before this posting) when this is its first posting of a later
    minute, else None."""
    flow = flows.get(key)
    if flow is None:
        flow = flows[key] = [0, 0, 0, 0, -1]
    snapshot = None
    if flow[4] < minute:
        snapshot = (flow[0], flow[1], flow[2], flow[3])
        flow[4] = minute
    count_posting(flow, amount)
    return snapshot


class ActivityReplay:
    """The buckets' running flows and their `activity` snapshots, re-derived by replaying the journal's postings
    in order, as a chunk's write keeps them: what enabling a set that reads unfiltered windows builds, and what
    reads such windows where the store keeps no snapshots (`window` answers as the store's query does)."""

    def __init__(self) -> None:
        self.flows: dict[tuple[str, str], list[int]] = {}  # (handle, tag) -> [out, n, in, n, last minute]
        self.activity: dict[tuple[str, str, int], tuple[int, int, int, int]] = {}
        self._tags: dict[str, set[str]] = {}
        self._minutes: dict[tuple[str, str], list[int]] = {}  # a bucket's snapshot minutes, increasing

    def apply(self, at: int, postings: list[tuple[str, int, str]]) -> None:
        minute = at // 60
        for account, amount, tag in postings:
            snapshot = add_flow(self.flows, (account, tag), amount, minute)
            if snapshot is not None:
                self.activity[(account, tag, minute)] = snapshot
                self._minutes.setdefault((account, tag), []).append(minute)
                self._tags.setdefault(account, set()).add(tag)

    def window(self, handle: str, direction: str, since: int, tag: str | None = None) -> tuple[int, int]:
        """(sum, count) of `handle`'s outgoing ("out") or incoming postings from the start of the minute `since`
        falls in, over every bucket or the one of `tag`: each bucket's flows now less its first snapshot then."""
        total = count = 0
        for t in self._tags.get(handle, ()) if tag is None else (tag,):
            moved, n = replayed_window(
                self.flows, self.activity, self._minutes, (handle, t), direction, since
            )
            total += moved
            count += n
        return total, count


def replayed_window(
    flows: dict, activity: dict, minutes: dict, key: tuple[str, str], direction: str, since: int
) -> tuple[int, int]:
    """A replayed flow's window, as the store's query reads a kept one: its flows now less its first snapshot
    at or after the minute `since` falls in (none there: nothing moved since)."""
    found = minutes.get(key)
    if not found:
        return 0, 0
    at = bisect.bisect_left(found, since // 60)
    if at == len(found):
        return 0, 0
    i = 0 if direction == "out" else 2
    now, then = flows[key], activity[(*key, found[at])]
    return now[i] - then[i], now[i + 1] - then[i + 1]


class FilterReplay:
    """The filtered running flows and snapshots of `keys`, re-derived by replaying the journal in order: what
    enabling a set that names new filters builds, and what `tenge check` compares with the store's. It follows
    the counterparties' kind, bank and zone as the journal opens and updates their accounts."""

    def __init__(self, keys, central_bank: str) -> None:
        self.filters = [(key, parse_filter(key)) for key in sorted(keys)]
        self.central_bank = central_bank
        self.parties: dict[str, tuple[str, str, str | None]] = {}
        self.flows: dict[tuple[str, str], list[int]] = {}  # (handle, key) -> [out, n, in, n, last minute]
        self.activity: dict[tuple[str, str, int], tuple[int, int, int, int]] = {}
        self._minutes: dict[tuple[str, str], list[int]] = {}  # a flow's snapshot minutes, increasing

    def window(self, handle: str, direction: str, since: int, key: str) -> tuple[int, int]:
        """(sum, count) of `handle`'s postings in direction whose counterparty matched filter `key`, from the
        start of the minute `since` falls in, as the store reads a kept filter's."""
        return replayed_window(self.flows, self.activity, self._minutes, (handle, key), direction, since)

    def apply(self, op: Operation, at: int, postings: list[tuple[str, int, str]]) -> None:
        body = op.body
        if isinstance(body, OpenAccount):
            zone = dict(body.attrs).get(ZONE_ATTR)
            self.parties[body.handle] = (str(body.account_kind), body.bank or "", zone)
            return
        if isinstance(body, UpdateAccount):
            if body.handle not in self.parties:  # a journal that updates no account: check names it
                return
            kind, bank, zone = self.parties[body.handle]
            for key, value in body.attrs:
                if key == ZONE_ATTR:
                    zone = value or None
            self.parties[body.handle] = (kind, bank, zone)
            return
        if not self.filters or not postings:
            return
        pair = counterparties(
            op.kind, getattr(body, "payer", None), getattr(body, "payee", None), self.central_bank
        )
        if pair is None:
            return
        minute = at // 60
        for account, amount, tag in postings:
            if account == HOLDS_ACCOUNT:
                continue
            other = self.parties.get(pair[1] if account == pair[0] else pair[0])
            if other is None:
                continue
            for key, pairs in self.filters:
                if matches(pairs, *other, tag):
                    snapshot = add_flow(self.flows, (account, key), amount, minute)
                    if snapshot is not None:
                        self.activity[(account, key, minute)] = snapshot
                        self._minutes.setdefault((account, key), []).append(minute)


def counterparties(
    kind: OpKind, payer: str | None, payee: str | None, central_bank: str
) -> tuple[str, str] | None:
    """(payer, payee) of an operation whose postings have a counterparty: a leg on the payer's account has the
    payee as its counterparty, any other leg (the payee's, a split's or a fee's) the payer. An issue is paid by
    the central bank, a redemption to it; the legs of posts, voids and sweeps (money leaving or returning to the
    holds account or the central bank) have none, so no filtered window counts them."""
    if kind is OpKind.issue:
        return (central_bank, payee) if payee else None
    if kind is OpKind.redeem:
        return (payer, central_bank) if payer else None
    if kind in (OpKind.transfer, OpKind.hold, OpKind.seize) and payer and payee:
        return payer, payee
    return None
