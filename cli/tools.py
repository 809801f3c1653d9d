"""`tenge bench` and `tenge demo`."""

from __future__ import annotations

import click

from .context import Context, emit, pass_context


@click.command()
@click.option("--transfers", default=100_000, show_default=True, type=click.IntRange(1_000, 10_000_000))
@click.option("--accounts", default=10_000, show_default=True, type=click.IntRange(10, 1_000_000))
@pass_context
def bench(obj: Context, transfers: int, accounts: int) -> None:
    """Measure apply throughput against the raw SQLite floor and Ed25519 verification, in one run.

    \b
    Example:
      tenge bench --json
    """
    from tenge_ledger.bench import format_report, run_apply_benchmark

    report = run_apply_benchmark(transfers=transfers, accounts=accounts, progress=not obj.json)
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
