"""`tenge policy fmt`: the canonical layout of a policy file, printed from the syntax tree (idempotent).

Layout: the header, then each let and rule separated by one blank line; a rule's parts on their own lines,
indented two spaces; `and` / `or` chains of a condition broken one operand per line; a split one portion per
line. Comments are kept: a comment goes before the part (let, rule, clause or effect) that follows it, or at
the end of the file. Money keeps the unit it was written in; numbers get `_` thousands separators."""

from __future__ import annotations

import dataclasses

from . import ast
from .parser import parse

_PREC = {"or": 1, "and": 2, "not": 3, "cmp": 4, "arith": 5, "atom": 6}


def upgrade_source(source: str, path: str = "<policy>") -> str:
    """`policy fmt --upgrade`: the file in canonical layout, with a declaration for every attribute it reads
    without one, `attr KEY: string default ""`: what an undeclared attribute meant, now said, so the decisions
    do not change."""
    f = parse(source, path)
    declared = {i.key for i in f.items if isinstance(i, ast.AttrDecl)}
    keys: list[str] = []
    todo: list[object] = list(f.items)
    while todo:
        node = todo.pop(0)
        if isinstance(node, ast.Attr) and node.key not in declared and node.key not in keys:
            keys.append(node.key)
        if dataclasses.is_dataclass(node) and not isinstance(node, type):
            todo.extend(getattr(node, fld.name) for fld in dataclasses.fields(node))
        elif isinstance(node, list | tuple):
            todo.extend(node)
    formatted = format_source(source, path)
    if not keys:
        return formatted
    lines = formatted.splitlines()
    at = 2 if f.title is not None and len(lines) > 1 else 0  # after the header and its blank line
    block = [f'attr {key}: string default ""' for key in keys]
    return format_source("\n".join(lines[:at] + block + [""] + lines[at:]) + "\n", path)


def format_source(source: str, path: str = "<policy>") -> str:
    f = parse(source, path)
    comments = _comments(source)
    out: list[str] = []

    def flush(before_line: int, indent: str) -> None:
        while comments and comments[0][0] < before_line:
            out.append(indent + comments.pop(0)[1])

    if f.title is not None:
        out.append(f"policy {_q(f.title)}")
    for item in f.items:
        if out:
            out.append("")
        flush(item.line, "")
        if isinstance(item, ast.Let):
            out.append(f"let {item.name} = {expr(item.expr)}")
            continue
        if isinstance(item, ast.AttrDecl):
            default = f" default {expr(item.default)}" if item.default is not None else ""
            out.append(f"attr {item.key}: {item.value_type}{default}")
            continue
        if isinstance(item, ast.Def):
            out.append(f"def {item.name} = " + _chain(item.expr, " " * (len(item.name) + 7)))
            continue
        if isinstance(item, ast.ListDecl | ast.TableDecl):
            out.append(_data_decl(item))
            continue
        out.append(f"rule {_q(item.name)}")
        if item.guard is not None:
            flush(item.guard.line, "  ")
            out.append(f"  on {', '.join(item.guard.kinds)}")
        for clause in item.clauses:
            flush(clause.line, "  ")
            word = "unless" if clause.negated else "when"
            out.append(f"  {word} " + _chain(clause.expr, "  " + " " * (len(word) + 1)))
        for effect in item.effects:
            flush(effect.line, "  ")
            out.append("  " + _effect(effect))
    if comments:
        if out:
            out.append("")
        out += [c[1] for c in comments]
    return "\n".join(out) + "\n"


LINE_WIDTH = 100  # an inline list or table longer than this goes one entry per line


def _data_decl(item: ast.ListDecl | ast.TableDecl) -> str:
    if isinstance(item, ast.ListDecl):
        head = f"list {item.name} = "
        parts = [expr(i) for i in item.items or ()]
        brackets = "[]"
    else:
        default = f" default {expr(item.default)}" if item.default is not None else ""
        head = f"table {item.name} of {item.value_type}{default} = "
        parts = [f"{expr(k)}: {expr(v)}" for k, v in item.entries or ()]
        brackets = "{}"
    if item.source is not None:
        return head + f"file {_q(item.source.name)}"
    one_line = brackets[0] + ", ".join(parts) + brackets[1]
    if len(head) + len(one_line) <= LINE_WIDTH:
        return head + one_line
    return head + brackets[0] + "\n" + "".join(f"  {p},\n" for p in parts) + brackets[1]


def _comments(source: str) -> list[tuple[int, str]]:
    """(line, text) of every comment: a '#' outside a string (strings never span lines)."""
    found = []
    for number, line in enumerate(source.splitlines(), 1):
        in_string = escaped = False
        for i, ch in enumerate(line):
            if in_string:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch == "#":
                found.append((number, line[i:].rstrip()))
                break
    return found


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _chain(e: ast.Expr, indent: str) -> str:
    if isinstance(e, ast.BoolOp) and len(e.operands) > 1:
        parts = [_wrap(o, _PREC[e.op] + 1) for o in e.operands]
        return (f"\n{indent}{e.op} ").join(parts)
    return expr(e)


