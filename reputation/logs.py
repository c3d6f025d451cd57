"""Verbosity for people and log files for operators.

``-v``/``-q``/``--log-level`` set one level for what reaches stderr: WARNING by default,
``-v`` INFO, ``-vv`` DEBUG, ``-q`` ERROR (only errors). Tracebacks and the crawl's Scrapy log
never go to the terminal: ``reputation run`` and ``reputation crawl`` write them to a log
file (``reputation-logs/<command>-<UTC time>.log`` beside the database, or ``--log-file``)
and name that file in their one-line failure message. Files written here are 0644 so a web
server or a colleague can read them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from storage.errors import ReputationError


class LogFileError(ReputationError):
    """The log file (or its folder) cannot be created."""


LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_LEVEL = logging.WARNING
LOG_DIR_NAME = "reputation-logs"
FILE_MODE = 0o644
DIR_MODE = 0o755


def level_for(verbose: int = 0, quiet: bool = False, log_level: str | None = None) -> int | None:
    """The stderr level: --log-level wins, then -q, then each -v one step more detail; None when
    the user chose none (logging is then left as each command sets it up)."""
    if log_level is None and not quiet and not verbose:
        return None
    if log_level is not None:
        return int(logging.getLevelName(log_level.upper()))
    if quiet:
        return logging.ERROR
    return max(logging.DEBUG, DEFAULT_LEVEL - 10 * verbose)


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg,unused-ignore]
    """Writes to whatever sys.stderr is at the time (click's test runner swaps it per call)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override,unused-ignore]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:  # StreamHandler.__init__ assigns it
        pass


_HANDLER_NAME = "reputation-stderr"
_created_dirs: set[Path] = set()  # log folders this process made (removed again when left empty)


_saved_root_level: int | None = None


def configure(level: int | None) -> None:
    """One stderr handler on the root logger at ``level``; None removes it (logging as it was).

    Installed only when the user chose a verbosity, so that without -v/-q/--log-level each
    command's own logging set-up (e.g. ``logging.basicConfig`` in a worker) applies unchanged.
    """
    global _saved_root_level
    root = logging.getLogger()
    handler = next((h for h in root.handlers if h.get_name() == _HANDLER_NAME), None)
    if level is None:
        if handler is not None:
            root.removeHandler(handler)
            if _saved_root_level is not None:
                root.setLevel(_saved_root_level)
        return
    if handler is None:
        handler = _CurrentStderr()
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        _saved_root_level = root.level
    handler.setLevel(level)
    root.setLevel(level)


def utc_stamp(moment: datetime | None = None) -> str:
    """``2026-11-29T03:10:02Z``: the time in summary lines."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_log_file(db_path: str | os.PathLike[str], command: str, log_dir: str | os.PathLike[str] | None = None,
                     moment: datetime | None = None) -> Path:
    """``<db folder>/reputation-logs/<command>-<YYYYmmddTHHMMSSZ>.log`` (or inside ``log_dir``)."""
    folder = Path(log_dir) if log_dir is not None else Path(db_path).resolve().parent / LOG_DIR_NAME
    stamp = (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"{command}-{stamp}.log"
    n = 1
    while path.exists():  # two runs in one second each keep their own file
        n += 1
        path = folder / f"{command}-{stamp}-{n}.log"
    return path


def open_log_file(path: Path) -> Path:
    """Create the log file (and its folder) readable by others; return its absolute path."""
    path = path.resolve()
    try:
        if not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(path.parent, DIR_MODE)
            _created_dirs.add(path.parent)
        path.touch(exist_ok=True)
        os.chmod(path, FILE_MODE)
    except OSError as exc:
        raise LogFileError(f"cannot write the log file {path}: {exc.strerror or exc}; "
                           "name a writable one with --log-file") from None
    return path


def append(path: Path, text: str) -> None:
    """Add text to a log file (the crawl child's log is appended the same way)."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text if text.endswith("\n") else text + "\n")


def discard(path: Path) -> None:
    """Remove a log that is not worth keeping (the command went well), and its folder when empty."""
    path.unlink(missing_ok=True)
    if path.parent in _created_dirs:  # a folder made for this log alone; kept when others' logs are in it
        with contextlib.suppress(OSError):
            path.parent.rmdir()
