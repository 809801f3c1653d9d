"""An operator with write access to its own database rewriting the journal consistently: one column of one row
changed, then every chain link from there on and the head recomputed, so the journal's own chain still holds.
Leaves derived from journal rows (transparent mode) change with the links: the tests show who still notices."""

from __future__ import annotations

import json
import sqlite3

from tenge_ledger.ledger.journal import _as_postings, entry_hash
from tenge_ledger.store import open_store


def rechain(db: str, seq: int, column: str, value: object) -> None:
    assert column in {"amount", "at", "payee", "payer"}
    conn = sqlite3.connect(db)
    conn.execute(f"UPDATE journal SET {column} = ? WHERE seq = ?", (value, seq))
    conn.commit()
    conn.close()
    store = open_store(db)
    rows = list(store.journal())
    store.close()
    conn = sqlite3.connect(db)
    prev = bytes(32)
    for op, postings in rows:
        signature = json.loads(op.document).get("signature", "")
        prev = entry_hash(prev, op.seq, op.at, op.fields_hash, signature, _as_postings(postings), op.chained)
        conn.execute("UPDATE journal SET link = ? WHERE seq = ?", (prev, op.seq))
    conn.execute("UPDATE journal_head SET entry_hash = ?", (prev,))
    conn.commit()
    conn.close()
