"""The compact journal row keeps every signed operation exactly: row -> operation gives back the same operation,
so the same canonical bytes (and the signature over them still verifies), for operations of every kind."""

from __future__ import annotations

import nacl.signing
from hypothesis import given, settings
from hypothesis import strategies as st

from tenge_ledger.core.canonical import canonical_bytes, document_json
from tenge_ledger.core.records import (
    HOLDS_ACCOUNT,
    AccountKind,
    AddWitness,
    Batch,
    Close,
    Freeze,
    Hold,
    Issue,
    OpenAccount,
    Operation,
    OpKind,
    Post,
    Redeem,
    Seize,
    Sweep,
    Transfer,
    Unfreeze,
    UpdateAccount,
    Void,
)
from tenge_ledger.ledger.signing import sign, verify_bytes
from tenge_ledger.store.entries import (
    FLAG_LEGS,
    KIND_CODES,
    body_extra,
    journal_row,
    legs_of,
    operation_from_row,
    standard_legs,
)

LEDGER_ID = "0123456789abcdef0123456789abcdef"
KEY = nacl.signing.SigningKey(bytes(range(32)))
handles = st.sampled_from(["nbk", "halyk", "aigerim", "cafe-alatau", "roads.ministry", "a_b"])
tags = st.one_of(st.none(), st.sampled_from(["", "budget:roads-2026", "grant/x", "school.meals"]))
texts = st.one_of(st.none(), st.text(max_size=40))
amounts = st.integers(min_value=1, max_value=10**16)
attrs = st.dictionaries(st.sampled_from(["zone", "vat", "licence"]), st.text(max_size=10), max_size=3).map(
    lambda d: tuple(sorted(d.items()))
)
tiers = st.one_of(st.none(), st.integers(0, 3))
public_keys = st.binary(min_size=32, max_size=32).map(bytes.hex)
ids = st.text("abcdefghij0123456789-:.", min_size=1, max_size=20).map(lambda s: "x" + s)

transfers = st.builds(Transfer, handles, handles, amounts, tags, texts)
bodies = st.one_of(
    st.builds(
        OpenAccount,
        handles,
        st.sampled_from(list(AccountKind)),
        public_keys,
        tiers,
        st.none() | handles,
        attrs,
    ),
    st.builds(UpdateAccount, handles, tiers, attrs),
    st.builds(Issue, handles, amounts, tags, st.none() | st.just("2027-01-01"), texts),
    st.builds(Redeem, handles, amounts, tags, texts),
    transfers,
    st.builds(Hold, handles, handles, amounts, st.integers(1, 10**6), tags, st.none() | handles, texts),
    st.builds(Post, ids, st.none() | amounts),
    st.builds(Void, ids),
    st.builds(Sweep, st.integers(0, 2**40)),
    st.builds(Freeze, handles, texts),
    st.builds(Unfreeze, handles, texts),
    st.builds(Close, handles),
    st.builds(Seize, handles, handles, amounts, tags, texts),
    st.builds(AddWitness, st.sampled_from(["fma-witness", "w1", "witness.example.org/w1"]), public_keys),
    st.lists(st.builds(Operation, ids, handles, transfers), min_size=1, max_size=3).map(
        lambda ops: Batch(tuple(sign(LEDGER_ID, op, KEY) for op in ops))
    ),
)


class Names:
    """Ids handed out in order of first use, as the ledger does."""

    def __init__(self) -> None:
        self.by_name: dict[str, int] = {}

    def id(self, name: str) -> int:
        return self.by_name.setdefault(name, len(self.by_name) + 1)

    def name(self, i: int) -> str:
        return {v: k for k, v in self.by_name.items()}[i]


@settings(max_examples=300, deadline=None)
@given(op_id=ids, signer=handles, body=bodies)
def test_row_keeps_the_signed_operation__every_kind(op_id, signer, body) -> None:
    op = sign(LEDGER_ID, Operation(op_id, signer, body), KEY)
    accounts, tag_names = Names(), Names()
    row = journal_row(7, op, 1_780_000_000, bytes(32), 0, None, None, accounts.id, tag_names.id)
    back = operation_from_row(row, accounts.name, tag_names.name)
    assert back == op
    assert canonical_bytes(LEDGER_ID, back) == canonical_bytes(LEDGER_ID, op)
    assert document_json(back) == document_json(op)
    assert verify_bytes(canonical_bytes(LEDGER_ID, back), back.signature, bytes(KEY.verify_key).hex())
    assert KIND_CODES[row[2]] is op.kind


def test_plain_transfer_row__no_body_text_and_implied_legs() -> None:
    op = sign(LEDGER_ID, Operation("t-1", "halyk", Transfer("halyk", "cafe", 250)), KEY)
    accounts, tag_names = Names(), Names()
    row = journal_row(3, op, 0, bytes(32), 0, None, None, accounts.id, tag_names.id)
    assert body_extra(op) is None and row[12] is None
    legs = legs_of(row, None, accounts.name, tag_names.name, "nbk", HOLDS_ACCOUNT)
    assert legs == [("halyk", -250, ""), ("cafe", 250, "")]
    assert list(standard_legs(OpKind.hold, "halyk", "cafe", 5, "t", "nbk", HOLDS_ACCOUNT)) == [
        ("halyk", -5, "t"),
        (HOLDS_ACCOUNT, 5, "t"),
    ]


def test_row_with_stored_legs__legs_rows_win() -> None:
    op = sign(LEDGER_ID, Operation("s-1", "aigerim", Transfer("aigerim", "shop", 100)), KEY)
    accounts, tag_names = Names(), Names()
    row = journal_row(4, op, 0, bytes(32), FLAG_LEGS, None, None, accounts.id, tag_names.id)
    split = [
        (4, 0, accounts.id("aigerim"), 0, -100),
        (4, 1, accounts.id("kgd-vat"), 0, 12),
        (4, 2, accounts.id("shop"), 0, 88),
    ]
    tag_names.by_name[""] = 0
    assert legs_of(row, split, accounts.name, tag_names.name, "nbk", HOLDS_ACCOUNT) == [
        ("aigerim", -100, ""),
        ("kgd-vat", 12, ""),
        ("shop", 88, ""),
    ]
