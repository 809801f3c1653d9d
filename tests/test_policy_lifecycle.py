"""Lifecycle rules (issue 13): rules on seize, post, void, sweep, freeze and open_account, a hold's timeout
direction kept with the hold, and provisional seizures, through the library, the CLI and `tenge check`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from policy_support import view_of

from tenge_cli.main import cli
from tenge_ledger.app import ledger_over
from tenge_ledger.client.wallet import Wallet
from tenge_ledger.core.canonical import canonical_bytes, document_json, operation_from_dict
from tenge_ledger.core.errors import InputError
from tenge_ledger.core.hooks import Proposal
from tenge_ledger.core.records import (
    DECIDED_KINDS,
    LIFECYCLE_KINDS,
    Account,
    AccountKind,
    AccountStatus,
    Hold,
    Operation,
    OpKind,
    Posting,
    Seize,
    Transfer,
)
from tenge_ledger.core.results import ResultCode
from tenge_ledger.ledger.journal import check_journal
from tenge_ledger.policies import shipped_policies
from tenge_ledger.policy import PolicyError, compile_sources, parse_and_check
from tenge_ledger.policy.codes import code_of
from tenge_ledger.policy.format import format_source
from tenge_ledger.policy.reads import manifest
from tenge_ledger.policy.sets import enable, read_sources

DAY = 86_400
SEIZURE = """
rule "interim-held"
  on seize
  when memo starts_with "interim:"
  hold for 30d released by "court" on timeout post
"""


def _with_policy(env, files: dict[str, str]) -> Wallet:
    """The env's ledger with `files` enabled: a new service over the same store, as a CLI command would build."""
    enable(env.store, files, env.clock())
    env.ledger = ledger_over(env.store, env.clock)
    env.wallet = Wallet(env.ledger, env.keystore)
    return env.wallet


def _problems(check) -> list[str]:
    return [code_of(d.message) + ": " + d.message for d in check.diagnostics]


