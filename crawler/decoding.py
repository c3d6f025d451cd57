"""Which encoding a page is in when the server and the page do not say.

Scrapy's ``TextResponse.encoding`` never returns "unknown": with no charset in the headers, no BOM
and no ``<meta charset>`` it guesses with charset-normalizer over the whole body, and on a short
review page that guess is often absurd ("très" read as Big5 or cp1250). Browsers fall back to
windows-1252 there (WHATWG), and so do we unless the bytes clearly are something else.

So a page is decoded in this order: what is declared (``declared_encoding``: BOM, Content-Type
charset, ``<meta>``), else ``detect_encoding``: UTF-8 when the bytes are valid UTF-8, windows-1252
when its reading of the text is plausible, else the best candidate of charset-normalizer among the
encodings the web actually uses, looking at the text only (markup is ASCII and drowns the signal).
"""

from __future__ import annotations

import re

from charset_normalizer import from_bytes
from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding, read_bom, resolve_encoding

FALLBACK = "cp1252"
# Legacy encodings still served without a label (WHATWG's list, less the UTF-16 family).
WEB_ENCODINGS = [
    "cp1250", "cp1251", "cp1252", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257", "cp1258",
    "iso8859_2", "iso8859_5", "iso8859_7", "iso8859_8", "iso8859_15", "koi8_r", "koi8_u",
    "cp874", "shift_jis", "euc_jp", "iso2022_jp", "gb18030", "big5", "euc_kr",
]  # fmt: skip
_MARKUP = re.compile(rb"<(?:script|style)\b.*?</(?:script|style)\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)
_SAMPLE_BYTES = 64 * 1024  # of text; detection time grows with it, accuracy stops growing well before
_CLEARLY_BETTER = 0.1  # coherence a candidate must gain over windows-1252 to be preferred to it


def declared_encoding(content_type: str | bytes | None, body: bytes) -> str | None:
    """The encoding the response states (BOM, Content-Type charset, <meta>), or None: no guessing."""
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1")
    bom, _ = read_bom(body)
    declared = bom or (http_content_type_encoding(content_type) if content_type else None)
    return declared or html_body_declared_encoding(body)


def detect_encoding(body: bytes) -> str:
    """The encoding of an undeclared page (a Python codec name); never fails, never None."""
    bom, _ = read_bom(body)
    if bom:
        return bom
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    sample = _MARKUP.sub(b" ", body)
    if len(sample) > _SAMPLE_BYTES:
        sample = sample[:_SAMPLE_BYTES]
    if sample.isascii():  # every non-ASCII byte sat in markup (attributes, comments)
        sample = body[:_SAMPLE_BYTES]
    western = from_bytes(sample, cp_isolation=[FALLBACK]).best()
    best = from_bytes(sample, cp_isolation=WEB_ENCODINGS).best()
    if best is None:
        return FALLBACK
    if western is not None and best.coherence < western.coherence + _CLEARLY_BETTER:
        return FALLBACK  # windows-1252 reads it without mess, and nothing reads it clearly better
    return resolve_encoding(best.encoding) or best.encoding
