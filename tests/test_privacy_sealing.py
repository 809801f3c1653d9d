"""Sealing: every ciphertext is an AEAD with a fresh random nonce (a busy ledger's stored log holds no repeated
nonce, and no fixed-nonce primitive is left in the code), bound to its ledger, record and field, padded to a size
class; a known plaintext recovers nothing of another sealed field; rule names and report reasons are sealed in
every mode but transparent."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tenge_ledger.core.records import Account, AccountKind, Report, TraceRecord
from tenge_ledger.lab import sandbox
from tenge_ledger.privacy import operator, seal
from tenge_ledger.privacy.access import Access, subjects_place
from tenge_ledger.privacy.modes.base import open_rules
from tenge_ledger.privacy.observers import keys_for
from tenge_ledger.privacy.views import parse_payload, view_doc
from tenge_ledger.privacy.visibility import MODES

SEALED_FIELDS = ("sealed", "fma_ident", "rules", "payer_sealed", "payee_sealed", "subjects")
ROOT = Path(__file__).resolve().parent.parent


def access(box) -> Access:
    mode = box.store.meta().privacy_mode
    return Access(box.store, box.ring, box.store.meta().settings["privacy_public"], mode, lambda: box.now[0])


def sealed_values(doc: dict) -> list[str | bytes]:
    out = [doc[f] for f in SEALED_FIELDS if isinstance(doc.get(f), str | bytes)]
    return out + list(doc.get("wraps", []))


def busy(tmp_path, mode: str):
    box = sandbox.make(tmp_path / mode.replace("-", "_"), mode)
    for i in range(60):
        payer = ("alice", "carol")[i % 2]
        amount = 3_000_000 if i % 5 == 0 else 1_000 + i  # tiered: some above the threshold
        box.pay(payer, "bob", amount, f"p{i}", tag="grant" if i % 3 == 0 else None, memo=f"m{i}")
        box.now[0] += 7
    if mode not in ("transparent", "escrowed", "selective"):
        for i in range(5):
            access(box).unmask(f"p{i}", f"C-{i}", "order", "bank:b1", parties=box.parties_for("bank:b1"))
    if mode == "escrowed":
        for i in range(5):
            access(box).unmask(f"p{i}", f"C-{i}", "order", shares=[box.share("fma"), box.share("court")])
    operator.view(box.store, "fma")
    return box


@pytest.fixture(scope="module")
def boxes(tmp_path_factory):
    base = tmp_path_factory.mktemp("busy")
    return {mode: busy(base, mode) for mode in MODES}


def test_no_nonce_repeats_in_a_busy_ledgers_stored_log(boxes):
    nonces: list[bytes] = []
    for box in boxes.values():
        for _, t in box.store.traces():
            nonces += [seal.nonce_of(v) for v in sealed_values(parse_payload(t.payload))]
    assert len(nonces) > 500  # the scan does see the sealed fields of every mode
    assert len(set(nonces)) == len(nonces)
    assert all(len(n) == seal.NONCE_BYTES for n in nonces)


def test_no_fixed_nonce_primitive_is_left_in_the_code():
    pattern = re.compile(r"crypto_secretbox|SecretBox\(|bytes\(24\)|NONCE_SIZE\)|b\"\\0\" \* 24")
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in (ROOT / "tenge_ledger").rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line)
    ]
    assert found == []


def access_entries(box) -> list[dict]:
    return [parse_payload(t.payload) for _, t in box.store.traces() if t.op_id.startswith("access:")]


def test_known_plaintext_on_the_access_log_recovers_nothing(tmp_path):
    """bob knows what his own access record's sealed subjects say; with the fixed nonce that gave the keystream of
    every other access record. Now the XOR of his ciphertext and plaintext says nothing of carol's."""
    box = sandbox.make(tmp_path, "pseudonymous")
    box.pay("alice", "bob", 500, "p1")
    box.pay("carol", "bob", 600, "p2")
    access(box).unmask(
        "p1", "C-1", "order", "bank:b2", parties=box.parties_for("bank:b2")
    )  # bob's bank identifies bob
    access(box).unmask(
        "p2", "C-2", "order", "bank:b1", parties=box.parties_for("bank:b1")
    )  # carol's bank identifies carol
    mine, theirs = access_entries(box)
    known = seal.pad(json.dumps(["bob"]).encode())
    secret = seal.pad(json.dumps(["carol"]).encode())
    c1, c2 = seal.unb64(mine["subjects"]), seal.unb64(theirs["subjects"])
    assert len(c1) == len(c2)  # same size class: lengths say nothing either
    body1, body2 = c1[seal.NONCE_BYTES : -seal.TAG_BYTES], c2[seal.NONCE_BYTES : -seal.TAG_BYTES]
    keystream = bytes(a ^ b for a, b in zip(body1, known, strict=True))
    recovered = bytes(a ^ b for a, b in zip(body2, keystream, strict=True))
    assert recovered != secret and b"carol" not in recovered
    # the old layout (tag first, the same keystream for every record) recovers nothing either
    old = bytes(a ^ b for a, b in zip(c2[16:], bytes(a ^ b for a, b in zip(c1[16:], known))))  # noqa: B905
    assert b"carol" not in old
    # and the tracker, with the key, still reads both
    assert [e["case"] for e in access(box).tracker("carol")] == ["C-2"]
    assert [e["case"] for e in access(box).tracker("bob")] == ["C-1"]


