"""Group commit off the apply loop: a process of its own writes a SQLite ledger's change sets, each in one
transaction and in the order given, while the ledger works out the next chunk on the other core.

Why a process: the sqlite3 module takes the GIL back for every row of an executemany, so a writer thread and the
apply loop only run by turns (measured: no gain); a process overlaps the store's writes (about a third of a
plain transfer's cost) with the loop's Python work. Why a fresh interpreter, not a fork: a forked child inherits
the parent's SQLite connection as the VFS recorded it, its locks included, which SQLite says must never cross a
fork; and multiprocessing's spawn would import the caller's main script again.

What it guards: each change set comes with the journal head and settings epoch it was worked out against, and is
written only if the store still has exactly those, under the write lock: another writer's commit (or settings
change) in between is a WriteConflict, never a lost update. A head (seq, None) is the one its own last write left:
the store links the plain transfers' rows it is handed unlinked (ChangeSet.links_deferred), so only it knows the
link, and it answers each write with the journal head the write left. After a failure it writes nothing more,
since the change sets queued behind were worked out on top of the one that failed: it answers each of them with
the same error, until the parent, having taken every answer, tells it to resume.

The pipe carries pickles between this process and its own child only.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import site
import struct
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import BinaryIO

from ..core.errors import CommitterStopped, StoreError, WriteConflict
from .base import ChangeSet, StoreTx

_LENGTH = struct.Struct(">Q")
_PIPE_BYTES = 1 << 20  # Linux's default ceiling for an unprivileged process (/proc/sys/fs/pipe-max-size)
_RESUME = "resume"  # the parent has taken every answer to a failure: write again
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _send(stream: BinaryIO, value: object) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_LENGTH.pack(len(data)) + data)
    while view:  # an unbuffered pipe may take part of it (a signal in the middle)
        view = view[stream.write(view) or 0 :]
    stream.flush()


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    parts, left = [], size
    while left:  # an unbuffered pipe gives what has arrived
        part = stream.read(left)
        if not part:
            raise EOFError
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _receive(stream: BinaryIO) -> object:
    (size,) = _LENGTH.unpack(_read_exactly(stream, _LENGTH.size))
    return pickle.loads(_read_exactly(stream, size))


def _site_dirs() -> set[str]:
    """Where this interpreter finds installed packages: the process it starts finds them there by itself."""
    return {os.path.abspath(d) for d in (*site.getsitepackages(), site.getusersitepackages())}


class Committer:
    """The parent's side: `reading` opens a read transaction on the caller's store (the write lock stays free
    for the committer), `submit` queues a change set, `committed` waits for the oldest one's answer."""

    def __init__(
        self, path: str, synchronous: str, reading: Callable[[], AbstractContextManager[StoreTx]]
    ) -> None:
        self.reading = reading
        self.stopped = False  # it ended without answering: the store offers it no more
        env = dict(os.environ)
        if _PACKAGE_ROOT not in _site_dirs():
            # a checkout run without installing: its root goes on the path (a module path entry comes before
            # the standard library, which is why an installed package's site-packages is never added)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        # -P: `-m` would put the working directory first on the module path, and a `tenge_ledger` (or a
        # `pickle`) there would run in place of this one
        self._process = subprocess.Popen(
            [sys.executable, "-P", "-m", "tenge_ledger.store.committer", path, synchronous],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            bufsize=0,  # unbuffered: whether an answer is in is the pipe's to say (`answered`)
        )
        self.waiting = 0  # submitted and not yet answered
        with contextlib.suppress(ImportError, AttributeError, OSError):  # Linux: room for a few change sets
            import fcntl

            fcntl.fcntl(self._process.stdin.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)  # type: ignore[union-attr]

    def submit(self, change: ChangeSet, expected: tuple[tuple[int, bytes | None], int]) -> None:
        """Queue `change`, to be written if the store's (journal head, settings epoch) is `expected` then (a
        head (seq, None): the one this committer's last write left)."""
        try:
            _send(self._process.stdin, (change, expected))  # type: ignore[arg-type]
        except (OSError, ValueError):  # ValueError: the pipe is closed (the store was closed meanwhile)
            self.stopped = True
            raise CommitterStopped("the committer process stopped") from None
        except BaseException:
            self._abandon()  # interrupted, maybe halfway through the request
            raise
        self.waiting += 1

    def committed(self) -> tuple[int, bytes]:
        """Wait for the answer on the oldest change set submitted: return the journal head it left once it is
        committed, or raise what writing it raised (WriteConflict, StoreError, InvariantViolation, ...)."""
        try:
            answer = _receive(self._process.stdout)  # type: ignore[arg-type]
        except (EOFError, OSError, ValueError, pickle.UnpicklingError):  # ValueError: a closed pipe
            self.stopped = True
            raise CommitterStopped("the committer process stopped") from None
        except BaseException:
            self._abandon()  # interrupted, maybe halfway through the answer
            raise
        self.waiting -= 1
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[return-value]

    def answered(self) -> bool:
        """Whether an answer is in already, so `committed` would not wait: the ledger takes answers as they come,
        and its caller hears of each chunk soon after it is written, not in a burst at the end. False where the
        platform cannot tell (select on a pipe is POSIX)."""
        try:
            return bool(select.select([self._process.stdout], [], [], 0)[0])
        except (OSError, ValueError):
            return False

    def resume(self) -> None:
        """After a failure, once every answer owed is in: write again what is submitted from now on."""
        try:
            _send(self._process.stdin, _RESUME)  # type: ignore[arg-type]
        except (OSError, ValueError):
            self.stopped = True
        except BaseException:
            self._abandon()
            raise

    def _abandon(self) -> None:
        """An interrupt (a signal handler's exception) came halfway through a request or an answer: the pipes'
        framing is lost, so the process would read the next request as the rest of this one (and the ledger
        wait for ever for its answer), or the ledger read an answer from the middle of one. It is stopped: a
        transaction it was writing rolls back, and the store offers it no more."""
        self.stopped = True
        with contextlib.suppress(OSError):
            self._process.kill()

    def close(self) -> None:
        """Stop the process once it has answered everything submitted."""
        with contextlib.suppress(OSError):
            self._process.stdin.close()  # type: ignore[union-attr]  # EOF: it stops when idle
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process.stdout.close()  # type: ignore[union-attr]


