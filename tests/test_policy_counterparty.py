"""Counterparty-filtered history windows: `payer.out_sum(day, kind: bank)` counts only the postings whose
counterparty (the operation's other party) is a bank, or of one bank, or in one zone.

The language side (parse, check with locations, format, reads) and the ledger side: the filtered running flows
are built from the journal when a set naming them is enabled, kept chunk by chunk, read in one probe, and
rebuilt and compared by `tenge check`, on every store."""

from __future__ import annotations

import sqlite3

import pytest
import trace_tables
from conftest import build_ledger

from tenge_ledger.app import ledger_over
from tenge_ledger.client.wallet import Wallet
from tenge_ledger.core import limits
from tenge_ledger.core.records import AccountKind, Operation, Transfer
from tenge_ledger.core.results import ResultCode
from tenge_ledger.core.windows import FilterReplay, filter_key, parse_filter
from tenge_ledger.ledger.journal import check_journal
from tenge_ledger.policy import PolicyError, compile_sources, parse_and_check
from tenge_ledger.policy.format import format_source
from tenge_ledger.policy.reads import manifest
from tenge_ledger.policy.sets import disable, enable
from tenge_ledger.store import open_store
from tenge_ledger.store.base import SCHEMA_VERSION

KZT = 100  # tiyn

# A bank's daily net interbank outflow cap of 1,000 KZT, as policies/16 writes it.
NET_CAP = """rule "net-cap"
  on transfer
  when payer.kind == bank and payee.kind == bank
  when payer.out_sum(day, kind: bank) - payer.in_sum(day, kind: bank) + amount > 1_000 KZT
  deny "over the cap"
"""

# Reports (so the decision is journaled and explained) what a person paid merchants of one zone in 30 days.
ZONE_REPORT = """rule "zone-spend"
  on transfer
  when payer.out_sum(30d, zone: "alatau") > 500 KZT
  report fma "a lot spent in the zone"
"""


