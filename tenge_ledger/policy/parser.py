"""Source text -> PolicyFile. The lark parser is built once per process (LALR, positions propagated, grammar in
grammar.lark, cached on disk by lark so the CLI starts fast); depth is checked without recursion before the
tree is turned into dataclasses, and syntax errors are made friendly from a catalogue of bad snippets."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..core import limits
from ..core.canonical import HANDLE_RE
from ..core.errors import quoted
from ..core.text import first_unsafe_char
from . import ast
from .errors import Diagnostic, PolicySyntaxError, source_line
from .shares import parse_share

GRAMMAR = Path(__file__).with_name("grammar.lark")
# A rule's name: a safe ASCII alphabet, so names cannot look alike (U+2010 for '-') or carry terminal controls.
RULE_NAME_RE = re.compile(rf"[a-z0-9][a-z0-9._-]{{0,{limits.policy_name_length_max - 1}}}")
SYNTAX_ERRORS_MAX = 20  # per file; later ones are usually consequences of earlier ones

# Tree nodes that are expressions: their nesting is what policy_depth_max bounds.
_EXPR_NODES = frozenset(
    {"or_expr", "and_expr", "not_", "compare", "in_", "in_named", "starts_with", "has", "arith", "call", "list",
     "lookup"}
)  # fmt: skip

# Friendly messages for syntax errors, matched by lark's match_examples against the parser state each snippet
# fails in. The snippets double as tests (tests/test_policy_parser.py runs every one).
SYNTAX_EXAMPLES: dict[str, list[str]] = {
    "a rule needs at least one effect: deny, permit, report, hold, split, withhold, route, set tag or clear tag": [
        'rule "r"',
        'rule "r" when amount > 1 KZT',
        'rule "r" on transfer',
        'rule "a" rule "b" deny "x"',
    ],
    'a rule is named by a quoted string: rule "my-rule"': ['rule r deny "x"', "rule deny"],
    'deny needs a reason in quotes: deny "why it is refused"': ['rule "r" deny', 'rule "r" deny rule "s"'],
    "expected a condition after when / unless": ['rule "r" when deny "x"', 'rule "r" unless deny "x"'],
    "a condition is incomplete: an operand is missing": [
        'rule "r" when amount > deny "x"',
        'rule "r" when not deny "x"',
    ],
    "comparisons do not chain: write a < b and b < c": ['rule "r" when 1 KZT < amount < 5 KZT deny "x"'],
    "an unclosed parenthesis or list": [
        'rule "r" when (amount > 1 KZT deny "x"',
        'rule "r" when tag in ["a" deny "x"',
    ],
    'report names an agency and a reason: report fma "why"': ['rule "r" report "why"', 'rule "r" report fma'],
    'a split lists portions like { 55% to "exchange", remaining to payee }': [
        'rule "r" split { }',
        'rule "r" split { 55% "x" }',
        'rule "r" split { 55% to "x" remaining to payee }',
    ],
    "a percentage is written like 55% or 12.5%": [
        'rule "r" withhold 15 to "x"',
        'rule "r" split { 15 to "x" }',
    ],
    "a duration is written like 24h, 30d, 90m or 60s": ['rule "r" hold for 30 deny "x"'],
    "on lists operation kinds: on transfer, hold": ['rule "r" on deny "x"', 'rule "r" on transfer, deny "x"'],
    "a policy file holds let constants and rules": ['deny "x"', "when amount > 1 KZT", "amount"],
    "a let gives a constant a name: let threshold = 5_000_000 KZT": ["let = 5 KZT", "let x 5 KZT"],
}


@functools.cache
def lark_parser() -> Lark:
    options = {"parser": "lalr", "propagate_positions": True, "maybe_placeholders": True}
    try:  # lark keeps the built tables in a temp file keyed by the grammar: ~10 ms instead of ~250 ms
        return Lark.open(str(GRAMMAR), cache=True, **options)
    except OSError:  # no writable temp directory: build it every time
        return Lark.open(str(GRAMMAR), **options)


def strict_parser() -> Lark:
    """The same grammar built in lark's strict mode, which turns every LALR conflict into an error (tests)."""
    return Lark.open(
        str(GRAMMAR), parser="lalr", propagate_positions=True, maybe_placeholders=True, strict=True
    )


