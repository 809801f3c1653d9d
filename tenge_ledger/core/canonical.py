"""Operation documents: the JSON form users submit, and the canonical bytes that signatures cover.

Canonical bytes (version 1) are
    b"tenge-ledger/op/v1\\n" + ledger_id + b"\\n" + JSON(document)
where JSON has sorted keys, no spaces, ASCII only, every body field present (null when absent) and amounts as
integer tiyn. Fields added after version 1 (`OMITTED_WHEN_UNSET`) are left out when unset instead, so the bytes
of an operation that does not use them, and the signatures over them, are what they were before. The ledger id domain-separates signatures: one made for a ledger never verifies on another.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import sys
from typing import Any

from . import limits
from .errors import InputError, quoted
from .money import check_amount_tiyn, parse_amount
from .records import (
    BODY_BY_KIND,
    HOLD_ON_TIMEOUT,
    KIND_BY_BODY,
    AccountKind,
    Batch,
    Body,
    Hold,
    Operation,
    OpKind,
    Transfer,
)
from .text import first_unsafe_char

CANONICAL_VERSION = 1
_DOMAIN = b"tenge-ledger/op/v1\n"

HANDLE_RE = re.compile(rf"[a-z0-9][a-z0-9._-]{{0,{limits.handle_length_max - 1}}}")
TAG_RE = re.compile(rf"[a-z0-9][a-z0-9:._/-]{{0,{limits.tag_length_max - 1}}}")
WITNESS_NAME_RE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:/-]{{0,{limits.witness_name_length_max - 1}}}")
OP_ID_RE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:-]{{0,{limits.operation_id_length_max - 1}}}")
ATTR_KEY_RE = re.compile(rf"[a-z][a-z0-9_]{{0,{limits.attr_key_length_max - 1}}}")


def _not_a(value: object, what: str, hint: str, where: str) -> InputError:
    """The error for a missing or malformed name: `null` is said to be missing, anything else is quoted."""
    if value is None:
        return InputError(f"is missing: give {what} ({hint})", where)
    return InputError(f"{quoted(value)} is not {what}: {hint}", where)


def check_handle(value: object, where: str = "account") -> str:
    if not isinstance(value, str) or not HANDLE_RE.fullmatch(value):
        raise _not_a(
            value,
            "an account handle",
            f"use lower-case letters, digits, '.', '_' or '-' (at most {limits.handle_length_max})",
            where,
        )
    # One string per handle for every operation that names it: the ledger's caches are keyed by the strings of
    # the operations they first saw, and a lookup that finds its key by identity never compares two copies.
    return sys.intern(value) if type(value) is str else value  # (a subclass of str cannot be interned)


UNTAGGED = "untagged"  # how untagged money is named to people; therefore not a tag anyone may use


def check_tag(value: object, where: str = "tag") -> str:
    if not isinstance(value, str) or not TAG_RE.fullmatch(value) or value == UNTAGGED:
        raise _not_a(
            value,
            "a tag",
            f"use lower-case letters, digits and ':._/-' (at most {limits.tag_length_max}), like budget:roads-2026",
            where,
        )
    return value


def check_witness_name(value: object, where: str = "name") -> str:
    """A witness's key name (signed-note: no spaces, no '+'): letters, digits and '._:/-'."""
    if not isinstance(value, str) or not WITNESS_NAME_RE.fullmatch(value):
        raise InputError(
            f"{quoted(value)} is not a witness name: use letters, digits and '._:/-' (at most "
            f"{limits.witness_name_length_max})",
            where,
        )
    return value


def check_op_id(value: object, where: str = "id") -> str:
    if not isinstance(value, str) or not OP_ID_RE.fullmatch(value):
        raise _not_a(
            value,
            "an operation id",
            f"use letters, digits and '._:-' (at most {limits.operation_id_length_max})",
            where,
        )
    return value


def check_date(value: object, where: str = "date") -> str:
    if not isinstance(value, str):
        raise InputError(f"expected an ISO date like 2027-01-01, got {quoted(value)}", where)
    try:
        return dt.date.fromisoformat(value).isoformat() if len(value) == 10 else _bad_date(value, where)
    except ValueError:
        return _bad_date(value, where)


