"""The measured privacy / anti-corruption matrix.

One seeded synthetic pilot runs under every mode. Then each role, holding only the keys it holds in that mode,
decodes the stored trace (`observers`), and we measure: the share of same-payer payment pairs it can link, the
share of amounts it can read, the payer anonymity set and its entropy, the FMA's recall of each planted pattern
using its lawful access in that mode, and which rules could still run over what the FMA sees. The ground truth
only scores the observers' output; nothing is typed in by hand.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from ..ledger.service import Ledger
from ..store import open_store
from . import EscrowPlan, ensure_keys, sink_for
from .access import Access
from .keys import KeyRing
from .manifest import rules_from_policy
from .modes.base import epoch_key, pseudonym
from .observers import amount_share, anonymity, keys_for, linkable_pair_share
from .pilot import DAY_S, GRANT_TAG, REPORTING_THRESHOLD_TIYN, START_AT, Pilot, apply, build
from .views import RecordView, parse_payload, view_doc
from .visibility import MODES, RANK

EPOCH_S = 7 * DAY_S
PATTERNS = ("diversion", "structuring", "kickback", "gray_miner")
WATCHLIST_MODES = ("pseudonymous", "tiered")  # where the FMA may ask banks for pseudonyms of listed accounts


def roles_for(pilot: Pilot) -> list[str]:
    person = sorted(t["payer"] for t in pilot.truth.values() if t["payer"].startswith("p"))[0]
    return ["central_bank", "fma", "bank:bank0", f"account:{person}", "public"]


def run(seed: int = 7, people: int = 1000, policy: str | None = None) -> dict:
    started = time.time()
    pilot = build(seed, people)
    rules, rules_source = rules_from_policy(policy)
    out: dict = {
        "seed": seed,
        "people": people,
        "payments": pilot.payments,
        "planted": {k: len(pilot.planted.get(k, ())) for k in PATTERNS},
        "roles": roles_for(pilot),
        "rules_source": rules_source,
        "modes": {},
    }
    for mode in MODES:
        out["modes"][mode] = run_mode(mode, pilot, rules)
    out["seconds"] = round(time.time() - started, 2)
    return out


def run_mode(mode: str, pilot: Pilot, rules) -> dict:
    workdir = tempfile.mkdtemp(prefix=f"tenge-matrix-{mode}-")
    try:
        store = open_store(":memory:", create=True)
        now = [START_AT]
        Ledger.create(store, f"matrix {mode}", "22" * 32, "nbk", privacy_mode=mode,
                      settings={"privacy_epoch_s": EPOCH_S}, clock=lambda: now[0])  # fmt: skip
        ensure_keys(store, workdir, escrow_plan(mode, workdir))
        ledger = Ledger(store, trace=sink_for(store.meta(), store, workdir), clock=lambda: now[0])
        t0 = time.perf_counter()
        apply(pilot, ledger, lambda at: now.__setitem__(0, at))
        apply_s = time.perf_counter() - t0
        ring = KeyRing(workdir, store.meta().ledger_id)
        stored = [(idx, parse_payload(t.payload)) for idx, t in store.traces() if t.op_id in pilot.truth]
        payer_truth = {op: t["payer"] for op, t in pilot.truth.items()}
        result: dict = {"apply_seconds": round(apply_s, 2), "roles": {}}
        fma_views: list[RecordView] = []
        for role in roles_for(pilot):
            keys = keys_for(role, ring, store, EPOCH_S)
            views = [v for v in (view_doc(idx, doc, keys) for idx, doc in stored) if v.code == "ok"]
            size, entropy = anonymity(views, payer_truth)
            result["roles"][role.split(":")[0]] = {
                "role": role,
                "linkable_pairs": round(linkable_pair_share(views, payer_truth), 4),
                "amounts_read": round(amount_share(views), 4),
                "anonymity_set": round(size, 1),
                "entropy_bits": round(entropy, 2),
            }
            if role == "fma":
                fma_views = views
        access = Access(store, ring, store.meta().settings["privacy_public"], mode, clock=lambda: now[0])
        watch = watchlist(mode, pilot, store, ring, access)
        flagged = detect(fma_views, pilot, watch)
        result["recall"] = {
            p: round(len(flagged[p] & pilot.planted.get(p, set())) / max(1, len(pilot.planted.get(p, ()))), 3)
            for p in PATTERNS
        }
        result["flags"] = {p: len(flagged[p]) for p in PATTERNS}
        result["false_flags"] = {p: len(flagged[p] - pilot.planted.get(p, set())) for p in PATTERNS}
        result["rules"] = rules_runnable(fma_views, rules)
        result["watchlist_queries"] = len(watch.get("_queries", []))
        result["access_records"] = sum(1 for _, t in store.traces() if t.op_id.startswith("access:"))
        store.close()
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(workdir + "-holders", ignore_errors=True)


def escrow_plan(mode: str, workdir: str) -> EscrowPlan | None:
    """The escrowed run's holders (2 of 3), their shares in a directory of their own beside the keystore."""
    if mode != "escrowed":
        return None
    holders = Path(workdir).parent / (Path(workdir).name + "-holders")
    holders.mkdir(mode=0o700)
    return EscrowPlan(tuple((h, holders / f"{h}.share") for h in ("central_bank", "fma", "court")), 2)


