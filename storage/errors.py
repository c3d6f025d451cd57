"""Errors the application raises on bad input; the CLI turns them into clean messages."""

from pathlib import Path


class ReputationError(Exception):
    """Bad input or state that a user can fix; the message says what and where."""

    exit_code = 1


class RegistryError(ReputationError):
    """The vendors file is wrong; the message lists every mistake with file and line."""


class NotFoundError(ReputationError):
    """A vendor, brand or model that was asked for does not exist."""


class LockedError(ReputationError):
    """Another scheduled run holds the lock."""

    exit_code = 75  # EX_TEMPFAIL: try again later


class DatabaseFileError(ReputationError):
    """The --db file cannot be used as it is; the message names the file and what is wrong."""


class NotADatabaseError(DatabaseFileError):
    """The file is not SQLite at all (a text file, a CSV, a corrupt header)."""


class ReadOnlyDatabaseError(DatabaseFileError):
    """SQLite cannot write the file, or the -wal/-shm files beside it."""


class SchemaTooNewError(DatabaseFileError):
    """The file was upgraded by a newer release; an older one must not write to it."""


class ForeignDatabaseError(DatabaseFileError):
    """An SQLite file of another application: adding our tables to it would damage it."""


class DatabaseBusyError(DatabaseFileError):
    """Another process held the write lock for longer than the busy timeout."""

    exit_code = 75  # EX_TEMPFAIL: try again later


class BadValueError(ReputationError):
    """A well-formed option value that cannot be used (a date in the future, say)."""


def read_user_text(
    path: str | Path, error: type[ReputationError] = ReputationError, *, encoding: str = "utf-8"
) -> str:
    """A file the user named, as text; a missing or non-UTF-8 file is a clear ``error``."""
    file = Path(path)
    try:
        return file.read_text(encoding=encoding)
    except FileNotFoundError as exc:
        raise error(f"{file}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
