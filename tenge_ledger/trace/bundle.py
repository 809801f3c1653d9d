"""Audit bundles: the trace log, the journal's hash-chain material, the signed checkpoints (C2SP signed notes,
with the witnesses' cosignatures) in one JSON file that `tenge audit verify` checks offline with only the
operator's public key (and the witnesses' keys).

The journal part carries each entry's signed document (the canonical bytes its signature covers are rebuilt
from it), its signature and its postings (accounts and amounts, needed to recompute its hash), and the public
keys the journaled account openings set: an auditor re-checks every client signature without the operator's
accounts table. A bundle with the journal is for an auditor entitled to the operator's view; `--no-journal`
leaves it out."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..core import shapes
from ..core.errors import InputError, quoted
from ..core.files import write_private
from ..store.base import Store
from . import checkpoint as cps

FORMAT = "tenge-audit-bundle/2"


@dataclass
class Bundle:
    ledger_id: str
    name: str  # a label: the ledger's unsigned meta row, bound to nothing and never shown as verified
    privacy_mode: str
    checkpoint_key: str
    traces: list[dict]  # idx, op_id, at, mode, payload (bytes), leaf_hash (bytes)
    # seq, op_id, at, fields_hash, signature, prev_hash, entry_hash, postings, document
    journal: list[dict] | None
    checkpoints: list[cps.SignedCheckpoint] = field(default_factory=list)
    # (seq, handle, public key hex) of every journaled account opening, in journal order
    public_keys: list[tuple[int, str, str]] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "ledger_id": self.ledger_id,
            "name": self.name,
            "privacy_mode": self.privacy_mode,
            "checkpoint_key": self.checkpoint_key,
            "traces": [
                {
                    "idx": t["idx"],
                    "op_id": t["op_id"],
                    "at": t["at"],
                    "mode": t["mode"],
                    "payload": base64.b64encode(t["payload"]).decode(),
                    "leaf_hash": t["leaf_hash"].hex(),
                }
                for t in self.traces
            ],
            "journal": None
            if self.journal is None
            else [
                {
                    **j,
                    "fields_hash": j["fields_hash"].hex(),
                    "prev_hash": j["prev_hash"].hex(),
                    "entry_hash": j["entry_hash"].hex(),
                }
                for j in self.journal
            ],  # fmt: skip
            "checkpoints": [c.to_json() for c in self.checkpoints],
            "public_keys": [{"seq": q, "handle": h, "public_key": k} for q, h, k in self.public_keys],
        }


def _trace_json(idx: int, t) -> dict:
    return {"at": t.at, "idx": idx, "leaf_hash": t.leaf_hash.hex(), "mode": t.mode, "op_id": t.op_id,
            "payload": base64.b64encode(t.payload).decode()}  # fmt: skip


def _journal_json(op, postings) -> dict:
    doc = json.loads(op.document)
    return {"document": op.document, "entry_hash": op.entry_hash.hex(), "fields_hash": op.fields_hash.hex(),
            "at": op.at, "op_id": op.op_id, "postings": [[p.account, p.tag, p.amount_tiyn] for p in postings],
            "prev_hash": op.prev_hash.hex(), "seq": op.seq, "signature": doc.get("signature", ""),
            "chained": None if op.chained is None else list(op.chained)}  # fmt: skip


def _dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


EXPORT_PROGRESS_RECORDS = 1_000  # records written between two progress calls


def export(
    store: Store, path: str, with_journal: bool = True, progress: Callable[[int], None] | None = None
) -> tuple[str, int, int]:
    """Write the bundle of `store` to `path` as it is read, one record at a time, so memory stays flat however
        long the log: byte for byte what `write(from_store(store))` writes; `progress(n)` hears of every n records
    written. Returns (sha256 hex, traces, entries)."""
    meta = store.meta()
    digest = hashlib.sha256()
    counts = [0, 0]
    write_private(path, b"")
    with store.snapshot(), open(path, "ab") as fh:

        def put(text: str) -> None:
            data = text.encode()
            digest.update(data)
            fh.write(data)

        def written() -> None:
            if progress and (counts[0] + counts[1]) % EXPORT_PROGRESS_RECORDS == 0:
                progress(EXPORT_PROGRESS_RECORDS)

        head = {"checkpoint_key": meta.settings.get("privacy_public", {}).get("checkpoint_key", ""),
                "checkpoints": [c.to_json() for c in cps.saved(store)], "format": FORMAT}  # fmt: skip
        put(_dumps(head)[:-1] + ',"journal":')
        public_keys: list[dict] = []
        if not with_journal:
            put("null")
        else:
            put("[")
            for op, postings in store.journal():
                item = _journal_json(op, postings)
                if op.kind == "open_account":
                    doc = json.loads(op.document)
                    public_keys.append({"handle": str(doc.get("handle")), "public_key": str(doc.get("public_key")),
                                        "seq": op.seq})  # fmt: skip
                put(("," if counts[1] else "") + _dumps(item))
                counts[1] += 1
                written()
            put("]")
        tail = {"ledger_id": meta.ledger_id, "name": meta.name, "privacy_mode": meta.privacy_mode,
                "public_keys": public_keys}  # fmt: skip
        put("," + _dumps(tail)[1:-1] + ',"traces":[')
        try:
            for idx, t in store.traces():
                put(("," if counts[0] else "") + _dumps(_trace_json(idx, t)))
                counts[0] += 1
                written()
        except (TypeError, ValueError) as exc:  # a row edited so that it no longer reads as a trace record
            raise InputError(
                f"a trace record after #{counts[0]} cannot be read ({exc}): it was changed"
            ) from None
        put("]}")
    if progress and (counts[0] + counts[1]) % EXPORT_PROGRESS_RECORDS:
        progress((counts[0] + counts[1]) % EXPORT_PROGRESS_RECORDS)
    return digest.hexdigest(), counts[0], counts[1]


def from_store(store: Store, with_journal: bool = True) -> Bundle:
    meta = store.meta()
    traces: list[dict] = []
    try:
        for idx, t in store.traces():
            traces.append({"idx": idx, "op_id": t.op_id, "at": t.at, "mode": t.mode, "payload": t.payload,
                           "leaf_hash": t.leaf_hash})  # fmt: skip
    except (TypeError, ValueError) as exc:  # a row edited so that it no longer reads as a trace record
        after = traces[-1]["idx"] if traces else 0
        raise InputError(
            f"the trace record after #{after} cannot be read ({exc}): it was changed in the database"
        ) from None
    journal = None
    public_keys: list[tuple[int, str, str]] = []
    if with_journal:
        journal = []
        for op, postings in store.journal():
            doc = json.loads(op.document)
            if op.kind == "open_account":
                public_keys.append((op.seq, str(doc.get("handle")), str(doc.get("public_key"))))
            journal.append(
                {
                    "seq": op.seq,
                    "op_id": op.op_id,
                    "at": op.at,
                    "fields_hash": op.fields_hash,
                    "signature": doc.get("signature", ""),
                    "document": op.document,
                    "prev_hash": op.prev_hash,
                    "entry_hash": op.entry_hash,
                    "postings": [[p.account, p.tag, p.amount_tiyn] for p in postings],
                    "chained": op.chained,
                }
            )
    return Bundle(
        ledger_id=meta.ledger_id,
        name=meta.name,
        privacy_mode=meta.privacy_mode,
        checkpoint_key=meta.settings.get("privacy_public", {}).get("checkpoint_key", ""),
        traces=traces,
        journal=journal,
        checkpoints=cps.saved(store),
        public_keys=public_keys,
    )


def write(bundle: Bundle, path: str) -> str:
    """Write the bundle; returns its SHA-256 (hex) so the auditor can pin the exact file."""
    data = json.dumps(bundle.to_json(), sort_keys=True, separators=(",", ":")).encode()
    write_private(path, data)
    return hashlib.sha256(data).hexdigest()


# What `export` writes, exactly: `read` refuses any other shape (a number as a string, a boolean for a number, a
# float, a key unknown or missing), so one bundle has one reading and the file is canonical.
_HASH = str  # lower-case hex of 32 bytes (checked by `_hash`)
_TRACE = shapes.Obj({"idx": int, "op_id": str, "at": int, "mode": str, "payload": str, "leaf_hash": _HASH})
_JOURNAL = shapes.Obj(
    {
        "seq": int, "op_id": str, "at": int, "fields_hash": _HASH, "signature": str, "prev_hash": _HASH,
        "entry_hash": _HASH, "postings": shapes.ListOf(shapes.Row((str, str, int))), "document": str,
        # what a version-2 link also covers: [decision or null, policy version or null]
        "chained": shapes.Either((None, shapes.Row((shapes.Either((None, str)), shapes.Either((None, int)))))),
    }
)  # fmt: skip
_CHECKPOINT = shapes.Obj({"note": str, "at": int})
_PUBLIC_KEY = shapes.Obj({"seq": int, "handle": str, "public_key": str})
_BUNDLE = shapes.Obj(
    {
        "format": str, "ledger_id": str, "name": str, "privacy_mode": str, "checkpoint_key": str,
        "traces": shapes.ListOf(_TRACE), "journal": shapes.Either((None, shapes.ListOf(_JOURNAL))),
        "checkpoints": shapes.ListOf(_CHECKPOINT), "public_keys": shapes.ListOf(_PUBLIC_KEY),
    }
)  # fmt: skip
_HASH_RE = re.compile("[0-9a-f]{64}")


def _hash(value: str, where: str) -> bytes:
    if not _HASH_RE.fullmatch(value):
        raise InputError(f"{quoted(value)} is not a hash: 64 lower-case hex digits", where=where)
    return bytes.fromhex(value)


def _payload(value: str, where: str) -> bytes:
    try:
        data = base64.b64decode(value, validate=True)
    except ValueError:
        data = None
    if data is None or base64.b64encode(data).decode() != value:  # one payload, one spelling
        raise InputError("is not base64 as an export writes it", where=where)
    return data


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """`json.loads` keeps the last of two equal keys: a bundle that has them has two readings, and is refused."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InputError(f"the key {quoted(key)} appears twice in one object")
            seen.add(key)
    return found


