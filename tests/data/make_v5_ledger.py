"""Writes tests/data/v5-ledger.db with the code of schema version 5 (commit 8914ab7), so the test of migration 6
(derived trace leaves as runs) runs on a ledger that code wrote: transparent mode, a `traces` row per applied
operation, chunks with a rejection inside, access and journal-head records, and signed checkpoints; and its
keystore (throwaway test keys). Kept for the record; it runs only against that commit (with that commit's tree
first on PYTHONPATH as the packages tenge_ledger and tenge_cli)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from pathlib import Path

from click.testing import CliRunner

from tenge_cli.main import cli

HERE = Path(__file__).parent


def _ops(path: Path, ids: list[str], amounts: list[str]) -> str:
    path.write_text(
        "".join(
            json.dumps({"id": i, "kind": "transfer", "payer": "halyk", "payee": "aigerim", "amount": a})
            + "\n"
            for i, a in zip(ids, amounts, strict=True)
        )
    )
    return str(path)


def main() -> None:
    work = Path(tempfile.mkdtemp())
    db = str(work / "v5-ledger.db")
    chunk = _ops(
        work / "a.jsonl", [f"chunk-{i}" for i in range(40)], ["1.25"] * 17 + ["99999999"] + ["2"] * 22
    )
    steps = [
        ("init", "--name", "v5 pilot"),
        ("account", "open", "halyk", "--kind", "bank"),
        ("account", "open", "aigerim", "--kind", "person", "--tier", "3", "--bank", "halyk"),
        ("account", "open", "cafe", "--kind", "merchant", "--bank", "halyk"),
        ("issue", "halyk", "100000"),
        ("submit", chunk),  # one chunk: 17 applied, a rejection, 22 applied
        ("transfer", "halyk", "aigerim", "5", "--id", "single-1"),
        ("transfer", "halyk", "aigerim", "6", "--id", "single-2"),
        ("transfer", "aigerim", "cafe", "10000000", "--id", "too-much"),  # rejected
        ("trace", "view", "--as", "fma"),  # an access record, checkpointed with a journal-head record
        ("transfer", "aigerim", "cafe", "7", "--id", "single-3"),
        ("checkpoint",),
        ("transfer", "aigerim", "cafe", "8", "--id", "single-4"),
    ]
    for args in steps:
        r = CliRunner().invoke(cli, ["--db", db, *args])
        print(args[0], r.exit_code)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    print(conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone())
    print(conn.execute("SELECT COUNT(*), COUNT(seq) FROM traces").fetchone())
    conn.execute("VACUUM")
    conn.close()
    shutil.copy(db, HERE / "v5-ledger.db")
    shutil.rmtree(HERE / "v5-ledger.db.keys", ignore_errors=True)
    shutil.copytree(
        f"{db}.keys", HERE / "v5-ledger.db.keys"
    )  # test keys: the upgraded ledger goes on with them


if __name__ == "__main__":
    main()
