"""Each role's view of a stored record, decoded with only the keys it holds, equals the visibility table, for
every (mode, role, field); and the table is complete."""

from __future__ import annotations

import pytest

from tenge_ledger.lab import sandbox
from tenge_ledger.privacy.modes.base import ObserverKeys
from tenge_ledger.privacy.observers import keys_for
from tenge_ledger.privacy.views import decoded_levels, parse_payload
from tenge_ledger.privacy.visibility import FIELDS, MODES, RANK, ROLES, VARIANTS, VISIBILITY, check_table

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


def key_leaks(box, op_id: str, observer: str, keys: ObserverKeys | None = None) -> list[str]:
    """Fields this observer's keys decode above the table's level for the role. A field the mode stores in clear
    (a reader with no key at all decodes it) is the view layer's to withhold and is not a key leak."""
    _, payload = box.record(op_id)
    doc = parse_payload(payload)
    keys = keys or keys_for(observer, box.ring, box.store, 3600, parties=box.parties_for(observer))
    variant, levels = decoded_levels(doc, keys)
    _, stored = decoded_levels(doc, ObserverKeys(role="nobody", ledger_id=box.store.meta().ledger_id))
    role = next(r for r, o in OBSERVER.items() if o == observer)
    return [
        f"{variant} {role} {f}: decodes {levels[f]}, may {VISIBILITY[variant][role][f]}"
        for f in FIELDS
        if RANK[levels[f]] > RANK[VISIBILITY[variant][role][f]] and RANK[levels[f]] > RANK[stored[f]]
    ]


@pytest.mark.parametrize("variant", VARIANTS)
def test_no_role_decodes_more_than_the_table_allows__before_any_capping(boxes, variant):
    mode = variant.split(".")[0]
    leaks = [leak for observer in OBSERVER.values()
             for leak in key_leaks(boxes[mode], RECORD_OF_VARIANT[variant], observer)]  # fmt: skip
    assert leaks == []


def test_a_key_leak_is_caught(boxes):
    """The public handed the FMA's box key in tiered mode decodes the large record's parties: the check names it
    (the capped view alone would have hidden it)."""
    box = boxes["tiered"]
    leaky = keys_for("public", box.ring, box.store, 3600, parties=box.parties_for("public"))
    leaky.boxes["fma"] = box.parties_for("fma")[0].box_key
    leaks = key_leaks(box, "large", "public", leaky)
    assert leaks and all(leak.startswith("tiered.large public pay") for leak in leaks)
    assert box.view("large", "public").fields["payer"].level == "none"  # what the capping showed
