"""Text that reaches a terminal: what a user did not type themselves (a policy's reasons, a ledger's memos, a
source line in a diagnostic) is shown escaped, so it cannot forge lines, reorder what is around it or hide.

Unicode's categories decide what is unsafe: controls (Cc: NUL, newline, ESC, DEL, C1), format characters (Cf:
the bidi overrides U+202A-U+202E and isolates U+2066-U+2069, zero-width joiners), line and paragraph separators,
surrogates, private-use and unassigned code points. Letters of every script stay as they are."""

from __future__ import annotations

import re
import unicodedata

from . import limits

UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def is_unsafe_char(ch: str) -> bool:
    return unicodedata.category(ch) in UNSAFE_CATEGORIES


_ASCII_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f]")


def _code_escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def shown_lines(text: str) -> str:
    """Output of several lines safe to print: every unsafe character but the newline written as its escape
    (`\\x1b`, `\\u202e`), by the same categories as `shown`, which escapes one value on one line. Backslashes
    are left alone: the values inside were escaped already, and the rest is the program's own text."""
    if text.isascii():  # the usual case, and a regular expression is what makes it cheap
        return _ASCII_UNSAFE.sub(lambda m: _code_escape(m.group()), text)
    return "".join(ch if ch == "\n" or not is_unsafe_char(ch) else _code_escape(ch) for ch in text)


def first_unsafe_char(text: str) -> int | None:
    """Index of the first character that must not reach a terminal raw, or None."""
    if text.isascii() and text.isprintable():  # the usual memo, checked in C: ASCII's only unsafe ones are Cc
        return None
    for i, ch in enumerate(text):
        if ch.isascii() and " " <= ch <= "~":
            continue
        if is_unsafe_char(ch):
            return i
    return None


def shown(text: object, length_max: int = limits.shown_text_length_max) -> str:
    """`text` safe to print on one terminal line: unsafe characters as \\n, \\t, \\xNN, \\uNNNN or \\UNNNNNNNN
    escapes (a backslash doubled, so an escape cannot be forged), cut to `length_max` characters with a mark."""
    raw = str(text)
    cut = len(raw) > length_max
    out = []
    for ch in raw[:length_max]:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ch.isascii() and " " <= ch <= "~":
            out.append(ch)
        elif is_unsafe_char(ch):
            code = ord(ch)
            out.append(
                f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
            )
        else:
            out.append(ch)
    return "".join(out) + ("…" if cut else "")
