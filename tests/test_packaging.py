"""What `pip install .` gives a new user: a wheel with this project's packages only, the shipped policies inside
it, and a `tenge` that runs the demo and the README's "Using it" commands from a fresh virtual environment
outside the source tree. Also: `tenge --help` starts without the ledger, the policy compiler or lark."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = {"tenge_ledger", "tenge_cli"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (found,) = out.glob("tenge_ledger-*.whl")
    return found


def _wheel_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


def test_wheel__top_level_packages_are_the_projects_only(wheel: Path) -> None:
    top = {
        name.split("/")[0] for name in _wheel_names(wheel) if not name.split("/")[0].endswith(".dist-info")
    }
    assert top == PROJECT_PACKAGES


def test_wheel__holds_every_source_package_and_the_policies(wheel: Path) -> None:
    names = set(_wheel_names(wheel))
    for init in (ROOT / "tenge_ledger").rglob("__init__.py"):
        assert str(init.relative_to(ROOT)) in names, f"{init} is not in the wheel"
    for module in (ROOT / "cli").glob("*.py"):
        assert f"tenge_cli/{module.name}" in names
    shipped = sorted(
        p.name for p in (ROOT / "policies").iterdir() if p.suffix in (".policy", ".toml", ".csv")
    )
    assert len(shipped) >= 24
    for name in shipped:
        assert f"tenge_ledger/policies/{name}" in names
    assert "tenge_ledger/policy/grammar.lark" in names


def _readme_block(after: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(re.escape(after) + r".*?```\n(.*?)```", text, re.S)
    assert match, f"README has no code block after {after!r}"
    return match.group(1)


def test_installed_wheel__runs_the_demo_and_the_readme_commands(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True, capture_output=True)
    tenge = str(venv / "bin" / "tenge")
    work = tmp_path / "work"  # outside the source tree: nothing of the checkout can be found from here
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("TENGE_DB", "TENGE_KEYSTORE", "PYTHONPATH")}

    def run(args: list[str]) -> subprocess.CompletedProcess:
        done = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
        assert "Traceback" not in done.stderr
        return done

    demo = run([tenge, "demo"])
    assert "policy set version 1" in demo.stdout
    assert "rules from the data-access manifest of the shipped policies/" in demo.stdout.replace("\n", " ")

    (work / "ops.jsonl").write_text(_readme_block("A line of `ops.jsonl`:"), encoding="utf-8")
    commands = [shlex.split(line, comments=True) for line in _readme_block("## Using it").splitlines()]
    assert len(commands) >= 15
    for args in commands:
        assert args[0] == "tenge", args
        if args[1:2] == ["bench"]:  # the full benchmark takes minutes; the same command, smaller
            args = [*args, "--transfers", "1000", "--accounts", "10"]
        run([tenge, *args[1:]])
    assert '"balance_tiyn": 380100' in run([tenge, "--db", "pilot.db", "--json", "balance", "aigerim"]).stdout

    # The committer process (store/committer.py) starts from the installed package alone, and answers.
    committed = run([str(venv / "bin" / "python"), "-c", _COMMITTER_ROUND_TRIP])
    assert committed.stdout.strip() == "committed"


_COMMITTER_ROUND_TRIP = """
from tenge_ledger.store import open_store
from tenge_ledger.store.base import ChangeSet

store = open_store("pilot.db")
with store.committing() as committer:
    assert committer is not None
    with committer.reading() as tx:
        expected = (tx.head(), tx.settings_epoch())
    committer.submit(ChangeSet(), expected)
    committer.committed()
    assert not committer.stopped
store.close()
print("committed")
"""


def test_help__starts_without_the_ledger_or_lark() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); from tenge_cli.main import cli\n"
        "try:\n    cli(['--help'], prog_name='tenge')\nexcept SystemExit:\n    pass\n"
        "print(time.perf_counter() - t, file=sys.stderr)\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] == 'lark'"
        " or m.startswith(('tenge_ledger.policy', 'tenge_ledger.privacy', 'tenge_ledger.ledger.service',"
        " 'tenge_ledger.app', 'nacl', 'sqlite3', 'psycopg')))\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - started
    assert "Commands:" in done.stdout
    assert "HEAVY []" in done.stderr, done.stderr
    assert elapsed < 5, elapsed  # about 0.08 s on the 2-core development machine; lark alone adds 0.06 s
