"""The compact journal row: one row per applied operation, the ledger's one source of truth.

A row keeps integer ids where the signed document has handles and tags, the signature as 64 bytes and the chain
link as 32; the signed document, its canonical bytes, its fields hash, the previous link and a two-leg
operation's postings are all derived from it (and so can be re-derived and compared, never trusted). Only an
operation whose postings are not the two legs its body implies (a split, a route, a post, a sweep) writes extra
rows to `legs`.

    seq, op_id, kind, signer, payer, payee, amount, tag, at, signature, link, flags, body, decision, policy

`kind` is the index in KIND_CODES; `payer`, `payee` (account ids), `amount` and `tag` (a tag id; NULL when the
body has no tag) are the body's fields of those names; `body` holds the body's other fields that are set, as
canonical JSON (NULL when none); `decision` is the policy decision only when rules decided something; `policy`
the version of the policy set enabled when it applied (NULL when none was).

That is the row as the ledger hands it over and as a reader gets it. Stored (schema 7 on), a decision's text is
kept once, in `decisions`, under its key (`decision_key`: a hash of the text), and the row keeps the key: the
same combination of rules decides thousands of payments with the same text (a VAT split's is ~430 bytes). The
row's chain link covers the text, so a text changed in `decisions` breaks the link of every row that names it.
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Callable, Iterable
from typing import Any

from ..core.canonical import body_to_dict, canonical_json
from ..core.chain import link_on
from ..core.records import (
    BODY_BY_KIND,
    AccountKind,
    Operation,
    OpKind,
)
from ..core.windows import add_flow  # noqa: F401 - the upgrade and `tenge check` replay flows with it

# Persisted: a kind's code is its position here. Append only.
KIND_CODES: tuple[OpKind, ...] = (
    OpKind.open_account,
    OpKind.update_account,
    OpKind.issue,
    OpKind.redeem,
    OpKind.transfer,
    OpKind.hold,
    OpKind.post,
    OpKind.void,
    OpKind.sweep,
    OpKind.batch,
    OpKind.freeze,
    OpKind.unfreeze,
    OpKind.close,
    OpKind.seize,
    OpKind.add_witness,
)
KIND_CODE: dict[OpKind, int] = {k: i for i, k in enumerate(KIND_CODES)}
assert set(KIND_CODES) == set(OpKind)

FLAG_LEGS = 1  # the postings are in `legs`, not the two legs the body implies
FLAG_LINK_V2 = 2  # the chain link also covers `decision` and `policy` (rows written before it have version 1)

JOURNAL_COLUMNS = (
    "seq, op_id, kind, signer, payer, payee, amount, tag, at, signature, link, flags, body, decision, policy"
)
# The row as stored: `decision_key` in place of the decision's text (kept once in `decisions`, under that key).
# `decision`, which held the text up to schema 6, is NULL in every row from schema 7 on.
STORED_JOURNAL_COLUMNS = JOURNAL_COLUMNS.replace(" decision,", " decision_key,")
# A row as read: the decision's text joined back in its place (`j` the journal, `d` its decision).
JOURNAL_READ = ", ".join(
    "d.text" if c == "decision" else f"j.{c}" for c in JOURNAL_COLUMNS.replace(" ", "").split(",")
)
JOURNAL_JOINED = "journal j LEFT JOIN decisions d ON d.key = j.decision_key"
DECISION_COLUMN = 13  # the decision's place in a journal row
DECISIONS_TABLE = "CREATE TABLE decisions (key {blob} PRIMARY KEY, text TEXT NOT NULL)"
# Each kept decision text and how many journal rows name it (a scan of the journal: `tenge check` reads it all).
DECISIONS_NAMED = (
    "SELECT d.key, d.text, COUNT(j.seq) FROM decisions d LEFT JOIN journal j ON j.decision_key = d.key"
    " GROUP BY d.key, d.text ORDER BY d.key"
)


def decision_key(text: str) -> bytes:
    """The key a decision's text is kept under: 16 bytes of its SHA-256, collision-free for any number of texts
    a ledger can hold (about 2^64 texts before two are likely to share one)."""
    return hashlib.sha256(text.encode()).digest()[:16]


def keyed_decisions(rows: list[tuple]) -> tuple[list[tuple], list[tuple[bytes, str]]]:
    """Journal rows (JOURNAL_COLUMNS) as stored (STORED_JOURNAL_COLUMNS), and the (key, text) of each decision
    they name, once. Rows that name none are handed back as they are."""
    keys: dict[str, bytes] = {}
    stored = []
    for row in rows:
        text = row[DECISION_COLUMN]
        if text is None:
            stored.append(row)
            continue
        key = keys.get(text)
        if key is None:
            key = keys[text] = decision_key(text)
        stored.append((*row[:DECISION_COLUMN], key, *row[DECISION_COLUMN + 1 :]))
    return stored, [(key, text) for text, key in keys.items()]


def keyed_texts(rows: Iterable[tuple[int, str]]) -> tuple[list[tuple[bytes, str]], list[tuple[bytes, int]]]:
    """Migration 7 (both stores): for schema 6's (seq, decision text) rows, each text once as (key, text), and
    each row's (key, seq)."""
    keys: dict[str, bytes] = {}
    named = []
    for seq, text in rows:
        key = keys.get(text)
        if key is None:
            key = keys[text] = decision_key(text)
        named.append((key, seq))
    return [(key, text) for text, key in keys.items()], named