def _bad_date(value: str, where: str) -> str:
    raise InputError(f"{quoted(value)} is not a date: write it as YYYY-MM-DD, like 2027-01-01", where)


def date_start(iso_date: str) -> int:
    """Ledger time (unix seconds, UTC) at the start of an ISO date."""
    d = dt.date.fromisoformat(iso_date)
    return int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp())


def parse_time(value: str, where: str = "time") -> int:
    """An ISO date or date-time (UTC unless it says otherwise) as ledger time in unix seconds."""
    try:
        if len(value) == 10:
            return date_start(dt.date.fromisoformat(value).isoformat())
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"{quoted(value)} is not a time: write YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS", where
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


def format_time(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def json_int(text: str) -> int:
    """`json.loads(..., parse_int=json_int)`: an integer of a submitted document, refused before int() when it
    has more digits than any field may hold (int() of over 4,300 digits raises, and is slow well before)."""
    digits = len(text) - text.startswith("-")
    if digits > limits.json_int_digits_max:
        raise InputError(f"an integer of {digits} digits, over the limit of {limits.json_int_digits_max}")
    return int(text)


def check_text(value: object, where: str, length_max: int) -> str:
    """Text of at most `length_max` characters with nothing a terminal would act on: control and format
    characters (newline, NUL, bidi overrides) and lone surrogates (what Python makes of bytes that were not
    UTF-8, `--memo $'ab\\xffcd'`, or of a JSON "\\ud800": such text cannot be encoded, shown or exported)."""
    if not isinstance(value, str) or len(value) > length_max:
        raise InputError(f"must be text of at most {length_max} characters", where)
    bad = first_unsafe_char(value)
    if bad is not None:
        raise InputError(
            f"character {bad + 1} is U+{ord(value[bad]):04X}: text with control or format characters (newline, NUL,"
            " bidi overrides) or that is not valid UTF-8 is refused",
            where,
        )
    return value


def text_is_safe(value: object, length_max: int = limits.memo_length_max) -> bool:
    """Whether `check_text` takes this text (the apply loop's test, without an exception)."""
    return isinstance(value, str) and len(value) <= length_max and first_unsafe_char(value) is None


def check_attrs(value: object, where: str = "attrs") -> tuple[tuple[str, str], ...]:
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list | tuple):
        items = [tuple(x) for x in value]
    else:
        raise InputError("must be an object of text values", where)
    if len(items) > limits.attrs_count_max:
        raise InputError(f"at most {limits.attrs_count_max} attributes", where)
    out = {}
    for item in items:
        if len(item) != 2:
            raise InputError("each attribute is a key and a value", where)
        key, val = item
        if not isinstance(key, str) or not ATTR_KEY_RE.fullmatch(key):
            raise InputError(
                f"{quoted(key)} is not an attribute name (lower-case letters, digits, '_')", where
            )
        out[key] = check_text(val, f"{where}.{key}", limits.attr_value_length_max)
    return tuple(sorted(out.items()))


# ---- documents ------------------------------------------------------------------------------------------------


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def body_to_dict(body: Body) -> dict[str, Any]:
    names = _FIELD_NAMES.get(type(body))
    if names is None:
        names = _FIELD_NAMES[type(body)] = tuple(f.name for f in dataclasses.fields(body))
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(body, name)
        if name == "attrs":
            value = dict(value)
        elif name == "operations":
            value = [operation_to_dict(op) for op in value]
        elif name == "account_kind":
            value = value.value
        elif value is None and name in OMITTED_WHEN_UNSET:
            continue
        out[name] = value
    return out


def operation_to_dict(op: Operation, with_signature: bool = True) -> dict[str, Any]:
    doc = {"v": CANONICAL_VERSION, "id": op.id, "kind": op.kind.value, "signer": op.signer}
    doc.update(body_to_dict(op.body))
    if with_signature:
        doc["signature"] = op.signature
    return doc