def _check_errors(source: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse_and_check({"t.policy": source})
    return _problems(caught.value)


@pytest.fixture
def seizing(env):
    """The basic accounts, a court and a claimant; aigerim holds 10,000 tiyn; the seizure rule enabled."""
    w = env.wallet
    assert w.open_account("court", AccountKind.agency).succeeded
    assert w.open_account("claimant", AccountKind.merchant, bank="halyk").succeeded
    assert w.issue("aigerim", 10_000).succeeded
    _with_policy(env, {"s.policy": SEIZURE})
    return env


# ---- the provisional seizure, through the library (every store: SQLite, and PostgreSQL when configured) -------


def test_provisional_seizure__court_voids_in_time__money_returns(seizing) -> None:
    w = seizing.wallet
    held = w.seize("aigerim", "claimant", 4_000, order="interim:2-1/2026", op_id="s1")
    assert held.code is ResultCode.ok and "provisionally seized" in held.message, held.message
    assert (seizing.balance("aigerim"), seizing.balance("@holds"), seizing.balance("claimant")) == (
        6_000,
        4_000,
        0,
    )
    hold = seizing.store.hold("s1")
    assert (hold.releaser, hold.on_timeout, hold.deadline) == ("court", "post", seizing.clock.now + 30 * DAY)
    assert w.void("aigerim", "s1").code is ResultCode.signer_not_allowed  # the debtor cannot undo it
    seizing.clock.advance(10 * DAY)
    assert w.void("court", "s1").code is ResultCode.ok
    assert (seizing.balance("aigerim"), seizing.balance("@holds"), seizing.balance("claimant")) == (
        10_000,
        0,
        0,
    )
    assert seizing.store.hold("s1").status == "voided"
    seizing.check()


def test_provisional_seizure__court_does_nothing__sweep_makes_it_final(seizing) -> None:
    w = seizing.wallet
    assert w.seize("aigerim", "claimant", 4_000, order="interim:2-2/2026", op_id="s2").succeeded
    assert w.hold("aigerim", "cafe", 1_000, 60, op_id="h-void").succeeded  # an ordinary hold: returned
    at = seizing.clock.advance(30 * DAY)
    assert w.void("court", "s2").code is ResultCode.hold_not_pending
    swept = w.sweep(at)
    assert swept.code is ResultCode.ok and "2 holds timed out (1 posted to their payees)" in swept.message
    assert (seizing.balance("aigerim"), seizing.balance("claimant"), seizing.balance("@holds")) == (
        6_000,
        4_000,
        0,
    )
    assert (seizing.store.hold("s2").status, seizing.store.hold("h-void").status) == ("posted", "expired")
    seizing.check()  # replaying the journal rebuilds the seizure's hold and what the sweep did with it


def test_sweep__payee_over_its_holding_limit__hold_waits_for_a_later_sweep(env) -> None:
    w = env.wallet
    assert w.open_account(
        "anon", AccountKind.person, tier=0, bank="halyk"
    ).succeeded  # holds at most 100,000 KZT
    assert w.issue("roads", 20_000_000).succeeded
    assert w.issue("anon", 9_000_000).succeeded
    assert w.hold("roads", "anon", 2_000_000, 60, op_id="big", on_timeout="post").succeeded
    assert w.hold("roads", "cafe", 1_000, 60, op_id="small").succeeded
    swept = w.sweep(env.clock.advance(60))
    assert (
        swept.succeeded
        and "1 holds timed out, 1 wait for an account that cannot receive them now (big)" in swept.message
    )
    assert (env.store.hold("big").status, env.store.hold("small").status) == ("pending", "expired")
    assert w.transfer("anon", "aigerim", 5_000_000).succeeded  # room again
    swept = w.sweep(env.clock.advance(60))
    assert "1 holds timed out (1 posted to their payees)" in swept.message
    assert (env.store.hold("big").status, env.balance("anon")) == ("posted", 6_000_000)
    env.check()


def test_check__a_waiting_hold_beside_a_return_of_the_same_amount_is_not_mistaken_for_it(env) -> None:
    """One sweep: hold "back", anon's own hold, returns to anon first; hold "big", of the same amount, would then
    post to anon past its tier-0 holding limit, so it waits. The sweep's legs are the same for either hold:
    `tenge check` must replay the sweep's choice, not pair the leg with the first hold it fits."""
    w = env.wallet
    assert w.open_account("anon", AccountKind.person, tier=0, bank="halyk").succeeded  # holds 100,000 KZT
    assert w.issue("roads", 20_000_000).succeeded
    assert w.issue("anon", 9_000_000).succeeded
    assert w.hold("anon", "cafe", 2_000_000, 60, op_id="back").succeeded  # its deadline is before big's
    assert w.hold("roads", "anon", 2_000_000, 61, op_id="big", on_timeout="post").succeeded
    swept = w.sweep(env.clock.advance(61))
    assert "1 wait for an account that cannot receive them now (big)" in swept.message, swept.message
    assert (env.store.hold("big").status, env.store.hold("back").status) == ("pending", "expired")
    env.check()


def test_close__refused_while_money_it_paid_is_held(env) -> None:
    """Held money returns to its payer when voided or timed out: an account cannot close while a hold of its
    money is pending (closed, it could never move that money on), and closes once the hold is settled."""
    w = env.wallet
    assert w.issue("aigerim", 1_000).succeeded
    assert w.hold("aigerim", "cafe", 1_000, 60, op_id="h").succeeded  # nothing left in its own buckets
    refused = w.close("aigerim")
    assert refused.code is ResultCode.account_not_empty, refused.message
    assert "10.00 KZT in 1 pending hold (h)" in refused.message
    assert env.store.account("aigerim").status is AccountStatus.active
    assert w.void("cafe", "h").succeeded
    assert w.transfer("aigerim", "cafe", 1_000).succeeded
    assert w.close("aigerim").succeeded
    env.check()


def test_sweep__a_return_over_the_payers_holding_limit_waits_and_the_rest_is_swept(env) -> None:
    """anon held 20,000 KZT, then received up to its tier-0 limit: its hold's return would put it over, so that
    hold waits for a later sweep, and the sweep still returns everyone else's hold."""
    w = env.wallet
    assert w.open_account("anon", AccountKind.person, tier=0, bank="halyk").succeeded  # holds 100,000 KZT
    assert w.issue("anon", 2_000_000).succeeded
    assert w.hold("anon", "cafe", 2_000_000, 60, op_id="anon-hold").succeeded
    assert w.issue("anon", 10_000_000).succeeded  # at its limit now
    assert w.issue("aigerim", 1_000).succeeded
    assert w.hold("aigerim", "cafe", 1_000, 60, op_id="other").succeeded
    swept = w.sweep(env.clock.advance(60))
    assert (
        swept.succeeded and "1 wait for an account that cannot receive them now (anon-hold)" in swept.message
    )
    assert (env.store.hold("anon-hold").status, env.store.hold("other").status) == ("pending", "expired")
    assert w.transfer("anon", "cafe", 5_000_000).succeeded  # room again
    assert "1 holds timed out" in w.sweep(env.clock.advance(60)).message
    assert (env.store.hold("anon-hold").status, env.balance("anon")) == ("expired", 7_000_000)
    env.check()


def test_seizure__under_a_final_order__is_immediate(seizing) -> None:
    assert seizing.wallet.seize("aigerim", "claimant", 4_000, order="2-3/2026", op_id="s3").succeeded
    assert (seizing.balance("claimant"), seizing.store.hold("s3")) == (4_000, None)


def test_check__edited_hold_direction_is_found(sqlite_url, tmp_path) -> None:
    from conftest import build_ledger

    env = build_ledger(sqlite_url, tmp_path / "keys")
    env.open_basic()
    assert env.wallet.open_account("court", AccountKind.agency).succeeded
    assert env.wallet.issue("aigerim", 10_000).succeeded
    w = _with_policy(env, {"s.policy": SEIZURE})
    assert w.seize("aigerim", "cafe", 4_000, order="interim:1", op_id="s1").succeeded
    env.check()
    env.store.close()
    conn = sqlite3.connect(sqlite_url, isolation_level=None)
    conn.execute("UPDATE holds SET on_timeout = 'void' WHERE hold_id = 's1'")
    conn.close()
    from tenge_ledger.store import open_store

    store = open_store(sqlite_url)
    try:
        problems = check_journal(store).problems
    finally:
        store.close()
    assert any("hold s1:" in p and "on_timeout='post'" in p for p in problems), problems


# ---- a hold's timeout direction on a signed hold --------------------------------------------------------------


def test_hold__on_timeout_unset__canonical_bytes_unchanged() -> None:
    op = Operation("h", "a", Hold("a", "b", 5, 60))
    assert b"on_timeout" not in canonical_bytes("l", op)
    assert "on_timeout" not in document_json(op)
    assert b'"on_timeout":"post"' in canonical_bytes(
        "l", Operation("h", "a", Hold("a", "b", 5, 60, on_timeout="post"))
    )


def test_hold__on_timeout_post__sweep_pays_the_payee(env) -> None:
    assert env.wallet.issue("aigerim", 5_000).succeeded
    result = env.wallet.hold("aigerim", "cafe", 2_000, 60, op_id="h", on_timeout="post")
    assert result.succeeded and "then posted to the payee" in result.message
    assert env.wallet.sweep(env.clock.advance(60)).succeeded
    assert (env.balance("cafe"), env.store.hold("h").status) == (2_000, "posted")
    env.check()


def test_hold__on_timeout_not_post_or_void__located_error() -> None:
    doc = {"kind": "hold", "id": "h", "signer": "a", "payer": "a", "payee": "b", "amount_tiyn": 5,
           "timeout_s": 60, "on_timeout": "keep"}  # fmt: skip
    with pytest.raises(InputError, match="on_timeout.*one of void, post"):
        operation_from_dict(doc)
    assert operation_from_dict({**doc, "on_timeout": "post"}).body.on_timeout == "post"


# ---- deny and report on lifecycle kinds ----------------------------------------------------------------------


def test_open_account__denied__nothing_opened_and_reported(env) -> None:
    w = _with_policy(env, {"o.policy": 'rule "no-new-miners"\n  on open_account\n  when payee.kind == miner\n'
                                         '  deny "the miner registry is closed"\n  report fma "a miner tried"\n'})  # fmt: skip
    before = env.snapshot()
    result = w.open_account("digger", AccountKind.miner)
    assert (
        result.code is ResultCode.policy_denied
        and "the miner registry is closed [no-new-miners]" in result.message
    )
    assert env.snapshot() == before and env.store.account("digger") is None
    assert [r["agency"] for r in result.reports] == ["fma"]
    assert w.open_account("shop2", AccountKind.merchant, bank="halyk").succeeded  # other kinds still open
    env.check()


def test_freeze__denied__account_stays_active(env) -> None:
    w = _with_policy(env, {"f.policy": 'rule "freeze-needs-a-ground"\n  on freeze\n'
                                        '  unless memo starts_with "court:"\n  deny "a freeze names its court order"\n'})  # fmt: skip
    result = w.freeze("cafe", "looks odd")
    assert result.code is ResultCode.policy_denied and "a freeze names its court order" in result.message
    assert env.store.account("cafe").status is AccountStatus.active
    assert w.freeze("cafe", "court:2-9/2026").succeeded
    assert env.store.account("cafe").status is AccountStatus.frozen
    env.check()


def test_post_void_and_sweep__rules_see_them(env) -> None:
    source = (
        'rule "posts-reported"\n  on post\n  when amount > 1_000 tiyn\n  report fma "big post"\n\n'
        'rule "no-voids-by-payee"\n  on void\n  when signer == payee\n  deny "the payee cannot void"\n\n'
        'rule "pilot-sweeps-only"\n  on sweep\n  when time >= 1_780_300_000\n  deny "the pilot is over"\n'
    )
    w = _with_policy(env, {"l.policy": source})
    assert w.issue("aigerim", 9_000).succeeded
    assert w.hold("aigerim", "cafe", 3_000, 600, releaser="roads", op_id="h1").succeeded
    assert w.hold("aigerim", "cafe", 3_000, 600, releaser="roads", op_id="h2").succeeded
    posted = w.post("roads", "h1")
    assert posted.succeeded and [r["rule"] for r in posted.reports] == ["posts-reported"]
    voided = w.void("cafe", "h2")
    assert voided.code is ResultCode.policy_denied and env.store.hold("h2").status == "pending"
    assert w.void("roads", "h2").succeeded
    assert w.sweep(env.clock.now).succeeded  # ledger time 2026-06-01: within the pilot
    env.clock.advance(DAY)
    assert w.sweep(env.clock.now).code is ResultCode.policy_denied
    env.check()


def test_hold_post_and_void__rules_read_the_holds_releaser_and_deadline(env) -> None:
    source = (
        'rule "last-hour-post"\n  on post\n  when deadline - time < 3_600\n  report fma "posted in its last hour"\n\n'
        'rule "third-party-release"\n  on hold\n  when releaser != payer.handle\n'
        '  report fma "held for someone else to release"\n\n'
        'rule "only-the-releaser-voids"\n  on void\n  when signer != releaser\n  deny "only its releaser"\n'
    )
    w = _with_policy(env, {"l.policy": source})
    assert w.issue("aigerim", 9_000).succeeded
    held = w.hold("aigerim", "cafe", 3_000, 86_400, releaser="roads", op_id="h1")
    assert [r["rule"] for r in held.reports] == ["third-party-release"]
    own = w.hold("aigerim", "cafe", 3_000, 600, op_id="h2")  # released by its payer
    assert own.succeeded and own.reports == ()
    assert w.hold("aigerim", "cafe", 1_000, 600, releaser="roads", op_id="h3").succeeded
    assert w.post("roads", "h1").reports == ()  # a day before its deadline
    env.clock.advance(100)
    assert [r["rule"] for r in w.post("aigerim", "h2").reports] == ["last-hour-post"]  # 500 s before it
    denied = w.void("cafe", "h3")  # the payee may void a hold, but this set says only its releaser
    assert denied.code is ResultCode.policy_denied and "only its releaser" in denied.message
    assert w.void("roads", "h3").succeeded
    env.check()


def test_check__releaser_or_deadline_read_where_there_is_no_hold__located(tmp_path) -> None:
    problems = _check_errors('rule "r"\n  on transfer\n  when releaser == "court"\n  deny "x"\n')
    assert any(p.startswith("E026") and "a transfer is no hold" in p and "op.releaser" in p for p in problems)
    problems = _check_errors('rule "r"\n  on sweep\n  when deadline > 0\n  deny "x"\n')
    assert any(p.startswith("E026") and "op.deadline" in p for p in problems), problems


# ---- the language: checker, formatter, manifest, engine -------------------------------------------------------


def test_check__unguarded_rule__sees_payments_only() -> None:
    checked = parse_and_check({"t.policy": 'rule "r"\n  deny "x"\n'})
    assert checked.rules[0].kinds == ("issue", "redeem", "transfer", "hold")


def test_check__every_decided_kind_can_be_named() -> None:
    kinds = ", ".join(k.value for k in DECIDED_KINDS)
    checked = parse_and_check({"t.policy": f'rule "r"\n  on {kinds}\n  report fma "x"\n'})
    assert checked.rules[0].kinds == tuple(k.value for k in DECIDED_KINDS)


@pytest.mark.parametrize(
    ("source", "code", "words"),
    [
        ('rule "r"\n  on seize\n  hold for 30d\n', "E018", "names who releases it"),
        ('rule "r"\n  on seize\n  hold for 30d released by payee\n', "E018", "released by a named account"),
        ('rule "r"\n  on seize\n  hold for 30d released by "c" on timeout keep\n', "E018", "not 'keep'"),
        ('rule "r"\n  on void\n  hold for 30d released by "c"\n', "E018", "`on seize`"),
        ('rule "r"\n  on post\n  withhold 1% to "x"\n', "E025", "a rule on post may deny"),
        ('rule "r"\n  on transfer, freeze\n  set tag "x"\n', "E025", "a rule on freeze"),
        ('rule "r"\n  on sweep\n  when payee.kind == miner\n  deny "x"\n', "E026", "cannot read payee.kind"),
        ('rule "r"\n  on open_account\n  when amount > 5 KZT\n  deny "x"\n', "E026", "cannot read op.amount"),
        ('rule "r"\n  on seize_all\n  deny "x"\n', "E011", "did you mean 'seize'"),
    ],
)
def test_check__lifecycle_mistakes__located_with_a_code(source: str, code: str, words: str) -> None:
    problems = _check_errors(source)
    assert any(p.startswith(code) and words in p for p in problems), problems


def test_fmt__on_timeout__round_trips() -> None:
    formatted = format_source(SEIZURE, "s.policy")
    assert 'hold for 30d released by "court" on timeout post' in formatted
    assert format_source(formatted, "s.policy") == formatted


def test_reads__lifecycle_rules__listed_with_their_kinds() -> None:
    rows = manifest(parse_and_check({"s.policy": SEIZURE}))
    assert rows[0]["kinds"] == ["seize"] and "op.memo" in rows[0]["reads"]


def test_engine__kinds_no_rule_sees__get_no_plan() -> None:
    engine = compile_sources(read_sources([shipped_policies()]))
    assert set(engine.plans) == {"issue", "redeem", "transfer", "hold", "seize", "void"}
    assert "sweep" not in engine.plans and "freeze" not in engine.plans


def test_engine__different_timeout_directions__conflict_denies() -> None:
    source = SEIZURE + '\nrule "other"\n  on seize\n  hold for 10d released by "court" on timeout void\n'
    engine = compile_sources({"s.policy": source})
    payer = Account("d", AccountKind.merchant, "00", bank="b")
    payee = Account("c", AccountKind.merchant, "00", bank="b")
    op = Operation("s", "nbk", Seize("d", "c", 5, order="interim:1"))
    proposal = Proposal(op, 0, "d", "c", 5, "", (Posting("d", -5), Posting("c", 5)), payer, payee)
    decision = engine.decide(proposal, view_of(payer, payee))
    assert not decision.allowed and "different things to do at the hold's timeout" in decision.reasons[0]


def test_engine__one_hold_rule__decision_records_the_hold() -> None:
    engine = compile_sources({"s.policy": SEIZURE})
    payer = Account("d", AccountKind.merchant, "00", bank="b")
    payee = Account("c", AccountKind.merchant, "00", bank="b")
    op = Operation("s", "nbk", Seize("d", "c", 5, order="interim:1"))
    decision = engine.decide(Proposal(op, 0, "d", "c", 5, "", (), payer, payee), view_of(payer, payee))
    assert (decision.hold_timeout_s, decision.hold_releaser, decision.hold_on_timeout) == (
        30 * DAY,
        "court",
        "post",
    )
    assert decision.detail["hold"] == {"timeout_s": 30 * DAY, "releaser": "court", "on_timeout": "post"}
    transfer = Proposal(Operation("t", "d", Transfer("d", "c", 5)), 0, "d", "c", 5, "", (), payer, payee)
    assert engine.decide(transfer, view_of(payer, payee)).hold_timeout_s is None  # the rule is on seize only


def test_kinds__one_place() -> None:
    assert set(LIFECYCLE_KINDS) == {OpKind.seize, OpKind.post, OpKind.void, OpKind.sweep, OpKind.freeze,
                                    OpKind.open_account}  # fmt: skip
    assert not set(DECIDED_KINDS) & {OpKind.batch, OpKind.unfreeze, OpKind.close, OpKind.add_witness}


# ---- the whole story through the CLI --------------------------------------------------------------------------


def test_cli__provisional_seizure_story(tmp_path: Path) -> None:
    db = str(tmp_path / "l.db")
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli, ["--db", db, *args])
        assert result.exit_code == code, result.output
        return result.output

    run("init", "--name", "t")
    run("account", "open", "almaty-court", "--kind", "agency")
    run("account", "open", "claimant", "--kind", "exchange")
    run("account", "open", "debtor", "--kind", "exchange")
    run("account", "open", "akimat", "--kind", "government")
    run("issue", "debtor", "5000")
    run("issue", "akimat", "100")
    run("policy", "enable", str(shipped_policies()))
    held = json.loads(run("--json", "seize", "debtor", "claimant", "2000", "--order", "interim:2-1/2026"))
    assert "provisionally seized" in held["message"]
    assert "interim-seizure-held-for-the-court" in run("policy", "explain", held["id"])
    denied = run("seize", "akimat", "claimant", "1", "--order", "2-2/2026", code=1)
    assert "budget accounts are not seized" in denied
    assert "only almaty-court or claimant may void" in run("void", held["id"], "--as", "debtor", code=1)
    voided = json.loads(run("--json", "void", held["id"], "--as", "almaty-court"))
    assert voided["reports"][0]["rule"] == "released-seizure-reported"
    assert json.loads(run("--json", "balance", "debtor"))["balance_tiyn"] == 500_000
    run("seize", "debtor", "claimant", "2000", "--order", "interim:2-3/2026")
    swept = run("--json", "sweep", "--at", "2099-01-01", "--simulate-future")  # a warning line, then the JSON
    sweep = json.loads(swept[swept.index("{") :])
    assert "1 holds timed out (1 posted to their payees)" in sweep["message"]
    assert json.loads(run("--json", "balance", "claimant"))["balance_tiyn"] == 200_000
    assert json.loads(run("--json", "balance", "debtor"))["balance_tiyn"] == 300_000
    explained = run("policy", "explain", sweep["id"])
    assert "no rule of the policy set (version 1) sees an operation of kind sweep" in explained
    run("check")
