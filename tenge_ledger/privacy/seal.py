"""Every encryption of the privacy modes: XChaCha20-Poly1305 (IETF) with a fresh random 24-byte nonce, associated
data that pins the ciphertext to its ledger, record and field, and the plaintext padded to a size class.

A random 192-bit nonce never repeats in practice (2^96 messages under one key before a collision is even
likely), so no key in this package is used with a counter or a fixed nonce; `tests/test_privacy_sealing.py`
scans a busy ledger's stored log for any repeated nonce.

The sealed form is `nonce || ciphertext || tag`: raw bytes in the compact binary payload (`core/compact.py`), base64
in the JSON payloads written before it (both are read). The associated data is not stored:
the reader rebuilds it from where the ciphertext sits (ledger id, record reference, field name), so a ciphertext
copied into another record, another ledger or another field does not open.
"""

from __future__ import annotations

import base64
import secrets

import nacl.bindings
import nacl.exceptions

from ..core.errors import InputError

KEY_BYTES = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_KEYBYTES
NONCE_BYTES = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
TAG_BYTES = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_ABYTES
AD_VERSION = b"tenge-seal-v1"

# Sealed plaintexts are padded (ISO/IEC 7816-4: 0x80 then zeros) to the smallest of these sizes that holds them,
# then to a multiple of the largest: a ciphertext's length tells which class, not a handle's or a memo's length.
padding_classes_bytes = (64, 256, 1024, 4096)
# An identity sealed alone (digest of its place + a handle) or as a pair (two handles in JSON) is lifted to this
# size, so every identity of the ledger seals to one length whatever its handle.
identity_padded_bytes = 32 + 2 * 64 + 16  # place digest, two handles of handle_length_max, JSON punctuation

_encrypt = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt
_decrypt = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt


def frame(*parts: bytes) -> bytes:
    """Length-prefixed concatenation: no two different part lists give the same bytes."""
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def record_ref(op_id: str, seq: int | None, at: int) -> str:
    """The record a sealed field belongs to, known when the sink encodes it (the trace index is assigned only
    when the record is appended): op id, journal seq (none for a rejection) and ledger time."""
    return f"{op_id}\0{'' if seq is None else seq}\0{at}"


def associated_data(ledger_id: str, record: str, field: str) -> bytes:
    return frame(AD_VERSION, ledger_id.encode(), record.encode(), field.encode())


def padded_size(length: int, minimum: int = 0) -> int:
    """The size class of a plaintext of `length` bytes; `minimum` lifts every plaintext of a kind (identities, whose
    longest form is known) into one class."""
    for size in padding_classes_bytes:
        if length < size and minimum <= size:
            return size
    top = padding_classes_bytes[-1]
    return (length // top + 1) * top


def pad(data: bytes, minimum: int = 0) -> bytes:
    return data + b"\x80" + bytes(padded_size(len(data), minimum) - len(data) - 1)


def unpad(data: bytes) -> bytes | None:
    stripped = data.rstrip(b"\0")
    if not stripped.endswith(b"\x80"):
        return None
    return stripped[:-1]


def seal(key: bytes, plaintext: bytes, ad: bytes, minimum: int = 0) -> bytes:
    """nonce || AEAD(key, nonce, pad(plaintext), ad), with a fresh random nonce."""
    if len(key) != KEY_BYTES:
        raise ValueError("an AEAD key is 32 bytes")
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + _encrypt(pad(plaintext, minimum), ad, nonce, key)


def unseal(key: bytes, sealed: bytes, ad: bytes) -> bytes | None:
    """The plaintext, or None when the key, the place (associated data) or the bytes are wrong."""
    if len(sealed) < NONCE_BYTES + TAG_BYTES or len(key) != KEY_BYTES:
        return None
    try:
        opened = _decrypt(sealed[NONCE_BYTES:], ad, sealed[:NONCE_BYTES], key)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        return None
    return unpad(opened)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: object) -> bytes:
    """A stored sealed field as bytes: raw in a compact payload, base64 in a JSON one."""
    if isinstance(text, bytes):
        return text
    try:
        return base64.b64decode(str(text), validate=True)
    except ValueError:
        raise InputError("a sealed field that is not base64") from None


def seal_text(key: bytes, plaintext: bytes, ad: bytes, minimum: int = 0) -> str:
    return b64(seal(key, plaintext, ad, minimum))


def unseal_text(key: bytes, text: object, ad: bytes) -> bytes | None:
    if isinstance(text, bytes):
        return unseal(key, text, ad)
    try:
        raw = base64.b64decode(str(text), validate=True)
    except ValueError:
        return None
    return unseal(key, raw, ad)


def nonce_of(text: str | bytes) -> bytes:
    """The nonce a stored sealed field was made with (for the nonce-uniqueness scan)."""
    return unb64(text)[:NONCE_BYTES]
