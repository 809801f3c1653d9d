"""Ed25519 signatures over canonical operation bytes (PyNaCl / libsodium)."""

from __future__ import annotations

import dataclasses

import nacl.exceptions
import nacl.signing

from ..core.canonical import canonical_bytes
from ..core.records import Operation


def new_signing_key() -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey.generate()


def public_key_hex(key: nacl.signing.SigningKey) -> str:
    return bytes(key.verify_key).hex()


def sign(ledger_id: str, op: Operation, key: nacl.signing.SigningKey) -> Operation:
    """Return `op` with its signature set; inner operations of a batch must be signed before the batch."""
    signature = key.sign(canonical_bytes(ledger_id, op)).signature.hex()
    return dataclasses.replace(op, signature=signature)


def verify(ledger_id: str, op: Operation, public_key: str) -> bool:
    return verify_bytes(canonical_bytes(ledger_id, op), op.signature, public_key)


def verify_bytes(message: bytes, signature_hex: str, public_key: str) -> bool:
    if len(signature_hex) != 128:
        return False
    try:
        nacl.signing.VerifyKey(bytes.fromhex(public_key)).verify(message, bytes.fromhex(signature_hex))
    except (nacl.exceptions.BadSignatureError, ValueError):
        return False
    return True
