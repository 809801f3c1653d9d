"""Threshold escrow: Shamir sharing in the exponent, Chaum-Pedersen partial decryptions signed per opening, k of n
open one record and k-1 do not, a wrong partial is named, shares of another ledger are refused, every attempt is
logged with the holders who verifiably took part, and the operator's keystore and database open nothing."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import nacl.bindings as sodium
import pytest
from click.testing import CliRunner

from tenge_cli.main import cli
from tenge_ledger.core import compact
from tenge_ledger.core.errors import InputError
from tenge_ledger.lab import sandbox
from tenge_ledger.privacy import threshold as th
from tenge_ledger.privacy.access import Access, opening_ref, verify_participants
from tenge_ledger.privacy.modes import escrowed
from tenge_ledger.privacy.seal import unb64
from tenge_ledger.privacy.views import parse_payload

LEDGER = "ab" * 16


def statement(record: str = "#7:op-7", case: str = "C-1", basis: str = "court order 1") -> bytes:
    return th.opening_statement(LEDGER, record, case, basis)


# ---- the scheme on its own ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), [(1, 1), (2, 3), (3, 5), (4, 6)])
def test_threshold__every_k_subset_opens_and_k_minus_1_in_the_exponent_does_not(k, n):
    public, shares = th.deal(LEDGER, [f"h{i}" for i in range(n)], k)
    kem, key = th.encapsulate(LEDGER, public.group_public)
    partials = [th.partial_decrypt(s, kem, statement()) for s in shares]
    for subset in itertools.combinations(partials, k):
        assert th.combine(public, list(subset), kem, statement()) == key
    for subset in itertools.combinations(partials, k - 1):
        with pytest.raises(InputError, match=f"opening needs {k} of {n}"):
            th.combine(public, list(subset), kem, statement())
        if subset:  # interpolating k-1 points in the exponent gives a wrong key, not the record's
            indices = [p.index for p in subset]
            shared = None
            for p in subset:
                term = th.mul(th.lagrange_at_zero(p.index, indices), p.point)
                shared = term if shared is None else sodium.crypto_core_ed25519_add(shared, term)
            assert th.record_key(LEDGER, kem, shared) != key


def test_threshold__public_points_match_the_shares_and_the_group_key():
    public, shares = th.deal(LEDGER, ["fma", "court", "central_bank"], 2)
    for share, holder in zip(shares, public.holders, strict=True):
        assert th.base_mul(share.secret) == holder.verification_point
    # Lagrange in the exponent over any 2 verification points gives Y: the points are shares of one secret.
    y = sodium.crypto_core_ed25519_add(
        th.mul(th.lagrange_at_zero(1, [1, 3]), public.holders[0].verification_point),
        th.mul(th.lagrange_at_zero(3, [1, 3]), public.holders[2].verification_point),
    )
    assert y == public.group_public


def test_threshold__each_record_has_its_own_encapsulation():
    public, _ = th.deal(LEDGER, ["a", "b"], 2)
    kems = {th.encapsulate(LEDGER, public.group_public)[0] for _ in range(200)}
    assert len(kems) == 200 and all(th.is_point(k) for k in kems)


def test_proof__a_correct_partial_verifies():
    public, shares = th.deal(LEDGER, ["fma", "court"], 2)
    kem, _ = th.encapsulate(LEDGER, public.group_public)
    assert th.check_partial(public, th.partial_decrypt(shares[0], kem, statement()), kem, statement()) is None


def test_proof__a_malicious_partial_is_rejected_naming_the_holder():
    """The court signs a wrong D (a random group element) with a proof made up to fit: the proof fails."""
    public, shares = th.deal(LEDGER, ["fma", "court", "central_bank"], 2)
    kem, _ = th.encapsulate(LEDGER, public.group_public)
    honest = th.partial_decrypt(shares[1], kem, statement())
    wrong_point = th.base_mul(th.random_scalar())
    forged = th.Partial("court", 2, wrong_point, honest.challenge, honest.response, b"")
    signature = (
        shares[1].signing_key.sign(th.consent_message(statement(), "court", forged.digest())).signature
    )
    forged = th.Partial("court", 2, wrong_point, honest.challenge, honest.response, signature)
    good = th.partial_decrypt(shares[0], kem, statement())
    with pytest.raises(InputError, match="proof of court's partial decryption does not verify"):
        th.combine(public, [good, forged], kem, statement())


def test_proof__a_partial_is_good_for_its_own_case_and_record_only():
    public, shares = th.deal(LEDGER, ["fma", "court"], 2)
    kem, _ = th.encapsulate(LEDGER, public.group_public)
    p = th.partial_decrypt(shares[0], kem, statement())
    for other in (statement(case="C-2"), statement(basis="curiosity"), statement(record="#8:op-8")):
        assert "not signed by fma" in th.check_partial(public, p, kem, other)
    other_kem, _ = th.encapsulate(LEDGER, public.group_public)
    assert "proof of fma" in th.check_partial(public, p, other_kem, statement())


def test_proof__a_partial_signed_by_someone_else_is_rejected():
    public, shares = th.deal(LEDGER, ["fma", "court"], 2)
    kem, _ = th.encapsulate(LEDGER, public.group_public)
    p = th.partial_decrypt(shares[0], kem, statement())
    by_court = shares[1].signing_key.sign(th.consent_message(statement(), "fma", p.digest())).signature
    forged = th.Partial(p.holder, p.index, p.point, p.challenge, p.response, by_court)
    assert "not signed by fma" in th.check_partial(public, forged, kem, statement())


# ---- through the ledger ----------------------------------------------------------------------------------------


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


def access_records(box) -> list[tuple[int, dict]]:
    return [(i, parse_payload(t.payload)) for i, t in box.store.traces() if t.op_id.startswith("access:")]


def test_every_quorum_opens_the_record__logged_with_the_holders_who_took_part(box):
    holders = sandbox.ESCROW_HOLDERS
    for subset in itertools.combinations(holders, sandbox.ESCROW_THRESHOLD):
        plain = access(box).unmask("sealed-1", "C-1", "court order 1", shares=[box.share(h) for h in subset])
        assert (plain["payer"], plain["payee"], plain["amount_tiyn"], plain["memo"]) == (
            "alice",
            "bob",
            4_242,
            "consulting",
        )
    logged = access_records(box)
    assert len(logged) == 3
    public = box.store.meta().settings["privacy_public"]
    for (idx, entry), subset in zip(logged, itertools.combinations(holders, 2), strict=True):
        assert (entry["record"], entry["outcome"], entry["case"]) == ("sealed-1", "opened", "C-1")
        assert entry["by"] == "+".join(subset)
        assert verify_participants(box.store, public, idx) == list(subset)


def test_opening_one_record_gives_nothing_for_another(box):
    """The quorum's output for sealed-1 is that record's key: it does not open sealed-2."""
    _, doc1 = next((i, parse_payload(t.payload)) for i, t in box.store.traces() if t.op_id == "sealed-1")
    idx2, doc2 = next((i, parse_payload(t.payload)) for i, t in box.store.traces() if t.op_id == "sealed-2")
    public = th.EscrowPublic.from_json(box.store.meta().settings["privacy_public"]["escrow"])
    ledger_id = box.store.meta().ledger_id
    st = th.opening_statement(ledger_id, "#1:sealed-1", "C", "b")
    parts = [th.partial_decrypt(box.share(h), escrowed.kem_of(doc1), st) for h in ("fma", "court")]
    key1 = th.combine(public, parts, escrowed.kem_of(doc1), st)
    assert escrowed.open_record(doc1, ledger_id, key1)["op_id"] == "sealed-1"
    assert escrowed.open_record(doc2, ledger_id, key1) is None
    # the same partials cannot be combined for the other record either
    st2 = th.opening_statement(ledger_id, opening_ref(idx2, "sealed-2"), "C", "b")
    with pytest.raises(InputError, match="not signed by fma"):
        th.combine(public, parts, escrowed.kem_of(doc2), st2)


@pytest.mark.parametrize("holder", sandbox.ESCROW_HOLDERS)
def test_too_few_holders__refused_and_logged(box, holder):
    before = box.store.balances()
    with pytest.raises(InputError, match="opening needs 2 of 3"):
        access(box).unmask("sealed-1", "C-2", "curiosity", shares=[box.share(holder)])
    ((idx, entry),) = access_records(box)
    assert entry["outcome"].startswith("refused") and entry["record"] == "sealed-1"
    assert [p["holder"] for p in entry["participants"]] == [holder] and entry["by"] == holder
    assert verify_participants(box.store, box.store.meta().settings["privacy_public"], idx) == [holder]
    assert box.store.balances() == before


def test_malicious_partial__refused_naming_the_holder_and_logged(box):
    idx, doc = next((i, parse_payload(t.payload)) for i, t in box.store.traces() if t.op_id == "sealed-1")
    st = th.opening_statement(box.store.meta().ledger_id, opening_ref(idx, "sealed-1"), "C-3", "order")
    court = box.share("court")
    honest = th.partial_decrypt(court, escrowed.kem_of(doc), st)
    wrong = th.base_mul(th.random_scalar())
    unsigned = th.Partial("court", court.index, wrong, honest.challenge, honest.response, b"")
    sig = court.signing_key.sign(th.consent_message(st, "court", unsigned.digest())).signature
    bad = th.Partial("court", court.index, wrong, honest.challenge, honest.response, sig)
    with pytest.raises(InputError, match="refused and logged: the proof of court's partial decryption"):
        access(box).unmask("sealed-1", "C-3", "order", shares=[box.share("fma")], partials=[bad])
    ((_, entry),) = access_records(box)
    assert "court" in entry["outcome"] and [p["holder"] for p in entry["participants"]] == ["fma"]
    assert entry["by"] == "fma"  # the court's partial did not verify: the log does not say it took part


def test_shares_of_another_ledger__refused(tmp_path, box):
    other = sandbox.make(tmp_path / "other", "escrowed")
    with pytest.raises(InputError, match="share of fma belongs to another ledger"):
        access(box).unmask(
            "sealed-1", "C-4", "wrong ledger", shares=[other.share("fma"), other.share("court")]
        )
    entry = access_records(box)[0][1]
    assert entry["outcome"].startswith("refused") and entry["by"] == "nobody"


def test_as_is_not_accepted_for_escrowed_records(box):
    with pytest.raises(InputError, match="not by a role named with --as"):
        access(box).unmask("sealed-1", "C", "b", "fma", shares=[box.share("fma"), box.share("court")])


def test_log_write_fails__no_plaintext(box, monkeypatch):
    from tenge_ledger.trace import log

    def broken(store, records):
        raise OSError("disk full")

    monkeypatch.setattr(log, "append", broken)
    with pytest.raises(OSError):
        access(box).unmask("sealed-1", "C-5", "order", shares=[box.share("fma"), box.share("court")])
    assert access_records(box) == []


def test_sealed_record_reveals_nothing_and_shares_nothing_with_another(box):
    _, payload = box.record("sealed-1")
    _, payload2 = box.record("sealed-2")
    doc, doc2 = parse_payload(payload), parse_payload(payload2)
    assert set(doc) >= {"kem", "sealed"} and "escrow_key" not in doc
    assert isinstance(doc["sealed"], bytes) and payload.startswith(compact.MAGIC)  # the compact binary form
    assert doc["kem"] != doc2["kem"] and unb64(doc["sealed"])[:24] != unb64(doc2["sealed"])[:24]
    assert b"alice" not in payload and b"consulting" not in payload
    assert all(f.level == "none" for f in box.view("sealed-1", "fma").fields.values())


def secrets_in(paths: list[Path]) -> set[bytes]:
    """Every 32-byte value written as 64 hex digits in these files: any key the operator could hold."""
    found: set[bytes] = set()
    for path in paths:
        text = path.read_bytes().decode("latin-1")
        found |= {bytes.fromhex(h) for h in re.findall(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])", text)}
    return found


def test_operator_keystore_and_database_open_no_escrowed_record(box):
    """Everything the operator has (its keystore, the database) tried as a record key and as an escrow scalar:
    no escrowed record opens; and no holder's share is anywhere in it."""
    keystore = [p for p in Path(box.db + ".keys").rglob("*") if p.is_file()]
    database = [Path(box.db)] + [p for p in Path(box.db).parent.glob(Path(box.db).name + "-*") if p.is_file()]
    candidates = secrets_in(keystore + database)
    assert len(candidates) > 5  # the test does look at keys
    shares = {th.scalar_bytes(box.share(h).secret) for h in sandbox.ESCROW_HOLDERS}
    assert not shares & candidates
    ledger_id = box.store.meta().ledger_id
    docs = [parse_payload(t.payload) for _, t in box.store.traces()]
    docs = [d for d in docs if d.get("mode") == "escrowed" and d.get("type") == "op"]
    assert len(docs) >= 10
    for doc in docs:
        kem = escrowed.kem_of(doc)
        for value in candidates:
            assert escrowed.open_record(doc, ledger_id, value) is None
            x = th.scalar_int(value)
            if x:
                assert (
                    escrowed.open_record(doc, ledger_id, th.record_key(ledger_id, kem, th.mul(x, kem)))
                    is None
                )