def _errors(source: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse_and_check({"r.policy": source})
    return [f"{d.line}:{d.col}: {d.message} [{d.code}]" for d in caught.value.diagnostics]


def _banks(env) -> Wallet:
    w = env.wallet
    for bank in ("halyk", "kaspi"):
        assert w.open_account(bank, AccountKind.bank).succeeded
        assert w.issue(bank, 100_000 * KZT).succeeded
    assert w.open_account("aigerim", AccountKind.person, tier=3, bank="halyk").succeeded
    assert w.open_account("cafe", AccountKind.merchant, bank="kaspi", attrs=(("zone", "alatau"),)).succeeded
    assert w.issue("aigerim", 5_000 * KZT).succeeded
    return w


def _enable(env, source: str) -> Wallet:
    enable(env.store, {"r.policy": source}, env.clock())
    return Wallet(ledger_over(env.store, env.clock), env.keystore)


def _problems(env) -> list[str]:
    return check_journal(env.store, signatures=False).problems


def _check_problems(path) -> list[str]:
    store = open_store(path)
    try:
        return check_journal(store, signatures=False).problems
    finally:
        store.close()


# ---- the language ----------------------------------------------------------------------------------------------


def test_counterparty_filter__parsed_formatted_and_read():
    source = (
        'rule "r"\n  on transfer\n  when payer.out_sum(day, "meals", bank: "halyk") + payee.in_sum(24h, kind:'
        ' bank) > 5 KZT\n  deny "x"\n'
    )
    formatted = format_source(source)
    assert 'payer.out_sum(day, "meals", bank: "halyk")' in formatted
    assert "payee.in_sum(24h, kind: bank)" in formatted
    assert format_source(formatted) == formatted
    engine = compile_sources({"r.policy": formatted})
    reads = manifest(engine.checked)[0]["reads"]
    assert "payer.history.out(day, by tag, counterparty bank=halyk)" in reads
    assert "payee.history.in(24h, counterparty kind=bank)" in reads
    assert engine.filters == {
        filter_key([("bank", "halyk"), ("tag", "meals")]),
        filter_key([("kind", "bank")]),
    }
    assert ("payer", "out", "day", filter_key([("bank", "halyk"), ("tag", "meals")])) in {
        w[:4] for w in engine.windows
    }


def test_counterparty_filter__unknown_key_located_with_a_suggestion():
    found = _errors('rule "r"\n  when payer.out_sum(day, knd: bank) > 1 KZT\n  deny "x"\n')
    assert found == [
        "2:27: unknown counterparty filter 'knd': a history sum or count filters by the counterparty's kind, "
        "bank or zone; did you mean 'kind'? [E027]"
    ]


def test_counterparty_filter__values_must_be_constants_of_their_type():
    found = _errors(
        'rule "r"\n  when payer.out_sum(day, kind: "bank", zone: payer.attr.zone) > 1 KZT\n'
        '  when payer.in_sum(30d, tag, bank: "halyk") > 1 KZT\n  deny "x"\n'
    )
    assert found == [
        "2:33: a counterparty filter's kind is an account kind like bank, not a string [E027]",
        "2:47: a counterparty filter's zone is a constant string (or a let of one), not a value read from the "
        "operation [E027]",
        "3:26: with a counterparty filter, the tag is a constant string: the set keeps one running total per "
        "filter it names [E027]",
    ]


def test_counterparty_filter__a_let_names_the_value():
    engine = compile_sources(
        {
            "r.policy": 'let home = "halyk"\nrule "r"\n  when payer.out_sum(day, bank: home) > 1 KZT\n  deny "x"\n'
        }
    )
    assert engine.filters == {filter_key([("bank", "halyk")])}


def test_counterparty_filter__twice_or_on_balance_refused():
    found = _errors(
        'rule "r"\n  when payer.out_sum(day, kind: bank, kind: person) > 1 KZT\n'
        '  when payer.balance("", kind: bank) > 1 KZT\n  deny "x"\n'
    )
    assert found == [
        "2:39: the counterparty filter 'kind' is given twice [E016]",
        "3:26: balance() takes no counterparty filter: only history sums and counts do [E027]",
    ]


def test_counterparty_filter__over_the_set_limit_located():
    n = limits.policy_window_filters_max + 1
    rules = "".join(
        f'rule "r{i}"\n  when payer.out_sum(day, bank: "b{i}") > 1 KZT\n  deny "x"\n' for i in range(n)
    )
    found = _errors(rules)
    assert found == [
        f"{3 * n - 1}:8: more than {n - 1} different counterparty filters in the set: each is a running total the "
        "ledger keeps on every payment [E027]"
    ]


def test_filter_key__round_trips_and_refuses_what_it_did_not_make():
    key = filter_key([("zone", "alatau"), ("kind", "merchant")])
    assert key == '[["kind","merchant"],["zone","alatau"]]'
    assert parse_filter(key) == (("kind", "merchant"), ("zone", "alatau"))
    for bad in ("kind=bank", '[["colour","red"]]', '[["zone","a"],["kind","b"]]'):
        with pytest.raises(ValueError):
            parse_filter(bad)


# ---- the ledger ------------------------------------------------------------------------------------------------


def test_net_cap__counts_interbank_flows_only(make_ledger):
    env = make_ledger()
    _banks(env)
    w = _enable(env, NET_CAP)
    assert w.transfer("halyk", "aigerim", 900 * KZT).succeeded  # to a customer: not interbank
    assert w.transfer("aigerim", "halyk", 900 * KZT).succeeded  # from a customer: does not net it
    assert w.transfer("halyk", "kaspi", 800 * KZT).succeeded
    assert w.transfer("halyk", "kaspi", 300 * KZT).code is ResultCode.policy_denied  # 800 + 300 > 1,000
    assert w.transfer("kaspi", "halyk", 100 * KZT).succeeded  # interbank: nets it
    assert w.transfer("halyk", "kaspi", 300 * KZT).succeeded  # 800 - 100 + 300 = 1,000
    env.clock.advance(86_400)  # a new settlement day
    assert w.transfer("halyk", "kaspi", 1_000 * KZT).succeeded
    assert _problems(env) == []


def test_enable__builds_the_filtered_history_from_the_journal(make_ledger):
    env = make_ledger()
    w = _banks(env)
    assert w.transfer("halyk", "kaspi", 700 * KZT).succeeded  # before any set names the filter
    env.clock.advance(120)
    assert w.transfer("halyk", "aigerim", 500 * KZT).succeeded
    env.clock.advance(120)
    w = _enable(env, NET_CAP)
    assert env.store.meta().settings["window_filters"] == [filter_key([("kind", "bank")])]
    assert _problems(env) == []
    assert w.transfer("halyk", "kaspi", 400 * KZT).code is ResultCode.policy_denied  # 700 seen: over 1,000
    assert w.transfer("halyk", "kaspi", 300 * KZT).succeeded
    assert _problems(env) == []
    disable(env.store, env.clock())
    assert env.store.filter_flows() == {} and env.store.filter_activity() == {}
    assert _problems(env) == []


def test_filtered_windows__a_chunk_sees_its_own_earlier_payments(make_ledger):
    env = make_ledger()
    w = _banks(env)
    w = _enable(env, NET_CAP)
    ops = [w.build("halyk", Transfer("halyk", "kaspi", 400 * KZT), op_id=f"t{i}") for i in range(3)]
    results = w.ledger.apply_many(ops, verified=True)
    assert [r.code for r in results] == [ResultCode.ok, ResultCode.ok, ResultCode.policy_denied]
    assert _problems(env) == []


def test_zone_filter__follows_the_counterparty_as_it_was(make_ledger):
    env = make_ledger()
    w = _banks(env)
    w = _enable(env, ZONE_REPORT)
    assert not w.transfer("aigerim", "cafe", 400 * KZT).reports
    assert w.update_account("cafe", attrs=(("zone", "astana"),)).succeeded
    assert not w.transfer("aigerim", "cafe", 400 * KZT).reports  # paid out of the zone: not counted
    env.clock.advance(60)
    assert w.update_account("cafe", attrs=(("zone", "alatau"),)).succeeded
    assert not w.transfer("aigerim", "cafe", 200 * KZT).reports  # 400 before it in the zone
    assert w.transfer("aigerim", "cafe", 1 * KZT).reports  # 400 + 200 before it
    key = filter_key([("zone", "alatau")])
    assert env.store.filter_flows()[("aigerim", key)].out_tiyn == 601 * KZT
    assert ("cafe", key) not in env.store.filter_flows()  # its payer is not in the zone
    assert _problems(env) == []
    # the same flows built again from the journal, as a set enabled later would
    assert env.store.rebuild_window_filters(frozenset()) is True
    assert env.store.rebuild_window_filters(frozenset({key})) is True
    assert env.store.filter_flows()[("aigerim", key)].out_tiyn == 601 * KZT
    assert _problems(env) == []


def test_check__names_an_edited_or_missing_filtered_row(sqlite_url, tmp_path):
    env = build_ledger(sqlite_url, tmp_path / "keys")
    w = _banks(env)
    w = _enable(env, NET_CAP)
    assert w.transfer("halyk", "kaspi", 500 * KZT).succeeded
    assert _problems(env) == []
    env.store.close()
    conn = sqlite3.connect(sqlite_url, isolation_level=None)
    conn.execute("UPDATE filter_flows SET out_tiyn = out_tiyn - 1")
    store = open_store(sqlite_url)
    try:
        found = check_journal(store, signatures=False).problems
        assert any(
            p.startswith('filtered history flows of halyk [["kind","bank"]]: stored [49999') for p in found
        )
        conn.execute("DELETE FROM filter_activity")
        found = check_journal(store, signatures=False).problems
        assert any(p.startswith('filtered activity of halyk [["kind","bank"]] at minute') for p in found)
    finally:
        store.close()
        conn.close()


def test_filter_replay__legs_of_a_split_count_against_the_payer():
    replay = FilterReplay({filter_key([("kind", "bank")])}, "nbk")
    from tenge_ledger.core.records import OpenAccount

    for handle, kind in (("halyk", AccountKind.bank), ("a", AccountKind.person), ("x", AccountKind.agency)):
        replay.apply(Operation(f"o-{handle}", "nbk", OpenAccount(handle, kind, "00" * 32)), 0, [])
    legs = [("halyk", -100, ""), ("a", 60, ""), ("x", 40, "")]
    replay.apply(Operation("t", "halyk", Transfer("halyk", "a", 100)), 60, legs)
    key = filter_key([("kind", "bank")])
    assert replay.flows == {
        ("a", key): [0, 0, 60, 1, 1],
        ("x", key): [0, 0, 40, 1, 1],
    }  # the payer is the bank


def _run_sql(url: str, statements: list[str]) -> list[tuple]:
    """Run statements on the store's database directly; the rows of the last."""
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            rows: list[tuple] = []
            for statement in statements:
                cur = conn.execute(statement)
                rows = cur.fetchall() if cur.description else []
            return rows
    conn = sqlite3.connect(url, isolation_level=None)
    try:
        rows = []
        for statement in statements:
            rows = conn.execute(statement).fetchall()
        return rows
    finally:
        conn.close()


def test_migration_5__a_version_4_ledger_gets_the_filtered_tables(make_ledger):
    env = make_ledger()
    w = _banks(env)
    assert w.transfer("halyk", "kaspi", 700 * KZT).succeeded
    leaves = [(i, t.leaf_hash) for i, t in env.store.traces()]
    env.store.close()
    _run_sql(
        env.url,
        [
            *trace_tables.schema_5(postgres=env.url.startswith("postgresql")),
            "DROP TABLE filter_flows",
            "DROP TABLE filter_activity",
            "DELETE FROM schema_migrations WHERE version = 5",
        ],
    )
    store = open_store(env.url)  # applies migration 5 (and those after it)
    try:
        versions = _run_sql(env.url, ["SELECT version FROM schema_migrations ORDER BY version"])
        assert [v for (v,) in versions] == list(range(1, SCHEMA_VERSION + 1))
        assert [(i, t.leaf_hash) for i, t in store.traces()] == leaves  # schema 6 again: every leaf kept
        assert store.filter_flows() == {}
        enable(store, {"r.policy": NET_CAP}, env.clock())
        w = Wallet(ledger_over(store, env.clock), env.keystore)
        assert w.transfer("halyk", "kaspi", 400 * KZT).code is ResultCode.policy_denied  # the 700 before it
        assert check_journal(store, signatures=False).problems == []
    finally:
        store.close()


def test_policy_explain__shows_the_filtered_windows_a_matched_rule_read(sqlite_url, tmp_path):
    from click.testing import CliRunner

    from tenge_cli.main import cli

    env = build_ledger(sqlite_url, tmp_path / "keys")
    w = _banks(env)
    w = _enable(env, ZONE_REPORT)
    assert w.transfer("aigerim", "cafe", 600 * KZT, op_id="first").succeeded
    assert w.transfer("aigerim", "cafe", 1 * KZT, op_id="reported").reports
    env.store.close()
    out = CliRunner().invoke(cli, ["--db", sqlite_url, "policy", "explain", "reported"])
    assert out.exit_code == 0, out.output
    assert (
        "matched zone-spend (r.policy:1)\n    read payer.history.out(30d, counterparty zone=alatau)\n"
        in out.output
    )
    out = CliRunner().invoke(cli, ["--db", sqlite_url, "--json", "policy", "explain", "reported"])
    assert '"zone-spend": [\n      "payer.history.out(30d, counterparty zone=alatau)"' in out.output


FILTER_COLUMNS = {
    "filter_flows": ["account", "filter", "out_tiyn", "out_count", "in_tiyn", "in_count", "minute"],
    "filter_activity": ["account", "filter", "minute", "out_tiyn", "out_count", "in_tiyn", "in_count"],
}


@pytest.fixture
def kept(sqlite_url, tmp_path) -> str:
    """A SQLite ledger keeping the net cap's filter, with interbank flows over two minutes and two banks."""
    env = build_ledger(sqlite_url, tmp_path / "keys")
    _banks(env)
    w = _enable(env, NET_CAP)
    assert w.transfer("halyk", "kaspi", 300 * KZT).succeeded
    env.clock.advance(60)
    assert w.transfer("kaspi", "halyk", 200 * KZT).succeeded
    assert w.transfer("halyk", "kaspi", 100 * KZT).succeeded
    assert _problems(env) == []
    env.store.close()
    return sqlite_url


@pytest.mark.parametrize(("table", "column"), [(t, c) for t, cs in FILTER_COLUMNS.items() for c in cs])
def test_check__any_changed_filtered_column_named(kept, table, column):
    conn = sqlite3.connect(kept, isolation_level=None)
    try:
        key = "account, filter" + (", minute" if table == "filter_activity" else "")
        row = conn.execute(f"SELECT {key}, {column} FROM {table} ORDER BY {key} DESC LIMIT 1").fetchone()
        value = row[-1]
        changed = value + 1 if isinstance(value, int) else value.replace("bank", "bnak")
        where = " AND ".join(f"{k.strip()} = ?" for k in key.split(","))
        conn.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (changed, *row[:-1]))
    finally:
        conn.close()
    found = _check_problems(kept)
    assert any(p.startswith(("filtered history flows", "filtered activity", "filtered history flows are kept"))
               for p in found), found  # fmt: skip


