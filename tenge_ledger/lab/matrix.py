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
from collections.abc import Callable
from pathlib import Path

from ..ledger.service import Ledger
from ..privacy import REGISTRY, EscrowPlan, KeyPlan, ensure_keys, register_bank_key, sink_for
from ..privacy.access import Access
from ..privacy.keys import KeyRing, PartyKey, read_party_file
from ..privacy.modes.base import epoch_key, pseudonym
from ..privacy.observers import keys_for
from ..privacy.views import RecordView, stored_docs, view_doc
from ..privacy.visibility import MODES, RANK
from ..store import open_store
from .detectors import DEFAULT as DETECTORS
from .detectors import PATTERNS, Lists, detect, score
from .manifest import DEFAULT_POLICIES, rules_from_policy
from .metrics import amount_share, anonymity, linkable_pair_share, metadata_leaks
from .pilot import DAY_S, START_AT, Pilot, apply, build

EPOCH_S = 7 * DAY_S
WATCHLIST_MODES = ("pseudonymous", "tiered")  # where the FMA may ask banks for pseudonyms of listed accounts


def roles_for(pilot: Pilot) -> list[str]:
    person = sorted(t["payer"] for t in pilot.truth.values() if t["payer"].startswith("p"))[0]
    return ["central_bank", "fma", "bank:bank0", f"account:{person}", "public"]


def run(
    seed: int = 7,
    people: int = 1000,
    policy: str | None = None,
    on_mode_done: Callable[[str], None] | None = None,
) -> dict:
    """`policy`: the policy set each mode's ledger runs with (default `policies/`), read from its files;
    `on_mode_done(mode)` is called as each mode's run ends (a caller's progress display)."""
    started = time.time()
    pilot = build(seed, people)
    rules, rules_source = rules_from_policy(policy)
    sources = policy_sources(policy)
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
        out["modes"][mode] = run_mode(mode, pilot, rules, sources)
        if on_mode_done is not None:
            on_mode_done(mode)
    out["seconds"] = round(time.time() - started, 2)
    return out


def policy_sources(policy: str | None) -> dict[str, str] | None:
    """The policy files the pilot's ledgers enable: `policy` (a file or directory), else `policies/` when it
    exists; None runs without a policy set (built-in checks only)."""
    from ..policy import read_sources

    target = Path(policy) if policy else DEFAULT_POLICIES
    if not target.exists():
        return None
    return read_sources([str(target)])


