"""`tenge policy ...`: check, test, fmt, reads, explain, and enabling / disabling / versioning a ledger's set.

`check`, `test`, `fmt` and `reads` need no ledger; the others work on the ledger `--db` names. Problems in
policy files are TengeErrors (PolicyError): the group prints them, every one located, and exits 1."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from tenge_ledger.core.errors import InputError, TengeError
from tenge_ledger.core.money import format_tiyn
from tenge_ledger.core.text import shown

from .context import Context, emit, pass_ledger


@contextmanager
def _located(paths: tuple[str, ...] | list[str]) -> Iterator[None]:
    """Policy errors raised inside name each file by the path the author gave (`rules/bad.policy:3:8`), not by
    the bare name a set keys its files by, which the author's shell may not open."""
    from tenge_ledger.policy import PolicyError

    try:
        yield
    except PolicyError as exc:
        raise exc.located(_paths_by_name(paths)) from None


def _paths_by_name(paths: tuple[str, ...] | list[str]) -> dict[str, str]:
    from tenge_ledger.policy.sets import policy_files

    return {f.name: str(f) for f in policy_files(list(paths))}


@click.group()
def policy() -> None:
    """The policy language: rules every payment passes through.

    \b
    Example:
      tenge policy check policies/
      tenge --db pilot.db policy enable policies/
    """


@policy.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@pass_ledger
def check(obj: Context, paths: tuple[str, ...]) -> None:
    """Parse and check policy files (or directories of *.policy): every error, located, exit 1 if any.

    \b
    Example:
      tenge policy check policies/
    """
    from tenge_ledger.policy import PolicyError, parse_and_check, read_sources
    from tenge_ledger.policy.data import DATA_SUFFIX

    files = read_sources(list(paths))
    try:
        with _located(paths):
            checked = parse_and_check(files)
    except PolicyError as exc:
        if obj.json:  # machine-readable diagnostics for editors and CI, still exit 1
            click.echo(json.dumps({"ok": False, "errors": [d.to_json() for d in exc.diagnostics]}, indent=2))
            raise SystemExit(1) from None
        raise
    data = [name for name in files if name.endswith(DATA_SUFFIX)]
    where = _paths_by_name(paths)  # warnings, like errors, name each file by the path given
    located = [dataclasses.replace(w, file=where.get(w.file, w.file)) for w in checked.warnings]
    warnings = [w.render() for w in located]
    emit(
        obj,
        {"ok": True, "files": sorted(files), "rules": len(checked.rules),
         "warnings": [w.to_json() for w in located]},
        "\n".join([*warnings, f"ok: {len(files) - len(data)} files, {len(checked.rules)} rules"
                    + (f", {len(data)} data files" if data else "")
                    + (f", {len(warnings)} warnings" if warnings else "")]),
    )  # fmt: skip


@policy.command("test")
@click.argument("path", type=click.Path(exists=True))
@click.option("--coverage", "with_coverage", is_flag=True,
              help="Also list rules that never fired, and conditions never true or never false, in the specs.")  # fmt: skip
@pass_ledger
def test_(obj: Context, path: str, with_coverage: bool) -> None:
    """Run spec files (*.spec.toml): starting state, operation, expected decision, postings and reports.

    \b
    Example:
      tenge policy test policies/
      tenge policy test policies/ --coverage
    """
    from tenge_ledger.policy.specs import Coverage, run_path

    coverage = Coverage() if with_coverage else None
    results = run_path(path, spec_ledger, coverage)
    failed = [r for r in results if not r.ok]
    data = {
        "passed": len(results) - len(failed),
        "failed": len(failed),
        "cases": [{"spec": r.spec, "name": r.name, "ok": r.ok, "problems": r.problems} for r in results],
    }
    if coverage is not None:
        data["coverage"] = coverage.report()

    def text() -> str:
        lines = []
        for r in results:
            lines.append(f"{'ok  ' if r.ok else 'FAIL'} {shown(r.spec)}: {shown(r.name)}")
            lines += [f"       {shown(p)}" for p in r.problems]
        lines.append(f"{data['passed']} passed, {data['failed']} failed")
        if coverage is not None:
            c = data["coverage"]
            lines.append(f"coverage: {c['fired']} of {c['rules']} rules fired; {c['clauses']} conditions, "
                         f"{len(c['never_true'])} never true, {len(c['never_false'])} never false")  # fmt: skip
            lines += [
                f"  never fired: {shown(x['file'])}:{x['line']} {shown(x['rule'])}" for x in c["never_fired"]
            ]
            lines += [f"  never true:  {shown(x['file'])}:{x['line']} {x['clause']} of {shown(x['rule'])}"
                      for x in c["never_true"]]  # fmt: skip
            lines += [f"  never false: {shown(x['file'])}:{x['line']} {x['clause']} of {shown(x['rule'])}"
                      for x in c["never_false"]]  # fmt: skip
        return "\n".join(lines)

    emit(obj, data, text)
    if failed:
        raise SpecsFailed(f"{len(failed)} of {len(results)} spec cases failed")


