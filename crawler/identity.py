"""Stable identities for reviews, and the keyed author pseudonym.

A review keeps the same id across crawls so a re-crawl updates rather than duplicates:
the site's own id when the page has one, else a hash of what cannot change about it.
Author names are never stored; an HMAC with a per-database secret key lets roll-ups
match the same author across sites without a dictionary attack on plain hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import unicodedata
from urllib.parse import urlsplit

import sqlite_utils

from storage.database import transaction

AUTHOR_KEY_SETTING = "author_hash_key"
AUTHOR_KEY_ENV = "REPUTATION_AUTHOR_KEY"
HASH_ID_LENGTH = 32  # hex characters (128 bits) for content-hash ids

_SPACE = re.compile(r"\s+")


def normalise_text(text: str | None) -> str:
    """Text reduced to what identifies it: NFKC, case-folded, whitespace collapsed."""
    if not text:
        return ""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def body_hash(body: str) -> str:
    """Hash of the stored (cleaned) body; a change means the review was edited."""
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def review_id(
    *,
    source_url: str,
    source_id: str,
    site_review_id: str | None,
    author: str | None,
    published_at: str | None,
    date_precision: str,
    body: str | None,
) -> str:
    """``site:<host>:<site id>`` when the site names its reviews, else ``h:<content hash>``.

    Relative dates ("3 weeks ago") drift from crawl to crawl, so only exact dates
    take part in the hash.
    """
    if site_review_id and site_review_id.strip():
        host = (urlsplit(source_url).hostname or "").lower()
        return f"site:{host}:{site_review_id.strip()}"
    date = published_at if date_precision == "exact" and published_at else ""
    parts = [source_id, normalise_text(author), date, normalise_text(body)]
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return "h:" + digest[:HASH_ID_LENGTH]


def author_hash(name: str | None, key: bytes) -> str | None:
    """Keyed pseudonym of an author name; None when there is no name."""
    normalised = normalise_text(name)
    if not normalised:
        return None
    return hmac.new(key, normalised.encode("utf-8"), hashlib.sha256).hexdigest()[:HASH_ID_LENGTH]


def author_key(db: sqlite_utils.Database) -> bytes:
    """The HMAC key: $REPUTATION_AUTHOR_KEY, else the database's own, created on first use."""
    override = os.environ.get(AUTHOR_KEY_ENV)
    if override:
        return override.encode("utf-8")
    with transaction(db) as conn:
        # INSERT OR IGNORE then read back: two crawls starting at once agree on one key.
        conn.execute(
            "INSERT OR IGNORE INTO app_settings (key, value) VALUES (?, ?)",
            (AUTHOR_KEY_SETTING, secrets.token_hex(32)),
        )
        row = conn.execute("SELECT value FROM app_settings WHERE key = ?", (AUTHOR_KEY_SETTING,)).fetchone()
    return str(row[0]).encode("utf-8")