def run_mode(mode: str, pilot: Pilot, rules, sources: dict[str, str] | None = None) -> dict:
    workdir = tempfile.mkdtemp(prefix=f"tenge-matrix-{mode}-")
    try:
        store = open_store(":memory:", create=True)
        now = [START_AT]
        Ledger.create(store, f"matrix {mode}", "22" * 32, "nbk", privacy_mode=mode,
                      settings={"privacy_epoch_s": EPOCH_S}, clock=lambda: now[0])  # fmt: skip
        parties = Path(
            workdir + "-parties"
        )  # the reading parties' own key files, not the operator's keystore
        parties.mkdir(mode=0o700)
        readers = KeyPlan(tuple((h, parties / f"{h}.key") for h in REGISTRY[mode].readers))
        ensure_keys(store, workdir, escrow_plan(mode, workdir), readers)
        engine = None
        if sources is not None:
            from ..policy import load_engine
            from ..policy.sets import enable

            enable(store, sources, now[0], note="privacy matrix")
            engine = load_engine(store.meta().settings)
        ledger = Ledger(
            store, policy=engine, trace=sink_for(store.meta(), store, workdir), clock=lambda: now[0]
        )
        t0 = time.perf_counter()

        def register_banks() -> None:
            if REGISTRY[mode].bank_keys:
                for bank in sorted(a.handle for a in store.accounts() if a.kind.value == "bank"):
                    register_bank_key(store, bank, parties / f"bank-{bank}.key", workdir)

        apply(pilot, ledger, lambda at: now.__setitem__(0, at), register_banks)
        apply_s = time.perf_counter() - t0
        ring = KeyRing(workdir, store.meta().ledger_id)
        stored = stored_docs(store, ((idx, t) for idx, t in store.traces() if t.op_id in pilot.truth))
        seen = {doc["op_id"] for _, doc in stored if doc.get("code") == "ok"}
        applied = {doc["op_id"]: doc.get("code") for _, doc in stored}
        payer_truth = {op: t["payer"] for op, t in pilot.truth.items()}
        payee_truth = {op: t["payee"] for op, t in pilot.truth.items()}
        access = Access(store, ring, store.meta().settings["privacy_public"], mode, clock=lambda: now[0])
        watch = watchlist(mode, pilot, store, parties, access)
        lists = Lists(frozenset(pilot.licensed), frozenset(pilot.officials), frozenset(pilot.gray_miners))
        result: dict = {"apply_seconds": round(apply_s, 2), "roles": {}, "detection": {}}
        fma_views: list[RecordView] = []
        for role in roles_for(pilot):
            keys = keys_for(role, ring, store, EPOCH_S, parties=role_parties(role, parties, store))
            views = [v for v in (view_doc(idx, doc, keys) for idx, doc in stored) if v.code == "ok"]
            size, entropy = anonymity(views, payer_truth)
            name = role.split(":")[0]
            result["roles"][name] = {
                "role": role,
                "linkable_pairs": round(linkable_pair_share(views, payer_truth), 4),
                "payee_linkable_pairs": round(linkable_pair_share(views, payee_truth, "payee"), 4),
                "amounts_read": round(amount_share(views), 4),
                "anonymity_set": round(size, 1),
                "entropy_bits": round(entropy, 2),
                # rules of the policy set that could run on every payment over what this role sees
                "rules_running": sum(1 for share in rules_runnable(views, rules).values() if share >= 0.999),
            }
            # the FMA with its lawful access (watchlist answers); every other role with what it decodes alone
            flagged = detect(views, lists, watch if role == "fma" else {}, EPOCH_S, DETECTORS)
            result["detection"][name] = score(flagged, pilot.planted, seen)
            if role == "fma":
                fma_views = views
        fma = result["detection"]["fma"]
        result["recall"] = {p: fma[p]["recall"] for p in PATTERNS}
        result["precision"] = {p: fma[p]["precision"] for p in PATTERNS}
        result["flags"] = {p: fma[p]["flags"] for p in PATTERNS}
        result["false_flags"] = {p: fma[p]["false_alarms"] for p in PATTERNS}
        result["metadata"] = metadata_leaks([doc for _, doc in stored])
        # planted payments the policy set stopped at apply time (the engine sees every operation in every mode)
        result["prevented"] = {
            p: sum(1 for op in pilot.planted.get(p, ()) if applied.get(op) not in (None, "ok"))
            for p in PATTERNS
        }
        result["rejected_payments"] = sum(1 for code in applied.values() if code != "ok")
        result["rules"] = rules_runnable(fma_views, rules)
        result["watchlist_queries"] = len(watch.get("_queries", []))
        result["access_records"] = sum(1 for _, t in store.traces() if t.op_id.startswith("access:"))
        store.close()
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(workdir + "-holders", ignore_errors=True)
        shutil.rmtree(workdir + "-parties", ignore_errors=True)


def role_parties(role: str, parties: Path, store) -> list[PartyKey]:
    """The key files a role of the matrix holds: its own (the FMA's, the central bank's, a bank's)."""
    path = parties / (role.replace(":", "-") + ".key")
    return [read_party_file(path, store.meta().ledger_id)] if path.exists() else []


def escrow_plan(mode: str, workdir: str) -> EscrowPlan | None:
    """The escrowed run's holders (2 of 3), their shares in a directory of their own beside the keystore."""
    if mode != "escrowed":
        return None
    holders = Path(workdir).parent / (Path(workdir).name + "-holders")
    holders.mkdir(mode=0o700)
    return EscrowPlan(tuple((h, holders / f"{h}.share") for h in ("central_bank", "fma", "court")), 2)


# ---- the FMA's lawful access and detectors ------------------------------------------------------------------


def watchlist(mode: str, pilot: Pilot, store, parties: Path, access: Access) -> dict:
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
        own = role_parties(f"bank:{bank}" if bank != cb else "central_bank", parties, store)
        if not own or own[0].pseudonym_root is None:
            continue
        access.log("watchlist", "*", "watchlist", "AML watchlist: officials, listed miners, licensed firms",
                   "fma", f"bank {bank} gave pseudonyms of {len(handles)} listed accounts", handles)  # fmt: skip
        out["_queries"].append(bank)
        root = own[0].pseudonym_root  # the bank answers with its own key
        for e in epochs:
            k = epoch_key(root, e)
            for h in handles:
                out[(e, pseudonym(k, h))] = h
    return out


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


