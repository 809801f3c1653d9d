"""The policy compiler: one validated Python function per operation kind, in which a policy's text is only ever
data. What the rules decide is tested in test_policy_engine.py and by the shipped specs."""

from __future__ import annotations

import ast as py

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from policy_support import view_of

from tenge_ledger.core.hooks import Proposal
from tenge_ledger.core.records import Account, AccountKind, Operation, Posting, Transfer
from tenge_ledger.policy import compile_sources
from tenge_ledger.policy.compile import validated
from tenge_ledger.policy.errors import PolicyCheckError

KEY = "00" * 32


def pay(amount: int, payer: str = "a", payee: str = "b") -> Proposal:
    op = Operation("op-1", payer, Transfer(payer, payee, amount))
    return Proposal(op, 1_770_000_000, payer, payee, amount, "",
                    (Posting(payer, -amount), Posting(payee, amount)))  # fmt: skip


@pytest.mark.parametrize(
    "source, why",
    [
        ("__import__('os')", "reference to '__import__'"),
        ("c.payer().system('true')", "attribute 'system'"),
        ("c.__class__", "attribute '__class__'"),
        ("c.proposal.__init__", "attribute '__init__'"),
        ("lambda: 1", "Lambda node"),
        ("[x for x in c]", "ListComp node"),
        ("c.memo(b'x')", "constant of type bytes"),
    ],
)
def test_validated__refuses_what_the_compiler_never_makes(source: str, why: str) -> None:
    with pytest.raises(TypeError, match=why):
        validated(py.parse(source))


def test_validated__accepts_what_the_compiler_makes() -> None:
    tree = py.parse("def plan(c, tag):\n    m = []\n    if c.payer().tier == 1 and tag.startswith('x'):\n"
                    "        m.append(0)\n    return m, [], 1\n")  # fmt: skip
    assert validated(tree) is tree


CODE = "'); __import__('os').system('touch pwned') #\\n\"\"\" {c.__class__}"


def test_policy_strings_are_data_never_code(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    quoted = CODE.replace("\\", "\\\\").replace('"', '\\"')
    engine = compile_sources(
        {"p.policy": f'rule "odd" when payee.attr.zone == "{quoted}" deny "{quoted}" report fma "{quoted}"'}
    )
    plain = Account("b", AccountKind.merchant, KEY, bank="k", attrs=(("zone", "alatau"),))
    odd = Account("b", AccountKind.merchant, KEY, bank="k", attrs=(("zone", CODE),))
    payer = Account("a", AccountKind.person, KEY, tier=1, bank="k")
    assert engine.decide(pay(100), view_of(payer, plain)).allowed
    denied = engine.decide(pay(100), view_of(payer, odd))
    assert not denied.allowed and denied.reasons == (f"{CODE} [odd]",)
    assert denied.reports[0].reason == CODE
    assert not (tmp_path / "pwned").exists()


def test_plan__evaluates_only_the_rules_an_index_selects() -> None:
    engine = compile_sources(
        {
            "p.policy": """
rule "t0" when payer.tier == 0 and amount > 1 KZT deny "t0"
rule "t1" when payer.tier == 1 and amount > 1 KZT deny "t1"
rule "t1-report" when payer.tier == 1 report fma "t1"
rule "any" when amount > 1_000 KZT report fma "big"
rule "roads" when tag == "budget:roads" deny "roads"
"""
        }
    )
    payee = Account("b", AccountKind.person, KEY, tier=1, bank="k")
    tier1 = Account("a", AccountKind.person, KEY, tier=1, bank="k")
    tier2 = Account("a", AccountKind.person, KEY, tier=2, bank="k")
    one = engine.decide(pay(5_00), view_of(tier1, payee))
    assert one.rules == ("t1",) and one.detail["evaluated"] == 3  # any, t1, t1-report: never t0 or roads
    assert [m["rule"] for m in one.detail["matched"]] == ["t1", "t1-report"]
    big = engine.decide(pay(2_000_00), view_of(tier2, payee))
    assert big.rules == ("any",) and big.detail["evaluated"] == 1


def test_plan__an_unreadable_index_field_evaluates_every_rule_it_guards_and_fails_closed() -> None:
    engine = compile_sources(
        {
            "p.policy": 'rule "t1" when payer.tier == 1 deny "t1"\nrule "t0" when payer.tier == 0 report fma "x"'
        }
    )
    payee = Account("b", AccountKind.person, KEY, tier=1, bank="k")
    d = engine.decide(pay(5_00, payer="ghost"), view_of(payee))
    assert not d.allowed and set(d.rules) == {"t0", "t1"} and d.detail["evaluated"] == 2
    assert all("fail closed" in r and "no payer account" in r for r in d.reasons)


# ---- differential: random conditions, compiled, against the same condition evaluated directly in the test ----

Env = dict


def _atoms() -> st.SearchStrategy[tuple[str, object]]:
    n = st.integers(1, 300)
    return st.one_of(
        n.map(lambda k: (f"amount > {k} KZT", lambda e, k=k: e["amount"] > k * 100)),
        n.map(lambda k: (f"amount <= {k} KZT", lambda e, k=k: e["amount"] <= k * 100)),
        st.integers(0, 2).map(lambda t: (f"payer.tier == {t}", lambda e, t=t: e["tier"] == t)),
        st.sampled_from(["miner", "merchant"]).map(
            lambda k: (f"payee.kind in [{k}, exchange]", lambda e, k=k: e["kind"] in (k, "exchange"))
        ),
        st.sampled_from(["meals", "budget:x"]).map(lambda t: (f'tag == "{t}"', lambda e, t=t: e["tag"] == t)),
        st.just(('tag starts_with "budget:"', lambda e: e["tag"].startswith("budget:"))),
        st.just(('payee.attr.zone == "alatau"', lambda e: e["zone"] == "alatau")),
        st.just(('payee.attr.zone != ""', lambda e: e["zone"] != "")),
        n.map(
            lambda k: (
                f"payer.out_sum(24h) + amount > {k} KZT",
                lambda e, k=k: e["out"] + e["amount"] > k * 100,
            )
        ),
    )


def _conditions() -> st.SearchStrategy[tuple[str, object]]:
    def combine(children: st.SearchStrategy) -> st.SearchStrategy:
        pair = st.tuples(children, children)
        return st.one_of(
            children.map(lambda c: (f"not ({c[0]})", lambda e, f=c[1]: not f(e))),
            pair.map(
                lambda p: (f"({p[0][0]}) and ({p[1][0]})", lambda e, a=p[0][1], b=p[1][1]: a(e) and b(e))
            ),
            pair.map(lambda p: (f"({p[0][0]}) or ({p[1][0]})", lambda e, a=p[0][1], b=p[1][1]: a(e) or b(e))),
        )

    return st.recursive(_atoms(), combine, max_leaves=6)


_envs = st.fixed_dictionaries(
    {
        "amount": st.one_of(
            st.integers(1, 40_000),
            st.integers(1, 300).map(lambda k: k * 100 + 1),
            st.integers(1, 300).map(lambda k: k * 100),
            st.integers(1, 300).map(lambda k: k * 100 - 1),
        ),
        "tier": st.sampled_from([0, 1, 2, None]),
        "kind": st.sampled_from(["person", "merchant", "miner", "exchange"]),
        "tag": st.sampled_from(["", "meals", "budget:x", "budget:y"]),
        "zone": st.sampled_from(["", "alatau", "other"]),
        "out": st.sampled_from([0, 1, 99, 100]),
    }
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_conditions(), min_size=1, max_size=4), st.lists(_envs, min_size=1, max_size=8))
def test_property__compiled_rules_match_exactly_when_their_conditions_hold(conditions, envs) -> None:
    source = "\n".join(f'rule "r{i}" when {text} report fma "r{i}"' for i, (text, _) in enumerate(conditions))
    try:
        engine = compile_sources({"p.policy": source})
    except PolicyCheckError as exc:  # e.g. `payer.tier == 0 and payer.tier == 1`: the checker refuses it
        assume(not all("can never hold" in d.message for d in exc.diagnostics))
        raise
    for env in envs:
        attrs = (("zone", env["zone"]),) if env["zone"] else ()
        payer = Account("a", AccountKind.person, KEY, tier=env["tier"], bank="k")
        payee = Account("b", AccountKind(env["kind"]), KEY, bank="k", attrs=attrs)
        op = Operation("op-1", "a", Transfer("a", "b", env["amount"], env["tag"] or None))
        p = Proposal(op, 1_770_000_000, "a", "b", env["amount"], env["tag"],
                     (Posting("a", -env["amount"], env["tag"]), Posting("b", env["amount"], env["tag"])))  # fmt: skip
        decision = engine.decide(p, view_of(payer, payee, windows={("a", "out"): (env["out"], 1)}))
        expected = {f"r{i}" for i, (_, holds) in enumerate(conditions) if holds(env)}
        assert decision.allowed and {r.rule for r in decision.reports} == expected, (source, env)