# The row of a plain untagged transfer without memo, in these columns: its tag, body and decision are NULL, and
# the sqlite3 module binds a NULL parameter at the cost of a lookup for an adapter; a row leaves them out.
PLAIN_JOURNAL_COLUMNS = "seq, op_id, kind, signer, payer, payee, amount, at, signature, link, flags, policy"
LEG_COLUMNS = "seq, idx, account, tag, amount"
UNTAGGED_ID = 0  # the tag id of untagged money ("")

_COLUMN_FIELDS = ("payer", "payee", "amount_tiyn", "tag")
_FIELDS: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(cls.__dataclass_fields__)  # type: ignore[attr-defined]
    return names


_COLUMNS_OF: dict[type, tuple[bool, bool, bool, bool]] = {}
_EXTRA_FIELDS: dict[type, tuple[str, ...]] = {}


def body_columns(body: Any) -> tuple[str | None, str | None, int | None, str | None]:
    """The body's payer, payee, amount and tag: the fields the journal row keeps in columns (None if absent)."""
    has = _COLUMNS_OF.get(type(body))
    if has is None:
        names = _field_names(type(body))
        has = _COLUMNS_OF[type(body)] = tuple(n in names for n in _COLUMN_FIELDS)  # type: ignore[assignment]
    return (
        body.payer if has[0] else None,
        body.payee if has[1] else None,
        body.amount_tiyn if has[2] else None,
        body.tag if has[3] else None,
    )


# A trace leaf derived from a journal row (trace/journal_leaf.py says what it commits to): these bytes, hashed as
# any leaf is. Stored trace payloads are JSON (`{`) or a privacy mode's own envelope, never these two bytes.
LEAF_PREFIX = b"J1"
LEAF_PAYLOAD_BYTES = len(LEAF_PREFIX) + 8 + 32


def leaf_payload(seq: int, link: bytes) -> bytes:
    """The leaf bytes of journal row `seq` with chain link `link`: prefix, seq (8 bytes, big-endian), link."""
    return LEAF_PREFIX + seq.to_bytes(8, "big") + link


def parse_leaf_payload(data: bytes) -> tuple[int, bytes] | None:
    """(seq, link) of a derived leaf's bytes; None for any other trace payload."""
    if len(data) != LEAF_PAYLOAD_BYTES or not data.startswith(LEAF_PREFIX):
        return None
    return int.from_bytes(data[2:10], "big"), data[10:]


def orphan_leaf_seq(data: bytes) -> int | None:
    """The seq named by a derived leaf's bytes as the store gives them when the journal row is gone (prefix and
    seq, no link); None for any other trace payload."""
    if len(data) != LEAF_PAYLOAD_BYTES - 32 or not data.startswith(LEAF_PREFIX):
        return None
    return int.from_bytes(data[2:10], "big")


_PLAIN_WIDTH = len(PLAIN_JOURNAL_COLUMNS.split(","))
_seq_of = operator.itemgetter(0)


def link_deferred(
    head: tuple[int, bytes], entries: list[tuple], plain_entries: list[tuple]
) -> tuple[list[tuple], list[tuple], tuple[int, bytes]]:
    """Journal rows of plain transfers made without their chain links, each with its own part of its link
    (core/chain.two_leg_suffix) where its link goes (what the ledger's plain loop leaves when a committer links
    for it), linked on `head`: the rows as they are written, and the new head. Every row is a two-leg transfer
    the payer signed, with no stored decision (ledger/plain.py). Each list is in seq order; together they must
    follow `head` with no gap."""
    seq, prev = head
    linked: list[tuple] = []
    linked_plain: list[tuple] = []
    # in seq order: the usual chunk has only plain rows, already in order
    ordered = plain_entries if not entries else sorted([*entries, *plain_entries], key=_seq_of)
    for row in ordered:
        seq += 1
        if row[0] != seq:
            raise ValueError(f"journal row {row[0]} handed over unlinked does not follow #{seq - 1}")
        if len(row) == _PLAIN_WIDTH:  # PLAIN_JOURNAL_COLUMNS
            prev = link_on(prev, row[9])
            linked_plain.append((*row[:9], bytearray(prev), row[10], row[11]))
        else:
            if row[13] is not None:
                raise ValueError(f"journal row {seq} handed over unlinked has a stored decision")
            prev = link_on(prev, row[10])
            linked.append((*row[:10], bytearray(prev), *row[11:]))
    return linked, linked_plain, (seq, prev)


