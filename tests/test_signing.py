"""Canonical bytes and Ed25519 signatures: versioned, domain-separated by ledger id, covering every field."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenge_ledger.core.canonical import (
    canonical_and_document,
    canonical_bytes,
    canonical_json,
    canonical_prefix,
    check_handle,
    document_json,
    operation_from_dict,
    operation_to_dict,
    transfer_canonical,
)
from tenge_ledger.core.records import AccountKind, Operation, Transfer
from tenge_ledger.core.results import ResultCode
from tenge_ledger.ledger import signing


def _transfer(
    payer: str = "halyk", payee: str = "aigerim", amount: int = 1000, op_id: str = "t-1"
) -> Operation:
    return Operation(op_id, payer, Transfer(payer, payee, amount))


def test_canonical_bytes__carry_version_and_ledger_id() -> None:
    data = canonical_bytes("a" * 32, _transfer())
    assert data.startswith(b"tenge-ledger/op/v1\n" + b"a" * 32 + b"\n")
    assert b'"amount_tiyn":1000' in data
    assert b'"memo":null' in data  # absent fields are present as null


def test_canonical_bytes__differ_between_ledgers() -> None:
    op = _transfer()
    assert canonical_bytes("a" * 32, op) != canonical_bytes("b" * 32, op)


def test_canonical_bytes__same_from_document_round_trip() -> None:
    op = _transfer()
    doc = operation_to_dict(op)
    assert canonical_bytes("a" * 32, operation_from_dict(doc)) == canonical_bytes("a" * 32, op)


def test_canonical_bytes__exclude_the_signature() -> None:
    op = _transfer()
    assert canonical_bytes("x" * 32, op) == canonical_bytes(
        "x" * 32, dataclasses.replace(op, signature="ab" * 64)
    )


def test_sign_and_verify__good_signature() -> None:
    key = signing.new_signing_key()
    op = signing.sign("a" * 32, _transfer(), key)
    assert len(op.signature) == 128
    assert signing.verify("a" * 32, op, signing.public_key_hex(key))


def test_verify__fails_on_another_ledger() -> None:
    key = signing.new_signing_key()
    op = signing.sign("a" * 32, _transfer(), key)
    assert not signing.verify("b" * 32, op, signing.public_key_hex(key))


def test_verify__fails_with_tampered_field() -> None:
    key = signing.new_signing_key()
    op = signing.sign("a" * 32, _transfer(), key)
    for tampered in (
        dataclasses.replace(op, body=Transfer("halyk", "aigerim", 1001)),
        dataclasses.replace(op, body=Transfer("halyk", "cafe", 1000)),
        dataclasses.replace(op, body=Transfer("halyk", "aigerim", 1000, tag="x")),
        dataclasses.replace(op, id="t-2"),
    ):
        assert not signing.verify("a" * 32, tampered, signing.public_key_hex(key))


def test_verify__fails_with_other_key_or_garbage() -> None:
    key, other = signing.new_signing_key(), signing.new_signing_key()
    op = signing.sign("a" * 32, _transfer(), key)
    assert not signing.verify("a" * 32, op, signing.public_key_hex(other))
    assert not signing.verify("a" * 32, dataclasses.replace(op, signature=""), signing.public_key_hex(key))
    assert not signing.verify(
        "a" * 32, dataclasses.replace(op, signature="zz" * 64), signing.public_key_hex(key)
    )


def test_apply__signature_for_ledger_a_rejected_on_ledger_b(make_ledger) -> None:
    a, b = make_ledger(), make_ledger()
    assert a.ledger.ledger_id != b.ledger.ledger_id
    a.wallet.open_account("halyk", AccountKind.bank)
    shutil.copy(a.keystore.path / "halyk.key", b.keystore.path / "halyk.key")
    b.wallet.open_account("halyk", AccountKind.bank)  # same key pair on both ledgers
    for env in (a, b):
        env.wallet.open_account("roads", AccountKind.government)
        assert env.wallet.issue("halyk", 10_000).code is ResultCode.ok
    op_for_a = a.wallet.build("halyk", Transfer("halyk", "roads", 500), "pay-1")
    before = b.snapshot()
    result = b.ledger.apply(op_for_a)
    assert result.code is ResultCode.bad_signature
    assert b.snapshot() == before
    assert a.ledger.apply(op_for_a).code is ResultCode.ok
    assert (
        b.ledger.apply(b.wallet.build("halyk", Transfer("halyk", "roads", 500), "pay-1")).code
        is ResultCode.ok
    )


def test_apply__tampered_operation_rejected(env) -> None:
    env.wallet.issue("halyk", 10_000)
    op = env.wallet.build("halyk", Transfer("halyk", "aigerim", 100), "t-1")
    forged = dataclasses.replace(op, body=Transfer("halyk", "aigerim", 9_000))
    before = env.snapshot()
    result = env.ledger.apply(forged)
    assert result.code is ResultCode.bad_signature
    assert env.snapshot() == before
    assert env.store.operation("t-1") is None


def test_apply__signed_by_someone_else_rejected(env) -> None:
    env.wallet.issue("halyk", 10_000)
    op = env.wallet.build("aigerim", Transfer("halyk", "aigerim", 100), "t-1")  # aigerim signs halyk's money
    assert env.ledger.apply(op).code is ResultCode.signer_not_allowed
    op = dataclasses.replace(
        env.wallet.build("aigerim", Transfer("halyk", "aigerim", 100), "t-2"), signer="halyk"
    )
    assert env.ledger.apply(op).code is ResultCode.bad_signature
    assert env.total("halyk") == 10_000


def test_apply__unsigned_operation_rejected_unless_verified(env) -> None:
    env.wallet.issue("halyk", 10_000)
    op = _transfer(amount=100)
    assert env.ledger.apply(op).code is ResultCode.bad_signature
    assert env.ledger.apply(op, verified=True).code is ResultCode.ok


_json_values = st.recursive(
    st.none() | st.integers(-(10**18), 10**18) | st.text() | st.booleans(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=12), _json_values, max_size=8))
def test_canonical_json__identical_to_json_dumps(doc) -> None:
    expected = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert canonical_json(doc) == expected


def test_document_json__is_canonical_json_with_signature() -> None:
    key = signing.new_signing_key()
    op = signing.sign("a" * 32, _transfer(), key)
    doc = json.loads(document_json(op))
    assert doc["signature"] == op.signature
    assert operation_from_dict(doc) == op


@settings(max_examples=200, deadline=None)
@given(
    memo=st.none() | st.text(max_size=20),
    tag=st.none() | st.sampled_from(["b:roads-2026", "x"]),
    amount=st.integers(1, 10**16),
    signature=st.sampled_from(["", "ab" * 64]),
)
def test_canonical_and_document__same_as_json_dumps(memo, tag, amount, signature) -> None:
    from tenge_ledger.core.records import (
        Batch,
        Close,
        Freeze,
        Hold,
        Issue,
        OpenAccount,
        Post,
        Redeem,
        Seize,
        Sweep,
        Unfreeze,
        UpdateAccount,
        Void,
    )

    bodies = [
        Transfer("halyk", "aigerim", amount, tag, memo),
        Transfer("halyk", "aigerim", True, tag, memo),  # not a plain value: the general encoder decides
        Hold("halyk", "aigerim", amount, 60, tag, "roads", memo),
        Issue("roads", amount, tag, "2027-01-01", memo),
        Redeem("halyk", amount, tag, memo),
        Seize("cafe", "roads", amount, tag, memo),
        Post("h-1", None),
        Post("h-1", amount),
        Void("h-1"),
        Sweep(amount),
        Freeze("cafe", memo),
        Unfreeze("cafe", memo),
        Close("cafe"),
        UpdateAccount("cafe", 2, (("zone", "x"),)),
        OpenAccount("cafe", AccountKind.merchant, "11" * 32, 1, "halyk", (("zone", memo or ""),)),
        Batch((Operation("in-1", "halyk", Transfer("halyk", "cafe", amount, tag, memo), signature),)),
    ]
    for body in bodies:
        op = Operation("op-1", "halyk", body, signature)
        unsigned = json.dumps(
            operation_to_dict(op, with_signature=False), sort_keys=True, separators=(",", ":")
        )
        signed = json.dumps(operation_to_dict(op), sort_keys=True, separators=(",", ":"))
        expected = b"tenge-ledger/op/v1\n" + b"l" * 32 + b"\n" + unsigned.encode("ascii")
        assert canonical_bytes("l" * 32, op) == expected
        assert document_json(op) == signed
        assert canonical_and_document("l" * 32, op) == (expected, signed)


_text = st.text(st.characters(codec="utf-8"), max_size=12)  # quotes, backslashes, controls, non-ASCII


@settings(max_examples=300)
@given(
    op_id=_text,
    payer=_text,
    payee=_text,
    amount=st.one_of(st.integers(-(10**20), 10**20), st.booleans(), st.floats(allow_nan=False)),
    tag=st.one_of(st.none(), _text),
    memo=st.one_of(st.none(), _text),
)
def test_canonical_bytes__transfer_fast_encoding_is_the_documents_json(
    op_id, payer, payee, amount, tag, memo
):
    """A transfer's canonical bytes come from one format step (core/canonical.transfer_canonical); they must be
    exactly the sorted-key ASCII JSON of its document, for any text, and fall back for a non-int amount."""
    op = Operation(op_id, payer, Transfer(payer, payee, amount, tag, memo))
    doc = operation_to_dict(op, with_signature=False)
    expected = b"tenge-ledger/op/v1\nL1\n" + json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode("ascii")
    assert canonical_bytes("L1", op) == expected
    fast = transfer_canonical(canonical_prefix("L1"), op)
    assert fast == (expected if type(amount) is int else None)


def test_verified_upfront__flags_only_transfers_that_verify_against_the_stored_key(env) -> None:
    """What `tenge submit` checks on every core before applying: a good transfer; not a forged one, one signed
    by a key the store does not hold for its signer, one whose signer the same list opens, nor anything but a
    transfer (the ledger checks those as they apply)."""
    from tenge_ledger.core.records import Issue, OpenAccount
    from tenge_ledger.ledger.signing import new_signing_key, public_key_hex, sign

    env.wallet.issue("halyk", 10_000)
    w = env.wallet
    good = w.build("halyk", Transfer("halyk", "aigerim", 100), "good")
    forged = dataclasses.replace(
        w.build("halyk", Transfer("halyk", "aigerim", 1), "forged"), body=Transfer("halyk", "aigerim", 9_000)
    )
    stranger = sign(
        env.ledger.ledger_id, Operation("stranger", "halyk", Transfer("halyk", "cafe", 5)), new_signing_key()
    )
    newcomer_key = new_signing_key()
    opening = w.build("nbk", OpenAccount("newbie", AccountKind.bank, public_key_hex(newcomer_key)), "open")
    from_newcomer = sign(
        env.ledger.ledger_id, Operation("from-newbie", "newbie", Transfer("newbie", "cafe", 1)), newcomer_key
    )
    issue = w.build("nbk", Issue("halyk", 5), "issue")
    garbage = dataclasses.replace(good, id="garbage", signature="zz" * 64)
    ops = [good, forged, stranger, opening, from_newcomer, issue, garbage]
    flags = env.ledger.verified_upfront(ops)
    assert flags == [True, False, False, False, False, False, False]
    codes = [r.code.value for r in env.ledger.apply_many(ops, verified=flags)]
    assert codes == [
        "ok",
        "bad_signature",
        "bad_signature",
        "ok",
        "insufficient_funds",
        "ok",
        "bad_signature",
    ]


def test_verified_upfront__signed_here_with_the_stored_key_is_not_checked_again(env, monkeypatch) -> None:
    """A transfer the caller signed with its signer's key as the store has it verifies by construction, and is
    not checked again; one signed here with any other key is checked, and refused, as if it came signed."""
    from tenge_ledger.ledger.signing import new_signing_key, sign

    env.wallet.issue("halyk", 10_000)
    w = env.wallet
    own = w.build("halyk", Transfer("halyk", "aigerim", 100), "own")
    other_key = new_signing_key()
    other = sign(env.ledger.ledger_id, Operation("other", "halyk", Transfer("halyk", "cafe", 5)), other_key)
    came_signed = w.build("halyk", Transfer("halyk", "cafe", 7), "came-signed")
    checked: list[bytes] = []
    verify_all = signing.verify_all

    def counted(items, progress=None):
        checked.extend(message for message, _, _ in items)
        return verify_all(items, progress)

    monkeypatch.setattr(signing, "verify_all", counted)
    ops = [own, other, came_signed]
    flags = env.ledger.verified_upfront(
        ops, signed_with={0: w.public_key("halyk"), 1: bytes(other_key.verify_key)}
    )
    assert flags == [True, False, True]
    assert checked == [canonical_bytes(env.ledger.ledger_id, op) for op in (other, came_signed)]
    codes = [r.code.value for r in env.ledger.apply_many(ops, verified=flags)]
    assert codes == ["ok", "bad_signature", "ok"]


@pytest.mark.parametrize("attempt", range(10))
def test_verify_all__ctrl_c_ends_the_pool(tmp_path, attempt) -> None:
    """Ctrl-C reaches the terminal's whole process group. A pool worker it ended left the task queue locked, and
    the parent, leaving the pool's block on KeyboardInterrupt, waited for ever (`tenge submit` and `tenge check`
    hung while verifying signatures, about one Ctrl-C in five here; ten tries): the workers ignore it, and the
    parent ends them."""
    import os
    import signal
    import subprocess
    import sys

    script = tmp_path / "verify.py"
    script.write_text(
        "import sys\n"
        "import nacl.signing\n"
        "from tenge_ledger.ledger import signing\n"
        "key = nacl.signing.SigningKey(bytes(32))\n"
        "signed = key.sign(b'm')\n"
        "items = [(b'm', signed.signature, bytes(key.verify_key))] * 2_000_000\n"
        "def told(n):\n"
        "    print('verifying', flush=True)\n"
        "signing.verify_all(items, told)\n"
    )
    process = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        assert process.stdout.readline() == b"verifying\n"  # the pool is at work
        os.killpg(process.pid, signal.SIGINT)  # as the terminal does
        process.wait(timeout=20)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode != 0
    assert b"KeyboardInterrupt" in process.stderr.read()


def test_handles_of_documents__one_string_per_handle_and_a_str_subclass_accepted() -> None:
    """Documents' handles are interned as they are read (the ledger's caches then find them by identity); a
    library caller's subclass of str, which cannot be interned, is checked and accepted as it is."""
    docs = [
        {
            "kind": "transfer",
            "id": f"t-{i}",
            "signer": "aigerim",
            "payer": "aigerim",
            "payee": "cafe",
            "amount_tiyn": 5,
        }
        for i in range(2)
    ]
    first, second = (operation_from_dict(json.loads(json.dumps(d))) for d in docs)
    assert first.signer is second.signer is first.body.payer is second.body.payer
    assert first.body.payee is second.body.payee

    class Handle(str):
        pass

    assert check_handle(Handle("bob")) == "bob"
