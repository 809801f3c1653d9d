"""The exact shape of a JSON value a program reads back (an audit bundle, the ledger's settings), so that a value
with a number written as a string ("5"), a boolean where a number goes (Python's `True` is an int), a float, an
unknown or a missing key is named where it is instead of being read as what it resembles.

A shape is `int` (never a bool), `str`, `bool`, `None`, or one of the classes below; `problem` returns the first
place a value differs from its shape, as `path: what is wrong` (`traces[3].seq: "5" is a string, not an
integer`), or None."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Union

from .errors import quoted


@dataclass(frozen=True, slots=True)
class Obj:
    """An object with exactly these keys (and those of `optional` that are present); `more` lets other keys be."""

    fields: dict[str, Shape]
    optional: dict[str, Shape] = field(default_factory=dict)
    more: bool = False


@dataclass(frozen=True, slots=True)
class ListOf:
    item: Shape


@dataclass(frozen=True, slots=True)
class MapOf:
    """An object whose keys are any text and whose values all have one shape."""

    value: Shape


@dataclass(frozen=True, slots=True)
class Row:
    """A list of fixed length whose items have these shapes in order."""

    items: tuple[Shape, ...]


@dataclass(frozen=True, slots=True)
class Either:
    options: tuple[Shape, ...]


Shape = Union[type, None, Obj, ListOf, MapOf, Row, Either]  # noqa: UP007  (the classes are defined above)

_NAMES: dict[object, str] = {
    bool: "a boolean", int: "an integer", float: "a number with a fraction", str: "a string", list: "a list",
    dict: "an object", type(None): "null",
}  # fmt: skip


def _what(value: object) -> str:
    return _NAMES.get(type(value), type(value).__name__)


def _expected(shape: Shape) -> str:
    if shape is None:
        return "null"
    if isinstance(shape, Either):
        return " or ".join(_expected(s) for s in shape.options)
    if isinstance(shape, Obj | MapOf):
        return "an object"
    if isinstance(shape, ListOf):
        return "a list"
    if isinstance(shape, Row):
        return f"a list of {len(shape.items)} items"
    return _NAMES[shape]


def _fits(value: object, shape: Shape) -> bool:
    """Whether the value is of the shape's own JSON type (its insides are checked by `problem`)."""
    if shape is None:
        return value is None
    if isinstance(shape, Obj | MapOf):
        return type(value) is dict
    if isinstance(shape, ListOf | Row):
        return type(value) is list
    if isinstance(shape, Either):
        return any(_fits(value, s) for s in shape.options)
    return type(value) is shape  # exactly: a bool is no int, an int no float


def problem(value: object, shape: Shape) -> str | None:
    """The first place `value` differs from `shape`, as `path: what is wrong`; None when it fits exactly."""
    found = _problem(value, shape)
    if found is None:
        return None
    steps, message = found
    path = "".join(reversed(steps)).removeprefix(".")
    return f"{path}: {message}" if path else message


def _problem(value: object, shape: Shape) -> tuple[list[str], str] | None:
    """(the path's steps, innermost first, and what is wrong) or None. The path is made only for a value that
    does not fit: a settings document or a bundle that fits is walked without building a string."""
    if type(shape) is type:  # the common case first: a scalar field
        if type(value) is shape:  # exactly: a bool is no int, an int no float
            return None
    elif isinstance(shape, Either):
        for option in shape.options:
            if _fits(value, option):
                return _problem(value, option)
    if not _fits(value, shape):
        return [], f"{quoted(value)} is {_what(value)}, not {_expected(shape)}"
    if isinstance(shape, Obj):
        assert isinstance(value, dict)
        fields, optional = shape.fields, shape.optional
        if not shape.more:
            for key in value:
                if key not in fields and key not in optional:
                    return [], f"unknown key {quoted(key)}"
        for (
            key,
            inner,
        ) in fields.items():  # in order: a missing field is named where it stands among the others
            if key not in value:
                return [], f"the key {quoted(key)} is missing"
            found = _problem(value[key], inner)
            if found:
                found[0].append(f".{key}")
                return found
        return _first((f".{key}", value[key], inner) for key, inner in optional.items() if key in value)
    elif isinstance(shape, MapOf):
        assert isinstance(value, dict)
        return _first((f".{key}", item, shape.value) for key, item in value.items())
    elif isinstance(shape, ListOf):
        assert isinstance(value, list)
        return _first((f"[{i}]", item, shape.item) for i, item in enumerate(value))
    elif isinstance(shape, Row):
        assert isinstance(value, list)
        if len(value) != len(shape.items):
            return [], f"a list of {len(value)}, not {len(shape.items)} items"
        return _first(
            (f"[{i}]", item, inner) for i, (item, inner) in enumerate(zip(value, shape.items, strict=True))
        )
    return None


def _first(parts: Iterable[tuple[str, object, Shape]]) -> tuple[list[str], str] | None:
    """The first of the parts (step, value, shape) that does not fit, its path's steps with this step added."""
    for step, item, inner in parts:
        found = _problem(item, inner)
        if found:
            found[0].append(step)
            return found
    return None
