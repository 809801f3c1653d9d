"""The policy language (issue 3): rules every payment passes through, parsed, checked, compiled, explained.

Stages, one module each: grammar.lark -> parser.py (lark LALR, positions) -> ast.py (dataclasses) -> check.py
(names, types, limits, cost, reads; data.py loads lists and tables) -> plan.py (guards, dispatch, warnings) ->
compile.py (a validated Python syntax tree) -> engine.py (decisions; shares.py divides amounts). sets.py
enables sets on a ledger; format.py is `policy fmt`; specs.py runs spec files and coverage; reads.py is the
data-access manifest; analysis.py is `policy diff`; codes.py documents the error codes."""

from __future__ import annotations

from ..core.hooks import PolicyEngine
from .errors import Diagnostic, PolicyCheckError, PolicyError, PolicySyntaxError
from .sets import compile_sources, load_enabled, parse_and_check, read_sources, set_id

__all__ = [
    "Diagnostic",
    "PolicyCheckError",
    "PolicyError",
    "PolicySyntaxError",
    "compile_sources",
    "load_engine",
    "parse_and_check",
    "read_sources",
    "set_id",
]


def load_engine(settings: dict) -> PolicyEngine | None:
    """The compiled engine of the policy set enabled in a ledger's settings; None when none is enabled."""
    return load_enabled(settings)
