"""Secret keys on disk, one file per account, readable by the owner only."""

from __future__ import annotations

import os
import re
import stat
import urllib.parse
from pathlib import Path

import nacl.signing

from ..core.canonical import check_handle
from ..core.errors import InputError, LedgerStateError


def keystore_path_for(db: str) -> Path:
    """The keystore beside a SQLite file (`pilot.db` -> `pilot.db.keys/`), or `$TENGE_KEYSTORE`, or for a server
    database `./tenge.keys/<server>-<port>-<database>-<schema>/`: two ledgers never share one by default."""
    env = os.environ.get("TENGE_KEYSTORE")
    if env:
        return Path(env)
    if "://" in db:
        return Path("tenge.keys") / server_keystore_name(db)
    return Path(db + ".keys")


def server_keystore_name(url: str) -> str:
    """`host-port-database-schema` of a PostgreSQL URL (the schema from `options=-csearch_path=...`, else
    `public`), with anything but letters, digits, '.', '_' and '-' replaced: one directory name per ledger."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parts.query)
    schema = "public"
    for option in query.get("options", []):
        found = re.search(r"search_path\s*=\s*([^\s,]+)", option)
        if found:
            schema = found.group(1)
    database = parts.path.lstrip("/") or query.get("dbname", [""])[0] or parts.username or "postgres"
    host = parts.hostname or query.get("host", ["localhost"])[0]
    try:
        port = parts.port or 5432
    except ValueError:
        port = 0
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{host}-{port}-{database}-{schema}")


class Keystore:
    """The key files of one directory. A key is read from its file once per Keystore: a file of operations signs
    with the same few keys over and over, and reading the file and deriving the key's public half each time
    took half of `tenge submit`'s reading and signing. What this object creates or removes, it knows; a key
    file another process removes meanwhile stays usable here (an account's key never changes, so what it signs
    still verifies)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._read: dict[str, nacl.signing.SigningKey] = {}

    def _file(self, handle: str) -> Path:
        name = "_" + handle[1:] if handle.startswith("@") else check_handle(handle)
        return self.path / f"{name}.key"

    def create(self, handle: str) -> nacl.signing.SigningKey:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        key = nacl.signing.SigningKey.generate()
        target = self._file(handle)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise InputError(
                f"the keystore {self.path} already holds a key for {handle}: refusing to overwrite it"
            ) from None
        with os.fdopen(fd, "w") as fh:
            fh.write(bytes(key).hex() + "\n")
        self._read[handle] = key
        return key

    def get(self, handle: str) -> nacl.signing.SigningKey:
        key = self._read.get(handle)
        if key is not None:
            return key
        target = self._file(handle)
        try:
            mode = target.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise LedgerStateError(f"{target} is readable by others: chmod 600 it before it is used")
            seed = bytes.fromhex(target.read_text().strip())
            key = self._read[handle] = nacl.signing.SigningKey(seed)
            return key
        except FileNotFoundError:
            raise InputError(f"no secret key for {handle} in the keystore {self.path}") from None
        except ValueError:
            raise InputError(f"{target} does not hold an Ed25519 key") from None

    def remove(self, handle: str) -> None:
        """Forget a key (used when the init that made it failed)."""
        self._read.pop(handle, None)
        self._file(handle).unlink(missing_ok=True)

    def has(self, handle: str) -> bool:
        return handle in self._read or self._file(handle).exists()
