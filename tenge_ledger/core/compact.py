"""The compact binary form of a stored trace payload (the non-transparent privacy modes' records).

A payload is `MAGIC` then one map. Each value starts with a one-byte tag:

    0 None   1 True   2 False   3 int (zig-zag LEB128)   4 text (length, UTF-8)   5 bytes (length, raw)
    6 hex text (length, the raw bytes: lowercase hex of even length, such as a pseudonym, kept at half the size)
    7 list (count, values)   8 map (count, then key and value pairs)

A map key is one byte, its index in `KEYS`, or 255 followed by the key as text. Lengths and counts are LEB128.
Sealed fields are raw bytes (no base64): a record is 58-73 % of its JSON size. JSON payloads (every
record written before this form, and the records of other writers) start with `{` and are read as JSON:
`load_doc` reads both. Decoding is strict: a truncated or trailing byte, an unknown tag or a text that is not
UTF-8 raises ValueError, as `json.loads` does for bad JSON.
"""

from __future__ import annotations

import json

MAGIC = b"\x00tc1"  # never the start of a JSON text

# The keys the privacy sinks write (envelope and fields); order is the format: append only, never reorder.
KEYS: tuple[str, ...] = (
    "v", "type", "mode", "op_id", "at", "seq", "kind", "code",
    "epoch", "payer", "payee", "amount_tiyn", "tag", "memo", "tier",
    "rules_key", "rules", "fma_key", "fma_ident", "payer_sealed", "payee_sealed",
    "kem", "sealed", "wraps", "salt",
    "message", "signer", "postings", "reports", "policy_set_id", "account", "agency", "reason", "rule",
)  # fmt: skip
_KEY_ID = {k: i for i, k in enumerate(KEYS)}
_OTHER_KEY = 255
_HEX_MIN = 16  # shorter hex-looking text is left as text (a handle like "cafe" stays what it is)
_HEX_DIGITS = frozenset("0123456789abcdef")

if len(KEYS) >= _OTHER_KEY:  # pragma: no cover - a format limit, checked at import
    raise ImportError("compact.KEYS is full")


def _uint(n: int, out: bytearray) -> None:
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _value(v: object, out: bytearray) -> None:
    if v is None:
        out.append(0)
    elif v is True:
        out.append(1)
    elif v is False:
        out.append(2)
    elif isinstance(v, int):
        out.append(3)
        _uint((v << 1) if v >= 0 else ((-v << 1) - 1), out)
    elif isinstance(v, str):
        if len(v) >= _HEX_MIN and not len(v) % 2 and _HEX_DIGITS.issuperset(v):
            raw = bytes.fromhex(v)
            out.append(6)
        else:
            raw = v.encode()
            out.append(4)
        _uint(len(raw), out)
        out += raw
    elif isinstance(v, bytes | bytearray):
        out.append(5)
        _uint(len(v), out)
        out += v
    elif isinstance(v, list | tuple):
        out.append(7)
        _uint(len(v), out)
        for item in v:
            _value(item, out)
    elif isinstance(v, dict):
        out.append(8)
        _map(v, out)
    else:
        raise TypeError(f"no compact form for {type(v).__name__}")


def _map(doc: dict, out: bytearray) -> None:
    _uint(len(doc), out)
    key_id = _KEY_ID
    for k, v in doc.items():
        i = key_id.get(k)
        if i is None:
            out.append(_OTHER_KEY)
            raw = k.encode()
            _uint(len(raw), out)
            out += raw
        else:
            out.append(i)
        # the envelope's usual values inline (one call per record, not one per field): the apply path pays this
        t = type(v)
        if t is bytes and len(v) < 0x80:
            out.append(5)
            out.append(len(v))
            out += v
        elif t is str and len(v) < _HEX_MIN and len(v) < 0x80 and v.isascii():
            out.append(4)
            out.append(len(v))
            out += v.encode()
        elif t is int and 0 <= v < 0x40:
            out.append(3)
            out.append(v << 1)
        else:
            _value(v, out)


def encode(doc: dict) -> bytes:
    """The payload of `doc` (a map of text keys to None, bool, int, text, bytes, lists and maps)."""
    out = bytearray(MAGIC)
    _map(doc, out)
    return bytes(out)


def encode_value(value: object) -> bytes:
    """One value alone (a sealed body), behind the same magic."""
    out = bytearray(MAGIC)
    _value(value, out)
    return bytes(out)


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def uint(self) -> int:
        n = shift = 0
        while True:
            if self.pos >= len(self.data) or shift > 70:
                raise ValueError("a truncated compact payload")
            b = self.data[self.pos]
            self.pos += 1
            n |= (b & 0x7F) << shift
            if b < 0x80:
                return n
            shift += 7

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise ValueError("a truncated compact payload")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def value(self, depth: int = 0) -> object:
        if depth > 16:
            raise ValueError("a compact payload nested too deep")
        tag = self.take(1)[0]
        if tag == 0:
            return None
        if tag == 1:
            return True
        if tag == 2:
            return False
        if tag == 3:
            z = self.uint()
            return (z >> 1) if not z & 1 else -((z + 1) >> 1)
        if tag == 4:
            return self.take(self.uint()).decode()
        if tag == 5:
            return self.take(self.uint())
        if tag == 6:
            return self.take(self.uint()).hex()
        if tag == 7:
            return [self.value(depth + 1) for _ in range(self.uint())]
        if tag == 8:
            return self.map(depth + 1)
        raise ValueError(f"unknown compact tag {tag}")

    def map(self, depth: int = 0) -> dict:
        out = {}
        for _ in range(self.uint()):
            i = self.take(1)[0]
            if i == _OTHER_KEY:
                key = self.take(self.uint()).decode()
            elif i < len(KEYS):
                key = KEYS[i]
            else:
                raise ValueError(f"unknown compact key {i}")
            out[key] = self.value(depth)
        return out


def is_compact(payload: bytes) -> bool:
    return payload[: len(MAGIC)] == MAGIC


def decode(payload: bytes) -> dict:
    """The map of a compact payload; ValueError when it is not one, or damaged."""
    return _read_whole(payload, "payload", _Reader.map)  # type: ignore[return-value]


def decode_value(payload: bytes) -> object:
    return _read_whole(payload, "value", _Reader.value)


def _read_whole(payload: bytes, what: str, read) -> object:
    """One item read from after the magic prefix, which must end the bytes exactly."""
    if not is_compact(payload):
        raise ValueError(f"not a compact {what}")
    reader = _Reader(bytes(payload), len(MAGIC))
    out = read(reader)
    if reader.pos != len(payload):
        raise ValueError(f"trailing bytes after a compact {what}")
    return out


def load_doc(payload: bytes) -> dict:
    """A stored payload as a map, whichever form it was written in (compact, or JSON); ValueError otherwise."""
    doc = decode(payload) if is_compact(payload) else json.loads(payload)
    if not isinstance(doc, dict):
        raise ValueError("a trace payload that is not a map")
    return doc
