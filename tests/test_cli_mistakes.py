"""User mistakes and refusals of the environment that used to end in a traceback: each is one `Error:` line on
stderr, exit 1, and nothing changed. Also: `--json` after every command, the future refused by `sweep`,
text that is not valid UTF-8 refused at input yet shown escaped by every reader, and Ctrl-C (exit 130)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from test_cli import TENGE, Pilot, new_pilot
from test_cli_help import _commands

from tenge_cli.main import cli
from tenge_ledger.app import open_ledger
from tenge_ledger.client.keystore import Keystore, keystore_path_for
from tenge_ledger.client.wallet import Wallet


@pytest.fixture
def pilot(tmp_path, monkeypatch) -> Pilot:
    p = new_pilot(tmp_path, monkeypatch)
    p("issue", "halyk", "1000.00")
    return p


def _one_error_line(done: subprocess.CompletedProcess, says: str) -> None:
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: ") and says in lines[0], lines[0]


# ---- a read-only ledger file -------------------------------------------------------------------------------


@pytest.fixture
def readonly_ledger():
    """A ledger whose file the user may read but not write, and a runner as that user (root writes any file,
    so as root the commands run as `nobody`)."""
    work = Path(tempfile.mkdtemp(prefix="tenge-ro-"))
    os.chmod(work, 0o777)
    db = str(work / "ro.db")
    env = {k: v for k, v in os.environ.items() if k not in ("TENGE_DB", "TENGE_KEYSTORE")}
    run = lambda *args: subprocess.run(  # noqa: E731
        [*TENGE, "--db", db, *args], cwd=work, env=env, capture_output=True, text=True, check=True
    )
    run("init", "--name", "read-only")
    run("account", "open", "halyk", "--kind", "bank")
    run("issue", "halyk", "100")
    os.chmod(db, 0o444)
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(work / "ro.db.keys", "nobody")
        for path in (work / "ro.db.keys").rglob("*"):
            shutil.chown(path, "nobody")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        env["HOME"] = str(work)

    def as_user(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*prefix, *TENGE, "--db", db, *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    yield db, as_user
    shutil.rmtree(work, ignore_errors=True)


def test_readonly_ledger__transfer_is_one_error_line(readonly_ledger) -> None:
    db, as_user = readonly_ledger
    before = Path(db).read_bytes()
    _one_error_line(as_user("issue", "halyk", "1"), "readonly database")
    assert Path(db).read_bytes() == before
    assert "100.00 KZT" in as_user("balance", "halyk").stdout


def test_readonly_ledger__account_open_leaves_no_key(readonly_ledger) -> None:
    db, as_user = readonly_ledger
    _one_error_line(as_user("account", "open", "aigerim", "--kind", "bank"), "readonly database")
    assert not (Path(db + ".keys") / "aigerim.key").exists()


def test_account_open__rejected_opening_leaves_no_key(pilot) -> None:
    pilot("account", "open", "aigerim2", "--kind", "person", "--bank", "nobody-bank", ok=False)
    assert not (Path(pilot.db + ".keys") / "aigerim2.key").exists()


@pytest.mark.parametrize(
    "settings",
    ["garbage", "[]", '{"policy_set": 5', '{"policy_set": 5}', '{"tier_holding_tiyn": 5}',
     '{"tier_holding_tiyn": {"1": "x"}}', '{"window_activity": "yes"}', '{"checkpoint_every_records": true}'],
)  # fmt: skip
def test_damaged_settings__one_error_line(pilot, settings) -> None:
    # The meta table's settings edited by hand (or damaged): every command that opened the ledger ended in a
    # JSONDecodeError or AttributeError traceback.
    conn = sqlite3.connect(pilot.db)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'settings'", (settings,))
    conn.close()
    for args in (("check",), ("balance", "halyk"), ("info",)):
        result = pilot(*args, ok=False)
        assert result.exit_code == 1, (args, result.output)
        assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "settings" in lines[0] and "damaged" in lines[0], result.stderr


def _policy_set(**fields):
    return lambda settings: settings.update(policy_set={"id": "0" * 64, "version": 1, "files": {}, **fields})


def _without(setting: str, field: str):
    return lambda settings: settings[setting].pop(field)


def _set_in(setting: str, field: str, value):
    return lambda settings: settings[setting].__setitem__(field, value)


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda s: s.update(policy_set={"id": "0" * 64, "files": {}}), 'policy_set: the key "version" is missing'),
        (_policy_set(version="1"), 'policy_set.version: "1" is a string, not an integer'),
        (_policy_set(version=True), "policy_set.version: true is a boolean"),
        (_policy_set(files={"limits.policy": 5}), "policy_set.files.limits.policy: 5 is an integer, not a string"),
        (_policy_set(files=["limits.policy"]), "policy_set.files: "),
        (lambda s: s.update(tier_holding_tiyn={"1": 1.5}), "tier_holding_tiyn.1: 1.5 is a number with a fraction"),
        (lambda s: s.update(tier_holding_tiyn={"1": True}), "tier_holding_tiyn.1: true is a boolean"),
        (lambda s: s.update(window_filters=[5]), "window_filters[0]: 5 is an integer, not a string"),
        (lambda s: s.update(policy_history=[{"action": "enable", "id": "x", "version": True, "at": 0}]),
         "policy_history[0].version: true is a boolean"),
        (lambda s: s.update(policy_history=[{"action": "disable", "id": "x", "version": 1}]),
         'policy_history[0]: the key "at" is missing'),
        (lambda s: s.update(trace_checkpoint_notes=[{"note": "x", "at": "0"}]), "trace_checkpoint_notes[0].at"),
        (_set_in("privacy_public", "checkpoint_key", 5), "privacy_public.checkpoint_key: 5 is an integer"),
        (_without("privacy_public", "box_public"), 'privacy_public: the key "box_public" is missing'),
        (_set_in("privacy_public", "box_public", {"fma": None}), "privacy_public.box_public.fma: null is null"),
    ],
    ids=["policy-set-no-version", "policy-set-version-string", "policy-set-version-bool", "policy-file-number",
         "policy-files-list", "tier-float", "tier-bool", "filter-number", "history-version-bool", "history-no-at",
         "checkpoint-at-string", "checkpoint-key-number", "privacy-no-box-public", "box-public-null"],
)  # fmt: skip
def test_damaged_nested_setting__one_error_line_naming_it(pilot, edit, says) -> None:
    # Only the settings' top level was checked: a policy set without its version, a policy file that is no text,
    # a filter key that is a number reached the code that reads them (a KeyError, a TypeError traceback, or a
    # setting quietly read as something else).
    conn = sqlite3.connect(pilot.db)
    settings = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'settings'").fetchone()[0])
    edit(settings)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'settings'", (json.dumps(settings),))
    conn.close()
    for args in (("check",), ("balance", "halyk"), ("transfer", "halyk", "aigerim", "1")):
        result = pilot(*args, ok=False)
        assert result.exit_code == 1, (args, result.output)
        assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "settings" in lines[0] and "damaged" in lines[0], result.stderr
        assert says in lines[0], lines[0]


@pytest.mark.parametrize("reason", ["a\nb", "\x1b[31mred", "x\u202ey", "r" * 257])
@pytest.mark.parametrize("command", ["freeze", "unfreeze"])
def test_status_reason__control_characters_and_length_refused(pilot, command, reason) -> None:
    # `--memo` and a submit line's reason were checked; `account freeze --reason` went to the journal as typed
    # and its newline or escape sequence reached the terminal in the command's own output.
    if command == "unfreeze":
        pilot("account", "freeze", "aigerim", "--reason", "first")
    pilot.mistake("account", command, "aigerim", "--reason", reason, says="--reason")


def test_close__offers_no_reason_it_would_drop(pilot) -> None:
    # A close carries no reason: `--reason` was accepted ("kept in the journal", said its help) and dropped.
    pilot("account", "open", "old", "--kind", "bank")
    result = pilot("account", "close", "old", "--reason", "bye", ok=False)
    assert result.exit_code == 2 and "No such option '--reason'" in result.stderr
    assert "--reason" not in pilot("account", "close", "--help").stdout


@pytest.mark.parametrize(
    "command", [("account", "open", "shop", "--kind", "bank"), ("account", "update", "halyk")]
)
def test_attr__same_name_twice_refused(pilot, command) -> None:
    # `--attr zone=a --attr zone=b` kept b and said nothing.
    pilot.mistake(*command, "--attr", "zone=a", "--attr", "zone=b", says='--attr: "zone" is given twice')


@pytest.mark.parametrize("option", ["--case", "--basis"])
@pytest.mark.parametrize("command", ["partial", "unmask"])
def test_case_and_basis__control_characters_refused(pilot, tmp_path, command, option) -> None:
    # A case or legal basis with a newline was signed into a partial decryption and logged as typed.
    pilot("transfer", "halyk", "aigerim", "1", "--id", "pay-1")
    texts = {"--case": "C-1", "--basis": "court order"}
    texts[option] = "C\n1\x1b[2J"
    extra = ["--share", "no.share", "--out", str(tmp_path / "p")] if command == "partial" else []
    args = ["privacy", command, "pay-1", "--case", texts["--case"], "--basis", texts["--basis"], *extra]
    pilot.mistake(*args, says=f"{option}: character 2 is U+000A")


@pytest.mark.parametrize("command", [("history", "aigerim"), ("trace", "view", "--as", "fma")])
def test_kind__unknown_kind_refused(pilot, command) -> None:
    # `--kind transfr` matched nothing and said "no postings of aigerim match", exit 0.
    pilot.mistake(*command, "--kind", "transfr", says='--kind: "transfr" is not one of: open_account')


def test_kind__record_type_accepted_by_trace_view(pilot) -> None:
    assert pilot("trace", "view", "--as", "fma", "--kind", "access").exit_code == 0


def test_account_update__with_nothing_to_change_refused(pilot) -> None:
    # It signed and journaled an update that changed nothing ("ok: updated account aigerim").
    pilot.mistake("account", "update", "aigerim", says="nothing to update: give --tier or --attr")


# ---- submit lines ------------------------------------------------------------------------------------------


def test_submit__deeply_nested_line_refused(pilot, tmp_path) -> None:
    ops = tmp_path / "deep.jsonl"
    ops.write_text("[" * 200_000 + "\n")
    pilot.mistake("submit", str(ops), says="nested too deeply")


def test_submit__batch_with_its_own_id_inside_refused_by_line(pilot, tmp_path) -> None:
    ops = tmp_path / "self.jsonl"
    ops.write_text(
        '{"id": "t-1", "kind": "transfer", "payer": "halyk", "payee": "aigerim", "amount": "1"}\n'
        '{"id": "b-1", "kind": "batch", "operations": [{"id": "b-1", "kind": "transfer", "payer": "halyk",'
        ' "payee": "aigerim", "amount": "1"}]}\n'
    )
    pilot.mistake("submit", str(ops), says="self.jsonl:2.operations: an operation in a batch cannot have")


def test_submit__store_failure_leaves_no_new_key(pilot, tmp_path, monkeypatch) -> None:
    from tenge_ledger.core.errors import StoreError
    from tenge_ledger.ledger.service import Ledger

    def fail(self, ops, verified=False, chunk=None, on_results=None):
        raise StoreError("disk I/O error; nothing was changed")

    monkeypatch.setattr(Ledger, "apply_many", fail)
    ops = tmp_path / "open.jsonl"
    ops.write_text('{"id": "o-1", "kind": "open_account", "handle": "newbie", "account_kind": "bank"}\n')
    pilot.mistake("submit", str(ops), says="disk I/O error")
    assert not (Path(pilot.db + ".keys") / "newbie.key").exists()


def test_submit__interrupt_after_commit_keeps_the_opened_accounts_key(pilot, tmp_path, monkeypatch) -> None:
    # Ctrl-C can come after a chunk committed and before its results reached submit (the committer writes every
    # chunk it was handed; a commit is not undone by the interrupt after it): the key of an account that is open
    # was removed, and nobody could sign for it again.
    from tenge_ledger.ledger.service import Ledger

    real = Ledger.apply_many

    def interrupted(self, ops, verified=False, chunk=None, on_results=None):
        real(self, ops, verified=verified, chunk=chunk)  # committed, results never delivered
        raise KeyboardInterrupt

    monkeypatch.setattr(Ledger, "apply_many", interrupted)
    ops = tmp_path / "open.jsonl"
    ops.write_text(
        '{"id": "o-1", "kind": "open_account", "handle": "newbie", "account_kind": "bank"}\n'
        '{"id": "o-2", "kind": "open_account", "handle": "halyk", "account_kind": "bank"}\n'
    )
    done = pilot("submit", str(ops), ok=False)
    assert done.exit_code == 130 and "Traceback" not in done.output
    assert "Interrupted: the operations applied before it stay applied" in done.stderr
    assert "Submit the same file again" in done.stderr
    assert (Path(pilot.db + ".keys") / "newbie.key").exists()
    monkeypatch.setattr(Ledger, "apply_many", real)
    ops.write_text(
        '{"id": "t-1", "kind": "transfer", "payer": "newbie", "payee": "halyk", "amount_tiyn": 1}\n'
    )
    assert "t-1: insufficient_funds" in pilot("submit", str(ops), ok=False).output  # signed with its key


def _open_files(pid: int) -> set[str]:
    """The files a process has open now; a descriptor it closes while they are read is left out (while it
    imports, it opens and closes one file after another)."""
    found: set[str] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:  # it ended: the caller's check of it says so
        return found
    for fd in fds:
        try:
            found.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except FileNotFoundError:
            continue
    return found


def test_ctrl_c__exits_130_as_the_shell_expects(pilot) -> None:
    # click ends an interrupted command with exit 1, which a script cannot tell from a rejection and may carry
    # on after. A real SIGINT, to the process group as the terminal sends it, while `submit -` waits for stdin.
    import signal
    import time

    env = {k: v for k, v in os.environ.items() if k not in ("TENGE_DB", "TENGE_KEYSTORE")}
    process = subprocess.Popen(
        [*TENGE, "--db", pilot.db, "submit", "-"],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        # The ledger file open means the command is running (not still importing); it then waits on stdin.
        deadline = time.monotonic() + 60
        while pilot.db not in _open_files(process.pid):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGINT)
        _out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130, err
    assert err.decode().strip() == "Aborted!"


@pytest.mark.parametrize("stop", [KeyboardInterrupt, click.Abort])
def test_ctrl_c__under_json_says_so_on_stdout(pilot, monkeypatch, stop) -> None:
    from tenge_ledger import app

    def interrupted(db):
        raise stop

    monkeypatch.setattr(app, "open_ledger", interrupted)
    done = pilot("balance", "aigerim", "--json", ok=False)
    assert done.exit_code == 130, done.output
    assert json.loads(done.stdout) == {"error": "interrupted"}
    assert "Aborted!" in done.stderr and "Traceback" not in done.output


@pytest.mark.parametrize("also_during_the_command", [False, True])
def test_ctrl_c__while_the_store_closes_exits_130(pilot, monkeypatch, also_during_the_command) -> None:
    # The store closes after the command (a committer process is waited for): click ended a Ctrl-C there with
    # exit 1, even after a first Ctrl-C had said 130. Each interrupt is told once.
    from tenge_ledger.ledger.service import Ledger
    from tenge_ledger.store.sqlite import SqliteStore

    close = SqliteStore.close

    def interrupted_close(self):
        close(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(SqliteStore, "close", interrupted_close)
    if also_during_the_command:

        def interrupted(self, op, verified=False):
            raise KeyboardInterrupt

        monkeypatch.setattr(Ledger, "apply", interrupted)
    done = pilot("transfer", "halyk", "aigerim", "1.00", "--json", ok=False)
    assert done.exit_code == 130, done.output
    assert done.stderr.count("Aborted!") == 1 and "Traceback" not in done.output
    decoder, said, at = json.JSONDecoder(), [], 0
    while at < len(done.stdout.rstrip()):  # the documents printed, one after another
        found, at = decoder.raw_decode(done.stdout, at)
        said.append(found)
        while at < len(done.stdout) and done.stdout[at].isspace():
            at += 1
    assert said[-1] == {"error": "interrupted"} and len(said) == (1 if also_during_the_command else 2), said
    assert said[0].get("code") == (None if also_during_the_command else "ok"), said


def test_submit__repeated_field_refused(pilot, tmp_path) -> None:
    # JSON leaves a repeated name to the reader (Python's keeps the last): "5" or "6" must not be a guess.
    ops = tmp_path / "twice.jsonl"
    ops.write_text(
        '{"id": "t-1", "kind": "transfer", "payer": "halyk", "payee": "aigerim", "amount": "5", "amount": "6"}\n'
    )
    pilot.mistake("submit", str(ops), says='twice.jsonl:1: the field "amount" is given twice')


@pytest.mark.parametrize(
    "args",
    [
        ("audit", "verify", "DEEP", "--trust-bundle-key"),
        ("audit", "equivocation", "DEEP"),
        ("trace", "view", "--as", "fma", "--key", "DEEP"),
        ("privacy", "partial", "x", "--share", "DEEP", "--case", "C-1", "--basis", "b", "--out", "OUT"),
        ("escrow", "deal", "--identity", "DEEP", "--ceremony", "c", "--threshold", "2", "--holder", "DEEP",
         "--out", "OUT"),
    ],
)  # fmt: skip
def test_json_file__nested_too_deeply_is_one_error_line(pilot, tmp_path, args) -> None:
    # json.loads raises RecursionError, not ValueError, on arrays nested deeper than Python recurses: it used
    # to end in a traceback.
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    args = [str(deep) if a == "DEEP" else str(tmp_path / "out") if a == "OUT" else a for a in args]
    result = pilot.mistake(*args, says=f"{deep}: ")
    assert "JSON" in result.stderr or "not a" in result.stderr


def test_submit__signature_without_signer_refused_by_line(pilot, tmp_path) -> None:
    # It was applied and answered "unknown_account: no account '' to sign".
    ops = tmp_path / "nosigner.jsonl"
    ops.write_text(
        '{"id": "t-1", "kind": "transfer", "payer": "halyk", "payee": "aigerim", "amount": "1", "signature": "'
        + "00" * 64
        + '"}\n'
    )
    pilot.mistake("submit", str(ops), says="nosigner.jsonl:1.signer: is missing: a signed operation names")


@pytest.mark.parametrize("batched", [False, True])
def test_submit__sweep_as_of_a_later_time_refused(pilot, tmp_path, batched) -> None:
    # `tenge sweep --at` refuses a future time without --simulate-future; a submitted sweep as of the year 5138
    # was applied and timed every pending hold out early.
    pilot("hold", "halyk", "aigerim", "1", "--timeout", "3600", "--id", "h-1")
    sweep = '{"id": "s-1", "kind": "sweep", "as_of": 99999999999}'
    line = f'{{"id": "b-1", "kind": "batch", "operations": [{sweep}]}}' if batched else sweep
    ops = tmp_path / "sweep.jsonl"
    ops.write_text(line + "\n")
    pilot.mistake(
        "submit", str(ops), says="sweep.jsonl:1.as_of: a sweep as of 5138-11-16T09:46:39Z, later than"
    )


def test_memo__lone_surrogate_in_submit_refused(pilot, tmp_path) -> None:
    ops = tmp_path / "sur.jsonl"
    ops.write_text(
        '{"id": "s-1", "kind": "transfer", "payer": "halyk", "payee": "aigerim", "amount": "1",'
        ' "memo": "x\\ud800y"}\n'
    )
    pilot.mistake("submit", str(ops), says="sur.jsonl:1.memo: character 2 is U+D800")


def test_memo__invalid_utf8_argument_refused(pilot) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("TENGE_DB", "TENGE_KEYSTORE")}
    args = [*TENGE, "--db", pilot.db, "transfer", "halyk", "aigerim", "1", "--memo"]
    done = subprocess.run(
        [a.encode() for a in args] + [b"ab\xffcd"], env=env, capture_output=True, text=True, timeout=60
    )
    _one_error_line(done, "--memo: character 3 is U+DCFF")
    assert pilot.json("balance", "aigerim")["balance_tiyn"] == 0


def _as_before_input_was_checked(monkeypatch) -> None:
    """The ledger as it was before it checked a library caller's text (the ledger then wrote what it was given)."""
    from tenge_ledger.ledger import service

    monkeypatch.setattr(service, "check_operation_text", lambda op: None)