def spec_ledger(central_bank: str, key_hex: str, engine, clock):
    """A fresh in-memory ledger for one spec case, with `engine` deciding."""
    from tenge_ledger.ledger.service import Ledger
    from tenge_ledger.store.sqlite import SqliteStore

    store = SqliteStore(":memory:", create=True)
    Ledger.create(store, "spec", key_hex, central_bank, clock=clock)
    return Ledger(store, policy=engine, clock=clock)


class SpecsFailed(TengeError):
    """Some spec cases did not get the decision they expect."""


@policy.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--check", "check_only", is_flag=True, help="Change nothing; exit 1 if a file is not formatted."
)
@click.option("--upgrade", is_flag=True,
              help='Also declare every attribute read without a schema (attr KEY: string default "").')  # fmt: skip
@pass_ledger
def fmt(obj: Context, paths: tuple[str, ...], check_only: bool, upgrade: bool) -> None:
    """Rewrite policy files in the canonical layout (idempotent); --upgrade also makes what the language
    of an earlier version left implicit explicit, without changing a decision.

    \b
    Example:
      tenge policy fmt policies/
      tenge policy fmt --upgrade policies/
    """
    from tenge_ledger.policy.format import format_source, upgrade_source
    from tenge_ledger.policy.sets import read_policy_text

    changed = []
    for raw in paths:
        p = Path(raw)
        for file in sorted(p.glob("*.policy")) if p.is_dir() else [p]:
            source = read_policy_text(file)
            formatted = (upgrade_source if upgrade else format_source)(source, str(file))
            if formatted != source:
                changed.append(str(file))
                if not check_only:
                    file.write_text(formatted, encoding="utf-8")
    verb = "would reformat" if check_only else "reformatted"
    emit(obj, {"changed": changed}, "\n".join(f"{verb} {shown(c)}" for c in changed) or "all files formatted")
    if check_only and changed:
        raise InputError(f"{len(changed)} files are not formatted; run tenge policy fmt")


@policy.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@pass_ledger
def reads(obj: Context, paths: tuple[str, ...]) -> None:
    """The data-access manifest: for each rule, every field it reads (identity, attributes, history, ...).

    \b
    Example:
      tenge policy reads policies/ --json
    """
    from tenge_ledger.policy import parse_and_check, read_sources
    from tenge_ledger.policy.reads import manifest

    with _located(paths):
        rows = manifest(parse_and_check(read_sources(list(paths))))

    def text() -> str:
        lines = []
        for r in rows:
            lines.append(
                f"{shown(r['file'])}:{r['line']}: {shown(r['rule'])}  (on {', '.join(r['kinds'])}; cost {r['cost']})"
            )
            lines += [f"    reads {shown(x)}" for x in r["reads"]]
            for d in r["data"]:
                where = f"{d['file']} sha256:{d['sha256'][:16]}" if d["file"] else "inline"
                lines.append(
                    f"    data {d['kind']} {shown(d['name'])}: {d['entries']} entries, {shown(where)}"
                )
        return "\n".join(lines)

    emit(obj, rows, text)