def parse(source: str, path: str = "<policy>") -> ast.PolicyFile:
    """Parse one file; raises PolicySyntaxError with located diagnostics."""
    if len(source.encode("utf-8", "surrogatepass")) > limits.policy_file_bytes_max:
        raise PolicySyntaxError(
            [Diagnostic(path, 1, 1, f"file is over the limit of {limits.policy_file_bytes_max} bytes")]
        )
    try:
        tree = lark_parser().parse(source)
    except UnexpectedInput as exc:
        raise PolicySyntaxError(_syntax_errors(exc, source, path)) from None
    deep = _too_deep(tree)
    if deep is not None:
        line, col = deep
        raise PolicySyntaxError(
            [
                Diagnostic(
                    path, line, col, f"expression nested deeper than {limits.policy_depth_max} levels",
                    source_line(source, line),
                )
            ]
        )  # fmt: skip
    builder = _Build(path, source)
    items, title = builder.transform(tree)
    if builder.errors:
        raise PolicySyntaxError(builder.errors)
    return ast.PolicyFile(path=path, source=source, title=title, items=tuple(items))


_ITEM_STARTS = ("rule ", "let ", "def ", "attr ", "list ", "table ", "policy ")


def parse_partial(source: str, path: str, errors: list[Diagnostic]) -> ast.PolicyFile | None:
    """The file without the items that hold syntax errors (their lines blanked, so positions stay), for checking
    the rest: one typo must not hide the other rules' problems. None if what is left does not parse either."""
    lines = source.splitlines()
    starts = [n for n in range(1, len(lines) + 1) if lines[n - 1].startswith(_ITEM_STARTS)]
    blank: set[int] = set()
    for d in errors:
        first = max((n for n in starts if n <= d.line), default=1)
        end = min((n for n in starts if n > d.line), default=len(lines) + 1)
        blank.update(range(first, end))
    if not blank or len(blank) >= len(lines):
        return None
    kept = "\n".join("" if n in blank else text for n, text in enumerate(lines, 1)) + "\n"
    try:
        return parse(kept, path)
    except PolicySyntaxError:
        return None


def _syntax_errors(first: UnexpectedInput, source: str, path: str) -> list[Diagnostic]:
    """The first error, then the first error of each later part of the file: parsing resumes at the next line
    that starts a `rule` or `let` (blank lines keep the line numbers), so one typo does not hide the others
    and no cascade of follow-on errors is reported."""
    lines = source.splitlines()
    diags = [_syntax_diagnostic(first, source, path)]
    line = diags[0].line
    while len(diags) < SYNTAX_ERRORS_MAX:
        resume = next(
            (n for n in range(line + 1, len(lines) + 1) if lines[n - 1].startswith(_ITEM_STARTS[:-1])),
            None,
        )
        if resume is None:
            break
        rest = "\n" * (resume - 1) + "\n".join(lines[resume - 1 :])
        try:
            lark_parser().parse(rest)
            break
        except UnexpectedInput as exc:
            diag = _syntax_diagnostic(exc, source, path)
            if diag.line < resume:  # pragma: no cover - an error always lies in the part parsed
                break
            diags.append(diag)
            line = diag.line
    return diags