def test_settings_keep_only_public_escrow_material(box):
    escrow = box.store.meta().settings["privacy_public"]["escrow"]
    assert set(escrow) == {"scheme", "ledger_id", "group_public", "threshold", "holders"}
    assert all(set(h) == {"name", "index", "verification_point", "verify_key"} for h in escrow["holders"])
    for path in Path(box.db + ".keys").rglob("*.json"):
        assert "share" not in json.loads(path.read_text())


# ---- CLI -------------------------------------------------------------------------------------------------------


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def init_escrowed(tmp_path, *extra) -> str:
    db = str(tmp_path / "e.db")
    holders = [
        a for h in ("fma", "court", "central_bank") for a in ("--share-to", f"{h}={tmp_path}/{h}.share")
    ]
    r = run("--db", db, "init", "--name", "E", "--privacy", "escrowed", *holders, *extra)
    assert r.exit_code == 0, r.output
    for args in (("account", "open", "halyk", "--kind", "bank"),
                 ("account", "open", "aigerim", "--kind", "person", "--bank", "halyk"), ("issue", "aigerim", "100")):  # fmt: skip
        assert run("--db", db, *args).exit_code == 0
    return db


def test_cli_init__share_files_are_the_holders_own_0600_files(tmp_path):
    from tenge_ledger.store import open_store

    db = init_escrowed(tmp_path, "--threshold", "2")
    store = open_store(db)
    meta = store.meta()
    store.close()
    escrow = meta.settings["privacy_public"]["escrow"]
    assert escrow["threshold"] == 2
    for h in ("fma", "court", "central_bank"):
        path = tmp_path / f"{h}.share"
        assert path.stat().st_mode & 0o777 == 0o600
        share = th.read_share_file(path)
        assert share.holder == h and share.ledger_id == meta.ledger_id


