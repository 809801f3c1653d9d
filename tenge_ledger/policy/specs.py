"""Spec files: data that gives a starting state, an operation and the expected decision, postings and reports.

A spec is TOML (tomllib is in the standard library), next to the policy it tests: `05-freeze-list.spec.toml`
tests `05-freeze-list.policy` unless it names `policies = [...]` (paths relative to the spec). Each case runs
on a fresh in-memory ledger, through the real ledger service, so a spec checks what the ledger would do:

    [[accounts]]                      # opened before every case; balance is untagged KZT issued at setup
    handle = "miner-1"
    kind = "miner"
    balance = "1000"
    tagged = { "pilot:cryptocity" = "50" }   # tagged KZT issued at setup (expiry from [tag_expiry])

    setup = [{ kind = "update_account", handle = "miner-1", attrs = { fma_list = "gray-mining" } }]

    [[cases]]
    name = "a listed payer is denied and reported"
    at = "2026-03-02T10:00:00"        # ledger time of the operation
    history = [ { kind = "transfer", payer = "a", payee = "b", amount = "10", at = "2026-03-02T09:00:00" } ]
    op = { kind = "transfer", payer = "miner-1", payee = "shop", amount = "100" }
    expect = { code = "policy_denied", rules = ["fma-list-payer"], reports = [{ agency = "fma" }] }

`expect` may give code, rules (the deciding rules, as a set), reports (each a subset of agency/rule/reason),
postings ([account, "KZT", tag] as a multiset), held (a pending hold was created), holds ({hold id = status}:
pending, posted, voided or expired), message (a substring) and balances ({account = {tag = "KZT"}}, "" for
untagged). A sweep's `as_of` may be written as a time, like `at`."""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.canonical import operation_from_dict, parse_time
from ..core.errors import InputError
from ..core.hooks import Proposal
from ..core.money import format_tiyn, parse_amount
from ..core.records import CENTRAL_BANK_KINDS, AccountKind, Issue, OpenAccount, Operation
from ..core.text import shown
from .sets import POLICY_SUFFIX, compile_sources, read_sources

SPEC_SUFFIX = ".spec.toml"
CB = "nbk"
DEFAULT_BANK = "spec-bank"


@dataclass
class CaseResult:
    spec: str
    name: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Coverage:
    """What the specs exercised: how often each rule fired, and how often each `when` / `unless` clause was true
    and false, over every decision made while running them (setup and history included)."""

    fired: dict[tuple[str, str], int] = field(default_factory=dict)  # (file, rule) -> matches
    lines: dict[tuple[str, str], int] = field(default_factory=dict)  # (file, rule) -> line
    clauses: dict[tuple[str, str, int], list] = field(default_factory=dict)  # -> [line, negated, true, false]
    _probes: dict[int, list] = field(default_factory=dict)  # per engine (by id, while it runs)

    def register(self, engine) -> list:
        for r in engine.checked.rules:
            key = (r.file, r.rule.name)
            self.fired.setdefault(key, 0)
            self.lines[key] = r.rule.line
        probes = engine.probes()
        for p in probes:
            self.clauses.setdefault((p.file, p.rule, p.index), [p.line, p.negated, 0, 0])
        return probes

    def observe(self, probes: list, proposal: Proposal, view, decision) -> None:
        from .compile import Ctx

        detail = decision.detail or {}
        for match in detail.get("matched", []):
            key = (match["file"], match["rule"])
            self.fired[key] = self.fired.get(key, 0) + 1
        ctx = Ctx(proposal, view)
        for p in probes:
            if proposal.op.kind not in p.kinds:
                continue
            try:
                value = bool(p.function(ctx))
            except Exception:  # noqa: BLE001 - a clause that cannot be evaluated here is neither true nor false
                continue
            self.clauses[(p.file, p.rule, p.index)][2 if value else 3] += 1

    def report(self) -> dict:
        never_fired = sorted(({"file": f, "rule": r, "line": self.lines[(f, r)]} for (f, r), n in self.fired.items()
                              if n == 0), key=lambda x: (x["file"], x["line"]))  # fmt: skip
        never_true, never_false = [], []
        for (f, r, _clause), (line, negated, true, false) in sorted(self.clauses.items()):
            row = {"file": f, "rule": r, "line": line, "clause": "unless" if negated else "when"}
            if true == 0:
                never_true.append(row)
            if false == 0:
                never_false.append(row)
        return {"rules": len(self.fired), "fired": len(self.fired) - len(never_fired), "never_fired": never_fired,
                "clauses": len(self.clauses), "never_true": never_true, "never_false": never_false}  # fmt: skip