def _prec(e: ast.Expr) -> int:
    if isinstance(e, ast.BoolOp):
        return _PREC[e.op]
    if isinstance(e, ast.Not):
        return _PREC["not"]
    if isinstance(e, ast.Compare | ast.In | ast.InList | ast.StartsWith | ast.Has):
        return _PREC["cmp"]
    if isinstance(e, ast.Arith):
        return _PREC["arith"]
    return _PREC["atom"]


def _wrap(e: ast.Expr, need: int) -> str:
    text = expr(e)
    return f"({text})" if _prec(e) < need else text


def _number(text: str) -> str:
    whole, dot, frac = text.replace("_", "").partition(".")
    grouped = f"{int(whole):_}"
    return grouped + (dot + frac if dot else "")


def expr(e: ast.Expr) -> str:
    if isinstance(e, ast.Str):
        return _q(e.value)
    if isinstance(e, ast.Money):
        number, unit = e.text.split()
        return f"{_number(number)} {unit}"
    if isinstance(e, ast.Number):
        return _number(e.text)
    if isinstance(e, ast.Duration):
        return e.text
    if isinstance(e, ast.Bool):
        return "true" if e.value else "false"
    if isinstance(e, ast.Name):
        return e.name
    if isinstance(e, ast.TagRef):
        return "tag"
    if isinstance(e, ast.Field):
        return f"{e.party}.{e.name}"
    if isinstance(e, ast.Attr):
        return f"{e.party}.attr.{e.key}"
    if isinstance(e, ast.Call):
        args = [expr(a) for a in e.args] + [f"{f.key}: {expr(f.value)}" for f in e.filters]
        return f"{e.party}.{e.name}({', '.join(args)})"
    if isinstance(e, ast.ListLit):
        return "[" + ", ".join(expr(i) for i in e.items) + "]"
    if isinstance(e, ast.Not):
        return "not " + _wrap(e.operand, _PREC["not"])
    if isinstance(e, ast.BoolOp):
        return f" {e.op} ".join(_wrap(o, _PREC[e.op] + 1) for o in e.operands)
    if isinstance(e, ast.Compare):
        return f"{_wrap(e.left, _PREC['arith'])} {e.op} {_wrap(e.right, _PREC['arith'])}"
    if isinstance(e, ast.In):
        return f"{_wrap(e.left, _PREC['arith'])} in {expr(e.items)}"
    if isinstance(e, ast.InList):
        return f"{_wrap(e.left, _PREC['arith'])} in {e.name}"
    if isinstance(e, ast.Lookup):
        return f"{e.table}[{expr(e.key)}]"
    if isinstance(e, ast.StartsWith | ast.Has):
        word = "starts_with" if isinstance(e, ast.StartsWith) else "has"
        return f"{_wrap(e.left, _PREC['arith'])} {word} {_wrap(e.right, _PREC['arith'])}"
    if isinstance(e, ast.Arith):
        return f"{_wrap(e.left, _PREC['arith'])} {e.op} {_wrap(e.right, _PREC['atom'])}"
    raise TypeError(type(e).__name__)


def _effect(e: ast.Effect) -> str:
    if isinstance(e, ast.Deny):
        return f"deny {_q(e.reason)}"
    if isinstance(e, ast.Permit):
        return "permit" + (f" {_q(e.message)}" if e.message is not None else "")
    if isinstance(e, ast.ReportTo):
        return f"report {e.agency} {_q(e.reason)}"
    if isinstance(e, ast.HoldFor):
        return (f"hold for {e.duration.text}" + (f" released by {e.releaser.text()}" if e.releaser else "")
                + (f" on timeout {e.on_timeout}" if e.on_timeout else ""))  # fmt: skip
    if isinstance(e, ast.Split):
        lines = [f"    {p.text} to {p.target.text()}," for p in e.portions]
        return "split {\n" + "\n".join(lines) + "\n  }"
    if isinstance(e, ast.Withhold):
        bounds = (f" min {expr(e.min_amount)}" if e.min_amount is not None else "") + (
            f" max {expr(e.max_amount)}" if e.max_amount is not None else ""
        )
        return f"withhold {e.text}{bounds} to {e.target.text()}"
    if isinstance(e, ast.Route):
        return f"route to {e.target.text()}"
    if isinstance(e, ast.SetTag):
        return f"set tag {_q(e.tag)}"
    if isinstance(e, ast.ClearTag):
        return "clear tag"
    raise TypeError(type(e).__name__)