def test_cli_init__escrowed_without_holders_is_one_line(tmp_path):
    r = run("--db", str(tmp_path / "x.db"), "init", "--name", "t", "--privacy", "escrowed")
    assert r.exit_code == 1 and "--share-to" in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--share-to", "fma"], "is not HOLDER=PATH"),
        (["--share-to", "fma=a.share", "--share-to", "fma=b.share"], "each holder may be named once"),
        (["--share-to", "fma=a.share", "--threshold", "2"], "threshold of 2 out of 1"),
        (["--share-to", "Bad!=a.share"], "not a holder name"),
    ],
)
def test_cli_init__bad_holders_are_one_line(tmp_path, monkeypatch, extra, says):
    monkeypatch.chdir(tmp_path)
    r = run("--db", "x.db", "init", "--name", "t", "--privacy", "escrowed", *extra)
    assert r.exit_code == 1 and says in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.db").exists() and not (tmp_path / "a.share").exists()


def test_cli_init__a_share_into_the_operators_keystore_is_refused(tmp_path):
    db = str(tmp_path / "x.db")
    (tmp_path / "x.db.keys").mkdir()
    r = run(
        "--db", db, "init", "--name", "t", "--privacy", "escrowed", "--share-to", f"fma={db}.keys/fma.share"
    )
    assert r.exit_code == 1 and "operator's keystore" in r.output
    assert not (tmp_path / "x.db.keys" / "fma.share").exists()