# ---- the FMA's lawful access and detectors ------------------------------------------------------------------


def watchlist(mode: str, pilot: Pilot, store, ring: KeyRing, access: Access) -> dict:
    """In pseudonymous modes the FMA asks each bank for the pseudonyms of listed accounts (officials, gray
    miners, licensed firms) for each epoch: (epoch, token) -> handle. Each bank's answer is logged."""
    if mode not in WATCHLIST_MODES:
        return {}
    listed = sorted(pilot.officials | pilot.gray_miners | pilot.licensed)
    cb = store.meta().central_bank
    by_bank: dict[str, list[str]] = defaultdict(list)
    for h in listed:
        account = store.account(h)
        by_bank[(account.bank if account else None) or cb].append(h)
    epochs = range(START_AT // EPOCH_S - 1, (START_AT + pilot.days * DAY_S) // EPOCH_S + 1)
    out: dict = {"_queries": []}
    for bank, handles in sorted(by_bank.items()):
        if not ring.exists(f"bank:{bank}"):
            continue
        access.log("watchlist", "*", "watchlist", "AML watchlist: officials, listed miners, licensed firms",
                   "fma", f"bank {bank} gave pseudonyms of {len(handles)} listed accounts", handles)  # fmt: skip
        out["_queries"].append(bank)
        root = bytes.fromhex(ring.read(f"bank:{bank}")["pseudonym_root"])
        for e in epochs:
            k = epoch_key(root, e)
            for h in handles:
                out[(e, pseudonym(k, h))] = h
    return out


def _party(view: RecordView, field: str) -> tuple | None:
    f = view.fields[field]
    if f.level == "clear":
        return ("clear", f.value)
    if f.level == "pseudonym":
        return ("pseudonym", view.at // EPOCH_S, f.value)
    return None


def _who(view: RecordView, field: str, watch: dict) -> str | None:
    f = view.fields[field]
    if f.level == "clear":
        return f.value  # type: ignore[return-value]
    if f.level == "pseudonym":
        return watch.get((view.at // EPOCH_S, f.value))
    return None


def detect(views: list[RecordView], pilot: Pilot, watch: dict) -> dict[str, set[str]]:
    flagged: dict[str, set[str]] = {p: set() for p in PATTERNS}
    amount = {v.op_id: v.fields["amount"].value for v in views if v.fields["amount"].level == "clear"}
    tag = {v.op_id: v.fields["tag"].value for v in views if v.fields["tag"].level == "clear"}
    for v in views:
        payee_known = _party(v, "payee") is not None
        who = _who(v, "payee", watch)
        if tag.get(v.op_id) == GRANT_TAG and payee_known and who not in pilot.licensed:
            flagged["diversion"].add(v.op_id)
        if who in pilot.gray_miners:
            flagged["gray_miner"].add(v.op_id)
    # structuring: five or more payments just under the threshold within seven days, sharing a visible payer or
    # payee (a pseudonym only links within its epoch, which `_party` carries)
    groups: dict[tuple, list[RecordView]] = defaultdict(list)
    for v in views:
        a = amount.get(v.op_id)
        if a is None or not REPORTING_THRESHOLD_TIYN * 0.9 <= a < REPORTING_THRESHOLD_TIYN:
            continue
        for field in ("payer", "payee"):
            party = _party(v, field)
            if party is not None:
                groups[(field, party)].append(v)
    for members in groups.values():
        members.sort(key=lambda v: v.at)
        start = 0
        for end in range(len(members)):
            while members[end].at - members[start].at > 7 * DAY_S:
                start += 1
            if end - start + 1 >= 5:
                flagged["structuring"] |= {m.op_id for m in members[start : end + 1]}
    # kickback: a large earmarked payment to X, then X pays an official 5-20% of it within three days
    contracts = [
        v for v in views if tag.get(v.op_id) == GRANT_TAG and (amount.get(v.op_id) or 0) >= 10_000_000
    ]
    by_payer: dict[tuple, list[RecordView]] = defaultdict(list)
    for v in views:
        party = _party(v, "payer")
        if party is not None:
            by_payer[party].append(v)
    for c in contracts:
        x = _party(c, "payee")
        if x is None:
            continue
        for v in by_payer.get(x, ()):
            a = amount.get(v.op_id)
            if a is None or not 0 <= v.at - c.at <= 3 * DAY_S:
                continue
            if (
                amount[c.op_id] * 5 // 100 <= a <= amount[c.op_id] * 20 // 100 + 1
                and _who(v, "payee", watch) in pilot.officials
            ):
                flagged["kickback"] |= {c.op_id, v.op_id}
    return flagged


def rules_runnable(views: list[RecordView], rules) -> dict:
    """For each rule, the share of payments on which the FMA sees every field the rule reads at the level it
    needs (identity in clear for attribute reads, a linkable pseudonym for history reads): 1.0 means the rule
    could still run over the stored trace on every payment."""
    n = max(1, len(views))
    share: dict[tuple[str, str], float] = {}
    for rule_needs in rules.values():
        for field, level in rule_needs.items():
            if (field, level) not in share:
                share[(field, level)] = (
                    sum(1 for v in views if RANK[v.fields[field].level] >= RANK[level]) / n
                )
    return {
        rule: round(min((share[(f, lvl)] for f, lvl in rule_needs.items()), default=1.0), 3)
        for rule, rule_needs in sorted(rules.items())
    }


# ---- printing --------------------------------------------------------------------------------------------------


def format_table(result: dict) -> str:
    lines = [
        f"Privacy / anti-corruption matrix: seed {result['seed']}, {result['people']} people, "
        f"{result['payments']} payments, planted {result['planted']} ({result['seconds']} s)",
        "",
        "mode               role          linkable  amounts  anon.set  entropy",
    ]
    for mode, r in result["modes"].items():
        for role, m in r["roles"].items():
            lines.append(
                f"{mode:<18} {role:<13} {m['linkable_pairs']:>8.2f} {m['amounts_read']:>8.2f} "
                f"{m['anonymity_set']:>9.1f} {m['entropy_bits']:>8.2f}"
            )
    lines += ["", "FMA recall by pattern (lawful access in each mode), flags (false), rules still running:"]
    lines.append("mode               " + "".join(f"{p:<13}" for p in PATTERNS) + "rules")
    for mode, r in result["modes"].items():
        cells = "".join(f"{r['recall'][p]:.2f} ({r['false_flags'][p]})".ljust(13) for p in PATTERNS)
        running = sum(1 for s in r["rules"].values() if s >= 0.999)
        lines.append(f"{mode:<18} {cells}{running}/{len(r['rules'])}")
    lines.append("")
    lines.append("linkable: share of same-payer payment pairs the role can link; amounts: share it can read;")
    lines.append(
        "anon.set / entropy: payer anonymity set size and bits; rules: run on every payment the FMA sees"
    )
    lines.append(f"(rules from the {result['rules_source']}).")
    return "\n".join(lines)
