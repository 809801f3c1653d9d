"""The `tenge` command. Library first, CLI second: each command opens the ledger, calls one library function,
prints. This module is the one place where library errors become a one-line message and an exit code."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click

from tenge_ledger.app import open_ledger
from tenge_ledger.client.keystore import Keystore, keystore_path_for
from tenge_ledger.client.wallet import Wallet
from tenge_ledger.core.errors import TengeError
from tenge_ledger.core.results import Result
from tenge_ledger.ledger.service import Ledger


@dataclass
class Context:
    db: str
    json: bool = False
    _ledger: Ledger | None = field(default=None, repr=False)

    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = open_ledger(self.db)
        return self._ledger

    def keystore(self) -> Keystore:
        return Keystore(keystore_path_for(self.db))

    def wallet(self) -> Wallet:
        return Wallet(self.ledger(), self.keystore())

    def close(self) -> None:
        if self._ledger is not None:
            self._ledger.store.close()
            self._ledger = None


class TengeGroup(click.Group):
    """Turns every TengeError (a user mistake or an unusable database) into `Error: <one line>`, exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TengeError as exc:
            if (
                isinstance(ctx.obj, Context) and ctx.obj.json
            ):  # scripts asked for JSON: errors come as JSON too
                click.echo(json.dumps({"error": str(exc)}))
            raise click.ClickException(str(exc)) from None


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.find_object(Context).json = True
    return value


def json_option(f: Callable) -> Callable:
    """`--json` after the command name means the same as before it."""
    return click.option(
        "--json", "json_flag", is_flag=True, expose_value=False, callback=_set_json, help="Print JSON."
    )(f)


pass_context = click.make_pass_decorator(Context)


def pass_ledger(f: Callable) -> Callable:
    @pass_context
    @functools.wraps(f)
    def wrapper(obj: Context, *args: Any, **kwargs: Any) -> Any:
        return f(obj, *args, **kwargs)

    return json_option(wrapper)


def emit(obj: Context, data: Any, text: str | Callable[[], str]) -> None:
    """Print `data` as JSON under --json, else the human text."""
    if obj.json:
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        click.echo(text() if callable(text) else text)


def finish(obj: Context, result: Result) -> None:
    """Print one operation's result; anything but ok / exists exits 1."""
    if obj.json:
        click.echo(json.dumps(result.to_json(), indent=2, sort_keys=True))
    elif result.succeeded:
        seq = f" (#{result.seq})" if result.seq and result.code.value == "ok" else ""
        click.echo(f"{result.code.value}: {result.message}{seq}")
        for report in result.reports:
            click.echo(f"  report to {report['agency']}: {report['reason']} [{report['rule']}]")
    if not result.succeeded:
        if not obj.json:
            click.echo(f"Error: {result.code.value}: {result.message}", err=True)
            for report in result.reports:
                click.echo(f"  report to {report['agency']}: {report['reason']} [{report['rule']}]", err=True)
        sys.exit(1)


@click.group(cls=TengeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    default="tenge.db",
    envvar="TENGE_DB",
    show_default=True,
    help="SQLite file, or a postgresql:// URL. Also $TENGE_DB.",
)
@click.option("--json", "json_", is_flag=True, help="Print machine-readable JSON.")
@click.version_option(package_name="tenge-ledger")
@click.pass_context
def cli(ctx: click.Context, db: str, json_: bool) -> None:
    """tenge-ledger: a programmable digital-tenge ledger.

    \b
    Example:
      tenge --db pilot.db init --name "Digital tenge pilot"
      tenge --db pilot.db account open halyk --kind bank
    """
    ctx.obj = Context(db=db, json=json_)
    ctx.call_on_close(ctx.obj.close)


def main() -> None:
    cli(prog_name="tenge")


# Command modules register themselves on import; the order is the order of `tenge --help`.
from . import accounts, audit, money, ops, policy, privacy, reads, tools, trace  # noqa: E402,F401
