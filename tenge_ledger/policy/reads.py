"""The data-access manifest of a policy set: for each rule, every field it reads. Privacy reviewers read it;
the privacy modes use it to say which rules can run on what a mode reveals."""

from __future__ import annotations

from .check import CheckedSet

# What each read exposes, for the manifest's legend.
READ_CLASSES = {
    "op.": "operation (kind, amount, tag, memo, time)",
    ".handle": "identity of a party",
    ".attr.": "attributes of a party (licences, zone, lists)",
    ".history.": "windowed aggregates of a party's own history",
    ".balance": "balances of a party",
    "list ": "a reference list of the set (inline or a CSV file hashed with it)",
    "table ": "a reference table of the set (inline or a CSV file hashed with it)",
}


def manifest(checked: CheckedSet) -> list[dict]:
    out = []
    for r in sorted(checked.rules, key=lambda r: (r.file, r.rule.line)):
        out.append(
            {
                "rule": r.rule.name,
                "file": r.file,
                "line": r.rule.line,
                "kinds": list(r.kinds),
                "reads": list(r.reads),
                "cost": r.cost,
                "identity": any(x.endswith(".handle") for x in r.reads),
                "history": any(".history." in x for x in r.reads),
                "attributes": sorted({x for x in r.reads if ".attr." in x}),
                "data": [
                    {
                        "kind": d.kind,
                        "name": d.name,
                        "entries": len(d.values),
                        "file": d.source,
                        "sha256": d.sha256,
                    }
                    for d in r.data
                ],
            }
        )
    return out


def reads_by_rule(checked: CheckedSet) -> dict[str, tuple[str, ...]]:
    return {r.rule.name: r.reads for r in checked.rules}
