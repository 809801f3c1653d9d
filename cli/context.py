"""What every command shares: the `Context` the group builds once, the decorators that hand it over, and the
printers (`emit` for data, `finish` for an operation's result).

Command modules import this module, never `main`: `main` imports them to register their commands, so the
dependency runs one way. Nothing here imports the ledger, the policy compiler or lark at import time, so that
`tenge --help` starts at once; they are imported when a command first asks for the ledger."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from tenge_ledger.core.text import shown_lines

if TYPE_CHECKING:
    from tenge_ledger.client.keystore import Keystore
    from tenge_ledger.client.wallet import Wallet
    from tenge_ledger.core.results import Result
    from tenge_ledger.ledger.service import Ledger


# The shells' code for a process that SIGINT ended (128 + 2): a script running `tenge` sees Ctrl-C as Ctrl-C and
# stops too, where click's exit 1 would read as an ordinary failure it may carry on after.
exit_interrupted = 130


@dataclass
class Context:
    """The `--db` and `--json` of one invocation, and the ledger opened on first use (closed at the end)."""

    db: str
    json: bool = False
    _ledger: Ledger | None = field(default=None, repr=False)
    interrupted: bool = False  # Ctrl-C ended the command, and `interrupted` said so

    def ledger(self) -> Ledger:
        if self._ledger is None:
            from tenge_ledger.app import open_ledger

            self._ledger = open_ledger(self.db)
        return self._ledger

    def keystore(self) -> Keystore:
        from tenge_ledger.client.keystore import Keystore, keystore_path_for

        return Keystore(keystore_path_for(self.db))

    def wallet(self) -> Wallet:
        from tenge_ledger.client.wallet import Wallet

        return Wallet(self.ledger(), self.keystore())

    def close(self) -> None:
        """Close the ledger's store. Ctrl-C while it closes (a committer process it waits for to end, which has
        written every chunk it was handed by then) exits 130 as one during the command does, not click's 1."""
        ledger, self._ledger = self._ledger, None
        if ledger is None:
            return
        try:
            ledger.store.close()
        except KeyboardInterrupt:
            raise interrupted(self) from None


def interrupted(obj: Context | None) -> click.exceptions.Exit:
    """Say once that Ctrl-C ended the command (on stdout too under --json), and the exit that ends it: a second
    Ctrl-C, while the store closes (`Context.close`), says nothing more."""
    if obj is None or not obj.interrupted:
        click.echo(file=sys.stderr)  # ends the line the terminal's ^C is on
        click.echo("Aborted!", err=True)
        if obj is not None:
            obj.interrupted = True
            if obj.json:
                click.echo(json.dumps({"error": "interrupted"}))
    return click.exceptions.Exit(exit_interrupted)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.find_object(Context).json = True
    return value


def json_param() -> click.Option:
    """`--json` after a command's name means the same as before it (`main` adds it to every command)."""
    return click.Option(
        ["--json", "json_flag"], is_flag=True, expose_value=False, callback=_set_json, help="Print JSON."
    )


pass_context = click.make_pass_decorator(Context)


def pass_ledger(f: Callable) -> Callable:
    """Hands the command the invocation's Context (which opens the ledger when asked). After a command that
    opened the ledger, a checkpoint is signed when `checkpoint_every_records` trace records are not covered by
    one: the operator's tooling keeps the uncovered tail short without the ledger core knowing of witnesses."""

    @pass_context
    @functools.wraps(f)
    def wrapper(obj: Context, *args: Any, **kwargs: Any) -> Any:
        out = f(obj, *args, **kwargs)
        if obj._ledger is not None:
            from tenge_ledger.privacy import operator

            operator.checkpoint_if_due(obj._ledger.store)
        return out

    return wrapper


def shown(text: str) -> str:
    """`text` made safe to print, newlines kept: every other unsafe character written as its escape."""
    return shown_lines(text)


def progress(obj: Context, length: int, label: str):
    """A progress bar on stderr for a long step, shown only on a terminal and never under --json (so that
    scripts and pipes see only the result)."""
    return progress_bar(obj.json, length, label)


@contextmanager
def progress_updates(obj: Context, label: str) -> Iterator[Callable[[int, int], None]]:
    """A `(done, total)` callback for library code that reports its own progress: it draws a bar (on a terminal,
    never under --json) from its first call, and the bar is closed when the block ends."""
    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = progress(obj, total, label).__enter__()
        bar.update(done - bar.pos)

    try:
        yield update
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


def progress_bar(as_json: bool, length: int, label: str):
    hidden = as_json or not length or not sys.stderr.isatty()
    return click.progressbar(length=max(length, 1), label=label, file=sys.stderr, hidden=hidden)


def seconds(elapsed: float) -> str:
    """A measured duration for people: `0.42 s`, `12.3 s`, `2 min 5 s`."""
    if elapsed < 10:
        return f"{elapsed:.2f} s"
    if elapsed < 60:
        return f"{elapsed:.1f} s"
    return f"{int(elapsed // 60)} min {int(elapsed % 60)} s"


def emit(obj: Context, data: Any, text: str | Callable[[], str]) -> None:
    """Print `data` as JSON under --json, else the human text; either way escaped for the terminal."""
    if obj.json:
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    else:
        click.echo(shown(text() if callable(text) else text))


def finish(obj: Context, result: Result) -> None:
    """Print one operation's result; anything but ok / exists exits 1."""
    if obj.json:
        click.echo(json.dumps(result.to_json(), indent=2, sort_keys=True))
    else:
        seq = f" (#{result.seq})" if result.seq and result.code.value == "ok" else ""
        head = f"{result.code.value}: {result.message}{seq}"
        lines = [head if result.succeeded else f"Error: {head}"]
        lines += [f"  report to {r['agency']}: {r['reason']} [{r['rule']}]" for r in result.reports]
        click.echo(shown("\n".join(lines)), err=not result.succeeded)
    if not result.succeeded:
        sys.exit(1)
