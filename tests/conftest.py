"""Shared fixtures: a fresh ledger over a store URL, with its keystore, a wallet and a clock the test moves.

`store_url` names the database a test's ledger lives in: a SQLite file in `tmp_path` by default. To run the
suite over another store, override or parametrize `store_url` (e.g. from $TENGE_TEST_PG_URL); everything built
on `make_ledger` follows. Tests that edit SQLite files directly use `sqlite_url` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from bank_support import fresh_schema, pg_base_url

from tenge_ledger.app import ledger_over
from tenge_ledger.client.keystore import Keystore
from tenge_ledger.client.wallet import Wallet
from tenge_ledger.core.canonical import date_start
from tenge_ledger.core.records import AccountKind
from tenge_ledger.ledger.journal import check_journal
from tenge_ledger.ledger.service import Ledger
from tenge_ledger.ledger.signing import public_key_hex
from tenge_ledger.store import open_store
from tenge_ledger.store.base import Store

T0 = date_start("2026-06-01")  # ledger time at which every test ledger starts


@dataclass
class Clock:
    """Ledger time a test controls: call it for the time, `advance` to move it on."""

    now: int = T0

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: int) -> int:
        self.now += seconds
        return self.now


@dataclass
class LedgerEnv:
    """One test ledger: the service, its store, the keystore with every secret key, and a signing wallet."""

    url: str
    ledger: Ledger
    keystore: Keystore
    wallet: Wallet
    clock: Clock
    extra: dict = field(default_factory=dict)

    @property
    def store(self) -> Store:
        return self.ledger.store

    @property
    def cb(self) -> str:
        return self.ledger.central_bank

    def balance(self, handle: str, tag: str = "") -> int:
        return self.store.balances(handle).get((handle, tag), 0)

    def total(self, handle: str) -> int:
        return sum(self.store.balances(handle).values())

    def snapshot(self) -> tuple:
        """Everything a mistake must not change: balances, supply, journal head, accounts."""
        return (self.store.balances(), self.store.supply(), self.store.head(), self.store.accounts())

    def check(self) -> None:
        found = check_journal(self.store)
        assert found.ok, found.problems

    def open_basic(self) -> None:
        """halyk (bank), aigerim (person, tier 1), cafe (merchant), roads (government)."""
        w = self.wallet
        assert w.open_account("halyk", AccountKind.bank).succeeded
        assert w.open_account("aigerim", AccountKind.person, tier=1, bank="halyk").succeeded
        assert w.open_account(
            "cafe", AccountKind.merchant, bank="halyk", attrs=(("zone", "alatau"),)
        ).succeeded
        assert w.open_account("roads", AccountKind.government).succeeded


# Every test built on `store_url` runs on each store: SQLite always, PostgreSQL when $TENGE_TEST_PG_URL names a
# server (.ci/run starts one). Each PostgreSQL test gets a fresh schema, dropped afterwards.
STORES = ["sqlite"] + (["postgres"] if pg_base_url() else [])


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "ledger.db")
        return
    with fresh_schema(pg_base_url()) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return str(tmp_path / "ledger-sqlite.db")


def build_ledger(
    url: str,
    keys: Path,
    clock: Clock | None = None,
    name: str = "test ledger",
    settings: dict | None = None,
) -> LedgerEnv:
    clock = clock or Clock()
    store = open_store(url, create=True)
    keystore = Keystore(keys)
    cb_key = keystore.create("nbk")
    Ledger.create(store, name, public_key_hex(cb_key), "nbk", settings=settings, clock=clock)
    ledger = ledger_over(store, clock)
    return LedgerEnv(url, ledger, keystore, Wallet(ledger, keystore), clock)


@pytest.fixture
def make_ledger(store_url: str, tmp_path: Path) -> Iterator[Callable[..., LedgerEnv]]:
    """`make_ledger(clock=None, settings=None, name=...)` -> LedgerEnv. The first ledger of a test lives at
    `store_url`; further ones (e.g. a second ledger for replay tests) in SQLite files beside it."""
    made: list[LedgerEnv] = []

    def make(
        clock: Clock | None = None, settings: dict | None = None, name: str = "test ledger"
    ) -> LedgerEnv:
        n = len(made)
        url = store_url if n == 0 else str(tmp_path / f"ledger-{n}.db")
        env = build_ledger(url, tmp_path / f"keys-{n}", clock, name, settings)
        made.append(env)
        return env

    yield make
    for env in made:
        env.store.close()


@pytest.fixture
def env(make_ledger) -> LedgerEnv:
    """A ledger with the four basic accounts open and nothing issued yet."""
    e = make_ledger()
    e.open_basic()
    return e
