"""The writer process of test_crash.py: applies units of operations to a SQLite ledger until it is killed.

Even units are a chunk of transfers through apply_many (one database transaction); odd units are one atomic
batch operation. After each commit it prints the unit's number, so the test knows writing is under way.
"""

from __future__ import annotations

import sys

from tenge_ledger.app import open_ledger
from tenge_ledger.core.records import Batch, Operation, Transfer

UNIT_OPERATIONS = 400
ACCOUNTS = 10


def unit_ops(unit: int) -> list[Operation]:
    return [
        Operation(
            f"u{unit}-{i}",
            f"a{i % ACCOUNTS}",
            Transfer(f"a{i % ACCOUNTS}", f"a{(i + 1) % ACCOUNTS}", 1 + i % 7),
        )
        for i in range(UNIT_OPERATIONS)
    ]


def main(url: str) -> None:
    ledger = open_ledger(url)
    unit = 0
    while True:
        ops = unit_ops(unit)
        if unit % 2 == 0:
            results = ledger.apply_many(ops, verified=True, chunk=UNIT_OPERATIONS)
        else:
            results = [ledger.apply(Operation(f"u{unit}-batch", "a0", Batch(tuple(ops))), verified=True)]
        assert all(r.code.value == "ok" for r in results), results[:3]
        print(unit, flush=True)
        unit += 1


if __name__ == "__main__":
    main(sys.argv[1])
