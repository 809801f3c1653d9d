"""Error codes of the policy language, each documented with an example (`tenge policy explain-error E012`).

A diagnostic gets its code from the first entry whose pattern matches its message: the messages are written
at the places that find the problem, and this catalogue names them, so a new check cannot forget to register
a code (it falls back to E000) and a test runs every example to prove it yields its own code."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..core import limits


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    pattern: re.Pattern[str]
    title: str
    explanation: str
    example: str  # a policy file that yields this code (the catalogue's test checks it)


def _code(code: str, pattern: str, title: str, explanation: str, example: str) -> Code:
    return Code(code, re.compile(pattern), title, explanation, example)


CODES: tuple[Code, ...] = (
    _code("E001", r"^unexpected '='|compare with ==", "`=` where a comparison needs `==`",
          "`=` only gives a let, def, list or table its value; conditions compare with `==`.",
          'rule "r"\n  when amount = 5 KZT\n  deny "x"\n'),
    _code("E002", r"a rule needs at least one effect", "a rule without an effect",
          "Every rule ends with at least one effect: deny, permit, report, hold, split, withhold, route, set tag "
          "or clear tag. The error is reported at the rule that has none.",
          'rule "a"\n  when amount > 5 KZT\n\nrule "b"\n  deny "x"\n'),
    _code("E003", r"unclosed parenthesis or list", "an unclosed parenthesis or list",
          "Every `(` and `[` needs its `)` or `]` before the rule's effects.",
          'rule "r"\n  when (amount > 5 KZT\n  deny "x"\n'),
    _code("E004", r"^unexpected|^expected", "a syntax error",
          "The parser met a token it cannot use here; the message lists every token that would fit.",
          'rule "r"\n  when amount > 5 KZT KZT\n  deny "x"\n'),
    _code("E005", r"digits, over the limit|is too large|over the ledger's largest amount|beyond the ledger's "
          r"largest amount", "a number too large",
          "Literals have at most 24 digits, and money and constants at most the ledger's largest amount "
          "(100 trillion KZT).", 'rule "r"\n  when amount > 100_000_000_000_000_000 KZT\n  deny "x"\n'),
    _code("E006", r"control or format character|string longer than|characters, over the limit",
          "text that is not one line of visible text, or too long",
          "Strings, names and data cells are shown on terminals: no newline, NUL, bidi override or zero-width "
          "character, and each text has a length limit (tenge_ledger/core/limits.py).",
          'rule "r"\n  deny "line one\\nok: transferred"\n'),
    _code("E007", r"a rule name is 1 to", "a rule name outside the safe alphabet",
          "Rule names use a-z, 0-9 and '._-' so that two names cannot look alike (a U+2010 hyphen is not '-').",
          'rule "Big Payments"\n  deny "x"\n'),
    _code("E010", r"^unknown name", "an unknown name",
          "A bare name is an operation field (amount, memo, time, expires_on, tag_expired), a let or def of "
          "this file, or an account kind or status.", 'rule "r"\n  when amout > 5 KZT\n  deny "x"\n'),
    _code("E011", r"^unknown (field|function|operation kind|account kind|account status|list|table)",
          "an unknown field, function, kind, list or table",
          "payer / payee have handle, kind, tier, bank, status, balance, attr.NAME and the history windows; "
          "lists and tables are declared before use.", 'rule "r"\n  when payee.kindd == miner\n  deny "x"\n'),
    _code("E012", r"type mismatch|cannot (add|subtract)|wants a|is keyed by|holds \w+ values|needs true or "
          r"false|joins conditions|works on strings|has no order|compared with == or != only|compare a (kind|"
          r"status)|kind or status name is compared", "a type mismatch",
          "Money, numbers, strings, durations, kinds and statuses are distinct types; money always has a unit "
          "(5 KZT, 150 tiyn).", 'rule "r"\n  when amount > 5\n  deny "x"\n'),
    _code("E013", r"must be true or false|names a condition", "a condition that is not true or false",
          "`when`, `unless` and `def` take conditions; a value alone is not one.",
          'rule "r"\n  when amount\n  deny "x"\n'),
    _code("E014", r"can never hold", "a condition that can never hold",
          "A rule whose conditions contradict each other never fires: it is dead code a reviewer would trust.",
          'rule "r"\n  when amount < 0 KZT\n  deny "x"\n'),
    _code("E015", r"costs \d+ units", "a rule or condition over the cost limit",
          "A rule's cost is known before it runs: one unit per node, 20 per history window, a def counted at "
          "each use; the limit is 200.", 'rule "r"\n  when ' + " or ".join(["payer.out_sum(24h) > 1 KZT"] * 10)
          + '\n  deny "x"\n'),
    _code("E016", r"is already defined at|is already a name|listed twice|given twice", "a name given twice",
          "Rule names are unique in a set; let, def, list and table names are unique in a file.",
          'rule "r"\n  deny "x"\n\nrule "r"\n  deny "y"\n'),
    _code("E017", r"portion|withhold takes|remaining", "portions that do not add up",
          "A split's portions add up to 100%, or end with `remaining to ...`, which takes the rest.",
          'rule "r"\n  on transfer\n  split {\n    60% to "a",\n  }\n'),
    _code("E018", r"hold turns a transfer|held payment|hold times out|provisional seizure|at its timeout",
          "a hold where it cannot apply",
          "hold turns a transfer into a pending payment and a seizure into a provisional one: the rule says "
          "`on transfer` or `on seize`, times out within a year, does not also split or re-tag, and does `post` "
          "or `void` at its timeout; a seizure's hold names the account that releases it (the court).",
          'rule "r"\n  hold for 30d\n'),
    _code("E019", r"effect at most once|one split, withhold or route|denies may also report|set and clear|give a "
          r"reason", "effects that do not go together",
          "A rule has each effect at most once, one split/withhold/route, and a deny goes only with reports.",
          'rule "r"\n  deny "x"\n  permit "y"\n'),
    _code("E020", r"a let is a constant|list items are constants|table keys and values are constants|default "
          r"is a constant|more than \d+ let", "a constant that is not constant",
          "let, list items and table entries are literals or other constants, folded once when declared.",
          'let limit = amount\n'),
    _code("E021", r"window", "a history window that is not a fixed duration, or too long",
          "out_sum(24h) and the like read one indexed range: the window is a fixed duration of at most 366 days.",
          'rule "r"\n  when payer.out_sum(400d) > 1 KZT\n  deny "x"\n'),
    _code("E022", r"data file|not a CSV|columns|cell|entries|a table holds|keys are of one type|a list holds "
          r"values of one type|is a (list|table)", "reference data that cannot be read or used",
          "Lists and tables come inline or from a CSV file beside the policy, named without a path; a CSV has "
          "a header row, then one entry per row.", 'list gray = file "gray.csv"\n'),
    _code("E023", r"nested deeper|over the limit of \d+ (bytes|files|rules)|\d+ (files|rules), over",
          "a file or set over a size limit", "Files, sets and nesting are bounded so that checking is fast.",
          'rule "r"\n  when ' + "not " * 40 + "amount > 1 KZT" + '\n  deny "x"\n'),
    _code("E024", r"not UTF-8", "a file that is not UTF-8 text", "Policy and data files are UTF-8 text.", ""),
    _code("W001", r"^warning: .*guards tagged money", "tagged money guarded on one way out only",
          "A rule keeps tagged money from going somewhere on transfer, but the same money can leave by redeem or "
          "hold: cover them in `on`, or in another rule with the same tag.",
          'rule "meals"\n  on transfer\n  when tag == "meals"\n  deny "x"\n'),
)  # fmt: skip
CODES += (
    _code("E027", r"counterparty filter", "a counterparty filter that cannot be kept",
          "A history sum or count may count only postings whose counterparty (the operation's other party) has "
          "a kind, bank or zone: `payer.out_sum(day, kind: bank)`, `payee.in_count(30d, zone: \"alatau\")`. "
          "The values are constants, since the ledger keeps one running total per filter the enabled set names "
          f"(at most {limits.policy_window_filters_max} per set).", 'rule "r"\n  when payer.out_sum(day, sector: "x") > 1 KZT\n  deny "x"\n'),
    _code("W002", r"^warning: rules .* both split or withhold", "two rules that reshape the same payment",
          "Both apply: their portions are taken in rule-name order and must stay within 100% together, or the "
          "payment is denied as a conflict. `tenge policy explain` shows the order they applied in.",
          'rule "a"\n  on transfer\n  withhold 10% to "x"\n\nrule "b"\n  on transfer\n  withhold 5% to "y"\n'),
    _code("W003", r"^warning: attribute .* without a declaration", "an attribute read without a declaration",
          "An undeclared attribute is text, and a missing one reads as \"\", which can change a decision silently. "
          "Declare it (`attr net_cap: money`, optionally with a default); without a default, a rule reading a "
          "missing attribute fails and denies. `tenge policy fmt --upgrade` declares what a file reads as it "
          "was read before.", 'rule "r"\n  when payee.attr.zone == "alatau"\n  report fma "x"\n'),
)  # fmt: skip
CODES += (
    _code("E025", r"reshape a payment's credit", "a reshaping effect on a lifecycle operation",
          "split, withhold, route and set/clear tag redirect a payment's one credit; rules on seize, post, void, "
          "sweep, freeze and open_account may deny, permit and report (and hold, on seize).",
          'rule "r"\n  on freeze\n  route to "x"\n'),
    _code("E026", r"so a rule on \w+ cannot read", "a read the operation kind does not have",
          "A sweep has no parties, amount, tag, memo or single hold (a rule on it reads `time`); only a hold, a "
          "post and a void have a `releaser` and a `deadline`; freeze and open_account move "
          "no money, so they have no amount or tag. A rule reading what its kind lacks would fail and deny "
          "every time.", 'rule "r"\n  on sweep\n  when amount > 1 KZT\n  deny "x"\n'),
)  # fmt: skip
CODES += (
    _code("E028", r"is not an account handle", "a destination or releaser that is not an account handle",
          "A rule pays, withholds to, routes to or has a hold released by an account named by its handle: "
          "lower-case letters, digits and '._-'. The ledger's own @holds account cannot be named: money put "
          "there by a rule would belong to no hold.", 'rule "r"\n  on transfer\n  route to "@holds"\n'),
)  # fmt: skip
UNKNOWN = Code("E000", re.compile(""), "a problem without a code yet", "See the message.", "")
BY_CODE = {c.code: c for c in CODES}


def code_of(message: str) -> str:
    warning = message.startswith("warning:")
    for entry in CODES:
        if entry.code.startswith("W") == warning and entry.pattern.search(message):
            return entry.code
    return UNKNOWN.code
