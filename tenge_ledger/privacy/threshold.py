"""Threshold escrow: k-of-n opening of one record at a time, without ever rebuilding the escrow secret.

The construction (all in the Ed25519 prime-order group, order L, base point B, through libsodium's
`crypto_core_ed25519_*` and `crypto_scalarmult_ed25519_*_noclamp`):

- Dealing, one of two ways. With a dealer (`deal`, once, at `init`, simpler for a pilot): a random polynomial f
  of degree k-1 over Z_L; the escrow secret x = f(0). Holder i (1-based) gets x_i = f(i) and an Ed25519 signing
  key; the coefficients are dropped as soon as the shares are made, but the `init` process held them for an
  instant. Without one (`dkg.py`, joint-Feldman): every holder deals a polynomial of its own and x is their sum,
  which no process ever holds. Either way the public material is Y = x*B, each Y_i = x_i*B and each holder's
  verify key.
- Sealing one record (`encapsulate`, hashed ElGamal KEM): a fresh r, R = r*B, S = r*Y, record key
  K = BLAKE2b(ledger id, R, S). The record is sealed with K (XChaCha20-Poly1305, `seal.py`). Every record has its
  own r, so no two records share anything a reader could link them by.
- Opening (`partial_decrypt`, by each holder on its own machine): D_i = x_i*R, with a Chaum-Pedersen proof that
  log_B(Y_i) = log_R(D_i) (Fiat-Shamir; the challenge hashes a domain tag, the ledger id, the record, the case
  and the legal basis, so a partial is good for that one opening only), and the holder's Ed25519 signature over
  the same statement and a digest of (D_i, proof).
- Combining (`combine`): verify every partial (a bad one is named), then S = sum(lambda_i * D_i) over k of them,
  Lagrange coefficients at 0 applied in the exponent. What the quorum learns is S for this R: this record's key,
  and nothing that opens another record.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nacl.bindings as sodium
import nacl.exceptions
import nacl.signing

from ..core.errors import InputError
from ..core.files import create_new_private
from .seal import frame

L = 2**252 + 27742317777372353535851937790883648493  # order of the Ed25519 prime-order subgroup
SCHEME = "tenge-escrow-v1"
SHARE_FILE_KIND = "tenge-escrow-share"
PARTIAL_FILE_KIND = "tenge-escrow-partial"
POINT_BYTES = 32
HOLDER_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")  # an escrow holder's name

# ---- scalars and points --------------------------------------------------------------------------------------


def scalar_bytes(x: int) -> bytes:
    return (x % L).to_bytes(32, "little")


def scalar_int(data: bytes) -> int:
    return int.from_bytes(data, "little") % L


def random_scalar() -> int:
    """Uniform in [1, L): 64 random bytes reduced mod L (bias below 2^-250)."""
    while True:
        x = scalar_int(sodium.crypto_core_ed25519_scalar_reduce(secrets.token_bytes(64)))
        if x:
            return x


def base_mul(x: int) -> bytes:
    return sodium.crypto_scalarmult_ed25519_base_noclamp(scalar_bytes(x))


def mul(x: int, point: bytes) -> bytes:
    """x * point. libsodium refuses a point off the prime-order subgroup, of small order or not canonical."""
    return sodium.crypto_scalarmult_ed25519_noclamp(scalar_bytes(x), point)


def is_point(data: object) -> bool:
    return (
        isinstance(data, bytes)
        and len(data) == POINT_BYTES
        and sodium.crypto_core_ed25519_is_valid_point(data)
    )


def hash_to_scalar(*parts: bytes) -> int:
    digest = hashlib.blake2b(frame(*parts), digest_size=64, person=b"tenge-escrow-cp").digest()
    return scalar_int(sodium.crypto_core_ed25519_scalar_reduce(digest))


def lagrange_at_zero(index: int, indices: Sequence[int]) -> int:
    num = den = 1
    for j in indices:
        if j != index:
            num = num * j % L
            den = den * (j - index) % L
    return num * pow(den, -1, L) % L


# ---- public material and shares ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HolderPublic:
    """What everyone may know of one holder: its share's public point Y_i and its signature verify key."""

    name: str
    index: int
    verification_point: bytes  # Y_i = x_i * B
    verify_key: bytes  # Ed25519, signs the holder's consent to each opening


