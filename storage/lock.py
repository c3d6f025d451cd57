"""One writer at a time: an exclusive ``flock`` on ``<database>.lock``, taken by every writing command.

``reputation crawl``, ``score``, ``rollup``, ``run``, ``demo``, ``vendors load`` and ``purge``
hold this lock while they write; a second writer on the same file fails at once with
``LockedError`` (exit 75, EX_TEMPFAIL: "try again later"), so a cron job simply retries at its
next slot. Readers (``sqlite3``, Datasette, pandas) take no lock: WAL lets them read while the
writer writes.

Why ``flock`` on a separate file: the kernel drops it when the last descriptor of the open file
is closed, so a writer killed with SIGKILL never leaves a stale lock behind, and SQLite's own
locks on the database are left alone. The lock belongs to the open file, not to the process:
a crawl child started under it inherits a descriptor (crawler.launcher passes
``held_lock_fds()``), so the lock stays held until the child has exited too, even when the
parent is killed first. Unix only (``fcntl``).

    with writer_lock(db_path, purpose="reputation crawl"):
        ...  # write
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from storage.database import utcnow
from storage.errors import LockedError

LOCK_SUFFIX = ".lock"

# Descriptors of the locks this process holds now, for child processes that must keep them.
_held: dict[int, Path] = {}


def lock_path_for(db_path: str | os.PathLike[str]) -> Path:
    """The lock lives beside the database, so every writer of one file shares it."""
    db = Path(db_path)
    return db.with_name(db.name + LOCK_SUFFIX)


def held_lock_fds() -> tuple[int, ...]:
    """The descriptors of the writer locks this process holds (to pass on to a child process)."""
    return tuple(sorted(_held))


def lock_holder(lock_path: str | os.PathLike[str]) -> str:
    """What the lock file says about its holder ("pid N (command) since T"), or '' if nothing."""
    try:
        return Path(lock_path).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


@contextmanager
def lock_file(lock_path: str | os.PathLike[str], *, purpose: str = "reputation") -> Iterator[IO[str]]:
    """Hold an exclusive flock on ``lock_path`` for the duration, or raise LockedError at once."""
    path = Path(lock_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = " ".join(lock_holder(path).split())  # one line, whatever the file holds
            raise LockedError(
                f"another run holds the lock {str(path)!r}" + (f" ({holder})" if holder else "") + "; try again later"
            ) from None
        # Who holds it, for an operator reading the lock file; the flock is what counts.
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} ({purpose}) since {utcnow()}\n")
        handle.flush()
        _held[handle.fileno()] = path
        try:
            yield handle
        finally:
            _held.pop(handle.fileno(), None)
    finally:
        handle.close()  # closing the descriptor releases the flock (once any child's copy is closed too)


@contextmanager
def writer_lock(db_path: str | os.PathLike[str], *, purpose: str = "reputation") -> Iterator[Path | None]:
    """The database's writer lock (``<db>.lock``); yields its path, or None for ``:memory:``."""
    if str(db_path) == ":memory:":  # nothing to share with another process
        yield None
        return
    path = lock_path_for(db_path)
    with lock_file(path, purpose=purpose):
        yield path
