"""Key material of the privacy roles: the operator's own keys, and the reading parties' key files.

The operator's keystore (`<keystore>/privacy/<ledger id>/`, files 0600) holds only what the operator itself uses:
its checkpoint signing key and tracker key (`operator.json`) and the pseudonym root of each bank
(`pseudonyms-BANK.json`: the operator computes pseudonyms, so it needs them; see docs/privacy.md). No secret of
another party is ever written there. Each reading party (the central bank, the FMA, each commercial bank) gets a
*party key file* (`PartyKey`: an X25519 box key, and for a bank its pseudonym root) written to the path the user
names (`tenge init --key-to fma=PATH`, `tenge account open BANK --kind bank --key-to PATH`), or made by the party
itself on its own machine (`tenge privacy keygen`), which hands over only the public half (`--key-from`); the
ledger settings keep only the public half, and the sinks seal to that. No file is ever overwritten.

The escrow shares of `escrowed` mode are the holders' own files too (`threshold.py`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

import nacl.bindings
import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.public
import nacl.signing

from ..core.canonical import check_handle
from ..core.errors import InputError, LedgerStateError
from ..core.files import create_new_private
from ..core.records import Account

READERS: tuple[str, ...] = ("central_bank", "fma")  # the fixed parties that may be given keys at init
PARTY_FILE_KIND = "tenge-privacy-key"
PUBLIC_FILE_KIND = "tenge-privacy-public-key"
# The ledger id a party key file carries when its holder made it itself (`tenge privacy keygen`), before any
# ledger existed: such a file is bound to a ledger by the public half the ledger registered for its holder.
SELF_MADE = ""
MIGRATE_COMMAND = "tenge privacy migrate-keys"
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


def signing_box_secret(signing_key: nacl.signing.SigningKey) -> nacl.public.PrivateKey:
    """The X25519 key that goes with an account's Ed25519 key (RFC 7748 birational map, libsodium's
    `crypto_sign_ed25519_sk_to_curve25519`): what a selective record of an account that registered no viewing key
    is sealed to, so that only the holder opens it. It is the holder's signing scalar: never disclosed."""
    return nacl.public.PrivateKey(signing_key.to_curve25519_private_key().encode())


def signing_box_public_hex(public_key_hex: str) -> str | None:
    """The X25519 public key that goes with an account's Ed25519 public key; None when it is not a valid key."""
    try:
        verify = nacl.signing.VerifyKey(bytes.fromhex(public_key_hex))
        return bytes(verify.to_curve25519_public_key()).hex()
    except (ValueError, TypeError, nacl.exceptions.CryptoError):
        return None


def sealing_public(account: Account) -> str:
    """The X25519 public key (hex) an account's selective records seal to: the viewing key it registered, else the
    X25519 form of its own Ed25519 key ("" when that is no valid key)."""
    return dict(account.attrs).get(VIEWING_ATTR) or signing_box_public_hex(account.public_key) or ""


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


def _bank_root_holder(bank: str) -> str:
    return f"pseudonyms:{bank}"


# What the old layout kept in the operator's keystore and may no longer be there: another party's secret.
_FOREIGN_SECRETS = ("box_key", "viewing_key", "pseudonym_root")