@dataclass(frozen=True, slots=True)
class EscrowPublic:
    """The escrow's public material, kept in the ledger settings (the operator holds nothing else)."""

    ledger_id: str
    group_public: bytes  # Y = x * B
    threshold: int
    holders: tuple[HolderPublic, ...]
    # Set when the holders generated the key among themselves (`dkg.py`): the ceremony's id and the digest of its
    # transcript (every dealing), which the holders' share files carry too.
    ceremony: str | None = None
    transcript: bytes | None = None

    def holder(self, name: str) -> HolderPublic | None:
        return next((h for h in self.holders if h.name == name), None)

    def to_json(self) -> dict:
        out = {
            "scheme": SCHEME,
            "ledger_id": self.ledger_id,
            "group_public": self.group_public.hex(),
            "threshold": self.threshold,
            "holders": [
                {"name": h.name, "index": h.index, "verification_point": h.verification_point.hex(),
                 "verify_key": h.verify_key.hex()}
                for h in self.holders
            ],
        }  # fmt: skip
        if self.transcript is not None:
            out.update(ceremony=self.ceremony, transcript=self.transcript.hex())
        return out

    @classmethod
    def from_json(cls, data: dict) -> EscrowPublic:
        if data.get("scheme") != SCHEME:
            raise InputError(f"escrow material of an unknown scheme {data.get('scheme')!r}")
        holders = tuple(
            HolderPublic(str(h["name"]), int(h["index"]), bytes.fromhex(h["verification_point"]),
                         bytes.fromhex(h["verify_key"]))
            for h in data["holders"]
        )  # fmt: skip
        transcript = data.get("transcript")
        return cls(
            str(data["ledger_id"]), bytes.fromhex(data["group_public"]), int(data["threshold"]), holders,
            str(data["ceremony"]) if transcript else None, bytes.fromhex(transcript) if transcript else None,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class HolderShare:
    """One holder's secret: its share x_i of the escrow scalar and its signing key. Lives only in the holder's own
    file: written by `init` (with a dealer; bound to the ledger by its id) or by the holder's own `tenge escrow
    finish` (no dealer; bound to its ceremony's transcript and group key, since no ledger exists yet)."""

    ledger_id: str  # "" for a share of a key generation ceremony
    holder: str
    index: int
    secret: int  # x_i
    signing_seed: bytes
    ceremony: str | None = None
    transcript: bytes | None = None  # digest of every dealing of the ceremony
    group_public: bytes | None = None  # Y

    @property
    def signing_key(self) -> nacl.signing.SigningKey:
        return nacl.signing.SigningKey(self.signing_seed)

    def to_json(self) -> dict:
        out = {"kind": SHARE_FILE_KIND, "scheme": SCHEME, "ledger_id": self.ledger_id, "holder": self.holder,
               "index": self.index, "share": scalar_bytes(self.secret).hex(),
               "signing_key": self.signing_seed.hex()}  # fmt: skip
        if self.transcript is not None:
            assert self.group_public is not None
            out.update(
                ceremony=self.ceremony, transcript=self.transcript.hex(), group_public=self.group_public.hex()
            )
        return out

    @classmethod
    def from_json(cls, data: object, where: str) -> HolderShare:
        try:
            if not isinstance(data, dict) or data.get("kind") != SHARE_FILE_KIND:
                raise ValueError
            seed = bytes.fromhex(data["signing_key"])
            raw = bytes.fromhex(data["share"])
            if len(seed) != 32 or len(raw) != 32:
                raise ValueError
            transcript = bytes.fromhex(data["transcript"]) if data.get("transcript") else None
            group = bytes.fromhex(data["group_public"]) if transcript is not None else None
            return cls(str(data["ledger_id"]), str(data["holder"]), int(data["index"]), scalar_int(raw), seed,
                       str(data["ceremony"]) if transcript is not None else None, transcript, group)  # fmt: skip
        except (KeyError, TypeError, ValueError):
            raise InputError("not an escrow key share file", where=where) from None

    def belongs_to(self, public: EscrowPublic) -> str | None:
        """Why this share is not one of `public`'s escrow; None when it is. A dealt share names its ledger; a
        share of a key generation names its ceremony's transcript, which the ledger's escrow records: a share of
        another ledger (another ceremony, or a dealt one) is refused either way."""
        if self.transcript is not None:
            if public.transcript != self.transcript or public.group_public != self.group_public:
                return (f"the share of {self.holder} belongs to another ledger (key generation ceremony "
                        f"{self.ceremony!r}, not this ledger's escrow)")  # fmt: skip
        elif public.transcript is not None or self.ledger_id != public.ledger_id:
            return f"the share of {self.holder} belongs to another ledger ({self.ledger_id})"
        holder = public.holder(self.holder)
        if holder is None or holder.index != self.index:
            return f"the share of {self.holder} is not one of this ledger's escrow holders' shares"
        return None


def deal(ledger_id: str, holders: Sequence[str], threshold: int) -> tuple[EscrowPublic, list[HolderShare]]:
    """Split a fresh escrow scalar k-of-n among `holders` (in order, indices 1..n)."""
    n = len(holders)
    if len(set(holders)) != n:
        raise InputError("each escrow holder may be named once")
    if not 1 <= threshold <= n:
        raise InputError(f"a threshold of {threshold} out of {n} holders is impossible")
    coeffs = [random_scalar() for _ in range(threshold)]
    shares, public_holders = [], []
    for index, name in enumerate(holders, start=1):
        x_i = 0
        for c in reversed(coeffs):
            x_i = (x_i * index + c) % L
        seed = secrets.token_bytes(32)
        shares.append(HolderShare(ledger_id, name, index, x_i, seed))
        verify_key = bytes(nacl.signing.SigningKey(seed).verify_key)
        public_holders.append(HolderPublic(name, index, base_mul(x_i), verify_key))
    group_public = base_mul(coeffs[0])
    coeffs.clear()  # the escrow scalar itself is never kept, written or returned
    return EscrowPublic(ledger_id, group_public, threshold, tuple(public_holders)), shares


def write_share_file(path: str | os.PathLike, share: HolderShare) -> None:
    """Create the holder's file, readable by its owner only; an existing file is never overwritten."""
    create_new_private(path, json.dumps(share.to_json(), indent=2), "share file")


def read_share_file(path: str | os.PathLike) -> HolderShare:
    target = Path(path)
    try:
        data = json.loads(target.read_text())
    except FileNotFoundError:
        raise InputError("no such share file", where=str(target)) from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InputError("not an escrow key share file", where=str(target)) from None
    return HolderShare.from_json(data, str(target))


# ---- sealing one record --------------------------------------------------------------------------------------


def record_key(ledger_id: str, kem: bytes, shared: bytes) -> bytes:
    return hashlib.blake2b(
        frame(SCHEME.encode(), ledger_id.encode(), kem, shared), digest_size=32, person=b"tenge-escrow-kdf"
    ).digest()


def encapsulate(ledger_id: str, group_public: bytes, r: int | None = None) -> tuple[bytes, bytes]:
    """(R, record key) for one record: two scalar multiplications. `r` is for the batch maker below only."""
    r = random_scalar() if r is None else r
    kem = base_mul(r)
    return kem, record_key(ledger_id, kem, mul(r, group_public))


def encapsulate_many(ledger_id: str, group_public: bytes, n: int) -> list[tuple[bytes, bytes]]:
    """n encapsulations, their randomness drawn from the OS in one call (64 bytes reduced mod L per scalar)."""
    pool = secrets.token_bytes(64 * n)
    out = []
    for i in range(n):
        r = scalar_int(sodium.crypto_core_ed25519_scalar_reduce(pool[64 * i : 64 * i + 64]))
        out.append(encapsulate(ledger_id, group_public, r or random_scalar()))
    return out


ENCAPSULATION_BYTES = 64  # R || record key, as a worker process sends them
request_count_max = 4_096  # encapsulations one request to a worker may ask for


class _Worker:
    """One `kem_worker` process and the counts of its requests not yet answered, oldest first."""

    def __init__(self, ledger_id: str, group_public: bytes) -> None:
        # the package's own parent directory first on the path: the worker runs this very code, installed or not
        root = str(Path(__file__).resolve().parent.parent.parent)
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tenge_ledger.privacy.kem_worker", ledger_id, group_public.hex()],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        self.asked: deque[int] = deque()

    def ask(self, n: int) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(n.to_bytes(4, "big"))
        self.process.stdin.flush()
        self.asked.append(n)

    def answer(self) -> list[tuple[bytes, bytes]]:
        assert self.process.stdout is not None
        n = self.asked.popleft()
        data = self.process.stdout.read(n * ENCAPSULATION_BYTES)
        if len(data) != n * ENCAPSULATION_BYTES:
            raise OSError("the encapsulation worker stopped")
        return [(data[i : i + 32], data[i + 32 : i + 64]) for i in range(0, len(data), ENCAPSULATION_BYTES)]

    def stop(self) -> None:
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                stream.close()  # type: ignore[union-attr]
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Encapsulations:
    """Fresh encapsulations, one taken per record and never reused; for a busy sink, made ahead on other cores.

    The two scalar multiplications of an encapsulation do not depend on the record. A sink's first
    `inline_records` are encapsulated in place (a small ledger starts no process); after that, worker processes
    (`kem_worker`, one per core) make them in batches while the apply path runs. Each worker is asked at most
    two batches ahead (at most 32 KiB in its pipe) and idles once it has answered them, so it never takes a core
    from the apply path for nothing; `take` mostly pops one. Processes, not threads: a thread would wait for the
    GIL that the apply path holds between C calls. If a worker cannot start or stops, encapsulation goes on in
    place. The workers belong to their sink: nothing is shared."""

    def __init__(
        self, ledger_id: str, group_public: bytes, batch: int = 256, workers: int | None = None,
        inline_records: int = 512,
    ) -> None:  # fmt: skip
        self.ledger_id = ledger_id
        self.group_public = group_public
        self.batch = min(batch, request_count_max)
        self.worker_count = workers if workers is not None else max(1, os.cpu_count() or 1)
        self.inline_left = inline_records
        self._ready: deque[tuple[bytes, bytes]] = deque()
        self._workers: list[_Worker] = []
        self._next = 0

    def take(self) -> tuple[bytes, bytes]:
        if self._ready:
            return self._ready.popleft()
        if self.inline_left > 0:
            self.inline_left -= 1
            if self.inline_left == 0:
                self._start()
            return encapsulate(self.ledger_id, self.group_public)
        if not self._workers:
            return encapsulate(self.ledger_id, self.group_public)
        worker = self._workers[self._next % len(self._workers)]
        self._next += 1
        try:
            self._ready.extend(worker.answer())
            worker.ask(self.batch)
        except (OSError, ValueError):
            self.close()
            return encapsulate(self.ledger_id, self.group_public)
        return self._ready.popleft()

    def _start(self) -> None:
        try:
            for _ in range(self.worker_count):
                worker = _Worker(self.ledger_id, self.group_public)
                self._workers.append(worker)
                worker.ask(self.batch)
                worker.ask(self.batch)
        except (OSError, ValueError):
            self.close()

    def close(self) -> None:
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop()
        self._ready.clear()

    def __del__(self) -> None:
        self.close()


# ---- opening one record: partials, proofs, consent, combination ------------------------------------------------


def opening_statement(ledger_id: str, record: str, case: str, basis: str) -> bytes:
    """What a partial decryption is for: this ledger, this record, this case, this legal basis."""
    return frame(SCHEME.encode(), ledger_id.encode(), record.encode(), case.encode(), basis.encode())


@dataclass(frozen=True, slots=True)
class Partial:
    """Holder `holder`'s contribution to one opening: D_i = x_i * R, its proof (c, z), and the holder's signature
    over the statement and a digest of all three."""

    holder: str
    index: int
    point: bytes  # D_i
    challenge: int  # c
    response: int  # z
    signature: bytes

    def digest(self) -> bytes:
        return hashlib.blake2b(
            frame(self.point, scalar_bytes(self.challenge), scalar_bytes(self.response)),
            digest_size=32, person=b"tenge-escrow-pd",
        ).digest()  # fmt: skip

    def consent(self) -> dict:
        """What the access log keeps: who took part, verifiable with the holder's public key, without D_i
        (k of those in a public log would open the record for every reader)."""
        return {"holder": self.holder, "index": self.index, "digest": self.digest().hex(),
                "signature": self.signature.hex()}  # fmt: skip

    def to_json(self) -> dict:
        return {"kind": PARTIAL_FILE_KIND, "holder": self.holder, "index": self.index, "point": self.point.hex(),
                "challenge": scalar_bytes(self.challenge).hex(), "response": scalar_bytes(self.response).hex(),
                "signature": self.signature.hex()}  # fmt: skip

    @classmethod
    def from_json(cls, data: object, where: str) -> Partial:
        try:
            if not isinstance(data, dict) or data.get("kind") != PARTIAL_FILE_KIND:
                raise ValueError
            return cls(str(data["holder"]), int(data["index"]), bytes.fromhex(data["point"]),
                       scalar_int(bytes.fromhex(data["challenge"])), scalar_int(bytes.fromhex(data["response"])),
                       bytes.fromhex(data["signature"]))  # fmt: skip
        except (KeyError, TypeError, ValueError):
            raise InputError("not a partial decryption file", where=where) from None


def _challenge(statement: bytes, holder: str, index: int, y_i: bytes, kem: bytes, d_i: bytes, a1: bytes,
               a2: bytes) -> int:  # fmt: skip
    return hash_to_scalar(b"chaum-pedersen", statement, holder.encode(), index.to_bytes(4, "big"), y_i, kem,
                          d_i, a1, a2)  # fmt: skip


def consent_message(statement: bytes, holder: str, digest: bytes) -> bytes:
    return frame(b"tenge-escrow-consent", statement, holder.encode(), digest)


def partial_decrypt(share: HolderShare, kem: bytes, statement: bytes) -> Partial:
    """Holder's partial decryption of the record whose KEM point is `kem`, proved and signed for `statement`."""
    if not is_point(kem):
        raise InputError("the record's key encapsulation is not a valid group element")
    d_i = mul(share.secret, kem)
    w = random_scalar()
    a1, a2 = base_mul(w), mul(w, kem)
    c = _challenge(statement, share.holder, share.index, base_mul(share.secret), kem, d_i, a1, a2)
    z = (w + c * share.secret) % L
    unsigned = Partial(share.holder, share.index, d_i, c, z, b"")
    signature = share.signing_key.sign(consent_message(statement, share.holder, unsigned.digest())).signature
    return Partial(share.holder, share.index, d_i, c, z, signature)


def check_partial(public: EscrowPublic, partial: Partial, kem: bytes, statement: bytes) -> str | None:
    """Why `partial` is not a correct, consented contribution to this opening; None when it is."""
    holder = public.holder(partial.holder)
    if holder is None:
        return f"{partial.holder!r} is not an escrow holder of this ledger"
    if holder.index != partial.index:
        return f"the partial decryption of {partial.holder} carries index {partial.index}, not {holder.index}"
    try:
        nacl.signing.VerifyKey(holder.verify_key).verify(
            consent_message(statement, partial.holder, partial.digest()), partial.signature
        )
    except (nacl.exceptions.BadSignatureError, ValueError):
        return f"the partial decryption of {partial.holder} is not signed by {partial.holder} for this case and record"
    if not is_point(partial.point) or not partial.challenge or not partial.response:
        return f"the partial decryption of {partial.holder} is not a group element"
    try:
        # A1 = z*B - c*Y_i and A2 = z*R - c*D_i; the proof holds when they hash back to c.
        a1 = sodium.crypto_core_ed25519_sub(
            base_mul(partial.response), mul(partial.challenge, holder.verification_point)
        )
        a2 = sodium.crypto_core_ed25519_sub(mul(partial.response, kem), mul(partial.challenge, partial.point))
    except (nacl.exceptions.RuntimeError, nacl.exceptions.CryptoError, ValueError):
        return f"the proof of {partial.holder}'s partial decryption does not verify"
    expected = _challenge(statement, partial.holder, partial.index, holder.verification_point, kem, partial.point,
                          a1, a2)  # fmt: skip
    if expected != partial.challenge:
        return f"the proof of {partial.holder}'s partial decryption does not verify"
    return None


def combine(public: EscrowPublic, partials: Sequence[Partial], kem: bytes, statement: bytes) -> bytes:
    """This record's key from k verified partials. Raises InputError naming any holder whose partial is wrong,
    or saying how many are missing; the escrow scalar is never formed."""
    seen: dict[str, Partial] = {}
    for p in partials:
        if p.holder in seen:
            raise InputError(f"{p.holder} contributed twice")
        reason = check_partial(public, p, kem, statement)
        if reason is not None:
            raise InputError(reason)
        seen[p.holder] = p
    if len(seen) < public.threshold:
        raise InputError(
            f"{len(seen)} verified partial decryption(s); opening needs {public.threshold} of "
            f"{len(public.holders)} ({', '.join(h.name for h in public.holders)})"
        )
    chosen = sorted(seen.values(), key=lambda p: p.index)[: public.threshold]
    indices = [p.index for p in chosen]
    shared = None
    for p in chosen:
        term = mul(lagrange_at_zero(p.index, indices), p.point)
        shared = term if shared is None else sodium.crypto_core_ed25519_add(shared, term)
    assert shared is not None
    return record_key(public.ledger_id, kem, shared)
