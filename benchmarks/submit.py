"""`tenge submit` of a file of keystore-signed transfers, both its steps, each against a floor measured in the same
run on copies of one ledger:

- its apply step (signatures checked on every core first, but for the lines it signed itself with the signer's
  own key, then the plain-transfer path, and on SQLite the committer), against applying the same signed
  operations in one `apply_many` call that checks each signature as it applies (`submit_vs_inline`);
- its reading and signing step, against the least that step can cost: each line parsed and signed with the key
  already in memory, with no keystore, no checks of the file and no progress (`read_and_signed_vs_floor`).

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
from tenge_ledger.ledger.signing import sign  # noqa: E402
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


def submit_rates(db: Path, lines: Path) -> tuple[float, float]:
    """Operations a second in `tenge submit`'s apply step (its own `applied_per_s`) and in its reading and signing
    step (from its own `read_and_signed_s`)."""
    summary = json.loads(_tenge("--db", str(db), "--json", "submit", str(lines)))
    if summary["codes"] != {"ok": summary["total"]}:
        raise RuntimeError(f"submit applied not everything: {summary['codes']}")
    return summary["applied_per_s"], summary["total"] / summary["read_and_signed_s"]


def read_and_sign_floor(db: Path, lines: Path) -> float:
    """The floor of reading and signing: each line parsed into its operation and signed with halyk's key, read
    from the keystore once before the clock starts."""
    store = open_store(str(db))
    try:
        ledger_id = store.meta().ledger_id
    finally:
        store.close()
    key = Keystore(f"{db}.keys").get("halyk")
    started = time.perf_counter()
    with lines.open(encoding="utf-8") as f:
        ops = [sign(ledger_id, operation_from_dict(json.loads(line)), key) for line in f]
    elapsed = time.perf_counter() - started
    return len(ops) / elapsed


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
        submit = read = inline = floor = 0.0
        for k in range(args.rounds):
            applied, read_signed = submit_rates(_copy(db, f"s{k}.db"), lines)
            submit, read = max(submit, applied), max(read, read_signed)
            inline = max(inline, inline_rate(_copy(db, f"i{k}.db"), lines))
            floor = max(floor, read_and_sign_floor(db, lines))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report = {
        "transfers": args.transfers,
        "submit_applied_per_s": round(submit),
        "inline_verified_per_s": round(inline),
        "submit_vs_inline": round(submit / inline, 3),
        "submit_read_and_signed_per_s": round(read),
        "read_and_sign_floor_per_s": round(floor),
        "read_and_signed_vs_floor": round(read / floor, 3),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"tenge submit, apply step:             {report['submit_applied_per_s']:>8,} operations/s")
        print(f"floor, signatures checked as applied: {report['inline_verified_per_s']:>8,} operations/s")
        print(f"submit / floor:                       {report['submit_vs_inline']:>8.3f}")
        print(
            f"tenge submit, reading and signing:    {report['submit_read_and_signed_per_s']:>8,} operations/s"
        )
        print(f"floor, parsed and signed, key in hand:{report['read_and_sign_floor_per_s']:>9,} operations/s")
        print(f"submit / floor:                       {report['read_and_signed_vs_floor']:>8.3f}")


if __name__ == "__main__":
    main()
