"""Which URLs belong to a source: the one rule shared by link following and redirects."""

from __future__ import annotations

from urllib.parse import urlsplit


def in_scope(url: str, source_url: str) -> bool:
    """Same scheme, host and port as the source, and under the source's path."""
    target, base = urlsplit(url), urlsplit(source_url)
    if (target.scheme, target.netloc.lower()) != (base.scheme, base.netloc.lower()):
        return False
    prefix = base.path or "/"
    if target.path == prefix or target.path == prefix.rstrip("/"):
        return True
    return target.path.startswith(prefix if prefix.endswith("/") else prefix + "/")