def read(path: str) -> Bundle:
    """Load a bundle; a truncated or malformed file is one clear InputError naming the field and the record."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError("no such bundle", where=path) from None
    try:
        doc = json.loads(raw, object_pairs_hook=_unique_keys)
    except InputError as exc:
        raise InputError(str(exc), where=path) from None
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python recurses
        raise InputError("the bundle is truncated or not JSON", where=path) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f"not a {FORMAT} file", where=path)
    wrong = shapes.problem(doc, _BUNDLE)
    if wrong is not None:
        raise InputError(f"the bundle is malformed: {wrong}", where=path)
    traces = [
        {
            **t,
            "payload": _payload(t["payload"], f"{path}: traces[{i}].payload"),
            "leaf_hash": _hash(t["leaf_hash"], f"{path}: traces[{i}].leaf_hash"),
        }
        for i, t in enumerate(doc["traces"])
    ]
    journal = None
    if doc["journal"] is not None:
        journal = [
            {
                **j,
                "fields_hash": _hash(j["fields_hash"], f"{path}: journal[{i}].fields_hash"),
                "prev_hash": _hash(j["prev_hash"], f"{path}: journal[{i}].prev_hash"),
                "entry_hash": _hash(j["entry_hash"], f"{path}: journal[{i}].entry_hash"),
                "chained": None if j["chained"] is None else tuple(j["chained"]),
            }
            for i, j in enumerate(doc["journal"])
        ]
    checkpoints = [cps.from_json(c, f"{path}: checkpoints[{i}]") for i, c in enumerate(doc["checkpoints"])]
    return Bundle(
        ledger_id=doc["ledger_id"],
        name=doc["name"],
        privacy_mode=doc["privacy_mode"],
        checkpoint_key=doc["checkpoint_key"],
        traces=traces,
        journal=journal,
        checkpoints=checkpoints,
        public_keys=[(k["seq"], k["handle"], k["public_key"]) for k in doc["public_keys"]],
    )
