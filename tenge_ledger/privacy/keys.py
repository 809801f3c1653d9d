"""Key material of the privacy roles, kept client-side, one directory per ledger.

Every key holder of a ledger has one JSON file in `<keystore>/privacy/<ledger id>/` (mode 0600): the operator
(checkpoint signing key, tracker key), the central bank, the FMA, the court (box keys), each commercial bank
(pseudonym root key, box key) and, in `selective` mode, each account (viewing key). Public halves go in the ledger
settings (`privacy_public`). No file is ever overwritten: two ledgers sharing a keystore directory keep their own
keys, and a second `init` cannot replace the first one's.

The escrow shares of `escrowed` mode are not here: they go to the holders' own files (`threshold.py`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
from pathlib import Path

import nacl.bindings
import nacl.encoding
import nacl.hash
import nacl.public
import nacl.signing

from ..core.errors import InputError, LedgerStateError

FIXED_HOLDERS: tuple[str, ...] = ("operator", "central_bank", "fma", "court")
ledger_id_length = 32  # hex digits of a ledger id: the name of its key directory


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


# ---- viewing keys (selective mode) --------------------------------------------------------------------------

VIEWING_ATTR = "viewing_key"  # the account attribute that registers its public viewing key (X25519, hex)


def viewing_secret(signing_seed: bytes) -> nacl.public.PrivateKey:
    """An account's viewing key, derived one-way from its Ed25519 seed: the holder can always rebuild it, and
    handing it to someone discloses the account's selective records without its power to sign."""
    return nacl.public.PrivateKey(keyed_hash(signing_seed, b"viewing", person=b"tenge-viewing", size=32))


def viewing_public_hex(signing_key: nacl.signing.SigningKey) -> str:
    return bytes(viewing_secret(bytes(signing_key)).public_key).hex()


# ---- key files ---------------------------------------------------------------------------------------------


def _holder_file(root: Path, holder: str) -> Path:
    safe = holder.replace(":", "-").replace("@", "_").replace("/", "_")
    return root / f"{safe}.json"


_LEDGER_ID_RE = re.compile(f"[0-9a-f]{{{ledger_id_length}}}")


def ledger_key_dir(keystore_dir: str | os.PathLike, ledger_id: str) -> Path:
    """`<keystore>/privacy/<ledger id>`: the privacy keys of one ledger and of no other."""
    if not _LEDGER_ID_RE.fullmatch(ledger_id or ""):
        raise LedgerStateError(f"{ledger_id!r} is not a ledger id")
    return Path(keystore_dir) / "privacy" / ledger_id


class KeyRing:
    """The privacy key files of one ledger, each readable by its owner only.

    In a deployment each holder keeps its own file on its own machine; here they sit side by side, like the
    account keys of the demo's keystore."""

    def __init__(self, keystore_dir: str | os.PathLike, ledger_id: str) -> None:
        self.ledger_id = ledger_id
        self.root = ledger_key_dir(keystore_dir, ledger_id)
        self._cache: dict[str, dict] = {}

    def exists(self, holder: str) -> bool:
        return holder in self._cache or _holder_file(self.root, holder).exists()

    def files(self) -> list[Path]:
        return sorted(self.root.glob("*.json")) if self.root.exists() else []

    def write(self, holder: str, data: dict) -> None:
        """Create `holder`'s file; an existing one is never overwritten (InputError)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for directory in (self.root, self.root.parent, self.root.parent.parent):
            os.chmod(directory, 0o700)
        target = _holder_file(self.root, holder)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise InputError(f"{target} already exists: refusing to overwrite a privacy key") from None
        with os.fdopen(fd, "w") as fh:
            json.dump(dict(data, holder=holder, ledger_id=self.ledger_id), fh, sort_keys=True)
        self._cache[holder] = dict(data, holder=holder, ledger_id=self.ledger_id)

    def read(self, holder: str) -> dict:
        if holder in self._cache:
            return self._cache[holder]
        target = _holder_file(self.root, holder)
        try:
            if target.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise LedgerStateError(f"{target} is readable by others: chmod 600 it before it is used")
            data = json.loads(target.read_text())
        except FileNotFoundError:
            legacy = _holder_file(self.root.parent, holder)
            if legacy.exists():  # the layout before keys were filed per ledger
                raise LedgerStateError(
                    f"{legacy} is in the old key layout: if it belongs to this ledger, move the files of "
                    f'{self.root.parent} into {self.root}/ and add "ledger_id": "{self.ledger_id}" to each'
                ) from None
            raise InputError(f"no privacy keys for {holder} in {self.root}") from None
        except ValueError:
            raise InputError(f"{target} is not a privacy key file") from None
        if data.get("ledger_id") != self.ledger_id:
            raise LedgerStateError(f"{target} holds keys of another ledger ({data.get('ledger_id')})")
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


def provision(keystore_dir: str | os.PathLike, ledger_id: str) -> dict:
    """Create the fixed holders' keys (operator, central bank, FMA, court) of one ledger; refuses if any of them
    exists already. Returns the public halves to keep in the ledger settings."""
    ring = KeyRing(keystore_dir, ledger_id)
    taken = [h for h in FIXED_HOLDERS if ring.exists(h)]
    if taken:
        raise InputError(
            f"{ring.root} already holds privacy keys ({', '.join(taken)}): refusing to overwrite them"
        )
    operator = nacl.signing.SigningKey.generate()
    public: dict = {
        "checkpoint_key": bytes(operator.verify_key).hex(),
        "ledger_id": ledger_id,
        "box_public": {},
    }
    for holder in FIXED_HOLDERS:
        box = nacl.public.PrivateKey.generate()
        data: dict = {"box_key": bytes(box).hex(), "box_public": bytes(box.public_key).hex()}
        if holder == "operator":
            data["signing_key"] = bytes(operator).hex()
            data["tracker_key"] = secrets.token_hex(32)
        ring.write(holder, data)
        public["box_public"][holder] = data["box_public"]
    return public