class KeyRing:
    """The operator's own privacy keys of one ledger (its keystore directory for this ledger).

    It holds the operator's signing and tracker keys and the banks' pseudonym roots, and nothing of any other
    party: the central bank's, the FMA's and the banks' box keys are in their own files (`PartyKey`)."""

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
        body = dict(data, holder=holder, ledger_id=self.ledger_id)
        create_new_private(target, json.dumps(body, sort_keys=True), "privacy key")
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

    # -- the operator's own keys --

    def signing_key(self, holder: str = "operator") -> nacl.signing.SigningKey:
        return nacl.signing.SigningKey(bytes.fromhex(self.read(holder)["signing_key"]))

    def secret(self, holder: str, name: str) -> bytes:
        value = self.read(holder).get(name)
        if value is None:
            raise InputError(f"{holder} holds no {name.replace('_', ' ')}")
        return bytes.fromhex(value)

    def bank_root(self, bank: str) -> bytes:
        """The pseudonym root of `bank`: made the first time the ledger meets the bank (at its key's registration,
        or with a customer's first record), kept by the operator, who computes the pseudonyms."""
        holder = _bank_root_holder(bank)
        if not self.exists(holder):
            self.write(holder, {"pseudonym_root": secrets.token_hex(32)})
        return bytes.fromhex(self.read(holder)["pseudonym_root"])

    # -- the old layout: other parties' secrets in the operator's keystore --

    def foreign_secrets(self) -> dict[str, dict]:
        """holder -> its file's data, for every file that holds another party's secret (the old layout kept the
        central bank's, the FMA's, the court's and the banks' box keys, and accounts' viewing keys here)."""
        out = {}
        for path in self.files():
            try:
                data = json.loads(path.read_text())
            except ValueError:
                continue
            holder = str(data.get("holder", path.stem))
            if holder == "operator" or holder.startswith("pseudonyms:"):
                continue
            if any(name in data for name in _FOREIGN_SECRETS):
                out[holder] = data
        return out

    def refuse_old_layout(self) -> None:
        """LedgerStateError naming the migration command when other parties' secrets are still here."""
        found = self.foreign_secrets()
        if found:
            named = " ".join(f"--key-to {h}=PATH" for h in sorted(found))
            raise LedgerStateError(
                f"{self.root} is in the old key layout: it holds the secret keys of {', '.join(sorted(found))}, "
                f"which the operator may not keep. Move each to its holder's file with `{MIGRATE_COMMAND} "
                f"{named}`"
            )


# ---- party key files: what each reading party keeps, never in the operator's keystore -------------------------


@dataclass(frozen=True, slots=True)
class PartyKey:
    """One reading party's secret: its X25519 box key (what is sealed to it), and for a bank (the central bank is
    the bank of accounts no commercial bank serves) its pseudonym root; `viewing_key` for an account whose
    viewing key the old layout kept."""

    ledger_id: str
    holder: str
    box_key: nacl.public.PrivateKey | None
    pseudonym_root: bytes | None = None
    viewing_key: bytes | None = None

    def to_json(self) -> dict:
        out: dict = {"kind": PARTY_FILE_KIND, "ledger_id": self.ledger_id, "holder": self.holder}
        if self.box_key is not None:
            out["box_key"] = bytes(self.box_key).hex()
            out["box_public"] = bytes(self.box_key.public_key).hex()
        if self.pseudonym_root is not None:
            out["pseudonym_root"] = self.pseudonym_root.hex()
        if self.viewing_key is not None:
            out["viewing_key"] = self.viewing_key.hex()
        return out

    @classmethod
    def from_json(cls, data: dict, where: str) -> PartyKey:
        if not isinstance(data, dict) or data.get("kind") != PARTY_FILE_KIND:
            raise InputError("not a privacy key file", where=where)
        try:
            box = data.get("box_key")
            root = data.get("pseudonym_root")
            viewing = data.get("viewing_key")
            return cls(
                str(data["ledger_id"]),
                str(data["holder"]),
                nacl.public.PrivateKey(bytes.fromhex(box)) if box else None,
                bytes.fromhex(root) if root else None,
                bytes.fromhex(viewing) if viewing else None,
            )
        except (KeyError, ValueError, TypeError, nacl.exceptions.CryptoError):
            raise InputError("a privacy key file with a damaged key", where=where) from None

    @property
    def box_public_hex(self) -> str:
        assert self.box_key is not None
        return bytes(self.box_key.public_key).hex()


def is_party_file(data: object) -> bool:
    return isinstance(data, dict) and data.get("kind") == PARTY_FILE_KIND


def write_party_file(path: str | os.PathLike, party: PartyKey, keystore_dir: str | os.PathLike) -> None:
    """Create the party's file (0600, never overwritten); a path inside the operator's keystore is refused."""
    target = Path(path)
    if target.resolve().is_relative_to(Path(keystore_dir).resolve()):
        raise InputError(
            f"{party.holder}'s key may not go into the operator's keystore {keystore_dir}", where=str(path)
        )
    create_new_private(target, json.dumps(party.to_json(), indent=2), "key file")


