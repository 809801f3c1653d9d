"""What each policy rule reads, for the matrix's "which rules can still run" column.

The interface is small: rule name -> the trace fields it reads (payer, payee, amount, tag, memo). When the policy
language's data-access manifest is available (`tenge_ledger.policy.reads`), a policy file's rules are read from
it; otherwise (or with no file) the sample anti-corruption rule set below is used, and the matrix says which.
"""

from __future__ import annotations

from collections.abc import Iterable

from .visibility import FIELDS

RuleReads = dict[str, frozenset[str]]

SAMPLE_RULES: RuleReads = {
    "earmark-to-licensed-payee": frozenset({"tag", "payee"}),
    "structuring-under-threshold": frozenset({"payer", "amount"}),
    "income-structuring": frozenset({"payee", "amount"}),
    "kickback-to-official": frozenset({"payer", "payee", "amount"}),
    "gray-miner-block": frozenset({"payee"}),
    "large-payment-report": frozenset({"amount"}),
    "memo-keywords": frozenset({"memo"}),
}

# How the policy language names what it reads, mapped onto trace fields.
_ALIASES = {
    "payer": "payer",
    "payee": "payee",
    "amount": "amount",
    "amount_tiyn": "amount",
    "tag": "tag",
    "memo": "memo",
}


def to_fields(names: Iterable[str]) -> frozenset[str]:
    """Map manifest entries (`payer.kind`, `payee.attrs.licence`, `amount`, `window(payer, ...)`) to fields."""
    out = set()
    for name in names:
        head = str(name).replace("(", ".").split(".")[0].strip().lower()
        field = _ALIASES.get(head)
        if field is None:
            for f in FIELDS:
                if f in str(name).lower():
                    field = f
        if field is not None:
            out.add(field)
    return frozenset(out)


def rules_from_policy(path: str | None) -> tuple[RuleReads, str]:
    """(rule -> fields, where it came from)."""
    if path is None:
        return SAMPLE_RULES, "sample rule set"
    from pathlib import Path

    from ..core.errors import InputError

    try:
        from ..policy import reads  # the policy language's data-access manifest (issue 3)
    except ImportError:
        raise InputError("the policy language's data-access manifest is not available yet") from None
    text = Path(path).read_text()
    manifest = None
    for name in ("manifest", "reads_of", "rule_reads", "data_access"):
        fn = getattr(reads, name, None)
        if fn is not None:
            manifest = fn(text)
            break
    if manifest is None:
        raise InputError("tenge_ledger.policy.reads offers no manifest function this version knows")
    items = manifest.items() if isinstance(manifest, dict) else ((r.name, r.reads) for r in manifest)
    return {str(rule): to_fields(fields) for rule, fields in items}, path
