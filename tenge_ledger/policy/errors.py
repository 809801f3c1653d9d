"""Errors of each stage of the policy language. Each carries diagnostics with file, line and column, and draws
the offending source line with a caret, so an author sees every problem of a set at once."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..core.errors import TengeError
from ..core.text import shown


@dataclass(frozen=True, slots=True)
class Diagnostic:
    file: str
    line: int  # 1-based; 0 when the problem is not at a place in a file (e.g. too many files)
    col: int  # 1-based
    message: str
    source_line: str = ""
    length: int = 1  # columns underlined from `col` (a token's width when known)
    notes: tuple[tuple[int, int, str], ...] = ()  # secondary labels in the same file: (line, col, text)

    @property
    def code(self) -> str:
        """The documented error code (`tenge policy explain-error CODE`)."""
        from .codes import code_of

        return code_of(self.message)

    def render(self) -> str:
        """The diagnostic for a terminal: the message, then the source line (escaped: a comment or a string
        may hold a newline escape, NUL or a bidi override) with a caret under the column."""
        head = f"{shown(self.file)}:{self.line}:{self.col}: {shown(self.message)} [{self.code}]"
        notes = "".join(
            f"\n    note: {shown(self.file)}:{line}:{col}: {shown(text)}" for line, col, text in self.notes
        )
        if not self.source_line:
            return head + notes
        text = self.source_line.rstrip("\n").replace("\t", " ")
        start = max(self.col, 1) - 1
        before = shown(text[:start])
        span = max(len(shown(text[start : start + max(self.length, 1)])), 1)
        caret = " " * len(before) + "^" + "~" * (span - 1)
        return f"{head}\n    {shown(text)}\n    {caret}{notes}"

    def to_json(self) -> dict:
        return {"file": self.file, "line": self.line, "col": self.col, "message": self.message, "code": self.code,
                "notes": [{"line": line, "col": col, "message": text} for line, col, text in self.notes]}  # fmt: skip


class PolicyError(TengeError):
    """One or more problems in policy sources; str() renders all of them."""

    stage = "policy"

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.file, d.line, d.col, d.message))
        super().__init__(self.render())

    def located(self, paths: dict[str, str]) -> PolicyError:
        """The same error with each file named by the path it was read from (`name -> path`)."""
        moved = [dataclasses.replace(d, file=paths.get(d.file, d.file)) for d in self.diagnostics]
        return type(self)(moved)

    def render(self) -> str:
        n = len(self.diagnostics)
        parts = [d.render() for d in self.diagnostics]
        parts.append(f"{n} {self.stage} error{'s' if n != 1 else ''}")
        return "\n".join(parts)


class PolicySyntaxError(PolicyError):
    stage = "syntax"


class PolicyCheckError(PolicyError):
    stage = "policy check"


def source_line(source: str, line: int) -> str:
    if line <= 0:
        return ""
    lines = source.splitlines()
    return lines[line - 1] if line <= len(lines) else ""
