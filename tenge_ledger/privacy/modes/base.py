"""What every privacy-mode sink shares: the stored envelope, the key context, and the decoding interface.

A stored trace record (the payload of one Merkle leaf) is a map in the compact binary form (`core/compact.py`:
sealed fields as raw bytes, pseudonyms as 16 raw bytes); records written before it are JSON, and are read alike:

    {"v": 2, "type": "op", "mode": M, "op_id", "at", "seq", "kind", "code", ...fields the mode keeps}

op id, ledger time, journal seq, kind and outcome code are metadata every mode keeps in clear (the traces table
has op id and time anyway); what each mode does with payer, payee, amount, tag and memo is its own module.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

import nacl.exceptions
import nacl.public

from ...core import compact
from ...core.errors import InputError, LedgerStateError
from ...core.hooks import EncodedTrace
from ...core.records import TraceRecord
from ...trace.merkle import leaf_hash
from ..keys import KeyRing, keyed_hash
from ..seal import (
    associated_data,
    identity_padded_bytes,
    pad,
    record_ref,
    seal,
    unb64,
    unpad,
    unseal_text,
)

PAYLOAD_VERSION = 2  # 1: JSON with base64 sealed fields; 2: the compact binary form
MISSING = "\0missing"  # what `account_bank` answers for an account the store does not hold yet
epoch_s_default = 7 * 24 * 3600
records_per_data_key = 1_000  # a data key is sealed to its recipient once per this many records at most
unregistered_recheck_records = (
    64  # a party with no key yet: its registration is looked for once per this many
)


def dumps(doc: dict) -> bytes:
    """The stored bytes. Key order is the order the sink writes them in (fixed by the code); the leaf hashes
    these exact bytes, so no canonical re-ordering is needed."""
    return json.dumps(doc, separators=(",", ":")).encode()


def epoch_of(at: int, epoch_s: int) -> int:
    return at // epoch_s


def epoch_key(root: bytes, epoch: int) -> bytes:
    return keyed_hash(root, epoch.to_bytes(8, "big"), person=b"tenge-epoch", size=32)


def pseudonym(epoch_k: bytes, handle: str) -> str:
    return keyed_hash(epoch_k, handle.encode(), person=b"tenge-pseudonym", size=16).hex()


@dataclass(frozen=True, slots=True)
class Mode:
    """One privacy mode, as its module exports it (`MODE`); `modes.REGISTRY` is built from these records.

    `make_sink(ctx, store)` builds the trace sink (`ctx` is None for a mode that needs no keys); `decode(doc, keys)`
    gives (visibility variant, every level of every field this observer can obtain); `variants` are the rows of
    the visibility table its records are judged by."""

    name: str
    make_sink: Callable[[SinkContext | None, object], BaseSink]
    decode: Callable[[dict, ObserverKeys], tuple[str, Decoded]]
    variants: tuple[str, ...]
    needs_keys: bool = True
    readers: tuple[str, ...] = ()  # the fixed parties it seals to, whose key files `init` writes (--key-to)
    bank_keys: bool = (
        False  # it seals to banks or pseudonymises under their roots: a bank registers a key file
    )


@dataclass
class SinkContext:
    """What a sink needs besides the record: the operator's key ring (its own keys and the banks' pseudonym roots),
    the public halves from the ledger settings (the parties' box keys: the sinks seal with public keys only), and
    who serves an account. `public_now` reads the settings again (a bank registered since the sink was made)."""

    ring: KeyRing
    public: dict
    ledger_id: str
    central_bank: str
    account_bank: Callable[
        [str], str | None
    ]  # handle -> its bank; None when none serves it; MISSING if unknown
    settings: dict = field(default_factory=dict)
    viewing_public: Callable[[str], str | None] = lambda handle: None  # handle -> the key its records seal to
    public_now: Callable[[], dict] | None = None
    _banks: dict[str, str] = field(default_factory=dict)
    _roots: dict[str, bytes] = field(default_factory=dict)
    _boxes: dict[str, nacl.public.SealedBox] = field(default_factory=dict)
    _epoch_keys: dict[tuple[str, int], bytes] = field(default_factory=dict)
    # holder -> lookups left before the settings are read again for a party that registered no key yet
    _unregistered: dict[str, int] = field(default_factory=dict)

    def bank_of(self, handle: str) -> str:
        bank = self._banks.get(handle)
        if bank is None:
            found = self.account_bank(handle)
            if found is MISSING:
                # Opened in the chunk being applied (not in the store yet): the central bank holds its records'
                # keys until the next chunk. Not cached, so later chunks use the account's own bank.
                return self.central_bank
            bank = found or self.central_bank
            self._banks[handle] = bank
        return bank

    def box_public(self, holder: str) -> str | None:
        """A party's registered X25519 public key (hex), or None when it registered none."""
        found = self.public.get("box_public", {}).get(holder)
        if found is None and self.public_now is not None:
            left = self._unregistered.get(holder, 0)
            if left > 0:  # read again once per `unregistered_recheck_records` lookups, not every record
                self._unregistered[holder] = left - 1
                return None
            self.public = self.public_now()  # registered since this sink was made?
            found = self.public.get("box_public", {}).get(holder)
            if found is None:
                self._unregistered[holder] = unregistered_recheck_records
        return found

    def central_box(self) -> nacl.public.SealedBox:
        box = self._boxes.get("\0central")
        if box is None:
            public = self.box_public("central_bank")
            if public is None:
                raise LedgerStateError("this ledger has no central bank key: it was made before `--key-to`")
            box = self._boxes["\0central"] = nacl.public.SealedBox(
                nacl.public.PublicKey(bytes.fromhex(public))
            )
        return box

    def bank_box(self, bank: str) -> nacl.public.SealedBox:
        """A sealed box to the bank's X25519 public key: what only that bank opens. A bank that registered no key
        (opened through a client that gave none) is served by the central bank's key until it registers one; the
        central bank is the bank of accounts no commercial bank serves."""
        box = self._boxes.get(bank)
        if box is None:
            public = None if bank == self.central_bank else self.box_public(f"bank:{bank}")
            if public is None:
                return self.central_box()  # not cached: a key registered later is used from then on
            box = self._boxes[bank] = nacl.public.SealedBox(nacl.public.PublicKey(bytes.fromhex(public)))
        return box

    def bank_root(self, bank: str) -> bytes:
        root = self._roots.get(bank)
        if root is None:
            root = self._roots[bank] = self.ring.bank_root(bank)
        return root

    def epoch_key_for(self, handle: str, epoch: int) -> bytes:
        bank = self.bank_of(handle)
        key = self._epoch_keys.get((bank, epoch))
        if key is None:
            key = epoch_key(self.bank_root(bank), epoch)
            self._epoch_keys[(bank, epoch)] = key
        return key

    @property
    def epoch_s(self) -> int:
        return int(self.settings.get("privacy_epoch_s", epoch_s_default))


class DataKey:
    """A random data key sealed to a party's public key (SealedBox: X25519 with a fresh ephemeral key), renewed
    every `records_per_data_key` records and at each chunk where the service says so; each record's field is
    sealed under it with its own random nonce and its own associated data. The operator keeps no copy: only the
    recipient opens the data key. Records sealed under one data key carry the same sealed data key, which tells
    what their neighbouring positions and times in the log tell already."""

    def __init__(self, recipient_hex: str) -> None:
        self.recipient = nacl.public.PublicKey(bytes.fromhex(recipient_hex))
        self.key: bytes | None = None
        self.sealed = b""
        self.uses = 0

    def rotate(self) -> None:
        self.key = secrets.token_bytes(32)
        self.sealed = nacl.public.SealedBox(self.recipient).encrypt(self.key)
        self.uses = 0

    def seal(self, data: bytes, ad: bytes, minimum: int = 0) -> tuple[bytes, bytes]:
        """(sealed data key, sealed data)."""
        if self.key is None or self.uses >= records_per_data_key:
            self.rotate()
        assert self.key is not None
        self.uses += 1
        return self.sealed, seal(self.key, data, ad, minimum)


def open_data_key(sealed: str | bytes, box_key: nacl.public.PrivateKey) -> bytes | None:
    try:
        return nacl.public.SealedBox(box_key).decrypt(unb64(sealed))
    except (nacl.exceptions.CryptoError, ValueError, InputError):
        return None


def place(ledger_id: str, record: TraceRecord, field: str) -> bytes:
    """The associated data of one sealed field of a record being encoded."""
    return associated_data(ledger_id, record_ref(record.op_id, record.seq, record.at), field)


def place_of(ledger_id: str, doc: dict, field: str) -> bytes:
    """The same associated data, rebuilt from a stored record."""
    return associated_data(ledger_id, record_ref(doc["op_id"], doc.get("seq"), doc["at"]), field)


class BaseSink:
    """A trace sink: `encode` keeps what the mode keeps. Subclasses fill `fields`."""

    mode = "?"
    journal_leaves = False  # sealed or pseudonymised fields are the mode's own: every record is encoded

    def __init__(self, ctx: SinkContext) -> None:
        self.ctx = ctx

    def begin_chunk(self, at: int) -> list[EncodedTrace]:
        """Called (when the service offers it) at the start of each chunk: a fresh data key per chunk."""
        if self.ctx is not None:
            self.ctx._unregistered.clear()  # a bank registered since is looked up again
        for value in vars(self).values():
            if isinstance(value, DataKey):
                value.key = None
        return []

    def seal_rules(self, record: TraceRecord, doc: dict) -> None:
        """Rule names and report agencies and rules say what kind of party a record touches (a miner's
        revenue rule): sealed to the FMA, which the rules report to, with the rest of the record's metadata."""
        fma = getattr(self, "_fma_rules", None)
        if fma is None:
            fma = self._fma_rules = DataKey(self.ctx.public["box_public"]["fma"])
        body = json.dumps([list(record.rules), reports_brief(record)], separators=(",", ":")).encode()
        doc["rules_key"], doc["rules"] = fma.seal(body, place(self.ctx.ledger_id, record, "rules"))

    def fields(self, record: TraceRecord, doc: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, record: TraceRecord) -> EncodedTrace:
        ctx = self.ctx
        if ctx is not None:  # a sink without a context (transparent) pseudonymises nothing
            for handle, bank in ((record.payer, record.payer_bank), (record.payee, record.payee_bank)):
                if handle and bank is not None:  # the ledger saw the party: trust that over the store's rows
                    ctx._banks[handle] = bank or ctx.central_bank
        doc = {
            "v": PAYLOAD_VERSION,
            "type": "op",
            "mode": self.mode,
            "op_id": record.op_id,
            "at": record.at,
            "seq": record.seq,
            "kind": record.kind,
            "code": record.code,
        }
        self.fields(record, doc)
        # the keyed modes store the compact binary form; transparent keeps its JSON (its format is its own module's)
        payload = dumps(doc) if self.ctx is None else compact.encode(doc)
        return EncodedTrace(
            op_id=record.op_id, at=record.at, mode=self.mode, payload=payload, leaf_hash=leaf_hash(payload)
        )


def reports_brief(record: TraceRecord) -> list[dict]:
    """Reports without their free-text reason (which may name people): agency and rule."""
    return [{"agency": r.agency, "rule": r.rule} for r in record.reports]


def is_payment(record: TraceRecord) -> bool:
    return record.kind in ("transfer", "hold") and record.payer is not None and record.payee is not None


# ---- decoding: what an observer can get out of a stored record with the keys it holds --------------------------


@dataclass
class ObserverKeys:
    """The keys one observer holds, and nothing else.

    `banks` are the banks this observer *is* (root keys) with the accounts each serves (its KYC list); `boxes`
    the box keys it holds (the FMA's, the central bank's); `viewing_boxes` the accounts' viewing keys it holds
    (its own, or disclosed to it), `signing_boxes` the X25519 keys of its own signing keys (what a record of an
    account that registered no viewing key is sealed to), `viewing` viewing keys the old layout kept for accounts;
    `record_keys` / `receipts` single records disclosed to it ((op_id, handle) -> record key / wrap key); `me` the
    account an account holder is."""

    role: str
    banks: dict[str, bytes] = field(default_factory=dict)
    bank_boxes: dict[str, nacl.public.PrivateKey] = field(default_factory=dict)
    customers: dict[str, frozenset[str]] = field(default_factory=dict)
    boxes: dict[str, nacl.public.PrivateKey] = field(default_factory=dict)
    viewing: dict[str, bytes] = field(default_factory=dict)
    viewing_boxes: dict[str, nacl.public.PrivateKey] = field(default_factory=dict)
    signing_boxes: dict[str, nacl.public.PrivateKey] = field(default_factory=dict)
    receipts: dict[tuple[str, str], bytes] = field(default_factory=dict)
    record_keys: dict[tuple[str, str], bytes] = field(default_factory=dict)
    me: str | None = None
    epoch_s: int = epoch_s_default
    ledger_id: str = ""
    _tables: dict[tuple[str, int], dict[str, str]] = field(default_factory=dict)
    _data_keys: dict[tuple[str, str], bytes | None] = field(default_factory=dict)

    @property
    def base_role(self) -> str:
        return self.role if self.role in ("central_bank", "fma") else "public"

    def resolve_pseudonym(self, token: str, epoch: int) -> str | None:
        """The account behind a pseudonym, if one of this observer's banks serves it."""
        for bank, root in self.banks.items():
            table = self._tables.get((bank, epoch))
            if table is None:
                k = epoch_key(root, epoch)
                table = {pseudonym(k, h): h for h in self.customers.get(bank, ())}
                self._tables[(bank, epoch)] = table
            found = table.get(token)
            if found is not None:
                return found
        return None

    def open_for_bank(self, sealed: str, ad: bytes) -> str | None:
        """An identity sealed to the bank that serves it (one attempt per bank this observer is)."""
        for box in self.bank_boxes.values():
            opened = open_sealed_for_bank(box, sealed, ad)
            if opened is not None:
                return opened
        return None

    def data_key(self, holder: str, sealed: str) -> bytes | None:
        box = self.boxes.get(holder)
        if box is None:
            return None
        cache_key = (holder, sealed)
        if cache_key not in self._data_keys:
            self._data_keys[cache_key] = open_data_key(sealed, box)
        return self._data_keys[cache_key]

    def is_customer(self, handle: str | None) -> bool:
        return handle is not None and any(handle in c for c in self.customers.values())


def place_digest(ad: bytes) -> bytes:
    return keyed_hash(b"", ad, person=b"tenge-sealplace", size=32)


def seal_for_bank(box: nacl.public.SealedBox, handle: str, ad: bytes) -> bytes:
    """An identity that only the bank can open: sealed to its X25519 public key (SealedBox: a fresh ephemeral key,
    so a fresh nonce, each time), so the operator holds nothing that opens it. SealedBox takes no associated data:
    a digest of the place goes inside, and the bank checks it, so the ciphertext cannot be moved elsewhere."""
    return box.encrypt(pad(place_digest(ad) + handle.encode(), identity_padded_bytes))


def open_sealed_for_bank(box_key: nacl.public.PrivateKey, sealed: str | bytes, ad: bytes) -> str | None:
    try:
        opened = unpad(nacl.public.SealedBox(box_key).decrypt(unb64(sealed)))
    except (nacl.exceptions.CryptoError, ValueError, InputError):
        return None
    if opened is None or opened[:32] != place_digest(ad):
        return None
    return opened[32:].decode()


Decoded = dict[str, dict[str, object]]  # field -> {level: value} for every level this observer can obtain


def clear_fields(record: dict) -> Decoded:
    return {
        "payer": {"clear": record.get("payer")},
        "payee": {"clear": record.get("payee")},
        "amount": {"clear": record.get("amount_tiyn")},
        "tag": {"clear": record.get("tag")},
        "memo": {"clear": record.get("memo")},
    }


def open_rules(doc: dict, keys: ObserverKeys) -> tuple[list[str], list[dict]] | None:
    """The rule names and reports of a record whose metadata is sealed to the FMA, for an observer holding the
    FMA's box key; None for anyone else (or a record without them)."""
    if "rules_key" not in doc:
        return None
    data_key = keys.data_key("fma", doc["rules_key"])
    if data_key is None:
        return None
    opened = unseal_text(data_key, doc["rules"], place_of(keys.ledger_id, doc, "rules"))
    if opened is None:
        return None
    rules, reports = load_body(opened)
    return rules, reports


def load_body(opened: bytes):
    """A sealed body. The sinks write sealed bodies as JSON: the plaintext is padded to a size class before
    sealing, so the compact form would make no stored field smaller, and Python's JSON encoder is C (the compact
    encoder costs ~6 us more per record on the apply path). Both are read."""
    return compact.decode_value(opened) if compact.is_compact(opened) else json.loads(opened)