def _opt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_table(result: dict) -> str:
    spread = result.get("spread", {}).get("modes", {})

    def pm(mode: str, path: tuple[str, ...], value: float, fmt: str) -> str:
        """The value, with ± half its range over the seeds when several ran."""
        node = spread.get(mode, {})
        for key in path:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        half = f"{(node[1] - node[0]) / 2:{fmt}}" if isinstance(node, list) else ""
        return f"{value:{fmt}}±{half}" if half and float(half) else f"{value:{fmt}}"

    seeds = result.get("seeds", [result["seed"]])
    lines = [
        f"Privacy / anti-corruption matrix: seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}, "
        f"{result['people']} people, {result['payments']} payments in {result['seconds']} s; planted patterns: "
        + ", ".join(f"{name} {count:g}" for name, count in result["planted"].items()),
        "",
        "mode               role          payer-link payee-link amounts  anon.set  entropy",
    ]
    for mode, r in result["modes"].items():
        for role, m in r["roles"].items():
            cells = [
                pm(mode, ("roles", role, "linkable_pairs"), m["linkable_pairs"], ".2f").rjust(10),
                pm(mode, ("roles", role, "payee_linkable_pairs"), m["payee_linkable_pairs"], ".2f").rjust(10),
                pm(mode, ("roles", role, "amounts_read"), m["amounts_read"], ".2f").rjust(8),
                pm(mode, ("roles", role, "anonymity_set"), m["anonymity_set"], ".1f").rjust(9),
                pm(mode, ("roles", role, "entropy_bits"), m["entropy_bits"], ".2f").rjust(8),
            ]
            lines.append(f"{mode:<18} {role:<13} " + " ".join(cells))
    lines += [
        "",
        "Detection from the stored trace, by role and pattern: recall / precision / false alarms",
        "(recall -: the policy set stopped every planted payment; precision -: nothing flagged):",
    ]
    lines.append("mode               role          " + "".join(f"{p:<20}" for p in PATTERNS))
    for mode, r in result["modes"].items():
        for role, d in r["detection"].items():
            cells = [f"{_opt(d[p]['recall'])} / {_opt(d[p]['precision'])} / {d[p]['false_alarms']:g}".ljust(20)
                     for p in PATTERNS]  # fmt: skip
            lines.append(f"{mode:<18} {role:<13} " + "".join(cells))
    lines.append("Stopped at apply time by the policy set (every mode; the engine sees each operation): " + ", ".join(
        f"{p} {n:g}" for p, n in next(iter(result["modes"].values())).get("prevented", {}).items()))  # fmt: skip
    lines += ["", "Rules still running on what the FMA sees, and metadata any reader gets without a key:"]
    lines.append("mode               rules   rule names in clear  sealed length classes  unique times")
    for mode, r in result["modes"].items():
        running = sum(1 for s in r["rules"].values() if s >= 0.999)
        md = r["metadata"]
        lines.append(f"{mode:<18} {running:>2}/{len(r['rules']):<4} {md['rule_names_clear']:>19.2f} "
                     f"{md['sealed_length_classes']:>22g} {md['unique_times']:>13.2f}")  # fmt: skip
    lines.append("")
    lines.append(
        "payer-/payee-link: share of same-payer / same-payee payment pairs the role can link; amounts: share"
    )
    lines.append(
        "it can read; anon.set / entropy: payer anonymity set size and bits. The FMA detects with its lawful"
    )
    lines.append(
        "access (watchlist answers from banks); other roles with what they decode alone. Detector settings:"
    )
    lines.append("tenge_ledger/lab/detectors.py, independent of the generator's ranges (pilot.PlantRanges).")
    lines.append(f"(rules from the {result['rules_source']}).")
    return "\n".join(lines)


# ---- several seeds ---------------------------------------------------------------------------------------------


def run_seeds(
    seed: int = 7,
    seeds: int = 1,
    people: int = 1000,
    policy: str | None = None,
    on_mode_done: Callable[[str], None] | None = None,
) -> dict:
    """The matrix over `seeds` consecutive seeds: every figure is the mean, and `spread` holds [min, max] of each."""
    runs = [run(seed + i, people, policy, on_mode_done) for i in range(seeds)]
    if seeds == 1:
        return runs[0]
    out = _mean(runs)
    out["seeds"] = [r["seed"] for r in runs]
    out["seed"] = seed
    out["spread"] = {"modes": _range([r["modes"] for r in runs])}
    out["seconds"] = round(sum(r["seconds"] for r in runs), 2)
    return out


def _mean(values: list):
    first = values[0]
    if isinstance(first, dict):
        return {k: _mean([v[k] for v in values]) for k in first}
    if isinstance(first, bool) or not isinstance(first, (int, float)) or any(v is None for v in values):
        nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if isinstance(first, (int, float, type(None))) and nums and not isinstance(first, bool):
            return round(sum(nums) / len(nums), 4)  # a precision that is undefined in some seeds
        return first
    return round(sum(values) / len(values), 4)


def _range(values: list):
    first = values[0]
    if isinstance(first, dict):
        return {k: _range([v[k] for v in values]) for k in first}
    nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return [min(nums), max(nums)] if nums else None
