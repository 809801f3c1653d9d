"""The policy section of `tenge demo`: enable policies/ on the demo ledger and show each kind of effect."""

from __future__ import annotations

import time

from tenge_ledger.app import ledger_over
from tenge_ledger.client.wallet import Wallet
from tenge_ledger.core.money import parse_amount
from tenge_ledger.core.records import AccountKind
from tenge_ledger.policies import shipped_policies
from tenge_ledger.policy import read_sources
from tenge_ledger.policy.sets import enable


def run_policy_demo(store, keystore, out) -> None:
    """`out` is the demo's own narrator (cli.demo.Narrator)."""
    say, show = out.say, out.show
    say("Programmable money: the rules of policies/ enabled on this ledger")
    enabled = enable(store, read_sources([shipped_policies()]), int(time.time()), note="demo")
    out.line(
        f"policy set version {enabled['version']}: {enabled.get('rules', '?')} rules, id {enabled['id'][:16]}…"
    )
    w = Wallet(ledger_over(store), keystore)  # reopened: the ledger now loads the enabled set
    for handle, kind, extra in [
        ("aifc-exchange", AccountKind.exchange, {}),
        ("kz-registry", AccountKind.agency, {}),
        ("kgd-vat", AccountKind.agency, {}),
        ("ekibastuz-mine", AccountKind.miner, {}),
        ("gray-farm", AccountKind.miner, {}),
        ("magnum", AccountKind.merchant, {"bank": "halyk", "attrs": (("vat", "registered"),)}),
        ("bi-group", AccountKind.merchant, {"bank": "halyk", "attrs": (("sector", "real-estate"),)}),
    ]:
        show(f"open {kind.value} {handle}", w.open_account(handle, kind, **extra))
    kzt = parse_amount
    show("issue 3,000,000.00 KZT to halyk, for the payments below", w.issue("halyk", kzt("3000000")))
    show(
        "nurlan pays magnum 1,120.00: 12% VAT to kgd-vat",
        w.transfer("nurlan", "magnum", kzt("1120")),
    )
    show("halyk pays ekibastuz-mine 1,000.00: 55% exchange, 15% tax",
         w.transfer("halyk", "ekibastuz-mine", kzt("1000"), op_id="mining-001"))  # fmt: skip
    show("halyk pays bi-group 2,000,000.00 for a flat: held for kz-registry",
         w.transfer("halyk", "bi-group", kzt("2000000"), op_id="flat-777"))  # fmt: skip
    show("the FMA lists gray-farm", w.update_account("gray-farm", attrs=(("fma_list", "gray-mining"),)))
    show(
        "halyk pays gray-farm (on the FMA list): denied and reported",
        w.transfer("halyk", "gray-farm", kzt("10")),
    )
    show("roads-ministry pays a cafe from the roads budget: denied",
         w.transfer("roads-ministry", "cafe-alatau", kzt("10"), tag="budget:roads-2026"))  # fmt: skip
    show("issue budget money without an expiry date: denied",
         w.issue("roads-ministry", kzt("10"), tag="budget:schools-2026"))  # fmt: skip