def _syntax_diagnostic(exc: UnexpectedInput, source: str, path: str) -> Diagnostic:
    line, col = getattr(exc, "line", 0) or 0, getattr(exc, "column", 0) or 0
    if isinstance(exc, UnexpectedEOF) or line <= 0:
        lines = source.splitlines() or [""]
        line, col = len(lines), len(lines[-1]) + 1
    label = None
    try:
        label = exc.match_examples(lark_parser().parse, SYNTAX_EXAMPLES, use_accepts=True)
    except Exception:  # noqa: BLE001 - a failing matcher must not hide the error itself
        label = None
    if isinstance(exc, UnexpectedCharacters):
        bad = source[exc.pos_in_stream] if 0 <= exc.pos_in_stream < len(source) else "?"
        hint = {
            "&": "write `and`, not &&",
            "|": "write `or`, not ||",
            "!": "write `not` or `!=`",
            "=": "compare with ==",
            "'": 'strings use double quotes: "text"',
        }.get(bad, "")
        message = f"unexpected character {bad!r}" + (f": {hint}" if hint else "")
        if label and not hint:
            message += f" ({label})"
    elif isinstance(exc, UnexpectedToken):
        token = exc.token
        shown = "end of file" if token.type == "$END" else repr(str(token))
        length = max(len(str(token)), 1) if token.type != "$END" else 1
        message = f"unexpected {shown}"
        if str(token) == "=" and "COMP" in (exc.accepts or exc.expected):  # where a comparison could go
            message += ": compare with == (a single = only gives a let, def, list or table its value)"
        elif label:
            message += f": {label}"
        else:
            expected = _ordered_expected(exc.accepts or exc.expected)
            message += f"; expected {'one of ' if len(expected) > 1 else ''}{', '.join(expected)}"
        if label == _NO_EFFECT:  # say it at the rule that has no effect, not at whatever follows it
            line, col, length = _rule_before(source, line, col)
        return Diagnostic(path, line, col, message, source_line(source, line), length)
    else:
        message = "unexpected end of file" + (f": {label}" if label else "")
        if label == _NO_EFFECT:
            line, col, _ = _rule_before(source, line, col)
    return Diagnostic(path, line, col, message, source_line(source, line))


_NO_EFFECT = next(label for label in SYNTAX_EXAMPLES if label.startswith("a rule needs at least one effect"))
# Expected tokens are listed keywords first, then operators and punctuation, then kinds of token (a name, a
# string, a number), each group in the order a policy author reads them.
_EXPECTED_ORDER = ("keyword", "operator", "punctuation", "token")


def _ordered_expected(names) -> list[str]:
    def group(text: str) -> tuple[int, str]:
        if text.startswith("'") and text[1:2].isalpha():
            return 0, text
        if text.startswith("'") and text[1:2] in "=!<>+-":
            return 1, text
        if text.startswith("'"):
            return 2, text
        return 3, text

    return sorted({_pretty_terminal(t) for t in names}, key=group)


def _rule_before(source: str, line: int, col: int) -> tuple[int, int, int]:
    """The position of the last `rule` that starts before (line, col): where an effect is missing."""
    lines = source.splitlines()
    for number in range(min(line, len(lines)), 0, -1):
        text = lines[number - 1]
        limit = col - 1 if number == line else len(text)
        at = text.rfind("rule ", 0, max(limit, 0))
        if at >= 0 and (at == 0 or not (text[at - 1].isalnum() or text[at - 1] == "_")):
            return number, at + 1, 4
    return line, col, 1


_TERMINAL_WORDS = {"NAME": "a name", "STRING": 'a "string"', "NUMBER": "a number", "DURATION": "a duration like 24h",
                   "PERCENT": "a percentage like 55%", "UNIT": "KZT or tiyn", "COMP": "a comparison (== != < <= > >=)",
                   "ADDOP": "+ or -", "$END": "end of file"}  # fmt: skip