class _Recorder:
    """Wraps an engine to keep the last decision it made (a denied decision is not stored by the ledger), and
    to tell the coverage what each decision exercised."""

    def __init__(self, engine, coverage: Coverage | None = None, probes: list | None = None) -> None:
        self.engine = engine
        self.policy_set_id = engine.policy_set_id
        self.version = engine.version
        self.windows = engine.windows  # what the ledger prefetches per chunk ...
        self.filters = engine.filters  # ... and the counterparty-filtered flows it keeps for the set
        self.activity = engine.activity  # ... and whether it keeps the unfiltered flows' snapshots
        self.last = None
        self.coverage = coverage
        self.probes = probes or []

    def decide(self, proposal: Proposal, view):
        self.last = self.engine.decide(proposal, view)
        if self.coverage is not None:
            self.coverage.observe(self.probes, proposal, view, self.last)
        return self.last


def find_specs(path: str | Path) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        found = sorted(p.glob(f"*{SPEC_SUFFIX}"))
        if not found:
            raise InputError(f"no spec files (*{SPEC_SUFFIX}) in {p}")
        return found
    if p.is_file():
        if not p.name.endswith(SPEC_SUFFIX):
            raise InputError(f"{p} is not a spec file: give a *{SPEC_SUFFIX} file or a directory of them")
        return [p]
    raise InputError(f"no spec file or directory {p}")


# Builds a fresh ledger for a case: (central_bank, central_bank_key_hex, policy_engine, clock) -> Ledger.
# Handed in by the caller (the CLI, the tests), because the policy package does not reach up to the ledger.
LedgerFactory = Callable[[str, str, object, Callable[[], int]], Any]


def run_path(
    path: str | Path, new_ledger: LedgerFactory, coverage: Coverage | None = None
) -> list[CaseResult]:
    results: list[CaseResult] = []
    for spec in find_specs(path):
        results += run_spec(spec, new_ledger, coverage)
    return results


