"""`tenge bench` and `tenge demo`."""

from __future__ import annotations

import click

from .context import Context, emit, pass_context


@click.command()
@click.option("--transfers", default=100_000, show_default=True, type=click.IntRange(1_000, 10_000_000))
@click.option("--accounts", default=10_000, show_default=True, type=click.IntRange(10, 1_000_000))
@click.option(
    "--grown",
    default=500_000,
    show_default=True,
    type=click.IntRange(1_000, 10_000_000),
    help="Entries journaled before (e), the run on a grown ledger.",
)
@click.option(
    "--policy-transfers",
    default=20_000,
    show_default=True,
    type=click.IntRange(1_000, 1_000_000),
    help="Transfers of (f), the policy workload with all of policies/ enabled.",
)
@click.option(
    "--rounds",
    default=3,
    show_default=True,
    type=click.IntRange(1, 20),
    help="Runs of each measurement, the floors' included; each figure is the best of its runs.",
)
@pass_context
def bench(
    obj: Context, transfers: int, accounts: int, grown: int, policy_transfers: int, rounds: int
) -> None:
    """Measure apply throughput against the raw SQLite floor and Ed25519 verification, in one run.

    \b
    Example:
      tenge bench --json
    """
    from tenge_ledger.bench import format_report, run_apply_benchmark

    report = run_apply_benchmark(
        transfers=transfers,
        accounts=accounts,
        progress=not obj.json,
        grown=grown,
        policy_transfers=policy_transfers,
        rounds=rounds,
    )
    emit(obj, report, lambda: format_report(report))


@click.command()
@click.option("--keep", type=click.Path(file_okay=False), help="Keep the demo ledger in this directory.")
@pass_context
def demo(obj: Context, keep: str | None) -> None:
    """Run a scripted pilot on a temporary embedded ledger, printed as it runs.

    \b
    Example:
      tenge demo
    """
    from .demo import run_demo

    summary = run_demo(keep, as_json=obj.json)
    if obj.json:
        emit(obj, summary, "")


# docs/cli.md is this command's output; tests/test_cli_docs.py fails when it is not.
DOCS_WIDTH = 100


@click.command(hidden=True)
@pass_context
def docs(obj: Context) -> None:
    """Print the reference of every command, from their own help texts, as Markdown (docs/cli.md).

    \b
    Example:
      tenge docs > docs/cli.md
    """
    root = click.get_current_context().find_root()
    click.echo(command_reference(root.command, "tenge"), nl=False)


def command_reference(root: click.Command, name: str) -> str:
    parts = [
        "# The `tenge` command\n\n",
        "Generated from the commands' own help by `tenge docs > docs/cli.md`; a test fails when it is out of date.\n",
    ]

    def walk(command: click.Command, path: str, parent: click.Context | None) -> None:
        settings = {**command.context_settings, "terminal_width": DOCS_WIDTH, "max_content_width": DOCS_WIDTH}
        ctx = click.Context(command, info_name=path.rpartition(" ")[2], parent=parent, **settings)
        parts.append(f"\n## {path}\n\n```text\n{command.get_help(ctx)}\n```\n")
        if isinstance(command, click.Group):
            for sub_name in command.list_commands(ctx):
                sub = command.get_command(ctx, sub_name)
                if sub is not None and not sub.hidden:
                    walk(sub, f"{path} {sub_name}", ctx)

    walk(root, name, None)
    return "".join(parts)
