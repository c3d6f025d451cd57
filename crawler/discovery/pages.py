"""Turn one vendor-site page into evidence: structured mentions first, then dated sentences.

Pure functions over (url, html); the discovery spider only navigates and hands pages here.
Structured data is read before prose because it names organisations without guessing:
schema.org Organization / ``sameAs`` (JSON-LD, microdata, RDFa through extruct), the ``alt``
text of logos on a client wall, and case-study titles. Sentences come with the date of the
item they sit in (a news list entry's ``<time>``) or else the page's own date.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import extruct
from parsel import Selector
from w3lib.html import get_base_url

# Headings or class/id names that make a logo list a client wall, and ones that make it something else.
CLIENT_WALL = re.compile(r"\b(clients?|customers?|trusted by|who we serve|brands we serve|our work)\b", re.I)
NOT_CLIENT_WALL = re.compile(r"\b(partners?|technology|suppliers?|awards?|certifi\w*|accredit\w*|press|featured in|"
                             r"as seen)\b", re.I)
CASE_STUDY_PATH = re.compile(r"case[-_ ]?stud|success[-_ ]?stor|customer[-_ ]?stor", re.I)
CASE_STUDY_TITLE = re.compile(r"^\s*(?:case study|customer story|success story)\s*[:\-–—]\s*", re.I)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“])")
BLOCKS = "//h1|//h2|//h3|//p|//li|//blockquote|//td"
ORG_TYPES = {"Organization", "Corporation", "LocalBusiness", "Airline", "BankOrCreditUnion", "Brand"}
MAX_SENTENCE_CHARS = 600


@dataclass(frozen=True)
class Mention:
    """An organisation named by structured data: ``how`` is schema_org, logo_wall or case_study."""

    name: str
    how: str
    same_as: tuple[str, ...] = ()
    date: str | None = None


@dataclass(frozen=True)
class Sentence:
    text: str
    date: str | None  # ISO date of the item or page it was read from


@dataclass
class PageEvidence:
    url: str
    title: str
    date: str | None
    mentions: list[Mention] = field(default_factory=list)
    sentences: list[Sentence] = field(default_factory=list)

    def to_item(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> PageEvidence:
        return cls(url=item["url"], title=item.get("title") or "", date=item.get("date"),
                   mentions=[Mention(m["name"], m["how"], tuple(m.get("same_as") or ()), m.get("date"))
                             for m in item.get("mentions") or []],
                   sentences=[Sentence(s["text"], s.get("date")) for s in item.get("sentences") or []])


def _iso(value: Any) -> str | None:
    """The YYYY-MM-DD at the start of a date or datetime string, if it is one."""
    if not isinstance(value, str):
        return None
    match = re.match(r"\s*(\d{4}-\d{2}-\d{2})", value)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1)).isoformat()
    except ValueError:
        return None


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _walk(node: Any) -> list[dict[str, Any]]:
    """Every dict inside a parsed structured-data tree."""
    out: list[dict[str, Any]] = []
    if isinstance(node, dict):
        out.append(node)
        for value in node.values():
            out += _walk(value)
    elif isinstance(node, list):
        for value in node:
            out += _walk(value)
    return out


def _types(node: dict[str, Any]) -> set[str]:
    kind = node.get("@type") or node.get("type") or ()
    kinds = [kind] if isinstance(kind, str) else list(kind)
    return {str(k).rsplit("/", 1)[-1] for k in kinds}


def structured_mentions(html: str, url: str) -> tuple[list[Mention], str | None]:
    """schema.org organisations (with sameAs) and the page's datePublished, if any."""
    try:
        data = extruct.extract(html, base_url=get_base_url(html, url), syntaxes=["json-ld", "microdata", "rdfa"],
                               uniform=True, errors="ignore")
    except Exception:  # noqa: BLE001 - extruct raises whatever its parsers raise on broken markup
        return [], None
    mentions: list[Mention] = []
    published: str | None = None
    for syntax in ("json-ld", "microdata", "rdfa"):
        for node in _walk(data.get(syntax) or []):
            published = published or _iso(node.get("datePublished"))
            if not _types(node) & ORG_TYPES:
                continue
            name = node.get("name")
            if isinstance(name, list):
                name = name[0] if name else None
            if not isinstance(name, str) or not name.strip():
                continue
            same = node.get("sameAs") or ()
            same_as = (same,) if isinstance(same, str) else tuple(s for s in same if isinstance(s, str))
            mentions.append(Mention(_clean(name), "schema_org", same_as))
    return mentions, published