@policy.command()
@click.argument("operation_id")
@pass_ledger
def explain(obj: Context, operation_id: str) -> None:
    """Which rules matched an applied operation, which decided, with their messages, and the set's id.

    \b
    Example:
      tenge policy explain 6f1c0e...
    """

    from .reads import find_operation

    store = obj.ledger().store
    stored = find_operation(store, operation_id)
    if stored is None:
        raise InputError(
            f"no applied operation {operation_id!r}: a rejected operation is not journaled; its result code and"
            " the denying rules' reasons were the answer to its submission, and its trace record is in the trace log"
        )
    decision = json.loads(stored.decision or "{}")
    if decision.get("policy_version") and not decision.get(
        "policy_set_id"
    ):  # no rule decided: only the version
        version = decision["policy_version"]
        known = [h for h in store.meta().settings.get("policy_history", []) if h.get("version") == version]
        decision["policy_set_id"] = (
            known[0]["id"] if known else f"version {version} (no longer in the history)"
        )
    _, postings = next(iter(store.journal(after_seq=stored.seq - 1)))  # its postings as written
    matched = [m["rule"] for m in (decision.get("detail") or {}).get("matched", [])]
    history = _history_reads(store.meta().settings, decision.get("policy_set_id"), matched)
    detail = decision.get("detail") or {}
    unseen = _kind_unseen(store, stored.kind, decision, detail)
    data = {"id": stored.op_id, "seq": stored.seq, "kind": stored.kind, "message": stored.message, **decision,
            "postings": [[p.account, p.amount_tiyn, p.tag] for p in postings], "history_reads": history,
            "unseen": unseen}  # fmt: skip

    def text() -> str:
        # every text here comes from the ledger or a policy, not from the person reading: shown escaped
        lines = [f"#{stored.seq} {stored.kind}: {shown(stored.message)}",
                 f"policy set: {decision.get('policy_set_id') or 'none enabled'}"
                 + (f" (version {v})" if (v := detail.get("version") or decision.get("policy_version")) else "")]  # fmt: skip
        if unseen:
            lines.append(unseen)
        elif not detail:
            lines.append("no rule matched" if decision.get("policy_set_id") else "no policies were enabled")
        if detail.get("evaluated") is not None:
            lines.append(f"rules evaluated: {detail['evaluated']}")
        for m in detail.get("matched", []):
            lines.append(f"matched {shown(m['rule'])} ({shown(m['file'])}:{m['line']})")
            lines += [f"    read {shown(r)}" for r in history.get(m["rule"], ())]
            lines += [f"    {shown(e)}" for e in m["effects"]]
        for e in detail.get("errors", []):
            lines.append(f"failed {shown(e['rule'])} ({shown(e['file'])}:{e['line']}): {shown(e['error'])}")
        if detail.get("applied_in_order"):
            lines.append(f"reshaped by, in order: {shown(', '.join(detail['applied_in_order']))}")
        if decision.get("rules"):
            lines.append(f"decided by: {shown(', '.join(decision['rules']))}")
        lines += [f"note: {shown(r)}" for r in decision.get("reasons", [])]
        lines += [f"report to {shown(r['agency'])}: {shown(r['reason'])} [{shown(r['rule'])}]"
                  for r in decision.get("reports", [])]  # fmt: skip
        lines += [f"posting {format_tiyn(p.amount_tiyn):>14} KZT{f' [{p.tag}]' if p.tag else ''} {p.account}"
                  for p in postings]  # fmt: skip
        return "\n".join(lines)

    emit(obj, data, text)


def _kind_unseen(store, kind: str, decision: dict, detail: dict) -> str | None:
    """Why no rule could have seen an operation of `kind`, when none could: the ledger does not ask about that
    kind, or the policy set enabled when it applied has no rule on it. None when some rule could."""
    from tenge_ledger.core.records import DECIDED_KINDS
    from tenge_ledger.policy import PolicyError, parse_and_check

    decided = [k.value for k in DECIDED_KINDS]
    if kind not in decided:
        return (f"no rule sees an operation of kind {kind}: the ledger asks the policy set about "
                f"{', '.join(decided)} only")  # fmt: skip
    version = detail.get("version") or decision.get("policy_version")
    if detail.get("matched") or detail.get("errors") or version is None:
        return None
    history = store.meta().settings.get("policy_history", [])
    files = next(
        (h.get("files") for h in reversed(history) if h.get("version") == version and h.get("files")), None
    )
    if not files:
        return None
    try:
        checked = parse_and_check(files)
    except PolicyError:
        return None  # a set that no longer checks: its decisions denied, and say so themselves
    if any(kind in r.kinds for r in checked.rules):
        return None
    return f"no rule of the policy set (version {version}) sees an operation of kind {kind}"


