"""Who sees what, per privacy mode: the one source of truth.

`VISIBILITY[variant][role][field]` is the level at which `role` reads `field` of a stored trace record of that
variant (a mode, or `tiered.small` / `tiered.large` for the two kinds of `tiered` record). The views
(`privacy.views`), the parametrized test and the docs all read this table; the test checks that what each role
can actually decode with the keys it holds equals the table, field by field.

Levels, weakest first:
- `none`: the role learns nothing of the field;
- `one_time`: a token that differs on every record (payments cannot be linked);
- `pseudonym`: a token stable within an epoch (payments of the same account in an epoch can be linked);
- `clear`: the value itself.

Roles are relative to a record: `payer_bank` / `payee_bank` are the commercial bank serving that party (the
central bank serves accounts that no commercial bank serves), `payer` / `payee` the counterparties.
"""

from __future__ import annotations

LEVELS: tuple[str, ...] = ("none", "one_time", "pseudonym", "clear")
RANK = {level: i for i, level in enumerate(LEVELS)}

FIELDS: tuple[str, ...] = ("payer", "payee", "amount", "tag", "memo")
ROLES: tuple[str, ...] = ("central_bank", "fma", "payer_bank", "payee_bank", "payer", "payee", "public")
MODES: tuple[str, ...] = (
    "transparent",
    "pseudonymous",
    "tiered",
    "payee-transparent",
    "escrowed",
    "selective",
)
VARIANTS: tuple[str, ...] = (
    "transparent",
    "pseudonymous",
    "tiered.small",
    "tiered.large",
    "payee-transparent",
    "escrowed",
    "selective",
)

MODE_SUMMARY: dict[str, str] = {
    "transparent": "everything in clear for the central bank and the FMA (the surveillance end)",
    "pseudonymous": "payer and payee as keyed BLAKE2b pseudonyms under epoch keys of their banks",
    "tiered": "small payments unlinkable within a monthly budget; larger ones pseudonymous, identity to the FMA",
    "payee-transparent": "payer seen only by the payer's bank; payee, amount and tag stay visible",
    "escrowed": "records sealed; a quorum of key holders opens one record, logged before it is read",
    "selective": "records sealed per account; readable only through what the holder discloses",
}


def _row(payer: str, payee: str, amount: str, tag: str, memo: str) -> dict[str, str]:
    return {"payer": payer, "payee": payee, "amount": amount, "tag": tag, "memo": memo}


NONE = _row("none", "none", "none", "none", "none")
ALL = _row("clear", "clear", "clear", "clear", "clear")

VISIBILITY: dict[str, dict[str, dict[str, str]]] = {
    "transparent": {
        "central_bank": ALL,
        "fma": ALL,
        "payer_bank": ALL,
        "payee_bank": ALL,
        "payer": ALL,
        "payee": ALL,
        "public": NONE,
    },
    "pseudonymous": {
        "central_bank": _row("pseudonym", "pseudonym", "clear", "clear", "none"),
        "fma": _row("pseudonym", "pseudonym", "clear", "clear", "none"),
        "payer_bank": _row("clear", "pseudonym", "clear", "clear", "none"),
        "payee_bank": _row("pseudonym", "clear", "clear", "clear", "none"),
        "payer": NONE,
        "payee": NONE,
        "public": NONE,
    },
    "tiered.small": {
        "central_bank": _row("one_time", "one_time", "clear", "clear", "none"),
        "fma": _row("one_time", "one_time", "clear", "clear", "none"),
        "payer_bank": _row("clear", "one_time", "clear", "clear", "none"),
        "payee_bank": _row("one_time", "clear", "clear", "clear", "none"),
        "payer": NONE,
        "payee": NONE,
        "public": NONE,
    },
    "tiered.large": {
        "central_bank": _row("pseudonym", "pseudonym", "clear", "clear", "none"),
        "fma": _row("clear", "clear", "clear", "clear", "none"),
        "payer_bank": _row("clear", "pseudonym", "clear", "clear", "none"),
        "payee_bank": _row("pseudonym", "clear", "clear", "clear", "none"),
        "payer": NONE,
        "payee": NONE,
        "public": NONE,
    },
    "payee-transparent": {
        "central_bank": _row("none", "clear", "clear", "clear", "none"),
        "fma": _row("none", "clear", "clear", "clear", "none"),
        "payer_bank": _row("clear", "clear", "clear", "clear", "none"),
        "payee_bank": _row("none", "clear", "clear", "clear", "none"),
        "payer": NONE,  # the payer cannot tell its own records in the trace (its wallet keeps them)
        "payee": _row("none", "clear", "clear", "clear", "none"),
        "public": NONE,
    },
    "escrowed": {role: NONE for role in ROLES},
    "selective": {
        "central_bank": NONE,
        "fma": NONE,
        "payer_bank": NONE,
        "payee_bank": NONE,
        "payer": ALL,
        "payee": ALL,
        "public": NONE,
    },
}

# What a quorum opening (escrowed) or a bank re-identification (pseudonymous, tiered) gives: the whole record.
UNMASK_ROUTE: dict[str, str] = {
    "transparent": "none needed: the record is in clear for the central bank and the FMA",
    "pseudonymous": "the bank of the account re-identifies a pseudonym (logged)",
    "tiered": "the bank re-identifies; the FMA reads identities of payments above the threshold (logged)",
    "payee-transparent": "the payer's bank names the payer (logged)",
    "escrowed": "k of n escrow key holders open one record (logged before it is read)",
    "selective": "only the account holder's disclosure (viewing key or signed receipt)",
}


def level(variant: str, role: str, field: str) -> str:
    return VISIBILITY[variant][role][field]


def strongest(levels) -> str:
    return max(levels, key=RANK.__getitem__, default="none")


def variant_of(mode: str, tier: str | None) -> str:
    return f"{mode}.{tier}" if mode == "tiered" else mode


def check_table() -> None:
    """The table is complete: every variant, role and field has a known level (run at import)."""
    for variant in VARIANTS:
        rows = VISIBILITY[variant]
        if set(rows) != set(ROLES):
            raise ValueError(f"visibility of {variant}: roles {sorted(rows)}")
        for role, row in rows.items():
            if set(row) != set(FIELDS) or not set(row.values()) <= set(LEVELS):
                raise ValueError(f"visibility of {variant} for {role}: {row}")


check_table()


def markdown() -> str:
    """The table as Markdown (docs/privacy.md holds this text; a test keeps the two equal)."""
    lines = []
    for variant in VARIANTS:
        lines.append(f"**{variant}**\n")
        lines.append("| role | " + " | ".join(FIELDS) + " |")
        lines.append("|---|" + "---|" * len(FIELDS))
        for role in ROLES:
            lines.append(f"| {role} | " + " | ".join(VISIBILITY[variant][role][f] for f in FIELDS) + " |")
        lines.append("")
    return "\n".join(lines)
