"""Non-interference: two ledgers that differ only in a field hidden from a role give that role identical views;
and the same change in a field the role may see does change its view (the test can tell)."""

from __future__ import annotations

import pytest

from tenge_ledger.lab import sandbox
from tenge_ledger.privacy.visibility import MODES, VISIBILITY

OBSERVERS = {
    "central_bank": "central_bank",
    "fma": "fma",
    "payer_bank": "bank:b1",  # alice and carol are both b1's, so the relation is the same in both worlds
    "payee_bank": "bank:b2",
    "payee": "account:bob",
    "public": "public",
}
BASE = {"payer": "alice", "amount": 12_345, "memo": "lunch"}
CHANGED = {"payer": "carol", "amount": 54_321, "memo": "rent"}


def world(directory, mode: str, field: str, changed: bool, keys_from=None):
    values = dict(BASE)
    if changed:
        values[field] = CHANGED[field]
    box = sandbox.make(directory, mode, keys_from=keys_from)
    box.pay(values["payer"], "bob", values["amount"], "x1", tag="grant", memo=values["memo"])
    return box


def variant(mode: str) -> str:
    return "tiered.small" if mode == "tiered" else mode


def shape(view) -> dict:
    """The view, with one-time tokens (fresh randomness, independent of the data) replaced by their level."""
    return {f: (v.level, None if v.level == "one_time" else v.value) for f, v in view.fields.items()}


CASES = [(m, r, f) for m in MODES for r in OBSERVERS for f in ("payer", "amount", "memo")]


@pytest.mark.parametrize(("mode", "role", "field"), CASES, ids=["-".join(c) for c in CASES])
def test_changing_a_field__shows_only_where_the_table_allows(tmp_path, mode, role, field):
    first = world(tmp_path / "a", mode, field, changed=False)
    a = first.view("x1", OBSERVERS[role])
    b = world(tmp_path / "b", mode, field, changed=True, keys_from=first).view("x1", OBSERVERS[role])
    level = VISIBILITY[variant(mode)][role][field]
    if level == "none":
        assert shape(a) == shape(b) and a.relations == b.relations
    elif level in ("clear", "pseudonym"):
        assert a.fields[field] != b.fields[field]
