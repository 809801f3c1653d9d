"""Signed notes (C2SP signed-note, https://c2sp.org/signed-note): a text ending in a newline, a blank line, then
signature lines `— <key name> base64(4-byte key ID || signature)`.

Only what the ledger needs: Ed25519 signatures (type 0x01, the log's own) and timestamped Ed25519 cosignatures
(type 0x04, c2sp.org/tlog-cosignature), both with the key ID the specifications give,
SHA-256(name || 0x0A || type || public key)[:4]. Parsing is strict: a note that does not have this shape is an
InputError naming where it came from, never a half-read note."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing

from ..core.errors import InputError

ED25519 = 0x01  # signed-note: the signature type of the log's own Ed25519 signature
COSIGNATURE_V1 = 0x04  # tlog-cosignature: a timestamped Ed25519 witness cosignature
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
# signed-note: verifiers must accept at least 16 signatures; more than this is refused as a malformed note.
note_signatures_max = 64
note_bytes_max = 64 * 1024
key_name_length_max = 256


def key_id(name: str, signature_type: int, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([signature_type]) + public_key).digest()[:4]


def check_key_name(name: str, where: str = "key name") -> str:
    """signed-note: non-empty, no Unicode spaces, no '+' (and nothing a terminal would act on)."""
    if not name or len(name) > key_name_length_max:
        raise InputError(f"a key name must be 1 to {key_name_length_max} characters", where=where)
    if any(c.isspace() or c == "+" or ord(c) < 0x20 or c == "\x7f" for c in name):
        raise InputError("a key name holds no spaces, '+' or control characters", where=where)
    return name


@dataclass(frozen=True, slots=True)
class SignatureLine:
    name: str
    key_id: bytes  # 4 bytes
    signature: bytes  # what follows the key ID: 64 bytes for Ed25519, 8 + 64 for a cosignature

    def line(self) -> str:
        return f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(self.key_id + self.signature).decode()}\n"


@dataclass(frozen=True, slots=True)
class Note:
    text: str  # the note text, ending in a newline
    signatures: tuple[SignatureLine, ...] = ()

    def render(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)

    def with_signature(self, line: SignatureLine) -> Note:
        """The note with `line` added, or replacing an earlier line of the same name and key ID."""
        kept = tuple(s for s in self.signatures if (s.name, s.key_id) != (line.name, line.key_id))
        return Note(self.text, kept + (line,))


def sign_ed25519(text: str, name: str, key: nacl.signing.SigningKey) -> SignatureLine:
    public = bytes(key.verify_key)
    return SignatureLine(name, key_id(name, ED25519, public), key.sign(text.encode()).signature)


def verify_ed25519(note: Note, name: str, public_key: bytes) -> bool:
    """True when `note` carries a valid Ed25519 signature by (name, public_key). Lines of other keys are ignored,
    as signed-note requires."""
    want = key_id(name, ED25519, public_key)
    for s in note.signatures:
        if s.name == name and s.key_id == want:
            return _verifies(public_key, note.text.encode(), s.signature)
    return False


def _verifies(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
        return True
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError, TypeError):
        return False


def parse(text: str, where: str = "note") -> Note:
    """A signed note from its text form; the text is separated from the signatures by the last blank line."""
    if len(text.encode()) > note_bytes_max:
        raise InputError(f"a signed note longer than {note_bytes_max} bytes", where=where)
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise InputError("a signed note holds no control characters but newlines", where=where)
    if not text.endswith("\n"):
        raise InputError("a signed note ends with a newline", where=where)
    cut = text.rfind("\n\n")
    if cut < 0:
        raise InputError("not a signed note: no blank line before the signatures", where=where)
    body, lines = text[: cut + 1], text[cut + 2 :].splitlines()
    if not lines:
        raise InputError("a signed note without a signature", where=where)
    if len(lines) > note_signatures_max:
        raise InputError(f"a signed note with more than {note_signatures_max} signatures", where=where)
    signatures = []
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise InputError(f"not a signature line: {line[:40]!r}", where=where)
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise InputError(f"the signature of {name!r} is not base64", where=where) from None
        if len(raw) < 5 or not name or " " in encoded:
            raise InputError(f"a malformed signature line of {name!r}", where=where)
        signatures.append(SignatureLine(name, raw[:4], raw[4:]))
    return Note(body, tuple(signatures))