def test_cli_init__an_existing_share_file_is_not_overwritten(tmp_path):
    (tmp_path / "fma.share").write_text("mine")
    db = str(tmp_path / "x.db")
    r = run("--db", db, "init", "--name", "t", "--privacy", "escrowed", "--share-to", f"court={tmp_path}/court.share",
            "--share-to", f"fma={tmp_path}/fma.share")  # fmt: skip
    assert r.exit_code == 1 and "refusing to overwrite" in r.output
    assert (tmp_path / "fma.share").read_text() == "mine" and not (tmp_path / "court.share").exists()


def test_cli_partials_made_apart_then_combined(tmp_path):
    db = init_escrowed(tmp_path)
    base = ["--case", "FMA-7", "--basis", "AML art. 13"]
    for h in ("fma", "central_bank"):
        r = run("--db", db, "privacy", "partial", "#3", "--share", str(tmp_path / f"{h}.share"), *base,
                "--out", str(tmp_path / f"{h}.partial"))  # fmt: skip
        assert r.exit_code == 0, r.output
        assert (tmp_path / f"{h}.partial").stat().st_mode & 0o777 == 0o600
    args = ["--db", db, "privacy", "unmask", "#3", *base]
    other_case = run(*args[:-4], "--case", "FMA-8", "--basis", "AML art. 13", "--partial", str(tmp_path / "fma.partial"),
                     "--partial", str(tmp_path / "central_bank.partial"))  # fmt: skip
    assert other_case.exit_code == 1 and "not signed by fma for this case" in other_case.output
    opened = run(
        *args, "--partial", str(tmp_path / "fma.partial"), "--partial", str(tmp_path / "central_bank.partial")
    )
    assert opened.exit_code == 0 and "aigerim" in opened.output
    tracked = run("--db", db, "privacy", "tracker", "aigerim")
    assert "fma+central_bank" in tracked.output and "opened" in tracked.output


