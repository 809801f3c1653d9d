"""Key material of the privacy roles, kept client-side, and k-of-n sharing.

Every key holder has one JSON file in `<keystore>/privacy/` (mode 0600): the operator (checkpoint signing key,
tracker key), the central bank, the FMA, the court, each commercial bank (pseudonym root key, box key) and, in
`selective` mode, each account (viewing key). Public halves go in the ledger settings (`privacy_public`).

Shamir sharing is over the prime field GF(2^521 - 1): a 32-byte secret is an integer far below the prime; a share
is (x, y) with y = f(x), f of degree k-1 with f(0) = secret. No well-kept Python library for this fits PyNaCl's
key types, so this is a small implementation, tested by every k-subset opening and every (k-1)-subset failing.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import nacl.bindings
import nacl.encoding
import nacl.hash
import nacl.public
import nacl.signing

from ..core.errors import InputError, LedgerStateError

PRIME = 2**521 - 1
secret_length_bytes = 32

# Who holds an escrow share, in share order, and how many must agree (k of n).
ESCROW_HOLDERS: tuple[str, ...] = ("central_bank", "fma", "court")
ESCROW_QUORUM = 2
FIXED_HOLDERS: tuple[str, ...] = ("operator", "central_bank", "fma", "court")


# ---- Shamir over GF(p) ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Share:
    holder: str
    x: int
    y: int

    def digest(self) -> str:
        """What the ledger settings keep to recognise a genuine share (never the share itself)."""
        return hashlib.sha256(f"tenge-share\0{self.holder}\0{self.x}\0{self.y}".encode()).hexdigest()


def split_secret(secret: bytes, k: int, holders: tuple[str, ...]) -> list[Share]:
    n = len(holders)
    if not 1 <= k <= n:
        raise ValueError(f"a quorum of {k} out of {n} is impossible")
    s = int.from_bytes(secret, "big")
    if s >= PRIME:
        raise ValueError("secret too large for the field")
    coeffs = [s] + [secrets.randbelow(PRIME) for _ in range(k - 1)]
    out = []
    for i, holder in enumerate(holders, start=1):
        y = 0
        for c in reversed(coeffs):
            y = (y * i + c) % PRIME
        out.append(Share(holder, i, y))
    return out


def combine_shares(shares: list[Share], length: int = secret_length_bytes) -> bytes:
    """Lagrange interpolation at 0. Distinct x required; with fewer than k shares the result is garbage, so
    callers check it against a public half."""
    xs = [s.x for s in shares]
    if len(set(xs)) != len(xs):
        raise InputError("the same key share was given twice")
    total = 0
    for j, sj in enumerate(shares):
        num = den = 1
        for m, sm in enumerate(shares):
            if m != j:
                num = num * (-sm.x) % PRIME
                den = den * (sj.x - sm.x) % PRIME
        total = (total + sj.y * num * pow(den, -1, PRIME)) % PRIME
    if total >= 1 << (8 * length):
        return b"\xff" * length  # not a secret of this length: certainly wrong shares
    return total.to_bytes(length, "big")


def k_subsets(shares: list[Share], k: int):
    return combinations(shares, k)


_blake2b = nacl.bindings.crypto_generichash_blake2b_salt_personal
_PERSON_BYTES = nacl.bindings.crypto_generichash_PERSONALBYTES
_NO_SALT = bytes(nacl.bindings.crypto_generichash_SALTBYTES)

# ---- keyed hashing -----------------------------------------------------------------------------------------


def keyed_hash(key: bytes, data: bytes, person: bytes = b"", size: int = 16) -> bytes:
    """Keyed BLAKE2b (RFC 7693) with a personalisation string: pseudonyms and per-record keys.

    libsodium's BLAKE2b through PyNaCl's low-level binding, which skips the argument handling that makes
    `nacl.hash.blake2b` cost ~15 us a call; a test holds the two bit for bit equal."""
    return _blake2b(data, digest_size=size, key=key, salt=_NO_SALT, person=person.ljust(_PERSON_BYTES, b"\0"))


def keyed_hash_nacl(key: bytes, data: bytes, person: bytes = b"", size: int = 16) -> bytes:
    """The same keyed BLAKE2b through PyNaCl (the reference the tests compare `keyed_hash` with)."""
    return nacl.hash.blake2b(data, digest_size=size, key=key, person=person, encoder=nacl.encoding.RawEncoder)


# ---- key files ---------------------------------------------------------------------------------------------


def _holder_file(root: Path, holder: str) -> Path:
    safe = holder.replace(":", "-").replace("@", "_").replace("/", "_")
    return root / f"{safe}.json"


class KeyRing:
    """The privacy key files of one ledger: `<keystore>/privacy/<holder>.json`, each readable by its owner only.

    In a deployment each holder keeps its own file on its own machine; here they sit side by side, like the
    account keys of the demo's keystore."""

    def __init__(self, keystore_dir: str | os.PathLike) -> None:
        self.root = Path(keystore_dir) / "privacy"
        self._cache: dict[str, dict] = {}

    def exists(self, holder: str) -> bool:
        return holder in self._cache or _holder_file(self.root, holder).exists()

    def write(self, holder: str, data: dict) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.root.parent, 0o700) if self.root.parent.exists() else None
        target = _holder_file(self.root, holder)
        tmp = target.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(dict(data, holder=holder), fh, sort_keys=True)
        os.replace(tmp, target)
        self._cache[holder] = dict(data, holder=holder)

    def read(self, holder: str) -> dict:
        if holder in self._cache:
            return self._cache[holder]
        target = _holder_file(self.root, holder)
        try:
            if target.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise LedgerStateError(f"{target} is readable by others: chmod 600 it before it is used")
            data = json.loads(target.read_text())
        except FileNotFoundError:
            raise InputError(f"no privacy keys for {holder} in {self.root}") from None
        except ValueError:
            raise InputError(f"{target} is not a privacy key file") from None
        self._cache[holder] = data
        return data

    # -- the pieces each holder keeps --

    def signing_key(self, holder: str = "operator") -> nacl.signing.SigningKey:
        return nacl.signing.SigningKey(bytes.fromhex(self.read(holder)["signing_key"]))

    def box_key(self, holder: str) -> nacl.public.PrivateKey:
        return nacl.public.PrivateKey(bytes.fromhex(self.read(holder)["box_key"]))

    def secret(self, holder: str, name: str) -> bytes:
        value = self.read(holder).get(name)
        if value is None:
            raise InputError(f"{holder} holds no {name.replace('_', ' ')}")
        return bytes.fromhex(value)

    def share(self, holder: str) -> Share:
        raw = self.read(holder).get("escrow_share")
        if raw is None:
            raise InputError(f"{holder} holds no escrow share")
        return Share(holder, int(raw["x"]), int(raw["y"], 16))

    def ensure_bank(self, bank: str) -> dict:
        """A commercial bank's keys, created the first time the ledger meets one of its customers: a pseudonym
        root key (epoch keys derive from it) and a box key pair."""
        holder = f"bank:{bank}"
        if not self.exists(holder):
            box = nacl.public.PrivateKey.generate()
            self.write(
                holder,
                {
                    "pseudonym_root": secrets.token_hex(32),
                    "box_key": bytes(box).hex(),
                    "box_public": bytes(box.public_key).hex(),
                },
            )
        return self.read(holder)

    def ensure_account(self, handle: str) -> dict:
        """An account's viewing key (selective mode), created with the account's first sealed record."""
        holder = f"account:{handle}"
        if not self.exists(holder):
            self.write(holder, {"viewing_key": secrets.token_hex(32)})
        return self.read(holder)


