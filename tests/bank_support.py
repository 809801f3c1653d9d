"""PostgreSQL for tests: a fresh schema per test in the server $TENGE_TEST_PG_URL names, and the cluster's
controls (.ci/pg.sh exports them) for the fault tests that stop and restart the server."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

PG_URL_ENV = "TENGE_TEST_PG_URL"


def pg_base_url() -> str | None:
    return os.environ.get(PG_URL_ENV) or None


def schema_url(base: str, schema: str) -> str:
    """The URL of `base` with its search_path set to `schema`: each test's ledger lives in its own schema."""
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


@contextmanager
def fresh_schema(base: str, prefix: str = "t") -> Iterator[str]:
    """Create an empty schema, yield a URL whose search_path is it, drop it afterwards."""
    import psycopg

    schema = f"{prefix}_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema_url(base, schema)
    finally:
        try:
            with psycopg.connect(base, autocommit=True, connect_timeout=10) as conn:
                conn.execute("SET lock_timeout = '10s'")
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        except psycopg.Error:
            pass  # a schema left behind in a throwaway cluster is harmless


def pg_ctl(action: str, *args: str) -> None:
    """Run `pg_ctl <action>` on the test cluster as the user it runs as (PostgreSQL refuses root)."""
    data = os.environ.get("TENGE_TEST_PG_DATA")
    if not data:
        raise RuntimeError(
            "TENGE_TEST_PG_DATA is not set: start the cluster with .ci/pg.sh, which exports it with the URL"
        )
    binary = os.path.join(os.environ.get("TENGE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"), "pg_ctl")
    cmd = [binary, "-D", data, *args, action]
    if action == "start":
        cmd[-1:] = ["-l", os.path.join(os.path.dirname(data), "server.log"), "-w", "-t", "60", "start"]
    user = os.environ.get("TENGE_TEST_PG_USER")
    if os.geteuid() == 0 and user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
