"""The bank workload (Jepsen's bank test, for tenge-ledger): accounts with a fixed total, writer processes doing
random transfers, a reader checking every snapshot, and the final check of what writers saw acknowledged.

Workers run in spawned processes; each writes what it saw to a JSON-lines file as it goes (flushed per line),
so a writer killed with SIGKILL still leaves every acknowledgement it received.
Keys derive from fixed seeds, so every process can sign for every account without sharing files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import nacl.signing

from tenge_ledger.core.errors import LedgerStateError, StoreError
from tenge_ledger.core.records import AccountKind, Issue, OpenAccount, Operation, Transfer
from tenge_ledger.core.results import ResultCode
from tenge_ledger.ledger.journal import check_journal
from tenge_ledger.ledger.service import Ledger
from tenge_ledger.ledger.signing import public_key_hex, sign
from tenge_ledger.store import open_store

ACCOUNTS = 20
OPENING_TIYN = 1_000_000  # each account starts with 10,000 KZT
CENTRAL_BANK = "nbk"
RETRY_PAUSE_S = 0.2
RECOVERY_WAIT_S = 60.0  # how long a writer keeps retrying its in-flight operation after its deadline


def key_for(handle: str) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(hashlib.sha256(f"tenge-bank-test/{handle}".encode()).digest())


def handles(count: int = ACCOUNTS) -> list[str]:
    return [f"acct{i:02d}" for i in range(count)]


def setup_bank(url: str, count: int = ACCOUNTS, opening_tiyn: int = OPENING_TIYN) -> int:
    """Create the ledger, open `count` accounts and fund each; returns the total issued."""
    store = open_store(url, create=True)
    try:
        cb_key = key_for(CENTRAL_BANK)
        ledger = Ledger.create(store, "bank test", public_key_hex(cb_key), CENTRAL_BANK)
        ops = []
        for h in handles(count):
            body = OpenAccount(h, AccountKind.government, public_key_hex(key_for(h)))
            ops.append(sign(ledger.ledger_id, Operation(f"open-{h}", CENTRAL_BANK, body), cb_key))
            issue = Issue(h, opening_tiyn)
            ops.append(sign(ledger.ledger_id, Operation(f"fund-{h}", CENTRAL_BANK, issue), cb_key))
        results = ledger.apply_many(ops)
        bad = [r for r in results if r.code is not ResultCode.ok]
        if bad:
            raise RuntimeError(f"setting up the bank failed: {bad[0]}")
        return count * opening_tiyn
    finally:
        store.close()


def _open(url: str) -> Ledger:
    while True:
        try:
            return Ledger(open_store(url))
        except StoreError:
            time.sleep(RETRY_PAUSE_S)


def writer(url: str, worker: int, duration_s: float, out: str, seed: int, count: int = ACCOUNTS) -> None:
    """Random transfers until the deadline. Each operation is retried with its own id until the ledger answers
    (ok, exists or a rejection): only then is it acknowledged, and only then does the writer move on."""
    rng = random.Random(seed)
    names = handles(count)
    deadline = time.monotonic() + duration_s
    ledger = _open(url)
    with open(out, "a", encoding="utf-8") as log:
        n = 0
        while time.monotonic() < deadline:
            payer, payee = rng.sample(names, 2)
            op = Operation(f"w{worker}-{n}", payer, Transfer(payer, payee, rng.randint(1, 50_000)))
            op = sign(ledger.ledger_id, op, key_for(payer))
            n += 1
            retries = 0
            while True:
                try:
                    result = ledger.apply(op)
                    break
                except (StoreError, LedgerStateError):
                    retries += 1
                    if time.monotonic() > deadline + RECOVERY_WAIT_S:
                        log.write(json.dumps({"id": op.id, "code": "unknown"}) + "\n")
                        log.flush()
                        return
                    time.sleep(RETRY_PAUSE_S)
                    with contextlib.suppress(Exception):  # closing a broken pool may fail; we reopen anyway
                        ledger.store.close()
                    ledger = _open(url)
            line = {"id": op.id, "code": result.code.value, "seq": result.seq, "retries": retries}
            log.write(json.dumps(line) + "\n")
            log.flush()


def reader(url: str, duration_s: float, out: str, total_tiyn: int) -> None:
    """Read all balances again and again; record every read that does not sum to the total or shows a debt."""
    deadline = time.monotonic() + duration_s
    reads = failures = 0
    bad: list[str] = []
    store = None
    while time.monotonic() < deadline:
        try:
            if store is None:
                store = open_store(url)
            balances = store.balances()
        except StoreError:
            failures += 1
            store = None
            time.sleep(RETRY_PAUSE_S)
            continue
        reads += 1
        held = {a: b for (a, _t), b in balances.items() if a != CENTRAL_BANK}
        total = sum(held.values())
        negative = sorted(a for a, b in held.items() if b < 0)
        if total != total_tiyn or negative or balances.get((CENTRAL_BANK, ""), 0) != -total_tiyn:
            bad.append(f"read {reads}: total {total}, negative {negative}")
    Path(out).write_text(json.dumps({"reads": reads, "failed_reads": failures, "bad": bad[:20]}))


@dataclass
class BankReport:
    """What the final check found. `lost`: acknowledged `ok` but not in the journal (or at another seq);
    `duplicated`: in the journal more than once."""

    acknowledged: int = 0
    rejected: int = 0
    unknown: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    journal_transfers: int = 0
    reads: int = 0
    failed_reads: int = 0
    bad_reads: list[str] = field(default_factory=list)
    journal_problems: list[str] = field(default_factory=list)
    retries: int = 0

    def line(self) -> str:
        return (
            f"acknowledged {self.acknowledged} (rejected {self.rejected}), lost {len(self.lost)}, duplicated "
            f"{len(self.duplicated)}, unknown outcome {self.unknown}, transfers in journal "
            f"{self.journal_transfers}, retries {self.retries}, reads {self.reads} (bad {len(self.bad_reads)},"
            f" failed while the server was away {self.failed_reads})"
        )

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.bad_reads or self.journal_problems)


def verify(url: str, writer_logs: list[Path], reader_log: Path, total_tiyn: int) -> BankReport:
    report = BankReport()
    seen: dict[str, dict] = {}
    for path in writer_logs:
        if not path.exists():
            continue
        for raw in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(raw)
            except json.JSONDecodeError:
                continue  # the last line of a killed writer may be cut short: it was never acknowledged
            seen[entry["id"]] = entry
            report.retries += entry.get("retries", 0)
    store = open_store(url)
    try:
        found = check_journal(store)
        report.journal_problems = list(found.problems)
        journal: dict[str, list[int]] = {}
        for op, _postings in store.journal():
            journal.setdefault(op.op_id, []).append(op.seq)
        held = sum(b for (a, _t), b in store.balances().items() if a != CENTRAL_BANK)
        if held != total_tiyn:
            report.journal_problems.append(f"accounts hold {held} tiyn at the end, not {total_tiyn}")
    finally:
        store.close()
    report.journal_transfers = sum(1 for op_id in journal if op_id.startswith("w"))
    report.duplicated = sorted(op_id for op_id, seqs in journal.items() if len(seqs) > 1)
    for op_id, entry in seen.items():
        code = entry["code"]
        if code == "unknown":
            report.unknown += 1
            continue
        report.acknowledged += 1
        if code in (ResultCode.ok.value, ResultCode.exists.value):
            if journal.get(op_id) != [entry["seq"]]:
                report.lost.append(op_id)
        else:
            report.rejected += 1
            if op_id in journal:  # a rejection leaves nothing behind
                report.duplicated.append(op_id)
    data = json.loads(reader_log.read_text()) if reader_log.exists() else {}
    report.reads = data.get("reads", 0)
    report.failed_reads = data.get("failed_reads", 0)
    report.bad_reads = data.get("bad", ["the reader left no report"])
    return report


def transfer_ops(ledger_id: str, specs: list[tuple[str, str, str, int]]) -> list[Operation]:
    """Signed transfers from (id, payer, payee, amount_tiyn) tuples."""
    return [
        sign(ledger_id, Operation(op_id, payer, Transfer(payer, payee, amount)), key_for(payer))
        for op_id, payer, payee, amount in specs
    ]


def apply_each(url: str, specs: list[tuple[str, str, str, int]], out: str, start_at: float = 0.0) -> None:
    """A process of the concurrency tests: apply each transfer on its own (one transaction each) and write the
    result codes, in order, as JSON to `out`. Starts at wall-clock time `start_at`, so processes collide."""
    ledger = Ledger(open_store(url))
    ops = transfer_ops(ledger.ledger_id, specs)
    time.sleep(max(0.0, start_at - time.time()))
    codes = [ledger.apply(op).code.value for op in ops]
    ledger.store.close()
    Path(out).write_text(json.dumps(codes))
