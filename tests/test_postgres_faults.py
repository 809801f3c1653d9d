"""Bad input and faults on the PostgreSQL store: one clear line (a StoreError; `Error: ...` from the CLI), never
a traceback, and nothing half-applied."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import bank_workload as bank
import psycopg
import pytest
from bank_support import fresh_schema, pg_base_url, pg_ctl, schema_url

from tenge_ledger.core.errors import StoreError
from tenge_ledger.core.records import Operation, Transfer
from tenge_ledger.ledger.service import Ledger
from tenge_ledger.ledger.signing import sign
from tenge_ledger.store import open_store
from tenge_ledger.store.postgres import PostgresStore, redact

pytestmark = pytest.mark.skipif(not pg_base_url(), reason="TENGE_TEST_PG_URL names no PostgreSQL server")

UNREACHABLE = "postgresql://tenge@127.0.0.1:1/tenge"


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_schema(pg_base_url(), prefix="fault") as url:
        yield url


def _one_line_error(url: str, create: bool = False) -> str:
    with pytest.raises(StoreError) as info:
        open_store(url, create=create)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_open__unreachable_server() -> None:
    assert "cannot connect to postgresql://tenge@127.0.0.1:1/tenge" in _one_line_error(UNREACHABLE)


def test_open__malformed_url() -> None:
    assert "cannot connect" in _one_line_error("postgresql://tenge@127.0.0.1:notaport/tenge")


def test_open__no_such_database() -> None:
    base = pg_base_url().rsplit("/", 1)[0]
    assert "does not exist" in _one_line_error(f"{base}/no_such_database_here")


def test_open__password_never_shown() -> None:
    assert redact("postgresql://tenge:s3cret@127.0.0.1:1/x") == "postgresql://tenge:***@127.0.0.1:1/x"
    assert "s3cret" not in _one_line_error("postgresql://tenge:s3cret@127.0.0.1:1/tenge")


def test_open__empty_schema_holds_no_ledger(pg_url: str) -> None:
    assert "holds no ledger yet" in _one_line_error(pg_url)


def test_open__schema_of_another_application(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    assert "not a tenge ledger" in _one_line_error(pg_url)
    assert "not a tenge ledger" in _one_line_error(pg_url, create=True)


def test_open__search_path_names_no_schema() -> None:
    assert "no schema" in _one_line_error(schema_url(pg_base_url(), "no_such_schema_here"), create=True)


def test_open__newer_schema_version(pg_url: str) -> None:
    bank.setup_bank(pg_url, count=1)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (99, 'from the future', 0)")
    assert "newer than this tenge-ledger knows" in _one_line_error(pg_url)


def test_init__twice_refused(pg_url: str) -> None:
    bank.setup_bank(pg_url, count=1)
    with pytest.raises(StoreError, match="already holds the ledger 'bank test'"):
        bank.setup_bank(pg_url, count=1)


def test_server_gone_mid_transaction__nothing_applied(pg_url: str) -> None:
    bank.setup_bank(pg_url, count=2)
    store = open_store(pg_url)
    assert isinstance(store, PostgresStore)
    ledger = Ledger(store)
    a, b = bank.handles(2)
    before = (store.head(), store.balances())
    op = sign(ledger.ledger_id, Operation("gone-1", a, Transfer(a, b, 500)), bank.key_for(a))
    with pytest.raises(StoreError, match="lost the PostgreSQL server") as info, store.transaction() as tx:
        pid = tx._cur.connection.info.backend_pid
        with psycopg.connect(pg_base_url(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        ledger._apply(_root(tx), op, 0, False)
        tx.write(_root(tx).changeset())
    assert "\n" not in str(info.value)
    assert (store.head(), store.balances()) == before
    assert ledger.apply(op).code.value == "ok"  # the pool replaced the dead connection; the id is still free
    assert ledger.apply(op).code.value == "exists"
    store.close()


def test_server_restarted__open_store_carries_on(pg_url: str) -> None:
    """Pooled connections die with the server; the next read and the next write use fresh ones."""
    bank.setup_bank(pg_url, count=2)
    ledger = Ledger(open_store(pg_url))
    a, b = bank.handles(2)
    supply = ledger.store.supply()
    pg_ctl("stop", "-m", "immediate", "-w")
    pg_ctl("start")
    assert ledger.store.supply() == supply
    op = sign(ledger.ledger_id, Operation("after-restart", a, Transfer(a, b, 5)), bank.key_for(a))
    assert ledger.apply(op).code.value == "ok"
    ledger.store.close()


def test_server_restarted__shared_store_writes_from_threads_carry_on(pg_url: str) -> None:
    """A store whose pool grew to several connections: after a restart every one is dead, yet writes go on."""
    import threading

    bank.setup_bank(pg_url, count=9)
    ledger = Ledger(open_store(pg_url))
    names = bank.handles(9)

    def spend(i: int, tag: str) -> None:
        (op,) = bank.transfer_ops(ledger.ledger_id, [(f"{tag}-{i}", names[i], names[8], 1)])
        assert ledger.apply(op).code.value == "ok"

    for tag in ("before", "after"):
        threads = [threading.Thread(target=spend, args=(i, tag)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        if tag == "before":
            pg_ctl("stop", "-m", "immediate", "-w")
            pg_ctl("start")
    assert ledger.store.balances(names[8])[(names[8], "")] == bank.OPENING_TIYN + 16
    ledger.store.close()


def _root(tx):
    from tenge_ledger.ledger.working import WorkingSet

    return WorkingSet(tx=tx)


def _cli(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from tenge_cli.main import main; sys.argv = ['tenge', *sys.argv[1:]]; main()"
    root = Path(__file__).resolve().parents[1]
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
        env={**os.environ, "TENGE_KEYSTORE": str(root / ".no-such-keystore")},
    )


@pytest.mark.parametrize("url", [UNREACHABLE, "postgresql://tenge@127.0.0.1:notaport/tenge"])
def test_cli__bad_url_one_line_exit_1(url: str) -> None:
    done = _cli("--db", url, "supply")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("Error: ") and done.stderr.count("\n") == 1, done.stderr


def test_cli__not_a_ledger_one_line_exit_1(pg_url: str) -> None:
    done = _cli("--db", pg_url, "supply")
    assert done.returncode == 1
    assert done.stderr.startswith("Error: ") and "holds no ledger yet" in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
