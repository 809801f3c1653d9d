"""The apply benchmark: transfers per second with signature checks, without them, and the raw SQLite floor,
plus Ed25519 verification alone, all measured in one run on one machine.

(a) signed_per_s: pre-signed transfers applied with their signatures checked. Verification runs in a pool of
    processes (one per core) over chunks of (canonical bytes, signature, public key), pipelined with the main
    process, which applies each verified chunk with `Ledger.apply_many(ops, verified=flags)`; an operation whose
    signature failed is passed with flag False, so the service checks it again and answers bad_signature.
(b) verified_per_s: the same transfers into an identical ledger, signatures already checked (a bank's batch).
(c) raw_sqlite_per_s: the floor: per transfer two UPDATEs of balance rows and one INSERT of a journal row, each a
    plain `execute`, in transactions of the same chunk size, same PRAGMAs (WAL, synchronous as the store uses),
    no ledger logic. raw_sqlite_executemany_per_s is the same work through executemany, for reference.
(d) store_write_per_s: the rows the ledger wrote in (b) (operation rows with their signed documents and chain
    links, postings, balances, trace records), written again into the starting ledger through the store's own
    `write`, chunk by chunk, with no ledger logic: what the writes cost alone, the work (b) hands its committer
    (store/committer.py) when it applies 10,000 operations or more. The rows are kept by a run of (b) of their
    own, outside the timed ones: keeping 100,000 rows alive while (b) runs slowed (b) itself by ~8%.

Each figure is the best of `rounds` runs (each on a fresh copy of its starting ledger), the floors as much as the
ledger's: on a shared machine another job slows a run, never speeds one up, so the best run is the closest to
what the code costs, and a ratio of two best runs compares like with like (as timeit takes the minimum). The
two sides of every ratio take turns, round by round ((a) with verification alone; (b), (e), (f) and the floor):
a load that comes or goes during a run then weighs on both sides, not on whichever was measured later.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import nacl.signing

from .core import limits
from .core.canonical import canonical_bytes
from .core.records import AccountKind, Issue, OpenAccount, Operation, OpKind, Transfer
from .core.windows import keeps_activity
from .ledger.service import Ledger
from .ledger.signing import cores, ignore_interrupts, public_key_hex, sign, verify_chunk
from .store.base import ChangeSet
from .store.entries import KIND_CODE, STORED_JOURNAL_COLUMNS
from .store.leaves import NEXT_LEAF_BASE
from .store.sqlite import SqliteStore

SYNCHRONOUS = "FULL"  # what SqliteStore uses by default
SEED = 20260601
FUNDS_TIYN = 10**12  # issued to every account before the run, so every transfer of the run succeeds
VERIFY_SAMPLE = 20_000  # signatures verified to measure one core's Ed25519 rate
PROGRESS = Callable[[str], None]


# ---- setup ------------------------------------------------------------------------------------------------------


def _make_ledger(path: str, handles: list[str], keys: list[nacl.signing.SigningKey]) -> str:
    """A ledger with one exchange account per handle, each funded; returns its ledger id."""
    cb_key = nacl.signing.SigningKey(bytes(range(32)))
    store = SqliteStore(path, create=True, synchronous=SYNCHRONOUS)
    # Funded an hour before the run, as a ledger in use would have been: the run's first move of each bucket
    # then starts a new minute in the fresh ledger as in the grown one (and would write its activity row in
    # both, were activity kept: Ledger.create keeps none until a set that reads windows is enabled).
    setup_at = int(time.time()) - 3600
    ledger = Ledger.create(store, "bench", public_key_hex(cb_key), "nbk", clock=lambda: setup_at)
    opens = [
        Operation(f"open-{h}", "nbk", OpenAccount(h, AccountKind.exchange, public_key_hex(k)))
        for h, k in zip(handles, keys, strict=True)
    ]
    issues = [Operation(f"fund-{h}", "nbk", Issue(h, FUNDS_TIYN)) for h in handles]
    for batch in (opens, issues):  # signed, so that `tenge check` of a benchmark ledger verifies every entry
        results = ledger.apply_many([sign(ledger.ledger_id, op, cb_key) for op in batch], verified=True)
        if not all(r.code.value == "ok" for r in results):
            raise RuntimeError(f"benchmark setup failed: {results[0]}")
    ledger_id = ledger.ledger_id
    store.close()
    return ledger_id


def _transfers(
    ledger_id: str, handles: list[str], keys: list[nacl.signing.SigningKey], n: int
) -> list[Operation]:
    rng = random.Random(SEED)
    ops = []
    count = len(handles)
    for i in range(n):
        a = rng.randrange(count)
        b = (a + 1 + rng.randrange(count - 1)) % count
        op = Operation(f"t-{i}", handles[a], Transfer(handles[a], handles[b], 1 + rng.randrange(100_000)))
        signature = keys[a].sign(canonical_bytes(ledger_id, op)).signature.hex()
        ops.append(Operation(op.id, op.signer, op.body, signature))
    return ops


# ---- the measurements -----------------------------------------------------------------------------------------


def _verify_rate() -> float:
    key = nacl.signing.SigningKey(bytes(32))
    verify_key = key.verify_key
    signed = [key.sign(f"tenge-ledger/op/v1\nbench {i}".encode()) for i in range(VERIFY_SAMPLE)]
    start = time.perf_counter()
    for s in signed:
        verify_key.verify(s.message, s.signature)
    return VERIFY_SAMPLE / (time.perf_counter() - start)


def _apply_verified(path: str, ops: list[Operation], record: list[ChangeSet] | None = None) -> float:
    """(b); with `record`, every change set the ledger writes is also kept there, for (d)."""
    return _apply_verified_cpu(path, ops, record)[0]


def _apply_verified_cpu(
    path: str, ops: list[Operation], record: list[ChangeSet] | None = None
) -> tuple[float, float | None]:
    """(b), and the CPU seconds per transfer it took in every process (this one and its committer, which has
    ended once the store is closed), or None where the platform does not say."""
    store = SqliteStore(path, synchronous=SYNCHRONOUS)
    ledger = Ledger(Recording(store, record) if record is not None else store)
    cpu = _cpu_seconds()
    start = time.perf_counter()
    results = ledger.apply_many(ops, verified=True)
    elapsed = time.perf_counter() - start
    _expect_ok(results)
    store.close()
    after = _cpu_seconds()
    return len(ops) / elapsed, None if cpu is None or after is None else (after - cpu) / len(ops)


def _cpu_seconds() -> float | None:
    """User and system CPU of this process and of its children that have ended."""
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    mine, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


class Recording:
    """A store whose transactions, and whose committer, keep a copy of each change set they write."""

    def __init__(self, store: SqliteStore, sink: list[ChangeSet]) -> None:
        self._store = store
        self._sink = sink

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    @contextmanager
    def committing(self):
        with self._store.committing() as committer:
            if committer is None:
                yield None
                return
            submit = committer.submit

            def recorded(change: ChangeSet, expected) -> None:
                self._sink.append(change)
                submit(change, expected)

            committer.submit = recorded  # type: ignore[method-assign]
            try:
                yield committer
            finally:
                del committer.submit  # the class's again

    @contextmanager
    def transaction(self, optimistic: bool = False):
        with self._store.transaction(optimistic) as tx:
            write = tx.write

            def recorded(change: ChangeSet) -> None:
                self._sink.append(change)
                write(change)

            tx.write = recorded  # type: ignore[method-assign]
            yield tx


def _apply_signed(path: str, ops: list[Operation], pool, workers: int, chunk: int) -> float:
    store = SqliteStore(path, synchronous=SYNCHRONOUS)
    ledger = Ledger(store)
    public_keys = {
        a.handle: bytes.fromhex(a.public_key) for a in store.accounts()
    }  # a verifier's key directory
    ledger_id = ledger.ledger_id
    start = time.perf_counter()
    chunks = [ops[i : i + chunk] for i in range(0, len(ops), chunk)]

    def items(part: list[Operation]) -> list[tuple[bytes, bytes, bytes]]:
        return [
            (canonical_bytes(ledger_id, op), bytes.fromhex(op.signature), public_keys.get(op.signer, b""))
            for op in part
        ]

    results = []
    pending = [pool.apply_async(verify_chunk, (items(part),)) for part in chunks[: 2 * workers]]
    next_chunk = len(pending)
    for part in chunks:
        flags = pending.pop(0).get()
        if next_chunk < len(chunks):
            pending.append(pool.apply_async(verify_chunk, (items(chunks[next_chunk]),)))
            next_chunk += 1
        results.extend(ledger.apply_many(part, verified=flags, chunk=chunk))
    elapsed = time.perf_counter() - start
    _expect_ok(results)
    store.close()
    return len(ops) / elapsed


def _store_write(start_db: str, changes: list[ChangeSet]) -> float:
    """Write the change sets (b) wrote into a copy of its starting ledger through SqliteStore.write alone, one
    transaction each, with no ledger logic: what the writes alone cost."""
    elapsed = store_write_seconds(start_db, changes, SYNCHRONOUS)
    return sum(len(c.entries) + len(c.plain_entries) for c in changes) / elapsed


def store_write_seconds(start_db: str, changes: list[ChangeSet], synchronous: str) -> float:
    """Seconds SqliteStore.write alone takes to write `changes` into the ledger at `start_db`, one transaction
    each (what a ledger wrote, kept by `Recording`, written again with no ledger logic)."""
    store = SqliteStore(start_db, synchronous=synchronous)
    start = time.perf_counter()
    for change in changes:
        with store.transaction() as tx:
            tx.write(change)
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed


def _expect_ok(results) -> None:
    bad = [r for r in results if r.code.value != "ok"]
    if bad:
        raise RuntimeError(f"{len(bad)} transfers were not applied, e.g. {bad[0]}")


def _raw_sqlite(path: str, handles: list[str], ops: list[Operation], chunk: int, many: bool) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")
    conn.execute(
        "CREATE TABLE balances (account TEXT NOT NULL, tag TEXT NOT NULL, balance_tiyn INTEGER NOT NULL,"
        " PRIMARY KEY (account, tag))"
    )
    conn.execute(
        "CREATE TABLE journal (seq INTEGER PRIMARY KEY, payer TEXT NOT NULL, payee TEXT NOT NULL,"
        " amount_tiyn INTEGER NOT NULL)"
    )
    conn.executemany("INSERT INTO balances VALUES (?, '', ?)", [(h, FUNDS_TIYN) for h in handles])
    rows = [(op.body.payer, op.body.payee, op.body.amount_tiyn) for op in ops]  # type: ignore[union-attr]
    debit = "UPDATE balances SET balance_tiyn = balance_tiyn - ? WHERE account = ? AND tag = ''"
    credit = "UPDATE balances SET balance_tiyn = balance_tiyn + ? WHERE account = ? AND tag = ''"
    insert = "INSERT INTO journal (seq, payer, payee, amount_tiyn) VALUES (?, ?, ?, ?)"
    start = time.perf_counter()
    for base in range(0, len(rows), chunk):
        part = rows[base : base + chunk]
        conn.execute("BEGIN IMMEDIATE")
        if many:
            conn.executemany(debit, [(amount, payer) for payer, _, amount in part])
            conn.executemany(credit, [(amount, payee) for _, payee, amount in part])
            conn.executemany(insert, [(base + i, *row) for i, row in enumerate(part)])
        else:
            execute = conn.execute
            for i, (payer, payee, amount) in enumerate(part):
                execute(debit, (amount, payer))
                execute(credit, (amount, payee))
                execute(insert, (base + i, payer, payee, amount))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return len(rows) / elapsed


def _db_bytes(path: str) -> int:
    """Bytes of every page of the database (dbstat), after folding the WAL in."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(conn.execute("SELECT SUM(pgsize) FROM dbstat").fetchone()[0])
    finally:
        conn.close()