def _wall_kind(img: Selector) -> str | None:
    """'client' or 'other' for a logo inside a recognisable wall; None for a lone image."""
    for ancestor in img.xpath("ancestor::*[self::section or self::div or self::ul or self::aside]"
                              "[position() <= 3]"):
        label = " ".join([ancestor.attrib.get("class", ""), ancestor.attrib.get("id", ""),
                          ancestor.attrib.get("aria-label", ""),
                          " ".join(ancestor.xpath("./h1//text()|./h2//text()|./h3//text()").getall())])
        if NOT_CLIENT_WALL.search(label):
            return "other"
        if CLIENT_WALL.search(label):
            return "client"
    return None


def logo_mentions(sel: Selector, url: str) -> list[Mention]:
    """Logo ``alt`` texts on a client wall (a clients page counts as one); partner or award walls are skipped."""
    page_is_clients = bool(CLIENT_WALL.search(re.sub(r"[-_/.]", " ", urlsplit(url).path)))
    out = []
    for img in sel.xpath("//img[@alt]"):
        alt = _clean(img.attrib.get("alt", ""))
        if not alt or len(alt) > 80 or alt.casefold() == "logo":
            continue
        alt = re.sub(r"\s+logo$", "", alt, flags=re.I)
        kind = _wall_kind(img)
        if kind == "client" or (kind is None and page_is_clients):
            out.append(Mention(alt, "logo_wall"))
    return out


def case_study_mentions(sel: Selector, url: str, title: str, day: str | None) -> list[Mention]:
    """A case-study page's title is the client's story: its text is kept, the brand is found later."""
    if not (CASE_STUDY_PATH.search(url) and CASE_STUDY_TITLE.match(title)):
        return []
    return [Mention(CASE_STUDY_TITLE.sub("", title), "case_study", (), day)]


def _item_date(block: Selector) -> str | None:
    own = block.xpath(".//time/@datetime").get()
    if own:
        return _iso(own)
    near = block.xpath("ancestor::*[self::li or self::article][1]//time/@datetime").get()
    return _iso(near)


def page_sentences(sel: Selector, page_date: str | None) -> list[Sentence]:
    """Sentences of the page's text blocks, each with its item's date or the page's."""
    seen: set[str] = set()
    out = []
    for block in sel.xpath(BLOCKS):
        if block.xpath(".//p|.//li|.//h1|.//h2|.//h3"):  # a container: its children are read themselves
            continue
        text = _clean(" ".join(block.xpath(".//text()[not(ancestor::time)]").getall()))
        if not text:
            continue
        day = _item_date(block) or page_date
        for sentence in SENTENCE_END.split(text):
            sentence = sentence.strip()[:MAX_SENTENCE_CHARS]
            if len(sentence.split()) < 3 or sentence in seen:
                continue
            seen.add(sentence)
            out.append(Sentence(sentence, day))
    return out


def extract_page(url: str, html: str) -> PageEvidence:
    """Everything a discovery crawl keeps from one page."""
    sel = Selector(text=html)
    title = _clean(" ".join(sel.xpath("//title//text()").getall()))
    structured, published = structured_mentions(html, url)
    day = (_iso(sel.xpath("//meta[@property='article:published_time']/@content").get())
           or published or _iso(sel.xpath("//article//time/@datetime").get()))
    mentions = structured + logo_mentions(sel, url) + case_study_mentions(sel, url, title, day)
    return PageEvidence(url=url, title=title, date=day, mentions=mentions, sentences=page_sentences(sel, day))