@pytest.mark.parametrize("table", list(FILTER_COLUMNS))
def test_check__deleted_or_added_filtered_row_named(kept, table):
    conn = sqlite3.connect(kept, isolation_level=None)
    try:
        conn.execute(f"DELETE FROM {table} WHERE account = (SELECT MAX(account) FROM {table})")
        conn.execute(
            'INSERT INTO filter_flows VALUES (1, \'[["kind","person"]]\', 5, 1, 0, 0, 1)'
        )  # a filter no set names
    finally:
        conn.close()
    found = _check_problems(kept)
    assert any(p.startswith("filtered") for p in found)
    assert any('[["kind","person"]]' in p for p in found)


MEALS_CAP = 'rule "r"\n  on transfer\n  when tag == "meals" and payer.out_sum(24h, "meals") + amount > 500 KZT\n  deny "x"\n'


def test_tagged_window__a_chunk_sees_its_own_earlier_payments_of_the_tag(make_ledger):
    env = make_ledger()
    w = _banks(env)
    assert w.issue("aigerim", 1_000 * KZT, tag="meals").succeeded
    w = _enable(env, MEALS_CAP)
    bodies = [Transfer("aigerim", "cafe", 300 * KZT, "meals"), Transfer("aigerim", "cafe", 300 * KZT),
              Transfer("aigerim", "cafe", 200 * KZT, "meals"), Transfer("aigerim", "cafe", 1 * KZT, "meals")]  # fmt: skip
    ops = [w.build("aigerim", body, op_id=f"m{i}") for i, body in enumerate(bodies)]
    results = w.ledger.apply_many(ops, verified=True)
    assert [r.code for r in results] == [
        ResultCode.ok,
        ResultCode.ok,
        ResultCode.ok,
        ResultCode.policy_denied,
    ]
    assert _problems(env) == []