def canonical_json(doc: dict[str, Any]) -> str:
    """JSON with sorted keys, no spaces, ASCII only: byte for byte what
    `json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)` gives, faster for the flat
    documents of most operations (values that are text, int or null); anything else goes through json."""
    parts = []
    for key in sorted(doc):
        value = doc[key]
        kind = type(value)
        if kind is str:
            parts.append(f"{_quote(key)}:{_quote(value)}")
        elif kind is int:
            parts.append(f"{_quote(key)}:{int.__repr__(value)}")
        elif value is None:
            parts.append(f"{_quote(key)}:null")
        else:
            return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "{" + ",".join(parts) + "}"


# Body fields added after version 1: absent from documents and canonical bytes when None.
OMITTED_WHEN_UNSET = frozenset({"on_timeout"})

_quote = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]
_FLAT = (str, int, type(None))


def canonical_bytes(ledger_id: str, op: Operation) -> bytes:
    if type(op.body) is Transfer:  # most operations: one format step
        fast = transfer_canonical(canonical_prefix(ledger_id), op)
        if fast is not None:
            return fast
    flat = _flat_texts(op, with_document=False)
    text = flat[0] if flat is not None else canonical_json(operation_to_dict(op, with_signature=False))
    return _DOMAIN + ledger_id.encode("ascii") + b"\n" + text.encode("ascii")


def canonical_prefix(ledger_id: str) -> bytes:
    """What every operation's canonical bytes on this ledger start with."""
    return _DOMAIN + ledger_id.encode("ascii") + b"\n"


def transfer_canonical(prefix: bytes, op: Operation) -> bytes | None:
    """`canonical_bytes` of an operation whose body is a Transfer, with `prefix = canonical_prefix(ledger_id)`,
    in one format step (the apply loop's hot path); None when a field is not plain text or int, which
    `canonical_bytes` encodes the general way. tests/test_canonical.py holds the two equal."""
    b = op.body
    tag, memo, amount, op_id, signer = b.tag, b.memo, b.amount_tiyn, op.id, op.signer
    if (
        type(amount) is not int
        or type(op_id) is not str
        or type(signer) is not str
        or type(b.payer) is not str
        or type(b.payee) is not str
        or (tag is not None and type(tag) is not str)
        or (memo is not None and type(memo) is not str)
    ):
        return None
    shown_memo = "null" if memo is None else _quote(memo)
    shown_tag = "null" if tag is None else _quote(tag)
    return prefix + (
        f'{{"amount_tiyn":{amount},"id":{_quote(op_id)},"kind":"transfer","memo":{shown_memo},'
        f'"payee":{_quote(b.payee)},"payer":{_quote(b.payer)},"signer":{_quote(signer)},"tag":{shown_tag},"v":1}}'
    ).encode("ascii")


def document_json(op: Operation) -> str:
    """The stored document of an applied operation: its canonical JSON with the signature."""
    return canonical_json(operation_to_dict(op))


def canonical_and_document(ledger_id: str, op: Operation) -> tuple[bytes, str]:
    """`canonical_bytes(ledger_id, op)` and `document_json(op)` from one encoding of the operation.

    Operations whose fields are all text, int or null (transfers, holds, issues, ...) are encoded field by
    field in a precomputed sorted order; others (batches, account attributes) go the general way."""
    flat = _flat_texts(op)
    if flat is None:
        return canonical_bytes(ledger_id, op), document_json(op)
    text, document = flat
    return _DOMAIN + ledger_id.encode("ascii") + b"\n" + text.encode("ascii"), document


def _flat_texts(op: Operation, with_document: bool = True) -> tuple[str, str] | None:
    """(canonical JSON, document JSON or "" without `with_document`) of an operation whose fields are all plain
    values, else None."""
    spec = _flat_spec(type(op.body))
    if spec is not None:
        body = op.body
        parts: list[str] = []
        sig_at = -1
        for prefix, source, name in spec:
            if source == 0:
                sig_at = len(parts)
                continue
            value = getattr(op, name) if source == 1 else getattr(body, name) if source == 2 else name
            if value is None and source == 2 and name in OMITTED_WHEN_UNSET:
                continue
            kind = type(value)
            if kind is str:
                parts.append(prefix + _quote(value))
            elif kind is int:
                parts.append(prefix + int.__repr__(value))
            elif value is None:
                parts.append(prefix + "null")
            else:
                break  # not a plain value (a bool, a float): let json decide, as the general way does
        else:
            text = "{" + ",".join(parts) + "}"
            if not with_document:
                return text, ""
            parts.insert(sig_at, '"signature":' + _quote(op.signature))
            return text, "{" + ",".join(parts) + "}"
    return None


