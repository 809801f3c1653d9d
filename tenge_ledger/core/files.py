"""Files the ledger writes that hold its data (the database, bundles, reports, keys) are private to their owner:
created 0600 whatever the umask, because the journal and the trace log hold every payment."""

from __future__ import annotations

import os
import stat

from .errors import InputError

PRIVATE_MODE = 0o600


def create_private(path: str | os.PathLike) -> None:
    """Create an empty file readable by its owner only, if it does not exist yet (an existing one is left)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_MODE)
    os.close(fd)


def create_new_private(path: str | os.PathLike, data: bytes | str, what: str) -> None:
    """Create `path` with `data`, readable by its owner only; an existing file is never overwritten (a key or a
    share written twice would strand whatever the first one sealed). `what` names the file in the error."""
    create_new(path, data, what, PRIVATE_MODE)


def create_new(path: str | os.PathLike, data: bytes | str, what: str, mode: int = 0o644) -> None:
    """Create `path` with `data` and `mode` (a public half, a dealing: meant to be handed out); an existing file
    is never overwritten."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise InputError(f"already exists: refusing to overwrite a {what}", where=os.fspath(path)) from None
    except OSError as exc:
        raise InputError(f"cannot create the {what} ({exc.strerror})", where=os.fspath(path)) from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)


def write_private(path: str | os.PathLike, data: bytes | str, fresh_only: bool = False) -> None:
    """Write `data` to `path` readable by its owner only. An existing file is made private before it is
    written; with `fresh_only`, an existing file that others can read is refused instead."""
    if os.path.exists(path):
        if fresh_only and os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise InputError(f"{os.fspath(path)} exists and others can read it: give a new file")
        os.chmod(path, PRIVATE_MODE)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
