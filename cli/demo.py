"""The scripted pilot of `tenge demo`: every step is a real operation on a real (temporary) ledger."""

from __future__ import annotations

import os
import shutil
import tempfile

import click

from tenge_ledger.app import ledger_over
from tenge_ledger.client.keystore import Keystore
from tenge_ledger.client.wallet import Wallet
from tenge_ledger.core.canonical import date_start
from tenge_ledger.core.describe import duration
from tenge_ledger.core.money import format_tiyn, parse_amount
from tenge_ledger.core.records import AccountKind
from tenge_ledger.core.results import Result
from tenge_ledger.ledger.journal import check_journal
from tenge_ledger.ledger.service import Ledger
from tenge_ledger.ledger.signing import public_key_hex
from tenge_ledger.store import open_store

from .context import progress_bar


class Narrator:
    """Prints the demo as it runs, or, under --json, keeps every step for one JSON document at the end."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.steps: list[dict] = []
        self.section = ""

    def say(self, text: str) -> None:
        self.section = text
        if not self.as_json:
            click.secho(f"\n== {text}", bold=True)

    def line(self, text: str) -> None:
        if not self.as_json:
            click.echo(f"  {text}")

    def end(self, text: str) -> None:
        if not self.as_json:
            click.echo(f"\n{text}")

    def show(self, label: str, result: Result) -> Result:
        self.steps.append({"section": self.section, "step": label, **result.to_json()})
        if self.as_json:
            return result
        colour = "green" if result.succeeded else "red"
        click.echo(f"  {label:<66} ", nl=False)
        click.secho(f"{result.code.value}", fg=colour, nl=False)
        click.echo(f"  {result.message}")
        for report in result.reports:
            click.echo(f"  {'':<66} report to {report['agency']}: {report['reason']}")
        return result


def kzt(text: str) -> int:
    return parse_amount(text)


def run_demo(keep: str | None = None, as_json: bool = False) -> dict:
    """Run the pilot; answers what it did (printed as it ran unless `as_json`)."""
    out = Narrator(as_json)
    workdir = keep or tempfile.mkdtemp(prefix="tenge-demo-")
    os.makedirs(workdir, exist_ok=True)
    db = os.path.join(workdir, "pilot.db")
    keystore = Keystore(db + ".keys")
    out.say(f"A digital tenge pilot in {db}")
    store = open_store(db, create=True)
    cb_key = keystore.create("nbk")
    Ledger.create(store, "Digital tenge pilot (demo)", public_key_hex(cb_key), "nbk")
    ledger = ledger_over(store)
    w = Wallet(ledger, keystore)
    out.line(f"ledger id {ledger.ledger_id}; the National Bank (nbk) holds the issuing key")
    demo_steps(w, out)
    from .policy_demo import run_policy_demo

    run_policy_demo(store, keystore, out)
    out.say("Invariants")
    issued, redeemed = store.supply()
    out.line(
        f"issued {format_tiyn(issued)} KZT, redeemed {format_tiyn(redeemed)} KZT (expired budget money"
        f" included), circulating {format_tiyn(issued - redeemed)} KZT"
    )
    check = check_journal(store)
    out.line(
        f"journal: {check.entries} entries, hash chain and rebuilt balances "
        + ("verified" if check.ok else "BROKEN: " + "; ".join(check.problems))
    )
    store.close()
    out.say("Privacy modes: the measured matrix (tenge privacy matrix --seed 7 --people 300)")
    from tenge_ledger.lab import matrix

    with progress_bar(as_json, len(matrix.MODES), "running the matrix") as bar:
        measured = matrix.run(seed=7, people=300, on_mode_done=lambda _mode: bar.update(1))
    if not as_json:
        click.echo(matrix.format_table(measured))
    if keep:
        out.end(f"The ledger is kept: tenge --db {db} balance aigerim")
        out.line(f"Which rules decided a payment: tenge --db {db} policy explain mining-001")
    else:
        shutil.rmtree(workdir, ignore_errors=True)  # temporary, as promised: keep one with --keep DIR
        out.end("The demo ledger was temporary; to explore it afterwards: tenge demo --keep DIR")
    return {
        "db": db if keep else None,
        "steps": out.steps,
        "supply": {"issued_tiyn": issued, "redeemed_tiyn": redeemed, "circulating_tiyn": issued - redeemed},
        "journal": {"entries": check.entries, "ok": check.ok, "problems": check.problems},
        "matrix": measured,
    }


def demo_steps(w: Wallet, out: Narrator) -> None:
    say, show = out.say, out.show
    say("Two-tier distribution: banks, people, merchants, budgets")
    for handle, kind, extra in [
        ("halyk", AccountKind.bank, {}),
        ("kaspi", AccountKind.bank, {}),
        ("aigerim", AccountKind.person, {"tier": 1, "bank": "halyk"}),
        ("nurlan", AccountKind.person, {"tier": 2, "bank": "kaspi"}),
        ("cafe-alatau", AccountKind.merchant, {"bank": "halyk", "attrs": (("zone", "alatau"),)}),
        ("roads-ministry", AccountKind.government, {}),
        ("astana-build", AccountKind.merchant, {"bank": "kaspi", "attrs": (("licence", "construction"),)}),
        ("state-budget", AccountKind.government, {}),
    ]:
        show(f"open {kind.value} {handle}", w.open_account(handle, kind, **extra))

    say("Issuance: only the central bank creates money")
    show("issue 1,000,000.00 KZT to halyk", w.issue("halyk", kzt("1000000")))
    show("issue 400,000.00 KZT to kaspi", w.issue("kaspi", kzt("400000")))
    show(
        "issue 5,000,000.00 KZT marked budget:roads-2026 to roads-ministry",
        w.issue("roads-ministry", kzt("5000000"), tag="budget:roads-2026", expires_on="2027-01-01"),
    )

    say("Payments, signed by the payer; an id is applied once")
    show(
        "halyk pays aigerim 2,500.50 (id salary-001)",
        w.transfer("halyk", "aigerim", kzt("2500.50"), op_id="salary-001"),
    )
    show(
        "the same again (a client retry)", w.transfer("halyk", "aigerim", kzt("2500.50"), op_id="salary-001")
    )
    show("the same id, another amount", w.transfer("halyk", "aigerim", kzt("9999"), op_id="salary-001"))
    show("aigerim pays cafe-alatau 1,200.00", w.transfer("aigerim", "cafe-alatau", kzt("1200"), memo="lunch"))
    show("aigerim pays 5,000.00 she does not have", w.transfer("aigerim", "cafe-alatau", kzt("5000")))
    show(
        "halyk pays aigerim 600,000.00 (tier 1 holds 500,000 at most)",
        w.transfer("halyk", "aigerim", kzt("600000")),
    )

    say("Marked money: the budget's tag travels with it")
    show(
        "roads-ministry pays astana-build 1,500,000.00 [budget:roads-2026]",
        w.transfer("roads-ministry", "astana-build", kzt("1500000"), tag="budget:roads-2026"),
    )
    show(
        "roads-ministry tries to pay it as untagged money",
        w.transfer("roads-ministry", "astana-build", kzt("1")),
    )

    say("Escrow: a hold posted by its releaser")
    show("kaspi pays nurlan 100,000.00", w.transfer("kaspi", "nurlan", kzt("100000")))
    show(f"nurlan holds 50,000.00 for astana-build for {duration(30 * 86400)}; roads-ministry releases",
         w.hold("nurlan", "astana-build", kzt("50000"), 30 * 86400, releaser="roads-ministry", op_id="flat-42"))  # fmt: skip
    show(
        "posted partly: 45,000.00, the rest back to nurlan", w.post("roads-ministry", "flat-42", kzt("45000"))
    )

    say("Freeze, seizure, redemption")
    show("freeze astana-build", w.freeze("astana-build", "under investigation"))
    show("aigerim pays the frozen astana-build", w.transfer("aigerim", "astana-build", kzt("10")))
    show("court-ordered seizure of 1,000.00 to state-budget",
         w.seize("astana-build", "state-budget", kzt("1000"), order="court 2-123/2026"))  # fmt: skip
    show("unfreeze astana-build", w.unfreeze("astana-build"))
    show("halyk redeems 100.00", w.redeem("halyk", kzt("100")))

    say("Expiry: on 2027-01-01 unspent budget money returns to the central bank")
    show("sweep as of 2027-01-01", w.sweep(date_start("2027-01-01")))