def test_a_ciphertext_moved_to_another_place_does_not_open(tmp_path):
    box = sandbox.make(tmp_path, "tiered")
    box.pay("alice", "bob", 500, "s1")
    box.pay("carol", "bob", 600, "s2")
    docs = {t.op_id: (i, parse_payload(t.payload)) for i, t in box.store.traces() if t.op_id in ("s1", "s2")}
    b1 = keys_for("bank:b1", box.ring, box.store, 3600, parties=box.parties_for("bank:b1"))
    b2 = keys_for("bank:b2", box.ring, box.store, 3600, parties=box.parties_for("bank:b2"))
    (i1, d1), (_, d2) = docs["s1"], docs["s2"]
    assert view_doc(i1, d1, b1).fields["payer"].value == "alice"
    moved = dict(d1, payer_sealed=d2["payer_sealed"])  # carol's sealed identity copied into alice's record
    assert view_doc(i1, moved, b1).fields["payer"].level != "clear"
    swapped = dict(d1, payee_sealed=d1["payer_sealed"], payer_sealed=d1["payee_sealed"])  # fields swapped
    assert view_doc(i1, swapped, b2).fields["payee"].level != "clear"
    assert view_doc(i1, swapped, b1).fields["payer"].level != "clear"


def test_access_subjects_are_bound_to_their_ledger_and_record(tmp_path):
    box = sandbox.make(tmp_path, "pseudonymous")
    box.pay("alice", "bob", 500, "s1")
    access(box).unmask("s1", "C", "order", "bank:b1", parties=box.parties_for("bank:b1"))
    (entry,) = access_entries(box)
    key = box.ring.secret("operator", "tracker_key")
    assert (
        seal.unseal_text(key, entry["subjects"], subjects_place(box.ring.ledger_id, entry["op_id"]))
        is not None
    )
    assert (
        seal.unseal_text(key, entry["subjects"], subjects_place(box.ring.ledger_id, "access:other")) is None
    )
    assert seal.unseal_text(key, entry["subjects"], subjects_place("cd" * 16, entry["op_id"])) is None


@pytest.mark.parametrize("length", [0, 1, 40, 63, 64, 200, 1023, 5000])
def test_padding__classes_and_round_trip(length):
    data = bytes(range(256)) * (length // 256 + 1)
    data = data[:length]
    padded = seal.pad(data)
    assert len(padded) in seal.padding_classes_bytes or len(padded) % seal.padding_classes_bytes[-1] == 0
    assert seal.unpad(padded) == data


def test_sealed_identities_of_different_lengths_have_one_size(tmp_path):
    box = sandbox.make(tmp_path, "payee-transparent")
    box.pay("alice", "bob", 500, "a1")
    long = "a-much-longer-handle-of-forty-characters"
    assert box.wallet.open_account(long, AccountKind.person, tier=3, bank="b1").succeeded
    assert box.wallet.issue(long, 10_000).succeeded
    box.pay(long, "bob", 500, "a2")
    sizes = {len(seal.unb64(parse_payload(box.record(op)[1])["payer_sealed"])) for op in ("a1", "a2")}
    assert len(sizes) == 1


RULE = "mining-revenue-via-aifc-exchange"
REASON = "payee aigerim is a licensed miner"


def record_with_rules(op_id: str, at: int) -> TraceRecord:
    return TraceRecord(op_id=op_id, kind="transfer", at=at, code="ok", message="", signer="alice", payer="alice",
                       payee="bob", amount_tiyn=1_000, tag=None, memo=None, seq=99,
                       reports=(Report("fma", REASON, RULE),), rules=(RULE,),
                       payer_account=Account("alice", AccountKind.person, "00" * 32, tier=3, bank="b1"),
                       payee_account=Account("bob", AccountKind.person, "00" * 32, tier=3, bank="b2"))  # fmt: skip


@pytest.mark.parametrize("mode", [m for m in MODES if m != "transparent"])
def test_rule_names_and_report_reasons_are_sealed(tmp_path, mode):
    box = sandbox.make(tmp_path, mode)
    encoded = box.ledger.trace.encode(record_with_rules("r1", box.now[0]))
    assert RULE.encode() not in encoded.payload and b"miner" not in encoded.payload
    doc = parse_payload(encoded.payload)
    if "rules_key" in doc:
        fma = keys_for("fma", box.ring, box.store, 3600, parties=box.parties_for("fma"))
        assert open_rules(doc, fma) == ([RULE], [{"agency": "fma", "rule": RULE}])
        assert (
            open_rules(
                doc, keys_for("bank:b1", box.ring, box.store, 3600, parties=box.parties_for("bank:b1"))
            )
            is None
        )


def test_transparent_keeps_rule_names_in_clear(tmp_path):
    box = sandbox.make(tmp_path, "transparent")
    assert RULE.encode() in box.ledger.trace.encode(record_with_rules("r1", box.now[0])).payload
