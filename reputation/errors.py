"""Errors the application raises on bad input; the CLI turns them into clean messages."""


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