def test_encapsulations_made_ahead__each_handed_out_once_and_each_opens():
    public, shares = th.deal(LEDGER, ["fma", "court"], 2)
    pool = th.Encapsulations(LEDGER, public.group_public, batch=64, workers=1, inline_records=20)
    try:
        taken = [pool.take() for _ in range(300)]
    finally:
        pool.close()
    assert len({kem for kem, _ in taken}) == 300 and len({key for _, key in taken}) == 300
    for kem, key in taken[::50]:
        parts = [th.partial_decrypt(s, kem, statement()) for s in shares]
        assert th.combine(public, parts, kem, statement()) == key


def test_cli_consents__verified_and_a_forged_one_named(tmp_path):
    from tenge_ledger.store import open_store

    db = init_escrowed(tmp_path)
    shares = [a for h in ("fma", "court") for a in ("--share", str(tmp_path / f"{h}.share"))]
    assert (
        run("--db", db, "privacy", "unmask", "#3", "--case", "C", "--basis", "order", *shares).exit_code == 0
    )
    store = open_store(db)
    idx = max(i for i, t in store.traces() if t.op_id.startswith("access:"))
    store.close()
    r = run("--db", db, "privacy", "consents", f"#{idx}")
    assert r.exit_code == 0 and "signed by fma, court (verified)" in r.output
    import sqlite3

    with sqlite3.connect(db) as conn:  # the log is edited: the opening now claims another case
        (payload,) = conn.execute("SELECT payload FROM traces WHERE idx = ?", (idx,)).fetchone()
        doc = json.loads(payload)
        doc["case"] = "OTHER"
        conn.execute("UPDATE traces SET payload = ? WHERE idx = ?", (json.dumps(doc).encode(), idx))
    r = run("--db", db, "privacy", "consents", f"#{idx}")
    assert r.exit_code == 1 and "the consent of 'fma'" in r.output and "does not verify" in r.output