GROWN_SPAN_S = 30 * 86_400  # the grown ledger's history spans a month


def _grow(path: str, entries: int, seed: int = SEED) -> None:
    """Journal `entries` transfers among the ledger's accounts before the run, as a month of history would
    leave them: a journal row each, a trace run per chunk of them (as (b) writes them), each bucket's row
    saying the minute it last moved, and, only if the ledger keeps activity (no policy set reads windows in
    this benchmark, so a ledger made by `Ledger.create` does not), each bucket's activity row of the minute it
    moved. Written straight into the tables: only their size and shape matter to (b)."""
    rng = random.Random(seed)
    store = SqliteStore(path)
    keep = keeps_activity(store.meta().settings)
    store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    ids = [r[0] for r in conn.execute("SELECT id FROM accounts WHERE handle LIKE 'acct-%'")]
    seq0 = conn.execute("SELECT seq FROM journal_head").fetchone()[0]
    leaf0 = conn.execute(f"SELECT MAX({', '.join(NEXT_LEAF_BASE)})").fetchone()[0]
    chunk = limits.submit_chunk_operations
    start = int(time.time()) - GROWN_SPAN_S - 600  # ends ten minutes before the run starts
    step = GROWN_SPAN_S / entries
    last_minute: dict[int, int] = {}
    conn.execute("BEGIN")
    for base in range(0, entries, 10_000):
        journal, activity = [], []
        end = min(base + 10_000, entries)
        for i in range(base, end):
            payer, payee = rng.sample(ids, 2)
            at = start + int(i * step)
            journal.append((seq0 + 1 + i, f"grown-{i}", KIND_CODE[OpKind.transfer], payer, payer, payee,
                            1 + rng.randrange(100_000), None, at, rng.randbytes(64), rng.randbytes(32), 0, None,
                            None, None))  # fmt: skip
            last_minute[payer] = last_minute[payee] = at // 60  # times only grow
            if keep:
                activity += [(payer, 0, at // 60, i, i, i, i), (payee, 0, at // 60, i, i, i, i)]
        conn.executemany(
            f"INSERT INTO journal ({STORED_JOURNAL_COLUMNS}) VALUES ({','.join('?' * 15)})", journal
        )
        conn.executemany(  # transparent leaves are derived from their journal rows: a run per chunk
            "INSERT INTO trace_runs (idx, seq, count) VALUES (?, ?, ?)",
            [(leaf0 + 1 + i, seq0 + 1 + i, min(chunk, end - i)) for i in range(base, end, chunk)],
        )
        conn.executemany("INSERT OR IGNORE INTO activity VALUES (?,?,?,?,?,?,?)", activity)
    conn.executemany(
        "UPDATE balances SET minute = MAX(minute, ?) WHERE account = ? AND tag = 0",
        [(minute, account) for account, minute in last_minute.items()],
    )
    conn.execute("UPDATE journal_head SET seq = ?, entry_hash = ?", (seq0 + entries, rng.randbytes(32)))
    conn.execute("COMMIT")
    conn.close()


# ---- (f): the policy workload of benchmarks/policy.py, all of policies/ enabled ----------------------------

POLICY_PEOPLE = 1_000


def policy_ledger(
    path: str, engine, people: int = POLICY_PEOPLE, start: int = 1_772_000_000, synchronous: str = SYNCHRONOUS
):
    """A ledger for the policy workload: a bank, an exchange, budgets, the tax authority, a miner and its pool,
    a VAT-registered shop, and `people` persons of tiers 2 and 3 with 4,000,000 KZT each. Every account verifies
    with one key. Returns (store, ledger, clock), the clock a one-item list the caller moves."""
    key = bytes(nacl.signing.SigningKey(b"\x07" * 32).verify_key).hex()
    store = SqliteStore(path, create=True, synchronous=synchronous)
    now = [start]
    Ledger.create(store, "bench", key, "nbk", clock=lambda: now[0])
    ledger = Ledger(store, policy=engine, clock=lambda: now[0])
    ops = [Operation("o-bank", "nbk", OpenAccount("bank", AccountKind.bank, key))]
    for handle, kind, attrs in [
        ("aifc-exchange", AccountKind.exchange, ()),
        ("state-budget", AccountKind.government, ()),
        ("kgd-vat", AccountKind.agency, ()),
        ("local-budget", AccountKind.government, ()),
        ("mine", AccountKind.miner, ()),
        ("pool", AccountKind.merchant, ()),
        ("shop", AccountKind.merchant, (("vat", "registered"),)),
    ]:
        bank = "bank" if kind is AccountKind.merchant else None
        ops.append(Operation(f"o-{handle}", "nbk", OpenAccount(handle, kind, key, None, bank, attrs)))
    for i in range(people):
        ops.append(
            Operation(f"o-p{i}", "nbk", OpenAccount(f"p{i}", AccountKind.person, key, 2 + i % 2, "bank"))
        )
        ops.append(Operation(f"i-p{i}", "nbk", Issue(f"p{i}", 4_000_000_00)))
    ops.append(Operation("i-pool", "nbk", Issue("pool", 10**13)))
    for result in ledger.apply_many(ops, verified=True):
        if not result.succeeded:
            raise RuntimeError(f"benchmark setup failed: {result.message}")
    return store, ledger, now


def policy_workload(n: int, people: int = POLICY_PEOPLE, seed: int = 7) -> list[Operation]:
    """10% mining revenue from the pool to the miner (routed by policy), 30% sales to the VAT shop (split),
    60% payments between people (tier limits, structuring and reporting windows read)."""
    rnd = random.Random(seed)
    ops = []
    for k in range(n):
        roll = rnd.random()
        if roll < 0.1:
            body = Transfer("pool", "mine", rnd.randint(1, 10_000_00))
        else:
            payer = f"p{rnd.randrange(people)}"
            payee = "shop" if roll < 0.4 else f"p{rnd.randrange(people)}"
            if payee == payer:
                payee = "shop"
            body = Transfer(payer, payee, rnd.randint(1, 500_00))
        ops.append(Operation(f"t{k}", body.payer, body))
    return ops


def apply_policy_workload(
    path: str, engine, ops: list[Operation], people: int = POLICY_PEOPLE
) -> tuple[float, int]:
    """(transfers per second, how many succeeded): the workload in chunks of 1000, a minute apart in ledger
    time, signatures counted as checked (only ledger and policy work is measured)."""
    store, ledger, now = policy_ledger(path, engine, people)
    start = time.perf_counter()
    ok = _policy_calls(ledger, now, ops)
    elapsed = time.perf_counter() - start
    store.close()
    return len(ops) / elapsed, ok


def _policy_calls(ledger: Ledger, now: list[int], ops: list[Operation]) -> int:
    """The workload in calls of a chunk each, a minute apart in ledger time: how many succeeded."""
    ok = 0
    chunk = limits.submit_chunk_operations
    for base in range(0, len(ops), chunk):
        now[0] += 60
        ok += sum(r.succeeded for r in ledger.apply_many(ops[base : base + chunk], verified=True))
    return ok


def policy_bytes_per_transfer(path: str, engine, ops: list[Operation], people: int = POLICY_PEOPLE) -> float:
    """Database bytes (dbstat) each transfer of the policy workload adds, in calls as (f) makes them (not
    timed): the journal rows, with their decisions' keys and extra legs, the balances, activity snapshots and
    reports."""
    store, ledger, now = policy_ledger(path, engine, people)
    before = _db_bytes(path)
    _policy_calls(ledger, now, ops)
    store.close()
    return (_db_bytes(path) - before) / len(ops)


def run_apply_benchmark(
    transfers: int = 100_000,
    accounts: int = 10_000,
    progress: bool = True,
    grown: int = 500_000,
    policy_transfers: int = 20_000,
    rounds: int = 3,
) -> dict:
    """Run every measurement `rounds` times, in this process (and a verifier pool), and return the best figures
    (see the module)."""
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    say: PROGRESS = (
        (lambda text: print(text, file=sys.stderr, flush=True)) if progress else (lambda text: None)
    )
    chunk = limits.submit_chunk_operations
    n_cores = cores()
    workdir = Path(tempfile.mkdtemp(prefix="tenge-bench-"))
    try:
        say(f"setting up {accounts} accounts and signing {transfers} transfers in {workdir}")
        rng = random.Random(SEED)
        keys = [nacl.signing.SigningKey(rng.randbytes(32)) for _ in range(accounts)]
        handles = [f"acct-{i:06d}" for i in range(accounts)]
        start_db, grown_start = str(workdir / "start.db"), str(workdir / "grown-start.db")
        ledger_id = _make_ledger(start_db, handles, keys)
        ops = _transfers(ledger_id, handles, keys, transfers)
        runs = itertools.count()

        def fresh(of: str) -> str:
            """A copy of the ledger at `of`, for one run (`best` removes it once the run is measured)."""
            path = str(workdir / f"run-{next(runs)}.db")
            shutil.copy(of, path)
            return path

        def best(label: str, measure: Callable[[], float]) -> float:
            return best_in_turns([(label, measure)])[0]

        def best_in_turns(measures: list[tuple[str, Callable[[], float]]]) -> list[float]:
            """The best of `rounds` runs of each measure, the measures taking turns round by round: a load that
            comes or goes during the rounds then weighs on each alike, as it must on the two sides of a ratio."""
            figures: list[list[float]] = [[] for _ in measures]
            for i in range(rounds):
                for (label, measure), found in zip(measures, figures, strict=True):
                    say(f"{label}{f', round {i + 1} of {rounds}' if rounds > 1 else ''}")
                    found.append(measure())
                    for done in workdir.glob("run-*"):  # each run's copy, once measured
                        done.unlink()
            return [max(found) for found in figures]

        context = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
        with context.Pool(n_cores, initializer=ignore_interrupts) as pool:
            pool.map(verify_chunk, [[] for _ in range(n_cores)])  # workers started before the clock runs
            signed, verify_per_core = best_in_turns(
                [
                    (
                        f"(a) applying {transfers} signed transfers, verifying on {n_cores} processes",
                        lambda: _apply_signed(fresh(start_db), ops, pool, n_cores, chunk),
                    ),
                    ("    Ed25519 verification on one core", _verify_rate),
                ]
            )
        sizes: list[float] = []
        cpu_per_transfer: list[float] = []

        def verified_run() -> float:
            path = fresh(start_db)
            before = _db_bytes(path)
            rate, cpu = _apply_verified_cpu(path, ops)
            sizes.append((_db_bytes(path) - before) / transfers)
            if cpu is not None:
                cpu_per_transfer.append(cpu)
            return rate

        say(f"(e) journaling {grown} entries of history, for (b) again on a grown ledger")
        shutil.copy(start_db, grown_start)
        _grow(grown_start, grown)
        from .policies import shipped_policies
        from .policy import compile_sources, read_sources

        engine = compile_sources(read_sources([shipped_policies()]))
        workload = policy_workload(policy_transfers)
        policy_runs: list[tuple[float, int]] = []

        def policy_run() -> float:
            policy_runs.append(
                apply_policy_workload(str(workdir / f"run-policies-{next(runs)}.db"), engine, workload)
            )
            return policy_runs[-1][0]

        # Every ratio's two sides take turns in each round: (b), (e) and (f) over the raw floor, (e) over (b).
        verified, grown_rate, policy_rate, policy_free, raw, raw_many = best_in_turns(
            [
                (f"(b) applying {transfers} transfers with signatures already checked", verified_run),
                ("(e) (b) again on the grown ledger", lambda: _apply_verified(fresh(grown_start), ops)),
                (
                    f"(f) {policy_transfers} transfers of the policy workload, all of policies/ enabled",
                    policy_run,
                ),
                (
                    "    the same workload and calls, no policy set (what (f) would reach if its rules cost nothing)",
                    lambda: apply_policy_workload(
                        str(workdir / f"run-policies-{next(runs)}.db"), None, workload
                    )[0],
                ),
                (
                    f"(c) raw SQLite floor: {transfers} x (2 UPDATE + 1 INSERT), {chunk} per transaction",
                    lambda: _raw_sqlite(
                        str(workdir / f"run-raw-{next(runs)}.db"), handles, ops, chunk, many=False
                    ),
                ),
                (
                    "    raw SQLite through executemany",
                    lambda: _raw_sqlite(
                        str(workdir / f"run-raw-{next(runs)}.db"), handles, ops, chunk, many=True
                    ),
                ),
            ]
        )
        bytes_per_transfer = min(sizes)  # the same rows each round: the pages they take differ by a few
        policy_ok = max(policy_runs)[1]
        say("    the bytes each transfer of (f) adds (a run of its own, not timed)")
        policy_bytes = policy_bytes_per_transfer(
            str(workdir / f"run-policies-{next(runs)}.db"), engine, workload
        )
        say("(d) keeping the rows (b) writes (a run of its own, not timed)")
        changes: list[ChangeSet] = []
        _apply_verified(fresh(start_db), ops, record=changes)
        rows = best(
            "(d) the rows (b) wrote, written again through the store alone",
            lambda: _store_write(fresh(start_db), changes),
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "transfers": transfers,
        "accounts": accounts,
        "rounds": rounds,
        "chunk": chunk,
        "synchronous": SYNCHRONOUS,
        "cores": n_cores,
        "signed_per_s": round(signed),
        "verified_per_s": round(verified),
        "raw_sqlite_per_s": round(raw),
        "raw_sqlite_executemany_per_s": round(raw_many),
        "store_write_per_s": round(rows),
        "store_write_vs_raw": round(rows / raw, 3),
        "ed25519_verify_per_s_per_core": round(verify_per_core),
        "verified_vs_raw": round(verified / raw, 3),
        "verified_policies_per_s": round(policy_rate),
        "verified_policies_ok": policy_ok,
        "verified_policies_vs_raw": round(policy_rate / raw, 3),
        "policy_bytes_per_transfer": round(policy_bytes),
        "grown_entries": grown,
        "grown_verified_per_s": round(grown_rate),
        "grown_vs_fresh": round(grown_rate / verified, 3),
        "bytes_per_transfer": round(bytes_per_transfer),
        "signed_vs_verify_capacity": round(signed / (n_cores * verify_per_core), 3),
        # Every signed transfer needs one verification and (b)'s work, and both take the same cores: (a) is at
        # most cores / (1 / verify rate + (b)'s CPU) of cores x verify rate, = 1 / (1 + (b)'s CPU x verify rate).
        "cpu_per_transfer_us": round(min(cpu_per_transfer) * 1e6, 2) if cpu_per_transfer else None,
        "signed_vs_verify_capacity_ceiling": (
            round(1 / (1 + min(cpu_per_transfer) * verify_per_core), 3) if cpu_per_transfer else None
        ),
        # (f)'s calls with no policy set: its rules can only make it slower than this
        "verified_policies_ceiling_vs_raw": round(policy_free / raw, 3),
        "targets": {
            "verified_vs_raw": 0.5,
            "signed_vs_verify_capacity": 0.8,
            "grown_vs_fresh": 0.9,
            "verified_policies_vs_raw": 0.35,
            "bytes_per_transfer": 250,
        },
    }


def format_report(report: dict) -> str:
    r = report
    return "\n".join(
        [
            f"apply benchmark: {r['transfers']} transfers among {r['accounts']} accounts, {r['chunk']} per "
            f"transaction, synchronous={r['synchronous']}, {r['cores']} cores, best of {r['rounds']} runs each"
            " (the two sides of each ratio in turns)",
            f"  (a) signed, verified on {r['cores']} processes  {r['signed_per_s']:>10,} transfers/s",
            f"  (b) signatures already checked       {r['verified_per_s']:>10,} transfers/s",
            f"  (c) raw SQLite floor (execute)       {r['raw_sqlite_per_s']:>10,} transfers/s",
            f"      raw SQLite (executemany)         {r['raw_sqlite_executemany_per_s']:>10,} transfers/s",
            f"  (d) the ledger's rows, store only    {r['store_write_per_s']:>10,} transfers/s"
            f"   ({r['store_write_vs_raw']:.3f} of raw: the writes alone, (b)'s committer's work)",
            f"  Ed25519 verify, one core             {r['ed25519_verify_per_s_per_core']:>10,} /s",
            f"  verified / raw                       {r['verified_vs_raw']:>10.3f}   (target >= 0.5)",
            f"  signed / (cores x verify)            {r['signed_vs_verify_capacity']:>10.3f}   (target >= 0.8)",
            f"      at most 1 / (1 + (b)'s CPU x verify rate) {_shown(r['signed_vs_verify_capacity_ceiling'])}"
            f"   ((b) took {_shown(r['cpu_per_transfer_us'])} µs of CPU a transfer, in both its processes)",
            f"  (f) policy workload, policies/ on    {r['verified_policies_per_s']:>10,} transfers/s"
            f"   ({r['verified_policies_ok']:,} applied)",
            f"  (f) / raw                            {r['verified_policies_vs_raw']:>10.3f}   (target >= 0.35)",
            f"      at most (f)'s calls with no policy set / raw {r['verified_policies_ceiling_vs_raw']:.3f}",
            f"      database bytes per transfer of (f) {r['policy_bytes_per_transfer']:>8,}",
            f"  (e) (b) after {r['grown_entries']:,} entries      {r['grown_verified_per_s']:>10,} transfers/s",
            f"  grown / fresh                        {r['grown_vs_fresh']:>10.3f}   (target >= 0.9)",
            f"  database bytes per transfer (dbstat) {r['bytes_per_transfer']:>10,}   (target <= 250)",
        ]
    )


def _shown(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.3f}" if value < 10 else f"{value:.1f}"


def main() -> None:
    as_json = "--json" in sys.argv
    report = run_apply_benchmark(progress=not as_json)
    print(json.dumps(report, indent=2) if as_json else format_report(report))