def read_party_file(path: str | os.PathLike, ledger_id: str, public: dict | None = None) -> PartyKey:
    """A reading party's key file, checked to be this ledger's. A file the ledger wrote names the ledger; a file
    its holder made itself names none, and is this ledger's when its public half is the one the ledger registered
    for its holder (`public`: the ledger's `privacy_public`); its pseudonym root, if the ledger keeps one for it,
    comes sealed to it from `public` (`sealed_roots`). The result names this ledger either way."""
    target = Path(path)
    try:
        data = json.loads(target.read_text())
    except FileNotFoundError:
        raise InputError("no such key file", where=str(target)) from None
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InputError("not a privacy key file", where=str(target)) from None
    if isinstance(data, dict) and data.get("kind") == PUBLIC_FILE_KIND:
        raise InputError(
            "this is the public half of a key: reading takes the private file", where=str(target)
        )
    party = PartyKey.from_json(data, str(target))
    if party.ledger_id == SELF_MADE and party.box_key is not None:
        registered = (public or {}).get("box_public", {}).get(party.holder)
        if registered != party.box_public_hex:
            raise InputError(
                f"this key is not the one this ledger registered for {party.holder}: it belongs to another "
                "ledger, or was never registered",
                where=str(target),
            )
        sealed = (public or {}).get("sealed_roots", {}).get(party.holder)
        root = None
        if sealed is not None:
            root = open_root(party.box_key, ledger_id, party.holder, sealed)
            if root is None:
                raise InputError(f"the pseudonym root this ledger keeps for {party.holder} does not open with it",
                                 where=str(target))  # fmt: skip
        return PartyKey(
            ledger_id, party.holder, party.box_key, root or party.pseudonym_root, party.viewing_key
        )
    if party.ledger_id != ledger_id:
        raise InputError(f"this key belongs to another ledger ({party.ledger_id})", where=str(target))
    return party


# ---- keys a party makes itself: only the public half reaches the ledger -----------------------------------------


def check_reader_name(holder: str, where: str) -> str:
    """A party that reads sealed fields: `central_bank`, `fma`, or `bank:HANDLE`."""
    if holder in READERS:
        return holder
    if holder.startswith("bank:"):
        check_handle(holder[5:], where)
        return holder
    raise InputError(f"{holder!r} is no reader: central_bank, fma or bank:HANDLE", where=where)


def keygen_party(holder: str) -> PartyKey:
    """A reader's own key, made on its own machine: a fresh X25519 key, bound to no ledger yet."""
    return PartyKey(SELF_MADE, check_reader_name(holder, "--holder"), nacl.public.PrivateKey.generate())


def public_json(party: PartyKey) -> dict:
    """The half a party hands to the operator (`--key-from`)."""
    return {"kind": PUBLIC_FILE_KIND, "holder": party.holder, "box_public": party.box_public_hex}


def read_public_file(path: str | os.PathLike, holder: str) -> str:
    """The X25519 public key (hex) in `holder`'s public key file. A private key file is refused: the operator is
    to be given the public half only."""
    target = Path(path)
    try:
        data = json.loads(target.read_text())
    except FileNotFoundError:
        raise InputError("no such public key file", where=str(target)) from None
    except (ValueError, UnicodeDecodeError, IsADirectoryError, RecursionError):
        raise InputError("not a public key file", where=str(target)) from None
    if is_party_file(data):
        raise InputError(
            "this is a private key file: give the operator its public half only (tenge privacy keygen "
            "--public-out)", where=str(target),
        )  # fmt: skip
    if not isinstance(data, dict) or data.get("kind") != PUBLIC_FILE_KIND:
        raise InputError("not a public key file", where=str(target))
    if data.get("holder") != holder:
        raise InputError(f"this is the key of {data.get('holder')!r}, not of {holder}", where=str(target))
    try:
        key = nacl.public.PublicKey(bytes.fromhex(data["box_public"]))
    except (KeyError, TypeError, ValueError, nacl.exceptions.CryptoError):
        raise InputError("a public key file with a damaged key", where=str(target)) from None
    return bytes(key).hex()


def _root_message(ledger_id: str, holder: str) -> bytes:
    return b"".join(
        len(p).to_bytes(4, "big") + p for p in (b"tenge-root", ledger_id.encode(), holder.encode())
    )


