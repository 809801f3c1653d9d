"""The FMA's retrospective detectors, run by the matrix over what one role sees of the stored trace.

Their settings are here and only here, chosen as an analyst would set them from the law and experience, not read
from the pilot generator: the generator draws each planted pattern's parameters from ranges of its own
(`pilot.PlantRanges`), wider than or offset from these windows, so a detector can miss a planted case, and the
pilot's legitimate look-alikes (near-threshold buyers, frequent small payers, firms paying people, contractor
chains) can set it off. Both are counted: recall and false alarms.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from ..privacy.views import RecordView

DAY_S = 86_400
PATTERNS = ("diversion", "structuring", "kickback", "gray_miner")


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    """What each detector looks for. Amounts are tiyn, windows seconds."""

    # structuring: payments in [band_low, 1.0) x the reporting threshold...
    reporting_threshold_tiyn: int = 2_000_000
    structuring_band_low: float = 0.85
    # ...at least this many within this window, sharing a visible payer or payee (or a pseudonym, per epoch)
    structuring_count_min: int = 4
    structuring_window_s: int = 10 * DAY_S
    # kickback: an earmarked payment of at least this much to X, then X pays an official this share of it...
    kickback_contract_tiyn_min: int = 10_000_000
    kickback_share_min: float = 0.03
    kickback_share_max: float = 0.25
    # ...within this window after the contract
    kickback_window_s: int = 5 * DAY_S
    # diversion: earmarked money (this tag) reaching a payee that is not a licensed contractor
    earmark_tag: str = "budget:roads-2026"


DEFAULT = DetectorSettings()


@dataclass(frozen=True, slots=True)
class Lists:
    """What the FMA knows of accounts from outside the ledger: registries, not the trace."""

    licensed: frozenset[str]
    officials: frozenset[str]
    gray_miners: frozenset[str]


def party(view: RecordView, field: str, epoch_s: int) -> tuple | None:
    """A visible party as something to group by: a clear handle, or a pseudonym within its epoch."""
    f = view.fields[field]
    if f.level == "clear":
        return ("clear", f.value)
    if f.level == "pseudonym":
        return ("pseudonym", view.at // epoch_s, f.value)
    return None


def who(view: RecordView, field: str, watch: dict, epoch_s: int) -> str | None:
    """The handle behind a party, if this observer can name it (in clear, or a watchlisted pseudonym)."""
    f = view.fields[field]
    if f.level == "clear":
        return f.value  # type: ignore[return-value]
    if f.level == "pseudonym":
        return watch.get((view.at // epoch_s, f.value))
    return None


def detect(
    views: list[RecordView], lists: Lists, watch: dict, epoch_s: int, settings: DetectorSettings = DEFAULT
) -> dict[str, set[str]]:
    """pattern -> op ids flagged, from these views only."""
    s = settings
    flagged: dict[str, set[str]] = {p: set() for p in PATTERNS}
    amount = {v.op_id: v.fields["amount"].value for v in views if v.fields["amount"].level == "clear"}
    tag = {v.op_id: v.fields["tag"].value for v in views if v.fields["tag"].level == "clear"}
    for v in views:
        payee = who(v, "payee", watch, epoch_s)
        if (
            tag.get(v.op_id) == s.earmark_tag
            and party(v, "payee", epoch_s) is not None
            and payee not in lists.licensed
        ):
            flagged["diversion"].add(v.op_id)
        if payee in lists.gray_miners:
            flagged["gray_miner"].add(v.op_id)
    groups: dict[tuple, list[RecordView]] = defaultdict(list)
    low = s.reporting_threshold_tiyn * s.structuring_band_low
    for v in views:
        a = amount.get(v.op_id)
        if a is None or not low <= a < s.reporting_threshold_tiyn:
            continue
        for field in ("payer", "payee"):
            p = party(v, field, epoch_s)
            if p is not None:
                groups[(field, p)].append(v)
    for members in groups.values():
        members.sort(key=lambda v: v.at)
        start = 0
        for end in range(len(members)):
            while members[end].at - members[start].at > s.structuring_window_s:
                start += 1
            if end - start + 1 >= s.structuring_count_min:
                flagged["structuring"] |= {m.op_id for m in members[start : end + 1]}
    contracts = [
        v
        for v in views
        if tag.get(v.op_id) == s.earmark_tag and (amount.get(v.op_id) or 0) >= s.kickback_contract_tiyn_min
    ]
    by_payer: dict[tuple, list[RecordView]] = defaultdict(list)
    for v in views:
        p = party(v, "payer", epoch_s)
        if p is not None:
            by_payer[p].append(v)
    for c in contracts:
        x = party(c, "payee", epoch_s)
        if x is None:
            continue
        for v in by_payer.get(x, ()):
            a = amount.get(v.op_id)
            if a is None or not 0 <= v.at - c.at <= s.kickback_window_s:
                continue
            share = a / amount[c.op_id]
            if (
                s.kickback_share_min <= share <= s.kickback_share_max
                and who(v, "payee", watch, epoch_s) in lists.officials
            ):
                flagged["kickback"] |= {c.op_id, v.op_id}
    return flagged


def score(flagged: dict[str, set[str]], planted: dict[str, set[str]], seen: set[str]) -> dict[str, dict]:
    """Per pattern: recall of the planted payments that were applied (None when the policy set stopped them
    all), precision (None when nothing was flagged), false alarms."""
    out = {}
    for p in PATTERNS:
        truth = planted.get(p, set()) & seen
        hits = flagged[p] & truth
        false = flagged[p] - truth
        out[p] = {
            "recall": round(len(hits) / len(truth), 3) if truth else None,  # None: none of them was applied
            "precision": round(len(hits) / len(flagged[p]), 3) if flagged[p] else None,
            "false_alarms": len(false),
            "flags": len(flagged[p]),
        }
    return out