def share_to_json(share: Share) -> dict:
    return {"holder": share.holder, "x": share.x, "y": format(share.y, "x")}


def share_from_json(data: object, where: str) -> Share:
    try:
        raw = data["escrow_share"] if isinstance(data, dict) and "escrow_share" in data else data
        holder = data.get("holder", raw.get("holder", "?"))  # type: ignore[union-attr]
        return Share(str(holder), int(raw["x"]), int(raw["y"], 16))  # type: ignore[index]
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InputError("not an escrow key share", where=where) from None


def load_share_file(path: str) -> Share:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError("no such file", where=path) from None
    except ValueError:
        raise InputError("not JSON", where=path) from None
    return share_from_json(data, path)


def provision(keystore_dir: str | os.PathLike) -> dict:
    """Create the fixed holders' keys (operator, central bank, FMA, court) and the escrow key split k-of-n
    among them. Returns the public halves to keep in the ledger settings."""
    ring = KeyRing(keystore_dir)
    operator = nacl.signing.SigningKey.generate()
    escrow = nacl.public.PrivateKey.generate()
    shares = split_secret(bytes(escrow), ESCROW_QUORUM, ESCROW_HOLDERS)
    by_holder = {s.holder: s for s in shares}
    public: dict = {
        "checkpoint_key": bytes(operator.verify_key).hex(),
        "escrow_public": bytes(escrow.public_key).hex(),
        "escrow_quorum": ESCROW_QUORUM,
        "escrow_holders": list(ESCROW_HOLDERS),
        "escrow_share_digests": {s.holder: s.digest() for s in shares},
        "box_public": {},
    }
    for holder in FIXED_HOLDERS:
        box = nacl.public.PrivateKey.generate()
        data: dict = {"box_key": bytes(box).hex(), "box_public": bytes(box.public_key).hex()}
        if holder == "operator":
            data["signing_key"] = bytes(operator).hex()
            data["tracker_key"] = secrets.token_hex(32)
        if holder in by_holder:
            data["escrow_share"] = share_to_json(by_holder[holder])
        ring.write(holder, data)
        public["box_public"][holder] = data["box_public"]
    del escrow
    return public
