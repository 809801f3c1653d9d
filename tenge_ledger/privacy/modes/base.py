"""What every privacy-mode sink shares: the stored envelope, the key context, and the decoding interface.

A stored trace record (the payload of one Merkle leaf) is canonical JSON:

    {"v": 1, "type": "op", "mode": M, "op_id", "at", "seq", "kind", "code", ...fields the mode keeps}

op id, ledger time, journal seq, kind and outcome code are metadata every mode keeps in clear (the traces table
has op id and time anyway); what each mode does with payer, payee, amount, tag and memo is its own module.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.secret

from ...core.hooks import EncodedTrace
from ...core.records import TraceRecord
from ...trace.merkle import leaf_hash
from ..keys import KeyRing, keyed_hash

PAYLOAD_VERSION = 1
MISSING = "\0missing"  # what `account_bank` answers for an account the store does not hold yet
records_per_data_key = (
    1_000  # a data key is sealed once per this many records: one public-key op, not one each
)
epoch_s_default = 7 * 24 * 3600


def dumps(doc: dict) -> bytes:
    """The stored bytes. Key order is the order the sink writes them in (fixed by the code); the leaf hashes
    these exact bytes, so no canonical re-ordering is needed."""
    return json.dumps(doc, separators=(",", ":")).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def epoch_of(at: int, epoch_s: int) -> int:
    return at // epoch_s


def epoch_key(root: bytes, epoch: int) -> bytes:
    return keyed_hash(root, epoch.to_bytes(8, "big"), person=b"tenge-epoch", size=32)


def pseudonym(epoch_k: bytes, handle: str) -> str:
    return keyed_hash(epoch_k, handle.encode(), person=b"tenge-pseudonym", size=16).hex()


# Every key sealed with is used for exactly one message (derived from a fresh random record nonce, or random
# itself), so the XSalsa20-Poly1305 nonce can be fixed: a (key, nonce) pair is never reused.
_NONCE = bytes(nacl.secret.SecretBox.NONCE_SIZE)


def seal_with(key: bytes, data: bytes) -> str:
    """SecretBox (XSalsa20-Poly1305) under a single-use key."""
    return b64(nacl.bindings.crypto_secretbox(data, _NONCE, key))


def open_with(key: bytes, text: str) -> bytes | None:
    try:
        return nacl.bindings.crypto_secretbox_open(unb64(text), _NONCE, key)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        return None


@dataclass
class SinkContext:
    """What a sink needs besides the record: the key ring (banks' keys, accounts' viewing keys), the public
    halves from the ledger settings, and who serves an account."""

    ring: KeyRing
    public: dict
    central_bank: str
    account_bank: Callable[
        [str], str | None
    ]  # handle -> its bank; None when none serves it; MISSING if unknown
    settings: dict = field(default_factory=dict)
    _banks: dict[str, str] = field(default_factory=dict)
    _roots: dict[str, bytes] = field(default_factory=dict)
    _epoch_keys: dict[tuple[str, int], bytes] = field(default_factory=dict)

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

    def bank_root(self, bank: str) -> bytes:
        root = self._roots.get(bank)
        if root is None:
            root = bytes.fromhex(self.ring.ensure_bank(bank)["pseudonym_root"])
            self._roots[bank] = root
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
    """A random data key sealed once to a public key (SealedBox) and rotated every `records_per_data_key`
    records; each record's key is keyed BLAKE2b(data key, record counter), so handing out one record's key
    opens only that record. Every record carries the sealed data key, so it can be opened on its own."""

    def __init__(self, recipient_hex: str) -> None:
        self.recipient = nacl.public.PublicKey(bytes.fromhex(recipient_hex))
        self.uses = records_per_data_key

    def rotate(self) -> None:
        self.key = secrets.token_bytes(32)
        self.sealed = b64(nacl.public.SealedBox(self.recipient).encrypt(self.key))
        self.uses = 0

    def record_key(self) -> tuple[str, int, bytes]:
        """(sealed data key, record counter, record key). Counters never repeat under one data key."""
        if self.uses >= records_per_data_key:
            self.rotate()
        self.uses += 1
        return self.sealed, self.uses, record_key(self.key, self.uses)


def record_key(data_key: bytes, counter: int) -> bytes:
    return keyed_hash(data_key, counter.to_bytes(8, "big"), person=b"tenge-record", size=32)


def open_data_key(sealed: str, box_key: nacl.public.PrivateKey) -> bytes | None:
    try:
        return nacl.public.SealedBox(box_key).decrypt(unb64(sealed))
    except (nacl.exceptions.CryptoError, ValueError):
        return None


class BaseSink:
    """A trace sink: `encode` keeps what the mode keeps. Subclasses fill `fields`."""

    mode = "?"

    def __init__(self, ctx: SinkContext) -> None:
        self.ctx = ctx

    def begin_chunk(self, at: int) -> list[EncodedTrace]:
        """Called (when the service offers it) at the start of each chunk: rotate data keys."""
        for value in vars(self).values():
            if isinstance(value, DataKey):
                value.uses = records_per_data_key
        return []

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
        payload = dumps(doc)
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
    the box keys it holds (the FMA's, the central bank's); `viewing` the viewing keys disclosed to it, `receipts`
    single-record keys disclosed to it ((op_id, handle) -> wrap key); `me` the account an account holder is."""

    role: str
    banks: dict[str, bytes] = field(default_factory=dict)
    customers: dict[str, frozenset[str]] = field(default_factory=dict)
    boxes: dict[str, nacl.public.PrivateKey] = field(default_factory=dict)
    viewing: dict[str, bytes] = field(default_factory=dict)
    receipts: dict[tuple[str, str], bytes] = field(default_factory=dict)
    me: str | None = None
    epoch_s: int = epoch_s_default
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

    def open_for_bank(self, sealed: str, nonce: str) -> str | None:
        """An identity sealed to the bank that serves it (one attempt per bank this observer is)."""
        for root in self.banks.values():
            opened = open_with(bank_record_key(root, unb64(nonce)), sealed)
            if opened is not None:
                return opened.decode()
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


def bank_record_key(root: bytes, nonce: bytes) -> bytes:
    return keyed_hash(root, nonce, person=b"tenge-bankseal", size=32)


def seal_for_bank(root: bytes, handle: str) -> tuple[str, str]:
    """(nonce, sealed identity) that only the bank holding `root` can open."""
    nonce = secrets.token_bytes(16)
    return b64(nonce), seal_with(bank_record_key(root, nonce), handle.encode())


Decoded = dict[str, dict[str, object]]  # field -> {level: value} for every level this observer can obtain


def clear_fields(record: dict) -> Decoded:
    return {
        "payer": {"clear": record.get("payer")},
        "payee": {"clear": record.get("payee")},
        "amount": {"clear": record.get("amount_tiyn")},
        "tag": {"clear": record.get("tag")},
        "memo": {"clear": record.get("memo")},
    }
