"""The `tenge` command. Library first, CLI second: each command opens the ledger, calls one library function,
prints. This module is the one place where library errors become a one-line message and an exit code."""

from __future__ import annotations

import json
from typing import Any

import click

from tenge_ledger.core.errors import TengeError

from . import accounts, audit, escrow, money, ops, policy, privacy, reads, tools, trace, witness
from .context import Context, interrupted, json_param, shown


class TengeGroup(click.Group):
    """Turns every TengeError (a user mistake or an unusable database) and every refusal of the environment
    (a read-only database or file, a full disk) into `Error: <one line>`, exit 1. A transaction the database
    refused wrote nothing, so the ledger is unchanged. Ctrl-C exits 130, after whatever the command had to say
    about what stays applied."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (KeyboardInterrupt, click.Abort):
            raise interrupted(ctx.obj if isinstance(ctx.obj, Context) else None) from None
        except TengeError as exc:
            raise _error(ctx, str(exc)) from None
        except OSError as exc:
            where = exc.filename if exc.filename is not None else "error"
            raise _error(ctx, f"{shown(str(where))}: {exc.strerror or exc}") from None
        except Exception as exc:
            import sqlite3  # only here: `tenge --help` does not load the database driver

            if not isinstance(exc, sqlite3.Error):
                raise
            db = ctx.obj.db if isinstance(ctx.obj, Context) else "the database"
            raise _error(ctx, f"{shown(db)}: {exc}; nothing was changed") from None


def _error(ctx: click.Context, message: str) -> click.ClickException:
    """Under --json the error also comes as JSON on stdout, for scripts."""
    message = shown(message)
    if isinstance(ctx.obj, Context) and ctx.obj.json:
        click.echo(json.dumps({"error": message}))
    return click.ClickException(message)


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


# Every command, registered here (the command modules do not know this group). `tenge --help` lists them in
# alphabetical order.
COMMANDS: tuple[click.Command, ...] = (
    accounts.init, accounts.account, money.issue, money.redeem, money.transfer, money.hold, money.post,
    money.void, money.seize, money.sweep, ops.submit, reads.balance, reads.supply, reads.history,
    reads.operation, reads.reports, reads.check, reads.info, policy.policy, privacy.privacy, trace.trace, audit.audit,
    tools.bench, tools.demo, tools.docs, witness.witness, witness.checkpoint, escrow.escrow,
)  # fmt: skip


def _with_json_everywhere(command: click.Command) -> None:
    """`--json` is accepted after every command's name, as the README says."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _with_json_everywhere(sub)
    elif not any("--json" in p.opts for p in command.params if isinstance(p, click.Option)):
        command.params.append(json_param())


for _command in COMMANDS:
    _with_json_everywhere(_command)
    cli.add_command(_command)
