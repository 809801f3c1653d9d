"""Files that hold ledger data are private by default (0600 whatever the umask): the database and its WAL,
audit bundles, reports; a disclosure refuses to write into an existing file others can read."""

from __future__ import annotations

import os
import stat

import pytest
from click.testing import CliRunner

from tenge_cli.main import cli
from tenge_ledger.core.errors import InputError
from tenge_ledger.core.files import write_private


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_database_wal_and_bundle__0600_under_umask_022(tmp_path, open_umask) -> None:
    db = str(tmp_path / "pilot.db")
    run = CliRunner().invoke
    assert run(cli, ["--db", db, "init", "--name", "modes"]).exit_code == 0
    assert run(cli, ["--db", db, "account", "open", "halyk", "--kind", "bank"]).exit_code == 0
    assert run(cli, ["--db", db, "issue", "halyk", "100"]).exit_code == 0
    bundle = str(tmp_path / "bundle.json")
    result = run(cli, ["--db", db, "audit", "export", bundle])
    assert result.exit_code == 0, result.output
    for path in (db, db + "-wal", bundle):
        if os.path.exists(path):
            assert _mode(path) == 0o600, path
    assert os.path.exists(db + "-wal") or os.path.exists(db)


def test_write_private__existing_readable_file_refused_when_fresh_only(tmp_path, open_umask) -> None:
    target = tmp_path / "key.json"
    target.write_text("{}")
    os.chmod(target, 0o644)
    with pytest.raises(InputError, match="others can read it"):
        write_private(target, "secret", fresh_only=True)
    assert target.read_text() == "{}"
    write_private(target, "secret")  # an export may overwrite: it makes the file private first
    assert _mode(target) == 0o600 and target.read_text() == "secret"
