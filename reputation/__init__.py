"""Reputation by proxy: judge customer-service vendors by what the public says of their clients."""

from storage.version import __version__

__all__ = ["__version__"]
