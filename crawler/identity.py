"""Stable identities for reviews, and the keyed author pseudonym.

A review keeps one id across crawls and extractors, so a re-crawl updates rather than
duplicates. The id is tied to the listing (the ``sources`` row) it came from:

- ``site:<source id>:<site id>`` when the page names the review (Trustpilot's id, Amazon's
  ``R…``), the site id normalised so that every extractor gives the same one (JSON-LD's
  ``…/#/schema/Review/acme.com/<id>`` and the HTML card's ``/reviews/<id>`` are one review);
- else ``h:<content key>``: a hash of source + author + exact date + normalised text. The store
  also keeps this key for site-id rows, so a page read once by an extractor that sees the site
  id and once by one that does not (microdata) still lands on one row.

Author names are never stored. An HMAC with a secret key lets roll-ups match the same author
across sites without a dictionary attack on plain hashes. The key lives outside the database
(``<db>.key``, mode 0600, or ``$REPUTATION_AUTHOR_KEY``), so the database file alone cannot
confirm a guessed author.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import unicodedata
from pathlib import Path

import sqlite_utils

from crawler.items import ReviewItem
from storage.database import transaction
from storage.errors import ReputationError

AUTHOR_KEY_SETTING = "author_hash_key"  # where releases before the key file kept the key
AUTHOR_KEY_ENV = "REPUTATION_AUTHOR_KEY"
KEY_FILE_SUFFIX = ".key"
HASH_ID_LENGTH = 32  # hex characters (128 bits) for content-hash ids
HASH_ID_PREFIX = "h:"  # a content-hash id is this prefix and the content key

_DIGIT = re.compile(r"[0-9]")  # as GLOB '*[0-9]*' in migration 8
# Per-process key for in-memory databases: the data dies with the process, so may the key.
_MEMORY_KEY = secrets.token_hex(32).encode("ascii")


class AuthorKeyError(ReputationError):
    """The author-pseudonym key is missing or ambiguous; a new one would silently unlink authors."""


def normalise_text(text: str | None) -> str:
    """Text reduced to what identifies it: NFKC, case-folded, whitespace collapsed."""
    if not text:
        return ""
    # split/join collapses runs of whitespace (re's \s and str.isspace are the same set) and trims
    # the ends, three times faster than re.sub: the store runs this twice per review (content keys)
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()


def normalise_site_id(raw: str | None) -> str | None:
    """The site's review id as every extractor of the same page sees it; None when there is none.

    Extractors differ only in how much of an address they keep: JSON-LD's ``@id`` on Trustpilot
    is ``https://…/#/schema/Review/acme.com/en/<id>`` (the fragment, ``/schema/Review/…/<id>``,
    reaches us), the HTML card links ``/reviews/<id>``, ``__NEXT_DATA__`` says ``<id>``. An id
    that is a path or address is reduced to the last segment of its path when that segment holds
    a digit (review ids do; ``/review?id=5`` keeps its whole text). Prefixes such as Google Play's
    ``gp:`` are kept: every extractor of those pages gives them. Plain string steps, mirrored
    one for one by migration 8's SQL, so stored and newly found ids agree.
    """
    if raw is None:
        return None
    value = raw.strip()
    if "/" in value:
        cut = value.split("#", 1)[0].split("?", 1)[0]
        if "://" in cut:
            rest = cut.split("://", 1)[1]
            path = rest[rest.index("/") :] if "/" in rest else ""
        else:
            path = cut
        last = path.rstrip("/").rsplit("/", 1)[-1]
        if _DIGIT.search(last):
            value = last
    return value or None


def content_key(
    *, source_id: str, author: str | None, published_at: str | None, date_precision: str, body: str | None
) -> str:
    """Hash of what cannot change about a review in one listing (the ``h:`` id without its prefix).

    Relative dates ("3 weeks ago") drift from crawl to crawl, so only exact dates take part.
    """
    date = published_at if date_precision == "exact" and published_at else ""
    parts = [source_id, normalise_text(author), date, normalise_text(body)]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:HASH_ID_LENGTH]


def review_id(
    *,
    source_id: str,
    site_review_id: str | None,
    author: str | None,
    published_at: str | None,
    date_precision: str,
    body: str | None,
) -> str:
    """``site:<source id>:<site id>`` when the site names its reviews, else ``h:<content key>``."""
    site_id = normalise_site_id(site_review_id)
    if site_id:
        return f"site:{source_id}:{site_id}"
    key = content_key(
        source_id=source_id,
        author=author,
        published_at=published_at,
        date_precision=date_precision,
        body=body,
    )
    return HASH_ID_PREFIX + key


def item_review_id(item: ReviewItem) -> str:
    """``review_id`` of a normalised item: the one naming the dedupe pipeline and incremental crawls share."""
    assert item.source_id is not None
    return review_id(
        source_id=item.source_id,
        site_review_id=item.site_review_id,
        author=item.author,
        published_at=item.published_at,
        date_precision=item.date_precision,
        body=item.body,
    )


def identify(item: ReviewItem) -> None:
    """Name a normalised item as it is stored: site id normalised, id, content key and body hash.

    Its author pseudonym needs the crawl's key and is the dedupe pipeline's. The content key is
    hashed once here and kept on the item (``content_key``) for the store, which matches by it.
    """
    assert item.source_id is not None and item.body is not None
    item.site_review_id = normalise_site_id(item.site_review_id)
    item.content_key = item_content_key(item)
    item.id = item_review_id(item) if item.site_review_id else HASH_ID_PREFIX + item.content_key
    item.body_hash = body_hash(item.body)
    item.identified = True


def stored_content_key(item: ReviewItem) -> str:
    """The content key the store matches ``item`` by: the one ``identify`` kept, else hashed now."""
    if item.identified and item.content_key is not None:
        return item.content_key
    return item_content_key(item)


def item_content_key(item: ReviewItem) -> str:
    """``content_key`` of a normalised item, as the store matches reviews that lack a site id."""
    assert item.source_id is not None
    return content_key(
        source_id=item.source_id,
        author=item.author,
        published_at=item.published_at,
        date_precision=item.date_precision,
        body=item.body,
    )


def body_hash(body: str) -> str:
    """Hash of the stored (cleaned) body; a change means the review was edited."""
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def author_hash(name: str | None, key: bytes) -> str | None:
    """Keyed pseudonym of an author name; None when there is no name."""
    normalised = normalise_text(name)
    if not normalised:
        return None
    return hmac.new(key, normalised.encode("utf-8"), hashlib.sha256).hexdigest()[:HASH_ID_LENGTH]


def database_file(db: sqlite_utils.Database) -> Path | None:
    """The main database file of a connection; None for an in-memory database."""
    for _seq, name, file in db.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return Path(file) if file else None
    return None


def key_file(db: sqlite_utils.Database) -> Path | None:
    """``<database>.key`` beside the database file; None for an in-memory database."""
    path = database_file(db)
    return path.with_name(path.name + KEY_FILE_SUFFIX) if path is not None else None


def _write_new_key(path: Path, value: str) -> str:
    """Create ``path`` (mode 0600) holding ``value``, unless another process made it first; return its key.

    The key is written to a private temporary file, then linked into place: the link fails if
    the file exists, so two crawls starting at once agree on one key and none reads a half file.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(value + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            return _read_key(path)
    finally:
        temporary.unlink(missing_ok=True)
    return value


def _read_key(path: Path) -> str:
    value = path.read_text(encoding="ascii").strip()
    if not value:
        raise AuthorKeyError(f"author key file {path} is empty; restore it from a backup")
    return value


def author_key(db: sqlite_utils.Database) -> bytes:
    """The HMAC key: $REPUTATION_AUTHOR_KEY, else ``<db>.key``, created (0600) on first use.

    A key left in the database's ``app_settings`` by an earlier release is moved out into the
    key file on first use (and deleted from the database). A database that holds author
    hashes but has no key anywhere is an error: a fresh key would silently stop matching them.
    """
    moved = _move_key_out_of_database(db)
    override = os.environ.get(AUTHOR_KEY_ENV)
    if override:
        return override.encode("utf-8")
    if moved is not None:
        return moved.encode("utf-8")
    path = key_file(db)
    if path is None:
        return _MEMORY_KEY
    if path.exists():
        return _read_key(path).encode("utf-8")
    if db.execute("SELECT 1 FROM reviews WHERE author_hash IS NOT NULL LIMIT 1").fetchone():
        raise AuthorKeyError(
            f"{database_file(db)} holds author pseudonyms but their key is missing: restore {path} "
            f"or set {AUTHOR_KEY_ENV}; a new key would no longer match earlier authors"
        )
    return _write_new_key(path, secrets.token_hex(32)).encode("utf-8")


def _move_key_out_of_database(db: sqlite_utils.Database) -> str | None:
    """Move a key stored in ``app_settings`` into the key file; return it, or None when there was none."""
    path = key_file(db)
    if path is None:
        return None
    with transaction(db) as conn:
        row = conn.execute("SELECT value FROM app_settings WHERE key = ?", (AUTHOR_KEY_SETTING,)).fetchone()
        if row is None:
            return None
        stored = str(row[0])
        kept = _write_new_key(path, stored)
        if kept != stored:
            raise AuthorKeyError(
                f"{path} and the database hold different author keys; keep the one the author hashes "
                f"were made with in {path} and delete app_settings.{AUTHOR_KEY_SETTING}"
            )
        conn.execute("DELETE FROM app_settings WHERE key = ?", (AUTHOR_KEY_SETTING,))
    return stored