def _history_reads(settings: dict, policy_set_id: str | None, rules: list[str]) -> dict[str, list[str]]:
    """The history windows (with their tag and counterparty filters) each of `rules` read, from the set that
    decided as kept in the ledger's policy history; nothing when that set is no longer there or does not check."""
    from tenge_ledger.policy import PolicyError, parse_and_check

    if not rules or not policy_set_id:
        return {}
    files = next(
        (h.get("files") for h in settings.get("policy_history") or [] if h.get("id") == policy_set_id), None
    )
    if not files:
        return {}
    try:
        checked = parse_and_check(files)
    except PolicyError:
        return {}
    return {
        r.rule.name: [x for x in r.reads if ".history." in x] for r in checked.rules if r.rule.name in rules
    }


@policy.command("diff")
@click.argument("old", type=click.Path(exists=True))
@click.argument("new", type=click.Path(exists=True))
@click.option("--recent", type=click.IntRange(0, 100_000), default=0,
              help="Also decide the ledger's N latest operations again (the ledger --db names).")  # fmt: skip
@pass_ledger
def diff_(obj: Context, old: str, new: str, recent: int) -> None:
    """Which decisions change between two policy sets (files or directories), over generated boundary cases
    (amounts at and around every constant, each tier, kind, tag and attribute value; every kind of operation a
    rule can see, the lifecycle ones too) and, with --recent
    N, the ledger's latest operations (payments, seizures, freezes and accounts opened): each difference once, with
    a count and an example operation.

    \b
    Example:
      tenge policy diff policies/ proposed/
      tenge --db pilot.db policy diff policies/ proposed/ --recent 1000
    """
    from tenge_ledger.policy import analysis, compile_sources, read_sources
    from tenge_ledger.policy.analysis import boundary_cases, ledger_cases

    engines = []
    for path in (old, new):
        with _located([path]):
            engines.append(compile_sources(read_sources([path])))
    old_engine, new_engine = engines
    found: dict = {}
    cases = list(boundary_cases([old_engine.checked, new_engine.checked]))
    analysis.diff(old_engine, new_engine, cases, "generated", found)
    replayed = 0
    if recent:
        filters = (
            old_engine.filters | new_engine.filters
        )  # replayed from the journal where the ledger keeps none
        counted = [0]

        def replayed_cases():
            # decided while ledger_cases keeps its read transaction open: its views read through it
            for case in ledger_cases(obj.ledger().store, recent, filters):
                counted[0] += 1
                yield case

        analysis.diff(old_engine, new_engine, replayed_cases(), "ledger", found)
        replayed = counted[0]
    rows = sorted(found.values(), key=lambda d: (-d.count, d.change))
    data = {"cases": {"generated": len(cases), "ledger": replayed}, "differences": [
        {"change": d.change, "count": d.count, "sources": sorted(d.sources), "old": d.old, "new": d.new,
         "example": d.example} for d in rows]}  # fmt: skip

    def text() -> str:
        lines = [f"{len(cases)} generated cases" + (f" and {replayed} ledger operations" if recent else "")
                 + f" decided by both sets: {sum(d.count for d in rows)} differ, in {len(rows)} ways"]  # fmt: skip
        for d in rows:
            e = d.example
            parties = " -> ".join(
                f"{p['kind']}{'' if p['tier'] is None else ' tier ' + str(p['tier'])} {p['handle']}"
                for p in (e["payer"], e["payee"])
                if p
            )
            lines.append(f"{d.change}  x{d.count}  (rules {', '.join(d.old['rules']) or '-'} -> "
                         f"{', '.join(d.new['rules']) or '-'})")  # fmt: skip
            amount = "" if e["amount_tiyn"] is None else f" {format_tiyn(e['amount_tiyn'])} KZT"
            lines.append(f"    e.g. {e['kind']}{amount}{' [' + e['tag'] + ']' if e['tag'] else ''}"
                         f" {parties}")  # fmt: skip
        return "\n".join(shown(line, 1_000) for line in lines)

    emit(obj, data, text)


