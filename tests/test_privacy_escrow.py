"""Escrow: k-of-n Shamir sharing; every k-subset of shares opens a record and k-1 shares do not; wrong shares are
refused; every attempt is logged, and if the log cannot be written no plaintext is returned."""

from __future__ import annotations

import itertools
import json
import secrets

import pytest

from tenge_ledger.core.errors import InputError
from tenge_ledger.privacy import sandbox
from tenge_ledger.privacy.access import Access
from tenge_ledger.privacy.keys import ESCROW_HOLDERS, ESCROW_QUORUM, Share, combine_shares, split_secret
from tenge_ledger.privacy.views import parse_payload


@pytest.mark.parametrize(("k", "n"), [(1, 1), (2, 3), (3, 5), (4, 7)])
def test_shamir__every_k_subset_recovers_and_k_minus_1_does_not(k, n):
    secret = secrets.token_bytes(32)
    shares = split_secret(secret, k, tuple(f"h{i}" for i in range(n)))
    for subset in itertools.combinations(shares, k):
        assert combine_shares(list(subset)) == secret
    if k > 1:
        for subset in itertools.combinations(shares, k - 1):
            assert combine_shares(list(subset)) != secret


def test_shamir__duplicate_share_is_refused():
    shares = split_secret(secrets.token_bytes(32), 2, ("a", "b", "c"))
    with pytest.raises(InputError):
        combine_shares([shares[0], shares[0]])


@pytest.fixture
def box(tmp_path):
    b = sandbox.make(tmp_path, "escrowed")
    b.pay("alice", "bob", 4_242, "sealed-1", memo="consulting")
    b.pay("carol", "bob", 777, "sealed-2")
    return b


def access(box) -> Access:
    return Access(
        box.store, box.ring, box.store.meta().settings["privacy_public"], "escrowed", lambda: box.now[0]
    )


def access_records(box) -> list[dict]:
    return [parse_payload(t.payload) for _, t in box.store.traces() if t.op_id.startswith("access:")]


def test_every_quorum_opens_the_record__and_only_that_record(box):
    shares = [box.ring.share(h) for h in ESCROW_HOLDERS]
    for subset in itertools.combinations(shares, ESCROW_QUORUM):
        plain = access(box).unmask("sealed-1", "C-1", "court order 1", "fma", list(subset))
        assert (plain["payer"], plain["payee"], plain["amount_tiyn"], plain["memo"]) == (
            "alice",
            "bob",
            4_242,
            "consulting",
        )
    logged = access_records(box)
    assert len(logged) == len(list(itertools.combinations(shares, ESCROW_QUORUM)))
    assert {(r["record"], r["outcome"], r["case"]) for r in logged} == {("sealed-1", "opened", "C-1")}


@pytest.mark.parametrize("holder", ESCROW_HOLDERS)
def test_too_few_shares__refused_and_logged(box, holder):
    before = box.store.balances()
    with pytest.raises(InputError, match="opening needs 2"):
        access(box).unmask("sealed-1", "C-2", "curiosity", "fma", [box.ring.share(holder)])
    (entry,) = access_records(box)
    assert entry["outcome"].startswith("refused") and entry["record"] == "sealed-1"
    assert box.store.balances() == before


def test_wrong_share__refused_and_logged(box):
    good = box.ring.share("fma")
    forged = Share("court", 3, 12345)
    with pytest.raises(InputError, match="not one of this ledger's escrow shares"):
        access(box).unmask("sealed-1", "C-3", "forged", "fma", [good, forged])
    assert access_records(box)[0]["outcome"].startswith("refused")


def test_shares_of_another_ledger__refused(tmp_path, box):
    other = sandbox.make(tmp_path / "other", "escrowed")
    shares = [other.ring.share(h) for h in ESCROW_HOLDERS[:2]]
    with pytest.raises(InputError):
        access(box).unmask("sealed-1", "C-4", "wrong ledger", "fma", shares)


def test_log_write_fails__no_plaintext(box, monkeypatch):
    from tenge_ledger.trace import log

    def broken(store, records):
        raise OSError("disk full")

    monkeypatch.setattr(log, "append", broken)
    shares = [box.ring.share(h) for h in ESCROW_HOLDERS[:2]]
    with pytest.raises(OSError):
        access(box).unmask("sealed-1", "C-5", "order", "fma", shares)
    assert access_records(box) == []


def test_sealed_record_reveals_nothing_without_quorum(box):
    _, payload = box.record("sealed-1")
    doc = json.loads(payload)
    assert set(doc) >= {"escrow_key", "sealed", "n"}
    assert b"alice" not in payload and b"consulting" not in payload
    assert all(f.level == "none" for f in box.view("sealed-1", "fma").fields.values())
