"""The compact binary payload of the keyed privacy modes: every value round-trips exactly, damage is refused (as
bad JSON is), JSON payloads still read, and a record takes less room than its JSON."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenge_ledger.core import compact
from tenge_ledger.lab import sandbox
from tenge_ledger.privacy.views import parse_payload

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text() | st.binary()
    | st.text("0123456789abcdef", min_size=16).filter(lambda t: len(t) % 2 == 0),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.sampled_from([*compact.KEYS[:6], "x", "ü"]), inner, max_size=5),
    max_leaves=20,
)  # fmt: skip


@given(st.dictionaries(st.text(max_size=8) | st.sampled_from(compact.KEYS), values, max_size=8))
def test_compact__every_map_round_trips_exactly(doc):
    payload = compact.encode(doc)
    back = compact.decode(payload)
    assert back == doc
    assert [type(v) for v in back.values()] == [type(v) for v in doc.values()]
    assert compact.load_doc(payload) == doc


@pytest.mark.parametrize(
    "damage", [lambda p: p[:-1], lambda p: p + b"\x00", lambda p: p[:4] + b"\x01\x00\x09", lambda p: p[:4] + b"\x01\xfe\x00"]
)  # fmt: skip
def test_compact__damage_is_refused(damage):
    payload = compact.encode({"op_id": "x", "at": 5, "sealed": b"\x01" * 40})
    with pytest.raises(ValueError):
        compact.decode(damage(payload))


def test_compact__json_still_reads_and_a_list_is_no_map():
    assert compact.load_doc(b'{"op_id":"a","at":1}') == {"op_id": "a", "at": 1}
    with pytest.raises(ValueError):
        compact.load_doc(b"[1]")


@pytest.mark.parametrize("mode", ["pseudonymous", "tiered", "payee-transparent", "escrowed", "selective"])
def test_keyed_modes_store_the_compact_form__smaller_than_json(tmp_path, mode):
    box = sandbox.make(tmp_path, mode)
    box.pay("alice", "bob", 900, "p1", memo="rent")
    _, payload = box.record("p1")
    assert payload.startswith(compact.MAGIC)
    doc = parse_payload(payload)
    as_json = json.dumps(doc, default=lambda v: base64.b64encode(v).decode()).encode()  # the JSON form
    assert len(payload) <= 0.75 * len(as_json)  # docs/privacy.md: 58-73 % per mode


def test_transparent_keeps_no_payload_for_an_applied_payment(tmp_path):
    """Transparent mode stores no record for an applied payment: its leaf is derived from the journal row
    (tests/test_trace_journal_leaf.py), neither JSON nor the compact form."""
    box = sandbox.make(tmp_path, "transparent")
    box.pay("alice", "bob", 900, "p1")
    payload = box.record("p1")[1]
    assert payload.startswith(b"J1") and not payload.startswith(compact.MAGIC)