def test_plan__many_tags_and_tiers_dispatch_through_tables() -> None:
    rules = [f'rule "r{r}" when tag in [{", ".join(f"{chr(34)}t{r}-{i}{chr(34)}" for i in range(5))}] deny "r{r}"'
             for r in range(12)]  # fmt: skip
    rules += [f'rule "k-{kind.value}" when payee.kind == {kind.value} report fma "k"' for kind in AccountKind]
    engine = compile_sources({"p.policy": "\n".join(rules)})
    payee = Account("b", AccountKind.miner, KEY)
    payer = Account("a", AccountKind.person, KEY, tier=1, bank="k")
    op = Operation("op-1", "a", Transfer("a", "b", 100, "t9-4"))
    tagged = Proposal(
        op, 1_770_000_000, "a", "b", 100, "t9-4", (Posting("a", -100, "t9-4"), Posting("b", 100, "t9-4"))
    )
    d = engine.decide(tagged, view_of(payer, payee))
    assert d.rules == ("r9",) and d.detail["evaluated"] == 2
    assert [m["rule"] for m in d.detail["matched"]] == ["k-miner", "r9"]
    plain = engine.decide(pay(100), view_of(payer, Account("b", AccountKind.bank, KEY)))
    assert plain.allowed and [m["rule"] for m in plain.detail["matched"]] == ["k-bank"]
    assert plain.detail["evaluated"] == 1


def test_plan__a_set_at_the_limits_compiles() -> None:
    """256 rules naming 64 tags each used to make an 8,192-deep if / elif chain: CPython's compiler overflowed."""
    files = {}
    for f in range(4):
        rules = [f'rule "r{f}-{r}" when tag in [{", ".join(f"{chr(34)}t{f}-{r}-{i}{chr(34)}" for i in range(64))}]'
                 f' and amount > {r + 1} KZT deny "x"' for r in range(64)]  # fmt: skip
        files[f"p{f}.policy"] = "\n".join(rules)
    engine = compile_sources(files)
    assert len(engine.rules) == 256
    op = Operation("op-1", "a", Transfer("a", "b", 100_00, "t3-63-63"))
    p = Proposal(
        op, 1_770_000_000, "a", "b", 100_00, "t3-63-63", (Posting("a", -100_00), Posting("b", 100_00))
    )
    payer = Account("a", AccountKind.person, KEY, tier=1, bank="k")
    assert engine.decide(p, view_of(payer)).rules == ("r3-63",)
