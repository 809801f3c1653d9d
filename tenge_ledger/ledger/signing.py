"""Ed25519 signatures over canonical operation bytes (PyNaCl / libsodium)."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence

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


_verify_keys: dict[bytes, nacl.signing.VerifyKey] = {}  # per process: a pool worker's keys, read-only data


def verify_chunk(items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
    """Verify (message, signature, public key) triples; runs in a pool worker. VerifyKeys are cached."""
    out = []
    for message, signature, public_key in items:
        key = _verify_keys.get(public_key)
        if key is None:
            try:
                key = _verify_keys[public_key] = nacl.signing.VerifyKey(public_key)
            except (ValueError, TypeError):
                out.append(False)
                continue
        try:
            key.verify(message, signature)
            out.append(True)
        except (nacl.exceptions.BadSignatureError, ValueError):
            out.append(False)
    return out


VERIFY_CHUNK = 2_000  # triples per pool task
VERIFY_IN_PROCESS_MAX = 4_000  # fewer than this are verified here: starting a pool costs more


def verify_all(
    items: list[tuple[bytes, bytes, bytes]], progress: Callable[[int], None] | None = None
) -> list[bool]:
    """Verify many triples on every core, in order; `progress(n)` is told of each chunk done."""
    chunks = [items[i : i + VERIFY_CHUNK] for i in range(0, len(items), VERIFY_CHUNK)]
    out: list[bool] = []
    if len(items) <= VERIFY_IN_PROCESS_MAX:
        for chunk in chunks:
            out += verify_chunk(chunk)
            if progress:
                progress(len(chunk))
        return out
    context = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    with context.Pool(cores(), initializer=ignore_interrupts) as pool:
        for chunk, flags in zip(chunks, pool.imap(verify_chunk, chunks), strict=True):
            out += flags
            if progress:
                progress(len(chunk))
    return out


def ignore_interrupts() -> None:
    """A pool worker's start: Ctrl-C reaches the terminal's whole process group, and a worker it ends leaves the
    pool's task queue locked, so the parent's terminate() (leaving the pool's block on KeyboardInterrupt) waited
    for ever. The parent decides; terminate() ends the workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