def run_spec(
    spec_path: Path, new_ledger: LedgerFactory, coverage: Coverage | None = None
) -> list[CaseResult]:
    try:
        doc = tomllib.loads(spec_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{spec_path}: not a TOML spec: {exc}") from None
    _known_keys(spec_path, "the spec", doc, _SPEC_KEYS)
    names = doc.get("policies") or [spec_path.name.removesuffix(SPEC_SUFFIX) + POLICY_SUFFIX]
    engine = compile_sources(read_sources(_policy_paths(spec_path, names)))
    cases = doc.get("cases") or []
    if not cases:
        raise InputError(f"{spec_path}: a spec has at least one [[cases]]")
    for i, case in enumerate(cases, 1):
        where = f"case {i} ({shown(case.get('name', '?'))})" if isinstance(case, dict) else f"case {i}"
        if not isinstance(case, dict):
            raise InputError(f"{spec_path}: {where} is not a table")
        _known_keys(spec_path, where, case, _CASE_KEYS)
        expect = case.get("expect") or {}
        if not isinstance(expect, dict):
            raise InputError(f"{spec_path}: {where}: expect is not a table")
        _known_keys(spec_path, f"{where}: expect", expect, _EXPECT_KEYS)
    probes = coverage.register(engine) if coverage is not None else None
    return [_run_case(spec_path.name, doc, case, engine, new_ledger, coverage, probes) for case in cases]


# What a spec may say, so that a misspelt key (`rule` for `rules` in an expectation) is an error, not a check
# silently skipped and a case that passes for nothing.
_SPEC_KEYS = frozenset({"policies", "cases", "accounts", "setup", "setup_at", "tag_expiry"})
_CASE_KEYS = frozenset({"name", "at", "history", "op", "expect"})
_EXPECT_KEYS = frozenset({"code", "rules", "reports", "postings", "held", "holds", "message", "balances"})


def _known_keys(spec_path: Path, where: str, table: dict, known: frozenset[str]) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise InputError(
            f"{spec_path}: {where}: unknown key {shown(unknown[0])!r}; one of: {', '.join(sorted(known))}"
        )


def _policy_paths(spec_path: Path, names: object) -> list[Path]:
    """The policy files a spec names, each a relative path to a file under the spec's own directory: a spec is
    data from anywhere, and must not make the runner read (and echo) any other file on the machine."""
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise InputError(f"{spec_path}: policies is a list of file names relative to the spec")
    home = spec_path.parent.resolve()
    out = []
    for name in names:
        path = (home / name).resolve()
        if Path(name).is_absolute() or not path.is_relative_to(home):
            raise InputError(
                f"{spec_path}: policies names {shown(name)!r}, outside the spec's directory; a spec reads "
                "only policy files under its own directory"
            )
        if not path.name.endswith(POLICY_SUFFIX) and not path.is_dir():
            raise InputError(f"{spec_path}: {shown(name)!r} is not a {POLICY_SUFFIX} file")
        out.append(path)
    return out


def _key(handle: str):
    import nacl.signing

    return nacl.signing.SigningKey(hashlib.sha256(handle.encode()).digest())


def _run_case(
    spec_name: str, doc: dict, case: dict, engine, new_ledger: LedgerFactory, coverage=None, probes=None
) -> CaseResult:
    result = CaseResult(spec_name, case.get("name", "?"))
    problems = result.problems
    now = [parse_time(doc.get("setup_at", "2026-01-01T00:00:00"))]
    recorder = _Recorder(engine, coverage, probes)
    ledger = new_ledger(CB, bytes(_key(CB).verify_key).hex(), recorder, lambda: now[0])
    store = ledger.store
    try:
        seq = [0]

        def apply(body_or_doc, what: str, signer: str | None = None):
            seq[0] += 1
            if isinstance(body_or_doc, dict):
                d = {k: v for k, v in body_or_doc.items() if k != "at"}
                d.setdefault("id", f"{what}-{seq[0]}")
                if isinstance(d.get("as_of"), str):  # a sweep's time, written as a time like `at`
                    d["as_of"] = parse_time(d["as_of"])
                op = operation_from_dict(d, what)
                if not op.signer:
                    op = Operation(op.id, _default_signer(op), op.body)
            else:
                op = Operation(f"{what}-{seq[0]}", signer or CB, body_or_doc)
            return op, ledger.apply(op, verified=True)

        accounts = doc.get("accounts") or []
        needs_bank = any(a.get("kind") in ("person", "merchant") and not a.get("bank") for a in accounts)
        opens = ([{"handle": DEFAULT_BANK, "kind": "bank"}] if needs_bank else []) + accounts
        expiry = doc.get("tag_expiry") or {}
        for a in opens:
            kind = AccountKind(a["kind"])
            bank = a.get("bank") or (DEFAULT_BANK if kind.value in ("person", "merchant") else None)
            body = OpenAccount(a["handle"], kind, bytes(_key(a["handle"]).verify_key).hex(), a.get("tier"), bank,
                               tuple(sorted((a.get("attrs") or {}).items())))  # fmt: skip
            _, r = apply(body, "open")
            if not r.succeeded:
                problems.append(f"setup: opening {a['handle']} failed: {r.code.value}: {r.message}")
        for a in accounts:
            money = [("", a["balance"])] if a.get("balance") else []
            money += list((a.get("tagged") or {}).items())
            for tag, amount in money:
                body = Issue(
                    a["handle"], parse_amount(str(amount)), tag or None, expiry.get(tag) if tag else None
                )
                _, r = apply(body, "fund")
                if not r.succeeded:
                    problems.append(f"setup: funding {a['handle']} failed: {r.code.value}: {r.message}")
        for i, h in enumerate(doc.get("setup") or []):
            _, r = apply(h, "setup")
            if not r.succeeded:
                problems.append(f"setup[{i}] failed: {r.code.value}: {r.message}")
        at = parse_time(case.get("at", "2026-03-02T10:00:00"))
        for i, h in enumerate(case.get("history") or []):
            now[0] = parse_time(h["at"]) if "at" in h else at - 3600 + i
            _, r = apply(h, "history")
            if not r.succeeded:
                problems.append(f"history[{i}] failed: {r.code.value}: {r.message}")
        if problems:
            return result
        now[0] = at
        recorder.last = None
        op, r = apply(case["op"], "op")
        _compare(case.get("expect") or {}, op, r, recorder.last, store, problems)
    except KeyError as exc:  # str() of a KeyError is the key's repr, which says nothing of what is wrong
        problems.append(f"bad spec: {exc.args[0]} is missing")
    except (InputError, ValueError) as exc:
        problems.append(f"bad spec: {exc}")
    finally:
        store.close()
    return result


def _default_signer(op: Operation) -> str:
    if op.kind in CENTRAL_BANK_KINDS:
        return CB
    payer = getattr(op.body, "payer", None)
    if payer is None:
        raise InputError(f"give the signer of a {op.kind.value}")
    return payer


def _compare(expect: dict, op: Operation, r, decision, store, problems: list[str]) -> None:
    code = expect.get("code", "ok")
    if r.code.value != code:
        problems.append(f"code: expected {code}, got {r.code.value} ({r.message})")
    if "message" in expect and expect["message"] not in r.message:
        problems.append(f"message: expected it to contain {expect['message']!r}, got {r.message!r}")
    if "rules" in expect:
        got = sorted(decision.rules) if decision is not None else []
        if sorted(expect["rules"]) != got:
            problems.append(f"rules: expected {sorted(expect['rules'])}, got {got}")
    if "reports" in expect:
        got_reports = list(r.reports)
        want = expect["reports"]
        if len(want) != len(got_reports):
            problems.append(f"reports: expected {len(want)}, got {got_reports}")
        else:
            for w in want:
                if not any(all(g.get(k) == v or (k == "reason" and v in g.get(k, "")) for k, v in w.items())
                           for g in got_reports):  # fmt: skip
                    problems.append(f"reports: no report like {w} in {got_reports}")
    if "postings" in expect:
        if r.seq is None:
            problems.append("postings: the operation was not applied")
        else:
            entries = list(store.journal(after_seq=r.seq - 1))
            got = sorted((p.account, p.amount_tiyn, p.tag) for p in entries[0][1])
            want = sorted((a, _signed_tiyn(amount), tag) for a, amount, tag in expect["postings"])
            if got != want:
                problems.append(f"postings: expected {_show(want)}, got {_show(got)}")
    if "held" in expect:
        held = any(h.hold_id == op.id and h.status == "pending" for h in store.holds())
        if held != expect["held"]:
            problems.append(f"held: expected {expect['held']}, got {held}")
    for hold_id, status in (expect.get("holds") or {}).items():
        hold = store.hold(hold_id)
        got_status = hold.status if hold is not None else "missing"
        if got_status != status:
            problems.append(f"hold {hold_id}: expected {status}, got {got_status}")
    for account, tags in (expect.get("balances") or {}).items():
        for tag, amount in tags.items():
            got_b = store.balances(account).get((account, tag), 0)
            if got_b != _signed_tiyn(amount):
                problems.append(
                    f"balance of {account} [{tag or 'untagged'}]: expected {amount}, got {format_tiyn(got_b)}"
                )


def _signed_tiyn(text: str) -> int:
    text = str(text)
    return (
        -parse_amount(text[1:])
        if text.startswith("-")
        else (0 if text in ("0", "0.00") else parse_amount(text))
    )


def _show(postings) -> str:
    return ", ".join(f"{a} {format_tiyn(v)}{' [' + t + ']' if t else ''}" for a, v, t in postings)