def journal_row(
    seq: int,
    op: Operation,
    at: int,
    link: bytes,
    flags: int,
    decision: str | None,
    policy: int | None,
    account_id: Callable[[str], int],
    tag_id: Callable[[str], int],
    signature: bytearray | None = None,
    columns: tuple[str | None, str | None, int | None, str | None] | None = None,
) -> tuple:
    """The compact row of an applied operation, in JOURNAL_COLUMNS order. Its blobs are bytearrays: the sqlite3
    module binds a bytearray directly and looks for an adapter for `bytes` first (three times the cost a row).
    `signature` (the signature's bytes) and `columns` (`body_columns(op.body)`) are what a caller that made
    them already hands on."""
    payer, payee, amount, tag = body_columns(op.body) if columns is None else columns
    return (
        seq,
        op.id,
        KIND_CODE[op.kind],
        account_id(op.signer),
        None if payer is None else account_id(payer),
        None if payee is None else account_id(payee),
        amount,
        None if tag is None else tag_id(tag),
        at,
        bytearray.fromhex(op.signature) if signature is None else signature,
        bytearray(link),
        flags,
        body_extra(op),
        decision,
        policy,
    )


def body_extra(op: Operation) -> str | None:
    """The body's fields that have no column of their own and are set, as canonical JSON (None when none)."""
    body = op.body
    extra = _EXTRA_FIELDS.get(type(body))
    if extra is None:
        extra = _EXTRA_FIELDS[type(body)] = tuple(
            n for n in _field_names(type(body)) if n not in _COLUMN_FIELDS
        )
    for name in extra:
        if getattr(body, name) is not None:
            break
    else:
        return None
    doc = body_to_dict(body)
    rest = {k: v for k, v in doc.items() if k not in _COLUMN_FIELDS and v is not None}
    return canonical_json(rest) if rest else None


def standard_legs(
    kind: OpKind,
    payer: str | None,
    payee: str | None,
    amount: int | None,
    tag: str,
    central_bank: str,
    holds: str,
) -> tuple[tuple[str, int, str], ...]:
    """The postings an operation's body implies, (account, amount, tag), when no policy reshaped them."""
    if kind is OpKind.transfer or kind is OpKind.seize:
        return ((payer, -amount, tag), (payee, amount, tag))  # type: ignore[operator,return-value]
    if kind is OpKind.hold:
        return ((payer, -amount, tag), (holds, amount, tag))  # type: ignore[operator,return-value]
    if kind is OpKind.issue:
        return ((central_bank, -amount, tag), (payee, amount, tag))  # type: ignore[operator,return-value]
    if kind is OpKind.redeem:
        return ((payer, -amount, tag), (central_bank, amount, tag))  # type: ignore[operator,return-value]
    return ()


def operation_from_row(
    row: tuple, handle_of: Callable[[int], str], tag_of: Callable[[int], str]
) -> Operation:
    """The signed operation a journal row keeps, exactly as it was signed."""
    _, op_id, kind, signer, payer, payee, amount, tag, _, signature, _, _, body, _, _ = row
    op_kind = KIND_CODES[kind]
    cls = BODY_BY_KIND[op_kind]
    fields: dict[str, Any] = json.loads(body) if body else {}
    names = _field_names(cls)
    if "payer" in names:
        fields["payer"] = None if payer is None else handle_of(payer)
    if "payee" in names:
        fields["payee"] = None if payee is None else handle_of(payee)
    if "amount_tiyn" in names:
        fields["amount_tiyn"] = amount
    if "tag" in names:
        fields["tag"] = None if tag is None else tag_of(tag)
    return Operation(op_id, handle_of(signer), _body(cls, fields), bytes(signature).hex())


def _body(cls: type, fields: dict[str, Any]) -> Any:
    values = {n: fields.get(n) for n in _field_names(cls) if n in fields}
    if "account_kind" in values:
        values["account_kind"] = AccountKind(values["account_kind"])
    if "attrs" in values:
        values["attrs"] = tuple(sorted(values["attrs"].items()))
    if "operations" in values:
        values["operations"] = tuple(operation_from_document(d) for d in values["operations"])
    return cls(**values)


def operation_from_document(doc: dict[str, Any]) -> Operation:
    cls = BODY_BY_KIND[OpKind(doc["kind"])]
    fields = {n: doc[n] for n in _field_names(cls) if doc.get(n) is not None}
    return Operation(doc["id"], doc["signer"], _body(cls, fields), doc.get("signature", ""))


def legs_of(
    row: tuple,
    legs: Iterable[tuple] | None,
    handle_of: Callable[[int], str],
    tag_of: Callable[[int], str],
    central_bank: str,
    holds: str,
) -> list[tuple[str, int, str]]:
    """A row's postings (account, amount, tag): its `legs` rows if it has them, else the two its body implies."""
    if row[11] & FLAG_LEGS:
        return [(handle_of(a), amount, tag_of(t)) for _, _, a, t, amount in legs or ()]
    kind, payer, payee, amount, tag = KIND_CODES[row[2]], row[4], row[5], row[6], row[7]
    return list(
        standard_legs(
            kind,
            None if payer is None else handle_of(payer),
            None if payee is None else handle_of(payee),
            amount,
            "" if tag is None else tag_of(tag),
            central_bank,
            holds,
        )
    )
