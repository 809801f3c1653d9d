"""A hypothesis test of the witness: a random history, a cosignature, more history, then one random change to a
record the witness cosigned (edited with its leaf hash recomputed, deleted, swapped with another, or the log cut
from it on), with every checkpoint dropped and a fresh one signed, as an operator covering its tracks would. The
witness always refuses to cosign what follows."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile

import pytest
import trace_tables
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from journal_rewrite import rechain

from tenge_ledger.lab import sandbox
from tenge_ledger.privacy import operator
from tenge_ledger.trace import witness as witnessing
from tenge_ledger.trace.merkle import leaf_hash

MUTATIONS = ("edit", "delete", "swap", "cut")


def _mutate(db: str, mutation: str, idx: int, other: int) -> None:
    conn = sqlite3.connect(db)
    content = trace_tables.leaf(conn, idx)
    if mutation == "edit" and isinstance(
        content, int
    ):  # a leaf derived from a journal row: rewrite the journal
        conn.close()
        (at,) = sqlite3.connect(db).execute("SELECT at FROM journal WHERE seq = ?", (content,)).fetchone()
        rechain(db, content, "at", at + 1)
        conn = sqlite3.connect(db)
    elif mutation == "edit":
        changed = bytes(content[3]) + b" "  # type: ignore[index]
        conn.execute(
            "UPDATE traces SET payload = ?, leaf_hash = ? WHERE idx = ?", (changed, leaf_hash(changed), idx)
        )
    elif mutation == "delete":
        trace_tables.remove(conn, idx)
    elif mutation == "cut":
        trace_tables.cut(conn, idx)
    else:
        trace_tables.swap(conn, idx, other)
    conn.execute(
        "UPDATE meta SET value = json_remove(value, '$.trace_checkpoint_notes') WHERE key = 'settings'"
    )
    conn.commit()
    conn.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=st.integers(1, 5),
    after=st.integers(0, 3),
    mutation=st.sampled_from(MUTATIONS),
    pick=st.integers(0, 10**6),
    pick_other=st.integers(0, 10**6),
)
def test_any_change_to_a_cosigned_record__refused_by_the_witness(before, after, mutation, pick, pick_other):
    folder = tempfile.mkdtemp(prefix="tenge-witness-")
    try:
        box = sandbox.make(folder, "transparent")
        for i in range(before):
            box.pay("alice", "bob", 100 + i, f"a{i}")
        w = witnessing.init(f"{folder}/w", "w1")
        assert box.wallet.submit("nbk", operator.witness_registration("w1", w.public_key.hex())).succeeded
        size = operator.witness_cosign(box.store, f"{folder}/w")["tree_size"]
        for i in range(after):
            box.pay("carol", "bob", 200 + i, f"b{i}")
        idx = 1 + pick % size
        other = 1 + pick_other % size
        if mutation == "swap" and other == idx:
            other = idx % size + 1
        if mutation == "swap" and other == idx:
            mutation = "edit"  # a one-record tree has nothing to swap with
        cosigned = [t.leaf_hash for _, t in box.store.traces()][:size]
        _mutate(box.db, mutation, idx, other)
        operator.checkpoint(box.store)  # the operator re-signs the changed log: it verifies on its own
        # removing the last journal-head record lets the checkpoint append the very same record again: the log
        # is then what the witness cosigned, and there is nothing to refuse
        assume([t.leaf_hash for _, t in box.store.traces()][:size] != cosigned)
        with pytest.raises(witnessing.NotAnExtension):
            operator.witness_cosign(box.store, f"{folder}/w")
        box.store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
