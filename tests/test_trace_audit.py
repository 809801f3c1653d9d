"""Audit bundles and `tenge audit verify`: a clean ledger verifies; each kind of change to the trace log or the
journal (changed, removed, reordered, inserted) is found and named, in a bundle and in the live database; bad
bundles and foreign keys give one clear error."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import nacl.signing
import pytest
from click.testing import CliRunner

from tenge_cli.main import cli
from tenge_ledger.core import compact
from tenge_ledger.core.errors import InputError
from tenge_ledger.lab import sandbox
from tenge_ledger.privacy import operator
from tenge_ledger.trace import bundle as bundles
from tenge_ledger.trace import checkpoint as cps
from tenge_ledger.trace.merkle import leaf_hash


def _paid(tmp_path, mode: str):
    """A ledger of `mode` with six payments t0..t5, checkpointed."""
    b = sandbox.make(tmp_path, mode)
    for i in range(6):
        b.pay("alice", "bob", 100 + i, f"t{i}")
    operator.checkpoint(b.store, at=b.now[0])
    return b


@pytest.fixture
def box(tmp_path):
    return _paid(tmp_path, "pseudonymous")


def live(box):
    return operator.verify_live(box.store)


def sql(box, statement: str, *args) -> None:
    conn = sqlite3.connect(box.db)
    conn.execute(statement, args)
    conn.commit()
    conn.close()


def trace_row(box, op_id: str) -> tuple[int, bytes]:
    conn = sqlite3.connect(box.db)
    row = conn.execute(
        "SELECT idx, payload FROM traces WHERE op_id = ? ORDER BY idx DESC", (op_id,)
    ).fetchone()
    conn.close()
    return row[0], bytes(row[1])


def with_amount(payload: bytes, old: int, new: int) -> bytes:
    """The stored record (compact form) with its amount changed, re-encoded as the sink would."""
    doc = compact.load_doc(payload)
    assert doc["amount_tiyn"] == old
    return compact.encode({**doc, "amount_tiyn": new})


def test_clean_ledger_verifies__live_and_bundle(box, tmp_path):
    assert live(box).ok, live(box).problems
    info = operator.export(box.store, str(tmp_path / "b.json"))
    result = operator.verify_bundle(str(tmp_path / "b.json"), info["checkpoint"]["key"])
    assert result.ok and result.traces == info["traces"] and result.journal == info["journal_entries"]


def test_changed_trace_record__named(box):
    idx, payload = trace_row(box, "t3")
    sql(
        box,
        "UPDATE traces SET payload = ? WHERE idx = ?",
        with_amount(payload, 103, 999),
        idx,
    )
    problems = live(box).problems
    assert any(f"trace #{idx} (t3) was changed" in p for p in problems), problems


def test_changed_trace_record_with_recomputed_leaf__caught_by_the_checkpoint(box):
    idx, payload = trace_row(box, "t3")
    forged = with_amount(payload, 103, 999)
    sql(box, "UPDATE traces SET payload = ?, leaf_hash = ? WHERE idx = ?", forged, leaf_hash(forged), idx)
    problems = live(box).problems
    assert any(
        "no longer match" in p and f"#{idx}" in p.split("among")[1] or "no longer match" in p
        for p in problems
    ), problems


def test_changed_trace_record_with_recomputed_leaf__named_against_an_earlier_bundle(box, tmp_path):
    operator.export(box.store, str(tmp_path / "before.json"))
    idx, payload = trace_row(box, "t2")
    forged = with_amount(payload, 102, 1)
    sql(box, "UPDATE traces SET payload = ?, leaf_hash = ? WHERE idx = ?", forged, leaf_hash(forged), idx)
    problems = operator.verify_live(box.store, earlier=str(tmp_path / "before.json")).problems
    assert any(f"trace #{idx} (t2) differs from the earlier bundle" in p for p in problems), problems


def test_removed_trace_record__named(box):
    idx, _ = trace_row(box, "t1")
    sql(box, "DELETE FROM traces WHERE idx = ?", idx)
    problems = live(box).problems
    assert any(f"trace #{idx} missing" in p for p in problems), problems
    assert any("journal entry" in p and "(t1) has no trace record" in p for p in problems), problems


def test_reordered_trace_records__named(box):
    a, pa = trace_row(box, "t1")
    b, pb = trace_row(box, "t2")
    sql(box, "UPDATE traces SET op_id = 'x', payload = ?, leaf_hash = ? WHERE idx = ?", pb, leaf_hash(pb), a)
    sql(box, "UPDATE traces SET op_id = 't1', payload = ?, leaf_hash = ? WHERE idx = ?", pa, leaf_hash(pa), b)
    sql(box, "UPDATE traces SET op_id = 't2' WHERE idx = ?", a)
    problems = live(box).problems
    assert any("reordered" in p and "(t1)" in p for p in problems), problems


def test_inserted_trace_record__named(box):
    idx, payload = trace_row(box, "t4")
    conn = sqlite3.connect(box.db)
    rows = conn.execute(
        "SELECT idx, op_id, at, mode, payload, leaf_hash FROM traces WHERE idx >= ? ORDER BY idx DESC", (idx,)
    ).fetchall()
    for r in rows:
        conn.execute("UPDATE traces SET idx = ? WHERE idx = ?", (r[0] + 1, r[0]))
    fake = compact.load_doc(payload)
    fake.update(op_id="fake", seq=fake["seq"])
    body = compact.encode(fake)
    conn.execute(
        "INSERT INTO traces (idx, op_id, at, mode, payload, leaf_hash) VALUES (?, 'fake', ?, 'pseudonymous', ?, ?)",
        (idx, fake["at"], body, leaf_hash(body)),
    )
    conn.commit()
    conn.close()
    problems = live(box).problems
    assert any(f"trace #{idx} (fake)" in p and "inserted" in p for p in problems), problems


def test_journal_changed_removed_reordered_inserted__named(box):
    conn = sqlite3.connect(box.db)
    seq = conn.execute("SELECT seq FROM journal WHERE op_id = 't2'").fetchone()[0]
    conn.close()
    sql(box, "UPDATE journal SET amount = amount + 1 WHERE seq = ?", seq)
    problems = live(box).problems
    assert any(f"journal entry #{seq} (t2) was changed" in p for p in problems), problems
    sql(box, "UPDATE journal SET amount = amount - 1 WHERE seq = ?", seq)
    assert live(box).ok
    sql(box, "DELETE FROM journal WHERE seq = ?", seq + 1)
    problems = live(box).problems
    assert any(f"journal entry #{seq + 2}" in p and "expected" in p for p in problems), problems


def tampered(box, tmp_path, edit) -> tuple[dict, operator.Verification]:
    """Export a bundle, let `edit` change its JSON document, and verify the edited copy offline."""
    operator.export(box.store, str(tmp_path / "b.json"))
    doc = json.loads((tmp_path / "b.json").read_text())
    edit(doc)
    (tmp_path / "edited.json").write_text(json.dumps(doc))
    return doc, operator.verify_bundle(str(tmp_path / "edited.json"), operator.public_key(box.store))


def test_journal_truncated__caught_by_the_checkpoint(box, tmp_path):
    _, result = tampered(box, tmp_path, lambda doc: doc["journal"].pop())
    problems = result.problems
    assert any("whose head trace" in p and "missing" in p for p in problems), problems


def test_edited_bundle__named(box, tmp_path):
    _, result = tampered(box, tmp_path, lambda doc: doc["traces"].pop(3))
    assert not result.ok and any("trace #4 missing" in p for p in result.problems), result.problems


def test_bundle_with_swapped_records__names_only_the_swap(box, tmp_path):
    def swap(doc: dict) -> None:
        doc["traces"][3], doc["traces"][4] = doc["traces"][4], doc["traces"][3]

    doc, result = tampered(box, tmp_path, swap)
    moved = doc["traces"][4]
    order = [p for p in result.problems if "out of order" in p]
    assert order == [
        f"trace #{moved['idx']} ({moved['op_id']}) is out of order (it comes after #{moved['idx'] + 1}): reordered"
    ]
    assert not any("missing" in p for p in result.problems), result.problems


def test_bundle_with_a_removed_record__names_that_record_only(box, tmp_path):
    _, result = tampered(box, tmp_path, lambda doc: doc["traces"].pop(3))
    missing = [p for p in result.problems if "missing" in p]
    assert missing == ["trace #4 missing: removed from the log"], result.problems


def test_truncated_bundle__one_clear_error(box, tmp_path):
    operator.export(box.store, str(tmp_path / "b.json"))
    data = (tmp_path / "b.json").read_bytes()
    (tmp_path / "t.json").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or not JSON"):
        bundles.read(str(tmp_path / "t.json"))


def test_checkpoint_signed_by_another_key__reported(box, tmp_path):
    other = nacl.signing.SigningKey.generate()
    box.pay(
        "alice", "bob", 7, "t-after"
    )  # another tree: a note of the same tree would keep the operator's line
    forged = cps.make(box.store, other, box.now[0], "pseudonymous")
    cps.save(box.store, forged)
    result = live(box)
    assert any("not signed by the key" in p for p in result.problems), result.problems


def test_checkpoint_body_is_what_is_signed(box):
    cp = cps.saved(box.store)[-1]
    key = bytes.fromhex(operator.public_key(box.store))
    assert cp.signed_by(key)
    smaller = cp.checkpoint.text().replace(
        f"\n{cp.checkpoint.tree_size}\n", f"\n{cp.checkpoint.tree_size - 1}\n"
    )
    assert not cps.parse(cp.render().replace(cp.checkpoint.text(), smaller)).signed_by(key)


def test_inclusion_and_consistency_proofs_from_the_live_log(box):
    from tenge_ledger.trace.merkle import verify_consistency, verify_inclusion

    p = operator.inclusion(box.store, "t3")
    assert verify_inclusion(bytes.fromhex(p["leaf_hash"]), p["index"], p["tree_size"],
                            [bytes.fromhex(x) for x in p["proof"]], bytes.fromhex(p["root"]))  # fmt: skip
    c = operator.consistency(box.store, 3)
    assert verify_consistency(c["first"], c["second"], bytes.fromhex(c["first_root"]),
                              bytes.fromhex(c["second_root"]), [bytes.fromhex(x) for x in c["proof"]])  # fmt: skip


# ---- CLI ---------------------------------------------------------------------------------------------------


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_cli_export_and_verify__clean_then_tampered(box, tmp_path):
    bundle = str(tmp_path / "audit.json")
    exported = run("--db", box.db, "--json", "audit", "export", bundle)
    assert exported.exit_code == 0
    key = json.loads(exported.output)["checkpoint"]["key"]
    ok = run("audit", "verify", bundle, "--key", key)
    assert ok.exit_code == 0 and "verified" in ok.output
    doc = json.loads(Path(bundle).read_text())
    doc["traces"][2]["payload"] = doc["traces"][3]["payload"]
    Path(bundle).write_text(json.dumps(doc))
    bad = run("audit", "verify", bundle, "--key", key)
    assert bad.exit_code == 1 and "trace #3" in bad.output


def test_cli_verify__other_key_and_truncated_bundle(box, tmp_path):
    bundle = str(tmp_path / "audit.json")
    run("--db", box.db, "audit", "export", bundle)
    other = bytes(nacl.signing.SigningKey.generate().verify_key).hex()
    r = run("audit", "verify", bundle, "--key", other)
    assert r.exit_code == 1 and "not signed by the key" in r.output
    Path(bundle).write_text(Path(bundle).read_text()[:100])
    r = run("audit", "verify", bundle, "--key", other)
    assert r.exit_code == 1 and "truncated" in r.output and len(r.output.strip().splitlines()) == 1
    r = run("audit", "verify", bundle, "--key", "zz")
    assert r.exit_code == 1


def test_cli_live_verify_and_prove(box):
    assert run("--db", box.db, "audit", "verify").exit_code == 0
    r = run("--db", box.db, "--json", "trace", "prove", "t2")
    assert r.exit_code == 0 and json.loads(r.output)["proof"]
    assert run("--db", box.db, "trace", "prove", "nope").exit_code == 1


def test_row_edited_into_another_type__one_clear_error(box):
    idx = max(
        i for i, t in box.store.traces() if t.op_id.startswith("journal-head:")
    )  # a JSON record: text that SQLite can hand back as text
    sql(box, "UPDATE traces SET payload = CAST(payload AS TEXT) WHERE idx = ?", idx)
    with pytest.raises(InputError, match=f"after #{idx - 1} cannot be read"):
        live(box)


@pytest.fixture
def derived_box(tmp_path):
    """A transparent ledger: its records are derived from their journal rows (a leaf commits to seq and link)."""
    return _paid(tmp_path, "transparent")


def test_derived_record_with_another_time_in_a_bundle__named(derived_box, tmp_path):
    """The bundle's time column of a derived record is not in its leaf: it must be its journal entry's."""

    def edit(doc: dict) -> None:
        next(t for t in doc["traces"] if t["op_id"] == "t2")["at"] += 3600

    _, result = tampered(derived_box, tmp_path, edit)
    assert any("(t2) says time" in p and "was applied at" in p for p in result.problems), result.problems


def test_journal_rechained_in_a_bundle__each_derived_record_names_its_entry(derived_box, tmp_path):
    """The bundle's journal rewritten consistently from t2 on (another time, every later link recomputed): the
    chain holds, but each derived record still commits to the link its entry had."""
    from tenge_ledger.core.records import Posting
    from tenge_ledger.ledger.journal import entry_hash

    def rechain(doc: dict) -> None:
        prev = None
        for j in doc["journal"]:
            if j["op_id"] == "t2":
                j["at"] += 3600
                prev = bytes.fromhex(j["prev_hash"])
            if prev is None:
                continue
            j["prev_hash"] = prev.hex()
            chained = None if j["chained"] is None else tuple(j["chained"])
            postings = [Posting(a, x, t) for a, t, x in j["postings"]]
            fields = bytes.fromhex(j["fields_hash"])
            prev = entry_hash(prev, j["seq"], j["at"], fields, j["signature"], postings, chained)
            j["entry_hash"] = prev.hex()

    _, result = tampered(derived_box, tmp_path, rechain)
    named = [p for p in result.problems if "commits to a journal entry" in p]
    assert any("(t2)" in p for p in named) and any("(t5)" in p for p in named), result.problems
    assert not any("does not chain" in p or "does not match its content" in p for p in result.problems)


def test_bundle_without_any_checkpoint__fails_with_the_key(box, tmp_path):
    """An export always signs a checkpoint: a bundle with none left authenticates nothing and does not pass."""

    def strip(doc: dict) -> None:
        doc["checkpoints"] = []

    _, result = tampered(box, tmp_path, strip)
    assert not result.ok and any("no signed checkpoint" in p for p in result.problems), result.problems


def test_bundle_mode_edited__named(box, tmp_path):
    """The bundle's privacy mode is signed by nothing, but every record was written in the ledger's mode and a
    stored record's own content (under its leaf) says which: an edit of either is named."""

    def bundle_mode(doc: dict) -> None:
        doc["privacy_mode"] = "transparent"

    _, result = tampered(box, tmp_path, bundle_mode)
    assert any("says mode pseudonymous, the bundle transparent" in p for p in result.problems), (
        result.problems
    )

    def every_mode(doc: dict) -> None:
        doc["privacy_mode"] = "transparent"
        for t in doc["traces"]:
            t["mode"] = "transparent"

    _, result = tampered(box, tmp_path, every_mode)
    assert any("mode column differs from its signed content" in p for p in result.problems), result.problems


def test_derived_records_said_to_be_of_another_mode__named(derived_box, tmp_path):
    def every_mode(doc: dict) -> None:
        doc["privacy_mode"] = "pseudonymous"
        for t in doc["traces"]:
            t["mode"] = "pseudonymous"

    _, result = tampered(derived_box, tmp_path, every_mode)
    assert any("as only a transparent ledger's are" in p for p in result.problems), result.problems
