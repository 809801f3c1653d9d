"""What each policy rule reads, for the matrix's "which rules can still run" column.

The interface is small: rule name -> {trace field: the weakest level the rule needs}. A rule that reads a
party's attributes, kind, tier or balance needs that party's identity (`clear`); one that reads only its history
needs to link its payments (`pseudonym`); `op.amount`, `op.tag`, `op.memo` need the field in clear; `op.kind`
and other metadata are kept in clear by every mode. The reads come from the policy language's data-access
manifest (`tenge_ledger.policy.reads.reads_by_rule`) over a policy set (by default the repository's
`policies/`); the sample set below is used only when no policy set can be read, and the matrix says which.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path

from ..policies import shipped_policies
from ..privacy.visibility import RANK

RuleReads = dict[str, dict[str, str]]

SAMPLE_RULES: RuleReads = {
    "earmark-to-licensed-payee": {"tag": "clear", "payee": "clear"},
    "structuring-under-threshold": {"payer": "pseudonym", "amount": "clear"},
    "kickback-to-official": {"payer": "pseudonym", "payee": "clear", "amount": "clear"},
    "gray-miner-block": {"payee": "clear"},
    "large-payment-report": {"amount": "clear"},
    "memo-keywords": {"memo": "clear"},
}

DEFAULT_POLICIES = shipped_policies()
_OP_FIELDS = {"amount": "amount", "amount_tiyn": "amount", "tag": "tag", "memo": "memo"}


def needs(reads: Iterable[str]) -> dict[str, str]:
    """Map manifest reads (`payee.attr.licences`, `payer.history.out(24h)`, `op.amount`) to field needs."""
    out: dict[str, str] = {}

    def need(field: str, level: str) -> None:
        if RANK[level] > RANK[out.get(field, "none")]:
            out[field] = level

    for read in reads:
        head, _, rest = str(read).partition(".")
        if head == "op":
            field = _OP_FIELDS.get(rest.split("(")[0])
            if field:
                need(field, "clear")
        elif head in ("payer", "payee"):
            need(head, "pseudonym" if rest.startswith("history.") else "clear")
    return out


def rules_from_policy(path: str | None = None) -> tuple[RuleReads, str]:
    """(rule -> field needs, where they came from). `path`: a .policy file or a directory of them."""
    target = Path(path) if path else DEFAULT_POLICIES
    files = sorted(target.glob("*.policy")) if target.is_dir() else [target]
    if not files or not all(f.exists() for f in files):
        if path:
            from ..core.errors import InputError

            raise InputError("no policy files", where=str(path))
        return SAMPLE_RULES, "sample rule set (no policies/ found)"
    from ..policy import parse_and_check, read_sources
    from ..policy.reads import reads_by_rule

    checked = parse_and_check(read_sources([str(f) for f in files]))
    rules = {rule: needs(reads) for rule, reads in reads_by_rule(checked).items()}
    shown = target if target.is_dir() else files[0]
    where = shown.name + (
        "/" if shown.is_dir() else ""
    )  # a name, never an absolute path (reports are shared)
    with contextlib.suppress(ValueError):
        where = str(shown.resolve().relative_to(Path.cwd()))
    if not path:  # an installed copy's site-packages path says less than this
        where = "the shipped policies/"
    return rules, f"data-access manifest of {where} ({len(rules)} rules)"