_FLAT_SPECS: dict[type, tuple[tuple[str, int, Any], ...] | None] = {}
_NOT_FLAT = {"attrs", "operations", "account_kind"}


def _flat_spec(cls: type) -> tuple[tuple[str, int, Any], ...] | None:
    """For a body class whose fields are plain values: (`"key":`, source, name) in sorted key order, where
    source is 0 for the signature, 1 for a field of the operation, 2 of the body, 3 a constant (the version)."""
    if cls in _FLAT_SPECS:
        return _FLAT_SPECS[cls]
    names = [f.name for f in dataclasses.fields(cls)]
    spec = None
    if not _NOT_FLAT & set(names) and not {"v", "id", "kind", "signer", "signature"} & set(names):
        sources: dict[str, tuple[int, Any]] = {n: (2, n) for n in names}
        sources.update(
            v=(3, CANONICAL_VERSION), id=(1, "id"), signer=(1, "signer"), signature=(0, None),
            kind=(3, KIND_BY_BODY[cls].value),
        )  # fmt: skip
        spec = tuple((_quote(key) + ":", *sources[key]) for key in sorted(sources))
    _FLAT_SPECS[cls] = spec
    return spec


_AMOUNT_FIELDS = {"amount_tiyn"}
_HANDLE_FIELDS = {"payer", "payee", "account", "handle", "bank", "releaser"}


def _checked_field(name: str, value: object, field_where: str) -> Any:
    """One field of an operation body (not None, not a batch's operations) as the document form accepts it:
    shared by `operation_from_dict` (a submitted document) and `check_operation` (an Operation built in code)."""
    if name in _AMOUNT_FIELDS:
        return check_amount_tiyn(value, field_where)
    if name in _HANDLE_FIELDS:
        return check_handle(value, field_where)
    if name == "tag":
        return check_tag(value, field_where)
    if name == "expires_on":
        return check_date(value, field_where)
    if name in ("memo", "reason", "order"):
        return check_text(value, field_where, limits.memo_length_max)
    if name == "attrs":
        return check_attrs(value, field_where)
    if name == "name":
        return check_witness_name(value, field_where)
    if name == "hold_id":
        return check_op_id(value, field_where)
    if name == "account_kind":
        try:
            return AccountKind(value)
        except ValueError:
            raise InputError(
                f"unknown account kind {quoted(value)}; one of: {', '.join(k.value for k in AccountKind)}",
                field_where,
            ) from None
    if name == "tier" and (type(value) is not int or not 0 <= value <= limits.tier_max):
        raise InputError(f"must be a tier from 0 to {limits.tier_max}", field_where)
    if name in ("timeout_s", "as_of"):
        if type(value) is not int or value < 0:
            raise InputError("must be a whole number of seconds", field_where)
        if name == "timeout_s" and not 0 < value <= limits.hold_timeout_s_max:
            raise InputError(f"must be from 1 to {limits.hold_timeout_s_max} seconds", field_where)
    if name == "public_key" and (not isinstance(value, str) or not re.fullmatch(r"[0-9a-f]{64}", value)):
        raise InputError("must be a 32-byte Ed25519 public key in hex", field_where)
    if name == "on_timeout" and value not in HOLD_ON_TIMEOUT:
        raise InputError(
            f"{quoted(value)} is not what a hold does at its timeout: one of {', '.join(HOLD_ON_TIMEOUT)}",
            field_where,
        )
    return value


