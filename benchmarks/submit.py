"""`tenge submit` of a file of keystore-signed transfers: the rate its apply step reaches (signatures checked on
every core first, then the plain-transfer path, and on SQLite the committer), against the floor of applying the
same signed operations in one `apply_many` call that checks each signature as it applies (what submit's apply
step cost before it checked them first), measured in the same run on copies of one ledger.

    .venv/bin/python benchmarks/submit.py [--transfers 20000] [--rounds 2] [--json]

Rounds alternate the two and the best round of each counts, so a noisy neighbour hurts both alike.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from click.testing import CliRunner  # noqa: E402

from tenge_cli.main import cli  # noqa: E402
from tenge_ledger.app import ledger_over  # noqa: E402
from tenge_ledger.client.keystore import Keystore  # noqa: E402
from tenge_ledger.client.wallet import Wallet  # noqa: E402
from tenge_ledger.core.canonical import operation_from_dict  # noqa: E402
from tenge_ledger.store import open_store  # noqa: E402


def _tenge(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    if result.exit_code != 0:
        raise RuntimeError(f"tenge {' '.join(args)} failed: {result.output}")
    return result.stdout


def _ledger(folder: Path, transfers: int) -> tuple[Path, Path]:
    """A ledger with a bank and a shop, and a file of `transfers` unsigned transfer lines between them."""
    db = folder / "start.db"
    _tenge("--db", str(db), "init", "--name", "submit benchmark")
    _tenge("--db", str(db), "account", "open", "halyk", "--kind", "bank")
    _tenge("--db", str(db), "account", "open", "shop", "--kind", "merchant", "--bank", "halyk")
    _tenge("--db", str(db), "issue", "halyk", "1000000.00")
    lines = folder / "ops.jsonl"
    with lines.open("w", encoding="utf-8") as f:
        for i in range(transfers):
            doc = {"id": f"b-{i}", "kind": "transfer", "payer": "halyk", "payee": "shop", "amount": "0.01"}
            f.write(json.dumps(doc) + "\n")
    return db, lines


def _copy(db: Path, name: str) -> Path:
    copy = db.with_name(name)
    shutil.copy(db, copy)
    shutil.rmtree(f"{copy}.keys", ignore_errors=True)
    shutil.copytree(f"{db}.keys", f"{copy}.keys")
    return copy


def submit_rate(db: Path, lines: Path) -> float:
    """Operations a second in `tenge submit`'s apply step (its own `applied_per_s`)."""
    summary = json.loads(_tenge("--db", str(db), "--json", "submit", str(lines)))
    if summary["codes"] != {"ok": summary["total"]}:
        raise RuntimeError(f"submit applied not everything: {summary['codes']}")
    return summary["applied_per_s"]


def inline_rate(db: Path, lines: Path) -> float:
    """The floor: the same operations, signed by the same keystore, in one apply_many that checks each signature
    as it applies."""
    store = open_store(str(db))
    try:
        ledger = ledger_over(store)
        wallet = Wallet(ledger, Keystore(f"{db}.keys"))
        with lines.open(encoding="utf-8") as f:
            ops = [wallet.sign_document(operation_from_dict(json.loads(line))) for line in f]
        started = time.perf_counter()
        results = ledger.apply_many(ops)
        elapsed = time.perf_counter() - started
    finally:
        store.close()
    if not all(r.succeeded for r in results):
        raise RuntimeError("the floor applied not everything")
    return len(ops) / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--transfers", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="tenge-submit-bench-"))
    try:
        db, lines = _ledger(folder, args.transfers)
        submit = inline = 0.0
        for k in range(args.rounds):
            submit = max(submit, submit_rate(_copy(db, f"s{k}.db"), lines))
            inline = max(inline, inline_rate(_copy(db, f"i{k}.db"), lines))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report = {
        "transfers": args.transfers,
        "submit_applied_per_s": round(submit),
        "inline_verified_per_s": round(inline),
        "submit_vs_inline": round(submit / inline, 3),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"tenge submit, apply step:             {report['submit_applied_per_s']:>8,} operations/s")
        print(f"floor, signatures checked as applied: {report['inline_verified_per_s']:>8,} operations/s")
        print(f"submit / floor:                       {report['submit_vs_inline']:>8.3f}")


if __name__ == "__main__":
    main()