def serve(path: str, synchronous: str, requests: BinaryIO, answers: BinaryIO) -> None:
    """The child's loop: each change set in its own transaction, checked against what it was worked out on."""
    from .sqlite import SqliteStore  # the parent's import of this module needs none of the store

    store = SqliteStore(path, synchronous=synchronous)
    failed: BaseException | None = None
    left: tuple[int, bytes] | None = None  # the journal head this process's last write left
    try:
        while True:
            try:
                request = _receive(requests)
            except EOFError:
                return
            if request == _RESUME:
                failed = None
                continue
            change, expected = request  # type: ignore[misc]
            if failed is None:
                try:
                    with store.transaction() as tx:
                        head, epoch = tx.head(), tx.settings_epoch()
                        (seq, link), expected_epoch = expected
                        # (seq, None): what the last write here left, its link made by the store
                        if link is None and left is not None and left[0] == seq:
                            link = left[1]
                        if (head, epoch) != ((seq, link), expected_epoch):
                            raise WriteConflict("another writer committed since this chunk was worked out")
                        tx.write(change)
                        written = tx.head()
                    left = written
                except BaseException as exc:  # the parent decides; nothing queued behind is written
                    failed = exc
            answer = left if failed is None else failed
            try:
                _send(answers, answer)
            except Exception:  # an error that does not pickle: its text goes instead
                _send(answers, StoreError(f"the committer failed: {failed!r}"))
    finally:
        store.close()


if __name__ == "__main__":
    answers = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing printed by accident can break the answers' framing
    # Ctrl-C reaches the whole process group: the parent decides (it stops this process if it must), and this
    # one finishes the transaction it is in rather than print a traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(sys.argv[1], sys.argv[2], sys.stdin.buffer, answers)
