"""Secret keys on disk, one file per account, readable by the owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import nacl.signing

from ..core.canonical import check_handle
from ..core.errors import InputError, LedgerStateError


def keystore_path_for(db: str) -> Path:
    """The keystore beside a SQLite file (`pilot.db` -> `pilot.db.keys/`), or `$TENGE_KEYSTORE`, or
    `./tenge.keys` for a server database."""
    env = os.environ.get("TENGE_KEYSTORE")
    if env:
        return Path(env)
    if "://" in db:
        return Path("tenge.keys")
    return Path(db + ".keys")


class Keystore:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def _file(self, handle: str) -> Path:
        name = "_" + handle[1:] if handle.startswith("@") else check_handle(handle)
        return self.path / f"{name}.key"

    def create(self, handle: str) -> nacl.signing.SigningKey:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        key = nacl.signing.SigningKey.generate()
        target = self._file(handle)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(bytes(key).hex() + "\n")
        return key

    def get(self, handle: str) -> nacl.signing.SigningKey:
        target = self._file(handle)
        try:
            mode = target.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise LedgerStateError(f"{target} is readable by others: chmod 600 it before it is used")
            seed = bytes.fromhex(target.read_text().strip())
            return nacl.signing.SigningKey(seed)
        except FileNotFoundError:
            raise InputError(f"no secret key for {handle} in the keystore {self.path}") from None
        except ValueError:
            raise InputError(f"{target} does not hold an Ed25519 key") from None

    def remove(self, handle: str) -> None:
        """Forget a key (used when the init that made it failed)."""
        self._file(handle).unlink(missing_ok=True)

    def has(self, handle: str) -> bool:
        return self._file(handle).exists()
