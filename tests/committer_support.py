"""What the committer's tests share (tests/test_committer.py, tests/test_committer_attacks.py): a copy of the
starting ledger, a ledger over it with the committer on from any size of batch (or off), a run of plain
transfers, and the journal check every attack ends with."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from tenge_ledger.app import ledger_over
from tenge_ledger.client.keystore import Keystore
from tenge_ledger.client.wallet import Wallet
from tenge_ledger.core.records import Operation, Transfer
from tenge_ledger.ledger.journal import check_journal
from tenge_ledger.ledger.service import Ledger
from tenge_ledger.store import open_store
from tenge_ledger.store.base import Store


def copy_of(db: Path, folder: Path, name: str = "l.db") -> tuple[Path, Store]:
    """A copy of the ledger at `db` in `folder`, and a store open on it."""
    path = folder / name
    shutil.copy(db, path)
    return path, open_store(str(path))


def ledger_on(
    store: Store, keys: Path, clock: Callable[[], int], committer: bool = True
) -> tuple[Ledger, Wallet]:
    """A ledger over `store` that hands its writes to the committer from any size of batch (or never), and a
    wallet signing with the keys at `keys`."""
    ledger = ledger_over(store, clock)
    ledger.committer_operations_min = 0 if committer else 10**9
    return ledger, Wallet(ledger, Keystore(keys))


def transfers(w: Wallet, prefix: str, count: int) -> list[Operation]:
    """`count` plain transfers of one tiyn from aigerim to cafe, with ids `prefix-0`, `prefix-1`, ..."""
    return [w.build("aigerim", Transfer("aigerim", "cafe", 1), f"{prefix}-{i}") for i in range(count)]


def checks(path: Path) -> None:
    """`tenge check` passes on the ledger at `path`: every entry, link, balance and leaf re-derived."""
    store = open_store(str(path))
    try:
        report = check_journal(store)
        assert report.ok, report.problems
    finally:
        store.close()


def pipelined_calls(monkeypatch) -> list[bool]:
    """A list that gets an item each time any ledger hands a call to its committer (Ledger._apply_pipelined)."""
    calls: list[bool] = []
    real = Ledger._apply_pipelined

    def spy(self, *args):
        calls.append(True)
        return real(self, *args)

    monkeypatch.setattr(Ledger, "_apply_pipelined", spy)
    return calls


def acting_clock(now: int, at: int, act: Callable[[], None]) -> Callable[[], int]:
    """A ledger clock that always reads `now` and, read for the `at`-th time (a ledger reads it once per chunk,
    as the chunk starts, inside its read transaction), first runs `act`: how a test gets between chunks."""
    reads = [0]

    def clock() -> int:
        reads[0] += 1
        if reads[0] == at:
            act()
        return now

    return clock