@policy.command("explain-error")
@click.argument("code", required=False)
@pass_ledger
def explain_error(obj: Context, code: str | None) -> None:
    """What an error code of the policy language means, with an example and the diagnostic it gives; without a
    code, the list of codes.

    \b
    Example:
      tenge policy explain-error E012
    """
    from tenge_ledger.policy import PolicyError, parse_and_check
    from tenge_ledger.policy.codes import BY_CODE, CODES

    if code is None:
        rows = [{"code": c.code, "title": c.title} for c in CODES]
        emit(obj, rows, "\n".join(f"{r['code']}  {r['title']}" for r in rows))
        return
    entry = BY_CODE.get(code.upper())
    if entry is None:
        raise InputError(f"no error code {shown(code)!r}; `tenge policy explain-error` lists them")
    found: list[str] = []
    if entry.example:
        try:
            checked = parse_and_check({"example.policy": entry.example})
            found = [w.render() for w in checked.warnings]
        except PolicyError as exc:
            found = [d.render() for d in exc.diagnostics]
    data = {"code": entry.code, "title": entry.title, "explanation": entry.explanation, "example": entry.example,
            "diagnostics": found}  # fmt: skip
    text = [f"{entry.code}: {entry.title}", "", entry.explanation]
    if entry.example:
        text += ["", "Example (example.policy):", *(f"    {line}" for line in entry.example.splitlines()), "",
                 "gives:", *found]  # fmt: skip
    emit(obj, data, "\n".join(text))


@policy.command("enable")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--version", "version", type=int, help="Re-enable an earlier version from the history instead.")
@pass_ledger
def enable_(obj: Context, paths: tuple[str, ...], version: int | None) -> None:
    """Check and enable a policy set on the ledger, as a new version. A rejected set changes nothing.

    \b
    Example:
      tenge --db pilot.db policy enable policies/
    """
    from tenge_ledger.policy import read_sources
    from tenge_ledger.policy.sets import enable, enable_version

    store = obj.ledger().store
    if version is not None:
        if paths:
            raise InputError("give policy files or --version, not both")
        out = enable_version(store, version, int(time.time()))
    elif not paths:
        raise InputError("name the policy files or directories to enable, or --version N")
    else:
        with _located(paths):
            out = enable(store, read_sources(list(paths)), int(time.time()))
    text = (f"enabled policy set version {out['version']} ({out['id'][:16]}…, {out.get('rules', '?')} rules)"
            if out["changed"] else f"already enabled as version {out['version']}")  # fmt: skip
    if version is not None and out["changed"]:
        text += f", the set of version {version} (history keeps every version; nothing is rewritten)"
    text = "\n".join([*out.get("warnings", []), text])
    emit(obj, out, text)


@policy.command("disable")
@pass_ledger
def disable_(obj: Context) -> None:
    """Disable the ledger's policy set: built-in checks only from now on.

    \b
    Example:
      tenge --db pilot.db policy disable
    """
    from tenge_ledger.policy.sets import disable

    out = disable(obj.ledger().store, int(time.time()))
    emit(obj, out, f"disabled version {out['version']}" if out["changed"] else "no policy set was enabled")


@policy.command("list")
@pass_ledger
def list_(obj: Context) -> None:
    """The enabled policy set and the history of versions enabled and disabled.

    \b
    Example:
      tenge --db pilot.db policy list
    """
    from tenge_ledger.policy.sets import history

    settings = obj.ledger().store.meta().settings
    current = settings.get("policy_set")
    past = [{k: v for k, v in h.items() if k != "files"} | {"files": sorted(h.get("files") or {})}
            for h in history(settings)]  # fmt: skip
    data = {
        "enabled": {"id": current["id"], "version": current["version"], "files": sorted(current["files"])}
        if current
        else None,
        "history": past,
    }

    def text() -> str:
        lines = [f"enabled: version {current['version']} {current['id']}" if current else "enabled: none"]
        for h in past:
            lines.append(
                f"  v{h['version']} {h['action']:<8} {h['id'][:16]}… {shown(', '.join(h['files']))} "
                f"{shown(h.get('note', ''))}"
            )
        return "\n".join(lines)

    emit(obj, data, text)