def operation_from_dict(doc: object, where: str = "operation", depth: int = 0) -> Operation:
    """Build and check an Operation from a JSON document; errors name the field and `where`."""
    if not isinstance(doc, dict):
        raise InputError("an operation must be a JSON object", where)
    kind_text = doc.get("kind")
    try:
        kind = OpKind(kind_text)
    except ValueError:
        raise InputError(
            f"unknown kind {quoted(kind_text)}; one of: {', '.join(k.value for k in OpKind)}", f"{where}.kind"
        ) from None
    version = doc.get("v", CANONICAL_VERSION)
    if version != CANONICAL_VERSION:
        raise InputError(
            f"unsupported document version {quoted(version)}; this ledger reads v1", f"{where}.v"
        )
    op_id = check_op_id(doc.get("id"), f"{where}.id")
    signer = doc.get("signer")
    if signer is not None:
        signer = check_handle(signer, f"{where}.signer")
    signature = doc.get("signature") or ""
    if not isinstance(signature, str) or not re.fullmatch(r"[0-9a-f]*", signature):
        raise InputError("must be lower-case hex", f"{where}.signature")
    if signature and signer is None:  # else the ledger answers "no account '' to sign"
        raise InputError("is missing: a signed operation names who signed it", f"{where}.signer")
    body_cls = BODY_BY_KIND[kind]
    fields = {f.name: f for f in dataclasses.fields(body_cls)}
    known = set(fields) | {"v", "id", "kind", "signer", "signature", "amount"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise InputError(f"unknown field {quoted(unknown[0])} for a {kind.value} operation", where)
    values: dict[str, Any] = {}
    if "amount" in doc and "amount_tiyn" in fields:
        if "amount_tiyn" in doc:
            raise InputError("give amount or amount_tiyn, not both", where)
        values["amount_tiyn"] = parse_amount(doc["amount"], f"{where}.amount")
    elif "amount" in doc:
        raise InputError(f"a {kind.value} operation has no amount", where)
    for name, f in fields.items():
        if name in values:
            continue
        value = doc.get(name)
        field_where = f"{where}.{name}"
        required = f.default is dataclasses.MISSING
        if value is None:
            if required:
                raise InputError("is required", field_where)
            continue
        if name == "operations":
            if depth > 0:
                raise InputError("a batch cannot contain a batch", field_where)
            if not isinstance(value, list) or not 0 < len(value) <= limits.batch_operations_max:
                raise InputError(
                    f"must be a list of 1 to {limits.batch_operations_max} operations", field_where
                )
            value = tuple(
                operation_from_dict(item, f"{field_where}[{i}]", depth + 1) for i, item in enumerate(value)
            )
        else:
            value = _checked_field(name, value, field_where)
        values[name] = value
    body = body_cls(**values)
    if isinstance(body, Hold) and body.timeout_s <= 0:
        raise InputError("must be positive", f"{where}.timeout_s")
    if isinstance(body, Batch) and len({op.id for op in body.operations}) != len(body.operations):
        raise InputError("operation ids in a batch must be distinct", f"{where}.operations")
    if isinstance(body, Batch) and any(op.id == op_id for op in body.operations):
        raise InputError(
            f"an operation in a batch cannot have the batch's own id {op_id}", f"{where}.operations"
        )
    return Operation(id=op_id, signer=signer or "", body=body, signature=signature)


# The fields of each body class that hold free text (what a person typed, which reaches terminals, exports and
# other parties): `check_operation_text` checks only these, so an operation without text costs a lookup.
_TEXT_FIELD_NAMES = ("memo", "reason", "order", "attrs", "name")
_TEXT_FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls) if f.name in _TEXT_FIELD_NAMES) for cls in KIND_BY_BODY
}


def check_operation_text(op: Operation, where: str = "operation") -> None:
    """The text of an Operation built in code (a library caller's: no document was parsed, so nothing checked
    it) refused as `operation_from_dict` refuses it in a document: a memo, status reason or court order with
    control or format characters, not valid UTF-8 or too long; attributes and a witness name likewise. Raises
    InputError naming the field. A batch's operations are checked where each of them applies."""
    body = op.body
    for name in _TEXT_FIELDS.get(type(body), ()):
        value = getattr(body, name)
        if value is None:
            continue
        if name == "attrs" and not isinstance(value, tuple):
            raise InputError("must be a tuple of (key, value) pairs", f"{where}.{name}")
        _checked_field(name, value, f"{where}.{name}")