def test_trace_view__stored_bad_text_shown_escaped(pilot, monkeypatch) -> None:
    """A ledger written before input was checked may hold such a memo: the supervisors' view still works."""
    _as_before_input_was_checked(monkeypatch)
    ledger = open_ledger(pilot.db)
    try:
        Wallet(ledger, Keystore(keystore_path_for(pilot.db))).transfer(
            "halyk", "aigerim", 100, memo="x\ud800\x1b"
        )
    finally:
        ledger.store.close()
    env = {k: v for k, v in os.environ.items() if k not in ("TENGE_DB", "TENGE_KEYSTORE")}
    for args in (["trace", "view", "--as", "central_bank"], ["history", "aigerim"], ["audit", "verify"]):
        done = subprocess.run([*TENGE, "--db", pilot.db, *args], env=env, capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert b"Traceback" not in done.stderr
    view = subprocess.run(
        [*TENGE, "--db", pilot.db, "trace", "view", "--as", "central_bank"], env=env, capture_output=True
    ).stdout.decode()
    assert "memo=x\\ud800\\x1b" in view


def test_operation__stored_reason_with_newline_shown_escaped(pilot, monkeypatch) -> None:
    """A freeze reason journaled before input was checked cannot forge a line."""
    _as_before_input_was_checked(monkeypatch)
    ledger = open_ledger(pilot.db)
    try:
        Wallet(ledger, Keystore(keystore_path_for(pilot.db))).freeze("aigerim", "a\nb\x1b[2J", op_id="fr-1")
    finally:
        ledger.store.close()
    out = pilot("operation", "fr-1").stdout
    assert "frozen: a\\nb\\x1b[2J" in out and "\x1b" not in out
    assert out.splitlines()[1] == "  account aigerim is frozen: a\\nb\\x1b[2J"


def test_control_characters__shown_escaped_in_errors(pilot) -> None:
    result = pilot("account", "show", "evil\x1b[2J", ok=False)
    assert "\x1b" not in result.stderr and "\\u001b[2J" in result.stderr


def test_long_handle__cut_in_its_error(pilot) -> None:
    result = pilot.mistake("balance", "x" * 100_000, says="is not an account handle")
    assert len(result.stderr) < 400 and "(100000 characters)" in result.stderr


# ---- unmasking when the access log cannot be written ------------------------------------------------------


def test_unmask__access_log_write_failing_is_one_error_line(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("TENGE_KEYSTORE", raising=False)
    p = Pilot(tmp_path)
    keys = tmp_path / "parties"
    keys.mkdir()
    p("init", "--name", "P", "--privacy", "pseudonymous",
      "--key-to", f"central_bank={keys}/nbk.key", "--key-to", f"fma={keys}/fma.key")  # fmt: skip
    p("account", "open", "halyk", "--kind", "bank", "--key-to", f"{keys}/halyk.key")
    p("issue", "halyk", "10", "--id", "i-1")
    from tenge_ledger.trace import log

    def fail(store, records):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(log, "append", fail)
    result = p(
        "privacy", "unmask", "i-1", "--case", "C-1", "--basis", "order", "--as", "central_bank",
        "--key", f"{keys}/nbk.key", ok=False,
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"Error: {p.db}: disk I/O error; nothing was changed"], (
        result.stderr
    )
    assert "halyk" not in result.stdout  # nothing shown that was not logged


# ---- --json after every command -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", _commands(cli, groups=False), ids=" ".join)
def test_json_after_command__accepted(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--json", "--help"])
    assert result.exit_code == 0, result.output
    assert "--json" in result.output


def test_json_after_command__privacy_matrix_and_modes(tmp_path) -> None:
    runner = CliRunner()
    modes = runner.invoke(cli, ["privacy", "modes", "--json"])
    assert modes.exit_code == 0 and "transparent" in json.loads(modes.stdout)["modes"]
    matrix = runner.invoke(cli, ["privacy", "matrix", "--seed", "7", "--people", "50", "--json"])
    assert matrix.exit_code == 0, matrix.output
    assert json.loads(matrix.stdout)["seed"] == 7


# ---- sweep and the future -----------------------------------------------------------------------------------


def test_sweep__future_time_refused(pilot) -> None:
    pilot("hold", "halyk", "aigerim", "10", "--timeout", "3600", "--id", "h-1")
    pilot.mistake("sweep", "--at", "2099-01-01", says="--simulate-future")
    assert pilot.json("balance", "halyk")["balance_tiyn"] == 99_000


def test_sweep__future_time_with_simulate_future_says_what_it_does(pilot) -> None:
    pilot("hold", "halyk", "aigerim", "10", "--timeout", "3600", "--id", "h-1")
    result = pilot("sweep", "--at", "2099-01-01", "--simulate-future")
    assert "times out 1 pending hold(s) early" in result.stderr
    assert "1 holds timed out" in result.stdout or "1 hold" in result.stdout
    assert pilot.json("balance", "halyk")["balance_tiyn"] == 100_000


# ---- an empty file ------------------------------------------------------------------------------------------


def test_empty_file__read_command_leaves_it_empty(tmp_path) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    result = CliRunner().invoke(cli, ["--db", str(empty), "check"])
    assert result.exit_code == 1
    assert "is an empty file, not a ledger" in result.stderr
    assert empty.read_bytes() == b""


def test_audit_export__unwritable_place_is_one_error_line(pilot, tmp_path) -> None:
    traces_before = pilot.json("info")["trace_records"]
    pilot.mistake("audit", "export", str(tmp_path / "absent" / "b.json"), says="cannot write there")
    assert pilot.json("info")["trace_records"] == traces_before  # no checkpoint signed for it


def test_file_error__one_error_line_under_json_too(pilot, tmp_path) -> None:
    result = pilot(
        "--json", "privacy", "matrix", "--people", "50", "--out", str(tmp_path / "no" / "x.json"), ok=False
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"error": f"{tmp_path / 'no' / 'x.json'}: No such file or directory"}
    assert result.stderr.strip().splitlines() == [
        f"Error: {tmp_path / 'no' / 'x.json'}: No such file or directory"
    ]


def test_trace_reader_interrupted_in_its_callers_loop_ends_quietly(pilot) -> None:
    # Ctrl-C in a loop over store.traces() (the checkpoint signed after a large submit, an export) left the reader
    # suspended; the CLI closed the store, and finalising the reader then printed "Exception ignored in: ...
    # Traceback ... sqlite3.ProgrammingError: Cannot operate on a closed database".
    from tenge_ledger.store import open_store

    store = open_store(pilot.db)
    rows = store.traces()
    assert next(rows)[0] == 1
    store.close()
    rows.close()  # raised ProgrammingError