def seal_root(box_public_hex: str, ledger_id: str, holder: str, root: bytes) -> str:
    """A bank's pseudonym root (the operator keeps it anyway: it computes pseudonyms) sealed to the bank's own
    public key, for a bank whose key file the ledger did not write; bound to the ledger and the holder inside,
    since a SealedBox takes no associated data."""
    box = nacl.public.SealedBox(nacl.public.PublicKey(bytes.fromhex(box_public_hex)))
    return box.encrypt(_root_message(ledger_id, holder) + root).hex()


def open_root(box_key: nacl.public.PrivateKey, ledger_id: str, holder: str, sealed_hex: str) -> bytes | None:
    try:
        plain = nacl.public.SealedBox(box_key).decrypt(bytes.fromhex(sealed_hex))
    except (ValueError, TypeError, nacl.exceptions.CryptoError):
        return None
    prefix = _root_message(ledger_id, holder)
    if not plain.startswith(prefix) or len(plain) != len(prefix) + 32:
        return None
    return plain[len(prefix) :]


@dataclass(frozen=True, slots=True)
class KeyPlan:
    """Each reading party's key: a file the ledger writes for it (`--key-to HOLDER=PATH`), or the public half of
    a key the party made itself (`--key-from HOLDER=PUBFILE`, read into `given`: holder, X25519 public hex)."""

    paths: tuple[tuple[str, Path], ...]
    given: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(
        cls, key_to: tuple[str, ...] | list[str], key_from: tuple[str, ...] | list[str] = ()
    ) -> KeyPlan:
        out: list[tuple[str, Path]] = []
        for item in key_to:
            name, sep, path = item.partition("=")
            if not sep or not path or not name:
                raise InputError(f"{item!r} is not HOLDER=PATH", where="--key-to")
            out.append((name, Path(path)))
        names = [n for n, _ in out]
        if len(set(names)) != len(names):
            raise InputError("each holder may be named once", where="--key-to")
        if len({p.resolve() for _, p in out}) != len(out):
            raise InputError("each holder needs a file of its own", where="--key-to")
        given: list[tuple[str, str]] = []
        for item in key_from:
            name, sep, path = item.partition("=")
            if not sep or not path or not name:
                raise InputError(f"{item!r} is not HOLDER=PUBFILE", where="--key-from")
            if name in names or name in (n for n, _ in given):
                raise InputError(f"{name} is named twice (--key-to and --key-from name each reader once)",
                                 where="--key-from")  # fmt: skip
            given.append((name, read_public_file(path, name)))
        if len({k for _, k in given}) != len(given):
            raise InputError("two readers may not share one key", where="--key-from")
        return cls(tuple(out), tuple(given))

    def path(self, holder: str) -> Path | None:
        return next((p for n, p in self.paths if n == holder), None)

    def public(self, holder: str) -> str | None:
        return next((k for n, k in self.given if n == holder), None)

    def holders(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.paths) + tuple(n for n, _ in self.given)

    def option_of(self, holder: str) -> str:
        """The option that named `holder`, for an error about it."""
        return "--key-to" if self.path(holder) is not None else "--key-from"

    def require(self, holders: tuple[str, ...], why: str) -> None:
        missing = [h for h in holders if self.path(h) is None and self.public(h) is None]
        if missing:
            raise InputError(
                f"{why}: "
                + " ".join(f"--key-to {h}=PATH" for h in missing)
                + " (files the operator never keeps), or the public half of a key the reader made itself: "
                + " ".join(f"--key-from {h}=PUBFILE" for h in missing),
                where="--key-to",
            )


def new_party(ledger_id: str, holder: str, root: bytes | None = None) -> PartyKey:
    return PartyKey(ledger_id, holder, nacl.public.PrivateKey.generate(), root)


def provision(keystore_dir: str | os.PathLike, ledger_id: str) -> dict:
    """Create the operator's own keys of one ledger (checkpoint signing key, tracker key); refuses if they exist.
    Returns the public halves to keep in the ledger settings (the readers' box keys are added by the caller)."""
    ring = KeyRing(keystore_dir, ledger_id)
    if ring.exists("operator"):
        raise InputError(f"{ring.root} already holds privacy keys (operator): refusing to overwrite them")
    operator = nacl.signing.SigningKey.generate()
    ring.write("operator", {"signing_key": bytes(operator).hex(), "tracker_key": secrets.token_hex(32)})
    return {"checkpoint_key": bytes(operator.verify_key).hex(), "ledger_id": ledger_id, "box_public": {}}
