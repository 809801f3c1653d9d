"""tenge-ledger on PostgreSQL: transfers per second with 1, 2 and 4 client processes, next to pgbench's built-in
tpcb-like transactions per second on the same server with the same client counts, in the same run.

    .venv/bin/python benchmarks/postgres.py                 # starts a throwaway cluster with .ci/pg.sh
    .venv/bin/python benchmarks/postgres.py --url postgresql://tenge@127.0.0.1:55432/tenge --seconds 10 --json

Each tenge client is a process with its own connection, applying one signed transfer per database transaction
(`Ledger.apply`: id lookup, signature check, funds check, journal entry and hash chain, trace record). The
operations are signed before the clock starts; verifying the signatures is inside the measured time, as in
production. pgbench runs at scale 1 (one branch row, which every transaction updates, as every tenge transfer
updates the journal head) with prepared statements. Target: at 4 clients tenge >= 0.5 x pgbench.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import re
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

ACCOUNTS = 100
CLIENTS = (1, 2, 4)
TARGET_RATIO_AT_4 = 0.5
OPS_PER_CLIENT_MAX = 200_000


def _client(url: str, worker: int, start_at: float, seconds: float, out: str, chunk: int) -> None:
    import bank_workload as bank

    from tenge_ledger.core.records import Operation, Transfer
    from tenge_ledger.ledger.service import Ledger
    from tenge_ledger.ledger.signing import sign
    from tenge_ledger.store import open_store

    ledger = Ledger(open_store(url))
    names = bank.handles(ACCOUNTS)
    keys = {h: bank.key_for(h) for h in names}
    rng = random.Random(worker)
    # Enough signed operations for a generous rate; signing is the client's work, not the ledger's.
    estimate = min(OPS_PER_CLIENT_MAX, int(seconds * 3_000))
    ops = []
    for n in range(estimate):
        payer, payee = rng.sample(names, 2)
        op = Operation(
            f"b{worker}-{uuid.uuid4().hex[:8]}-{n}", payer, Transfer(payer, payee, rng.randint(1, 100))
        )
        ops.append(sign(ledger.ledger_id, op, keys[payer]))
    time.sleep(max(0.0, start_at - time.time()))
    end = start_at + seconds
    done = ok = 0
    for start in range(0, len(ops), chunk):
        if time.time() >= end:
            break
        results = ledger.apply_many(ops[start : start + chunk])  # one database transaction
        ok += sum(r.code.value == "ok" for r in results)
        done += len(results)
    elapsed = time.time() - start_at
    ledger.store.close()
    Path(out).write_text(json.dumps({"done": done, "ok": ok, "elapsed": elapsed}))


def tenge_tps(url: str, clients: int, seconds: float, tmp: Path, chunk: int = 1) -> float:
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 4.0 + 0.5 * clients  # after the interpreters started and signed their operations
    outs = [tmp / f"tenge-{clients}-{chunk}-{i}.json" for i in range(clients)]
    procs = [
        ctx.Process(target=_client, args=(url, i, start_at, seconds, str(outs[i]), chunk))
        for i in range(clients)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    if any(p.exitcode != 0 for p in procs):
        raise SystemExit("a benchmark client failed")
    results = [json.loads(o.read_text()) for o in outs]
    if any(r["done"] >= min(OPS_PER_CLIENT_MAX, int(seconds * 3_000)) for r in results):
        print(
            "warning: a client ran out of pre-signed operations; the rate is a lower bound", file=sys.stderr
        )
    return sum(r["ok"] for r in results) / max(r["elapsed"] for r in results)


def pgbench_tps(bin_dir: str, url: str, clients: int, seconds: float) -> float:
    done = subprocess.run(
        [os.path.join(bin_dir, "pgbench"), "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients),
         "-T", str(int(seconds)), url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", done.stdout)
    if not found:
        raise SystemExit(f"could not read pgbench's output:\n{done.stdout}\n{done.stderr}")
    return float(found.group(1))


def _start_cluster() -> dict[str, str]:
    done = subprocess.run([str(ROOT / ".ci/pg.sh"), "start"], capture_output=True, text=True, check=True)
    env: dict[str, str] = {}
    for word in shlex.split(done.stdout.strip().removeprefix("export ")):
        key, _, value = word.partition("=")
        env[key] = value
    return env


def _with_database(base: str, name: str) -> str:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.rsplit("/", 1)[0] + "/" + name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("TENGE_TEST_PG_URL"), help="a PostgreSQL server")
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement")
    parser.add_argument("--chunk", type=int, default=20, help="transfers per transaction, grouped run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    started: dict[str, str] | None = None
    if not args.url:
        started = _start_cluster()
        os.environ.update(started)
        args.url = started["TENGE_TEST_PG_URL"]
    bin_dir = os.environ.get("TENGE_TEST_PG_BIN") or os.path.dirname(
        subprocess.run(["bash", "-c", "command -v pgbench"], capture_output=True, text=True).stdout.strip()
    )
    try:
        import bank_workload as bank

        tenge_url = _with_database(args.url, "tenge_bench")
        pgbench_url = _with_database(args.url, "pgbench_bench")
        bank.setup_bank(tenge_url, count=ACCOUNTS, opening_tiyn=10**12)
        subprocess.run(
            [os.path.join(bin_dir, "pgbench"), "-i", "-q", "-s", "1", pgbench_url],
            capture_output=True, check=True,
        )  # fmt: skip
        rows = []
        with_tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"tenge-bench-{uuid.uuid4().hex[:8]}"
        with_tmp.mkdir()
        for clients in CLIENTS:
            ours = tenge_tps(tenge_url, clients, args.seconds, with_tmp)
            grouped = tenge_tps(tenge_url, clients, args.seconds, with_tmp, chunk=args.chunk)
            theirs = pgbench_tps(bin_dir, pgbench_url, clients, args.seconds)
            rows.append({"clients": clients, "tenge_tps": round(ours, 1), "pgbench_tps": round(theirs, 1),
                         "ratio": round(ours / theirs, 2), "tenge_grouped_tps": round(grouped, 1),
                         "grouped_ratio": round(grouped / theirs, 2)})  # fmt: skip
    finally:
        if started:
            subprocess.run([str(ROOT / ".ci/pg.sh"), "stop"], check=False)
    target_met = rows[-1]["ratio"] >= TARGET_RATIO_AT_4
    grouped_met = rows[-1]["grouped_ratio"] >= TARGET_RATIO_AT_4
    if args.json:
        print(json.dumps({"rows": rows, "chunk": args.chunk, "target_ratio_at_4": TARGET_RATIO_AT_4,
                          "target_met": target_met, "grouped_target_met": grouped_met}))  # fmt: skip
        return
    print(f"{'clients':>7}  {'pgbench tpcb-like tps':>21}  {'tenge transfers/s':>17}  {'ratio':>5}"
          f"  {f'tenge, {args.chunk} per tx':>17}  {'ratio':>5}")  # fmt: skip
    for r in rows:
        print(f"{r['clients']:>7}  {r['pgbench_tps']:>21.1f}  {r['tenge_tps']:>17.1f}  {r['ratio']:>5.2f}"
              f"  {r['tenge_grouped_tps']:>17.1f}  {r['grouped_ratio']:>5.2f}")  # fmt: skip
    print(
        f"target at 4 clients, ratio >= {TARGET_RATIO_AT_4}: one transfer per transaction "
        f"{'met' if target_met else 'NOT met'}; {args.chunk} per transaction {'met' if grouped_met else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
