"""Each role's view of a stored record, decoded with only the keys it holds, equals the visibility table, for
every (mode, role, field); and the table is complete."""

from __future__ import annotations

import pytest

from tenge_ledger.privacy import sandbox
from tenge_ledger.privacy.visibility import FIELDS, MODES, ROLES, VARIANTS, VISIBILITY, check_table

OBSERVER = {
    "central_bank": "central_bank",
    "fma": "fma",
    "payer_bank": "bank:b1",
    "payee_bank": "bank:b2",
    "payer": "account:alice",
    "payee": "account:bob",
    "public": "public",
}
# alice (b1) pays bob (b2); "large" is above the tiered threshold.
RECORD_OF_VARIANT = {v: ("large" if v == "tiered.large" else "small") for v in VARIANTS}


@pytest.fixture(scope="module")
def boxes(tmp_path_factory):
    out = {}
    for mode in MODES:
        box = sandbox.make(tmp_path_factory.mktemp(mode.replace("-", "_")), mode)
        box.pay("alice", "bob", 12_345, "small", tag="grant", memo="lunch")
        box.pay("alice", "bob", 3_000_000, "large", tag="grant", memo="car")
        out[mode] = box
    return out


CASES = [(v, r, f) for v in VARIANTS for r in ROLES for f in FIELDS]


@pytest.mark.parametrize(("variant", "role", "field"), CASES, ids=["-".join(c) for c in CASES])
def test_view_matches_table(boxes, variant, role, field):
    mode = variant.split(".")[0]
    view = boxes[mode].view(RECORD_OF_VARIANT[variant], OBSERVER[role])
    assert view.variant == variant
    assert view.fields[field].level == VISIBILITY[variant][role][field]


@pytest.mark.parametrize("mode", MODES)
def test_clear_values_are_the_true_ones(boxes, mode):
    truth = {"payer": "alice", "payee": "bob", "amount": 12_345, "tag": "grant", "memo": "lunch"}
    for role, observer in OBSERVER.items():
        view = boxes[mode].view("small", observer)
        for field in FIELDS:
            if view.fields[field].level == "clear":
                assert view.fields[field].value == truth[field], (mode, role, field)


def test_table_is_complete():
    check_table()
    assert set(VISIBILITY) == set(VARIANTS)


def test_escrowed_payload_keeps_nothing_in_clear(boxes):
    _, payload = boxes["escrowed"].record("small")
    for secret in (b"alice", b"bob", b"12345", b"grant", b"lunch"):
        assert secret not in payload


def test_pseudonymous_payload_names_no_account(boxes):
    _, payload = boxes["pseudonymous"].record("small")
    for secret in (b"alice", b"bob", b"lunch"):
        assert secret not in payload


def test_docs_hold_the_same_table():
    from pathlib import Path

    from tenge_ledger.privacy.visibility import markdown

    docs = Path(__file__).resolve().parent.parent / "docs" / "privacy.md"
    assert markdown() in docs.read_text()