def _pretty_terminal(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    try:
        pattern = lark_parser().get_terminal(name).pattern
    except KeyError:
        return name.lower()
    return repr(pattern.value) if pattern.type == "str" else name.lower()


def _too_deep(tree: Tree) -> tuple[int, int] | None:
    """Position of the first expression nested deeper than the limit, found without recursion."""
    stack: list[tuple[Tree, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if node.data in _EXPR_NODES:
            depth += 1
            if depth > limits.policy_depth_max:
                meta = node.meta
                return getattr(meta, "line", 1), getattr(meta, "column", 1)
        for child in node.children:
            if isinstance(child, Tree):
                stack.append((child, depth))
    return None


# ---- tree -> dataclasses --------------------------------------------------------------------------------------

_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _pos(meta_or_token) -> tuple[int, int]:
    if isinstance(meta_or_token, Token):
        return meta_or_token.line or 1, meta_or_token.column or 1
    return getattr(meta_or_token, "line", 1), getattr(meta_or_token, "column", 1)


def unquote(text: str) -> str:
    body = text[1:-1]
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append("\n" if nxt == "n" else nxt)
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


@dataclass(frozen=True, slots=True)
class _OnTimeout:
    """`on timeout post` while a hold effect is built; the checker says if the action is not post or void."""

    action: str


@v_args(meta=True)
class _Build(Transformer):
    def __init__(self, path: str, source: str) -> None:
        super().__init__()
        self.path = path
        self.source = source
        self.errors: list[Diagnostic] = []

    def _call_userfunc(self, tree, new_children=None):
        """Each node built from the tree also records where its text ends (for underlining its whole span)."""
        node = super()._call_userfunc(tree, new_children)
        meta = tree.meta
        if isinstance(node, ast.Node) and not getattr(meta, "empty", True) and node.end == (0, 0):
            object.__setattr__(
                node, "end", (meta.end_line, meta.end_column)
            )  # still being built: frozen after
        return node

    def _error(self, line: int, col: int, message: str) -> None:
        self.errors.append(Diagnostic(self.path, line, col, message, source_line(self.source, line)))

    def _string(self, token: Token) -> str:
        value = unquote(str(token))
        if len(value) > limits.policy_string_length_max:
            self._error(*_pos(token), f"string longer than {limits.policy_string_length_max} characters")
        bad = first_unsafe_char(value)
        if bad is not None:
            self._error(
                *_pos(token),
                f"a string holds the control or format character U+{ord(value[bad]):04X}: strings are one "
                "line of visible text (no newline, NUL or bidi override)",
            )
        return value

    def _digits(self, token: Token, text: str) -> bool:
        """Whether a literal's digits are few enough to parse (int() refuses over 4,300 and is slow before)."""
        digits = sum(ch.isdigit() for ch in text)
        if digits > limits.policy_literal_digits_max:
            self._error(*_pos(token), f"a literal of {digits} digits, over the limit of "
                        f"{limits.policy_literal_digits_max}")  # fmt: skip
            return False
        return True

    def _name(self, token: Token, what: str, length_max: int) -> str:
        name = str(token)
        if len(name) > length_max:
            self._error(*_pos(token), f"{what} of {len(name)} characters, over the limit of {length_max}")
        return name

    # file
    def start(self, meta, children):
        title = None
        items = []
        for child in children:
            if isinstance(child, tuple) and child[0] == "header":
                title = child[1]
            else:
                items.append(child)
        return items, title

    def header(self, meta, children):
        return ("header", self._string(children[0]))

    def let_decl(self, meta, children):
        name = self._name(children[0], "a name", limits.policy_name_length_max)
        return ast.Let(*_pos(meta), name, children[1])

    def rule(self, meta, children):
        name = self._string(children[0])
        if not RULE_NAME_RE.fullmatch(name):
            self._error(*_pos(children[0]), f"a rule name is 1 to {limits.policy_name_length_max} of a-z, 0-9 "
                        "and '._-', starting with a letter or digit, like \"fma-list-payer\"")  # fmt: skip
        guard = None
        clauses, effects = [], []
        for child in children[1:]:
            if isinstance(child, ast.Guard):
                guard = child
            elif isinstance(child, ast.Clause):
                clauses.append(child)
            elif child is not None:
                effects.append(child)
        line, col = _pos(meta)
        return ast.Rule(
            line, col, name, guard, tuple(clauses), tuple(effects), getattr(meta, "end_line", line)
        )

    def guard(self, meta, children):
        return ast.Guard(*_pos(meta), tuple(children))

    def op_kind(self, meta, children):
        return str(children[0])

    def when(self, meta, children):
        return ast.Clause(*_pos(meta), False, children[1])

    def unless(self, meta, children):
        return ast.Clause(*_pos(meta), True, children[1])

    # effects
    def deny(self, meta, children):
        return ast.Deny(*_pos(meta), self._string(children[0]))

    def permit(self, meta, children):
        message = children[0] if children else None  # a bare `permit` has no message
        return ast.Permit(*_pos(meta), self._string(message) if message is not None else None)

    def report(self, meta, children):
        agency = self._name(children[0], "an agency name", limits.policy_agency_length_max)
        return ast.ReportTo(*_pos(meta), agency, self._string(children[1]))

    def hold(self, meta, children):
        duration = self.duration(meta, [children[1]])
        releaser = next((c for c in children[2:] if isinstance(c, ast.Target)), None)
        on_timeout = next((c for c in children[2:] if isinstance(c, _OnTimeout)), None)
        return ast.HoldFor(*_pos(meta), duration, releaser, on_timeout.action if on_timeout else None)

    def hold_timeout(self, meta, children):
        return _OnTimeout(str(children[0]))

    def split(self, meta, children):
        return ast.Split(*_pos(meta), tuple(children))

    def share(self, meta, children):
        token = children[0]
        if not self._digits(token, str(token)):
            return token, Fraction(0)
        share, why = parse_share(str(token))
        if share is None:
            self._error(*_pos(token), why or "not a share")
            return token, Fraction(0)
        return token, share

    def portion(self, meta, children):
        (token, share), target = children
        return ast.Portion(*_pos(meta), share, str(token), target)

    def withhold_min(self, meta, children):
        return ("min", children[0])

    def withhold_max(self, meta, children):
        return ("max", children[0])

    def remaining(self, meta, children):
        return ast.Portion(*_pos(meta), None, "remaining", children[0])

    def withhold(self, meta, children):
        (token, share), *bounds, target = children
        given = dict(b for b in bounds if b is not None)
        return ast.Withhold(*_pos(meta), share, str(token), target, given.get("min"), given.get("max"))

    def route(self, meta, children):
        return ast.Route(*_pos(meta), children[0])

    def set_tag(self, meta, children):
        return ast.SetTag(*_pos(meta), self._string(children[1]))

    def clear_tag(self, meta, children):
        return ast.ClearTag(*_pos(meta))

    def account_target(self, meta, children):
        handle = self._string(children[0])
        if not HANDLE_RE.fullmatch(handle):  # @holds (money there without a hold), or a name no account has
            self._error(*_pos(children[0]), f"{quoted(handle)} is not an account handle: lower-case letters, "
                        "digits and '._-', starting with a letter or digit (@holds is the ledger's own)")  # fmt: skip
        return ast.Target(*_pos(meta), handle)

    def payee_target(self, meta, children):
        return ast.Target(*_pos(meta), None)

    # expressions
    def or_expr(self, meta, children):
        return ast.BoolOp(*_pos(meta), "or", tuple(children))

    def and_expr(self, meta, children):
        return ast.BoolOp(*_pos(meta), "and", tuple(children))

    def not_(self, meta, children):
        return ast.Not(*_pos(meta), children[0])

    def compare(self, meta, children):
        left, op, right = children
        return ast.Compare(*_pos(op), str(op), left, right)

    def in_(self, meta, children):
        return ast.In(*_pos(meta), children[0], children[1])

    def starts_with(self, meta, children):
        return ast.StartsWith(*_pos(meta), children[0], children[1])

    def has(self, meta, children):
        return ast.Has(*_pos(meta), children[0], children[1])

    def arith(self, meta, children):
        left, op, right = children
        return ast.Arith(*_pos(op), str(op), left, right)

    def string(self, meta, children):
        return ast.Str(*_pos(meta), self._string(children[0]))

    def money(self, meta, children):
        number, unit = str(children[0]), str(children[1])
        whole, _, frac = number.replace("_", "").partition(".")
        line, col = _pos(meta)
        if not self._digits(children[0], number):
            return ast.Money(line, col, 0, f"0 {unit}")
        if unit == "tiyn":
            if frac:
                self._error(line, col, "tiyn are whole: write 150 tiyn, or 1.50 KZT")
            tiyn = int(whole)
        else:
            if len(frac) > 2:
                self._error(
                    line, col, f"{number} KZT has more than two decimals (the tiyn is the smallest unit)"
                )
            tiyn = int(whole) * limits.tiyn_per_kzt + int(frac[:2].ljust(2, "0") or "0")
        if tiyn > limits.amount_tiyn_max:
            self._error(line, col, f"{number} {unit} is over the ledger's largest amount")
        return ast.Money(line, col, tiyn, f"{number} {unit}")

    def number(self, meta, children):
        text = str(children[0])
        line, col = _pos(meta)
        if "." in text:
            self._error(line, col, f"{text} is not a whole number; money needs a unit: {text} KZT")
            return ast.Number(line, col, 0, text)
        if not self._digits(children[0], text):
            return ast.Number(line, col, 0, "0")
        value = int(text.replace("_", ""))
        if value > limits.amount_tiyn_max:
            self._error(line, col, f"{text} is too large")
        return ast.Number(line, col, value, text)

    def duration(self, meta, children):
        text = str(children[0])
        line, col = _pos(children[0])
        if not self._digits(children[0], text):
            return ast.Duration(line, col, 0, "0s")
        seconds = int(text[:-1]) * _UNIT_S[text[-1]]
        return ast.Duration(line, col, seconds, text)

    def true(self, meta, children):
        return ast.Bool(*_pos(meta), True)

    def false(self, meta, children):
        return ast.Bool(*_pos(meta), False)

    def name(self, meta, children):
        return ast.Name(*_pos(meta), str(children[0]))

    def tag_ref(self, meta, children):
        return ast.TagRef(*_pos(meta))

    def party(self, meta, children):
        return str(children[0])

    def field(self, meta, children):
        return ast.Field(*_pos(meta), children[0], str(children[1]))

    def attr(self, meta, children):
        key = self._name(children[1], "an attribute key", limits.attr_key_length_max)
        return ast.Attr(*_pos(meta), children[0], key)

    def call(self, meta, children):
        party, name, *args = children
        given = [a for a in args if a is not None]
        filters = tuple(a for a in given if isinstance(a, ast.CounterpartyFilter))
        positional = tuple(a for a in given if not isinstance(a, ast.CounterpartyFilter))
        return ast.Call(*_pos(meta), party, str(name), positional, filters)

    def counterparty_filter(self, meta, children):
        return ast.CounterpartyFilter(*_pos(meta), str(children[0]), children[1])

    def attr_decl(self, meta, children):
        key = self._name(children[0], "an attribute key", limits.attr_key_length_max)
        return ast.AttrDecl(*_pos(meta), key, str(children[1]), children[2] if len(children) > 2 else None)

    def def_decl(self, meta, children):
        name = self._name(children[0], "a name", limits.policy_name_length_max)
        return ast.Def(*_pos(meta), name, children[1])

    def list_decl(self, meta, children):
        name = self._name(children[0], "a name", limits.policy_name_length_max)
        value = children[1]
        if isinstance(value, ast.DataFile):
            return ast.ListDecl(*_pos(meta), name, None, value)
        return ast.ListDecl(*_pos(meta), name, value.items, None)

    def table_decl(self, meta, children):
        name = self._name(children[0], "a name", limits.policy_name_length_max)
        value_type = str(children[1])
        default = children[2] if len(children) == 4 else None
        value = children[-1]
        if isinstance(value, ast.DataFile):
            return ast.TableDecl(*_pos(meta), name, value_type, default, None, value)
        return ast.TableDecl(*_pos(meta), name, value_type, default, value, None)

    def table_default(self, meta, children):
        return children[0]

    def data_file(self, meta, children):
        return ast.DataFile(*_pos(meta), self._string(children[0]))

    def table(self, meta, children):
        return tuple(c for c in children if c is not None)

    def entry(self, meta, children):
        return (children[0], children[1])

    def in_named(self, meta, children):
        return ast.InList(*_pos(meta), children[0], str(children[1]))

    def lookup(self, meta, children):
        return ast.Lookup(*_pos(meta), str(children[0]), children[1])

    def party_handle(self, meta, children):  # `payee` alone is its handle
        return ast.Field(*_pos(meta), children[0], "handle")

    def list(self, meta, children):
        return ast.ListLit(*_pos(meta), tuple(c for c in children if c is not None))
