"""Text a program hands the ledger directly (the `Wallet`, an `Operation` built in code) passes the checks the CLI
and the document parser make: a memo, status reason, court order, attribute or witness name with control or
format characters, not valid UTF-8, too long or not text at all is an `invalid_operation` result, and nothing of
it is kept, traced or raised out of `apply`."""

from __future__ import annotations

import pytest

from tenge_ledger.core.records import AccountKind, AddWitness, OpenAccount, Operation, Transfer
from tenge_ledger.core.results import ResultCode
from tenge_ledger.ledger.signing import public_key_hex

WITNESS_KEY = "ab" * 32


def _traces(env) -> int:
    return sum(1 for _ in env.store.traces())


@pytest.mark.parametrize(
    ("submit", "field"),
    [
        (lambda w: w.transfer("halyk", "aigerim", 10, memo="a\nb"), "memo"),
        (lambda w: w.transfer("halyk", "aigerim", 10, memo="\x1b[2Jpaid"), "memo"),
        (lambda w: w.transfer("halyk", "aigerim", 10, memo="x\u202ey"), "memo"),
        (lambda w: w.transfer("halyk", "aigerim", 10, memo="m" * 257), "memo"),
        (lambda w: w.transfer("halyk", "aigerim", 10, memo=5), "memo"),
        (lambda w: w.issue("halyk", 10, memo="\ud800"), "memo"),
        (lambda w: w.redeem("halyk", 10, memo="a\x00b"), "memo"),
        (lambda w: w.hold("halyk", "aigerim", 10, 600, memo="a\rb"), "memo"),
        (lambda w: w.freeze("aigerim", reason="a\nb\x1b[2J"), "reason"),
        (lambda w: w.freeze("aigerim", reason="\ud800"), "reason"),
        (lambda w: w.unfreeze("aigerim", reason="r" * 257), "reason"),
        (lambda w: w.seize("halyk", "aigerim", 10, order="order\n7"), "order"),
        (lambda w: w.update_account("cafe", attrs=(("zone", "a\x1bb"),)), "attrs.zone"),
        (lambda w: w.open_account("kaspi", AccountKind.bank, attrs=(("zone", "x\ny"),)), "attrs.zone"),
        (lambda w: w.submit(w.cb, AddWitness("fma\nwitness", WITNESS_KEY)), "name"),
    ],
    ids=["memo-newline", "memo-escape", "memo-bidi", "memo-long", "memo-number", "issue-surrogate", "redeem-nul",
         "hold-cr", "freeze-newline", "freeze-surrogate", "unfreeze-long", "seize-order", "update-attr",
         "open-attr", "witness-name"],
)  # fmt: skip
def test_library_text__refused_as_invalid_operation(env, submit, field) -> None:
    # The CLI refused such text at input; a program calling the library got it journaled (a newline that forges
    # a line in `tenge operation`, an escape sequence for the next terminal) or a UnicodeEncodeError out of apply.
    env.wallet.issue("halyk", 1_000)
    before, traces = env.snapshot(), _traces(env)
    result = submit(env.wallet)
    assert result.code is ResultCode.invalid_operation, result
    assert f"operation.{field}:" in result.message, result.message
    assert env.snapshot() == before and _traces(env) == traces
    assert "\n" not in result.message and "\x1b" not in result.message


def test_library_text__in_a_batch__nothing_applied(env) -> None:
    w = env.wallet
    w.issue("halyk", 1_000)
    before = env.snapshot()
    inner = [w.build("halyk", Transfer("halyk", "aigerim", 10), "b-1"),
             w.build("halyk", Transfer("halyk", "cafe", 10, memo="ok\x1b[2J"), "b-2")]  # fmt: skip
    result = w.batch("halyk", inner, op_id="b")
    assert result.code is ResultCode.batch_failed and "operation.memo:" in result.message, result
    assert env.snapshot() == before


def test_library_text__plain_text_of_any_script_applies(env) -> None:
    w = env.wallet
    w.issue("halyk", 1_000, memo="Жол / road")
    assert w.transfer("halyk", "aigerim", 10, memo="Қазақ тілі " + "ä" * 200).code is ResultCode.ok
    assert w.freeze("aigerim", reason="investigation 7").code is ResultCode.ok
    key = public_key_hex(env.keystore.create("kaspi"))
    op = Operation("o-1", "nbk", OpenAccount("kaspi", AccountKind.bank, key, attrs=(("zone", "алатау"),)))
    assert env.ledger.apply(env.wallet.sign_document(op)).code is ResultCode.ok


def test_library_text__verified_transfer_with_bad_memo_refused(env) -> None:
    w = env.wallet
    w.issue("halyk", 1_000)
    op = w.build("halyk", Transfer("halyk", "aigerim", 10, memo="a\nb"), "v-1")
    assert env.ledger.apply(op, verified=True).code is ResultCode.invalid_operation
