"""Reputation by proxy: judge customer-service vendors by what the public says of their clients."""

__version__ = "0.1.0"
