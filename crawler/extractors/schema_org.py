"""schema.org Review / AggregateRating nodes -> review records, for JSON-LD, microdata and RDFa.

All three syntaxes are first brought to the same shape (plain dicts with short schema.org keys,
``@id`` references); this module then resolves references, finds every Review exactly once and
maps its properties.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from crawler.extractors.result import Aggregate
from crawler.fields import parse_rating_text
from crawler.items import ReviewItem

_SCHEMA_PREFIXES = ("http://schema.org/", "https://schema.org/", "schema:")
_MAX_DEPTH = 40


def local_name(term: str) -> str:
    """'https://schema.org/Review', 'schema:Review' and 'Review' all become 'Review'."""
    for prefix in _SCHEMA_PREFIXES:
        if term.startswith(prefix):
            return term[len(prefix):]
    return term


def types_of(node: dict[str, Any]) -> set[str]:
    raw = node.get("@type", node.get("type"))
    if raw is None:
        return set()
    values = raw if isinstance(raw, list) else [raw]
    return {local_name(str(v)).rsplit("/", 1)[-1].rsplit("#", 1)[-1] for v in values}


def is_review(node: dict[str, Any]) -> bool:
    # Review, UserReview, CriticReview, EmployerReview ... but not ReviewAction / ReviewNewsArticle
    return any(t.endswith("Review") for t in types_of(node))


def compact(value: Any) -> Any:
    """Expanded JSON-LD (RDFa output) -> compact shape: short keys, unwrapped @value and lists of one."""
    if isinstance(value, list):
        items = [compact(v) for v in value]
        return items[0] if len(items) == 1 else items
    if not isinstance(value, dict):
        return value
    if "@value" in value:
        return value["@value"]
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key == "@type":
            out[key] = item
        else:
            out[local_name(key) if not key.startswith("@") else key] = compact(item)
    return out


class Graph:
    """Nodes by @id, so that {"@id": ...} references resolve to the full node."""

    def __init__(self, roots: list[Any]) -> None:
        self.roots = roots
        self.by_id: dict[str, dict[str, Any]] = {}
        for node in list(self._walk_raw(roots, 0)):  # listed first: merging mutates nodes
            node_id = node.get("@id")
            if isinstance(node_id, str) and len(node) > 1:
                known = self.by_id.get(node_id)
                if known is None:
                    self.by_id[node_id] = node
                elif known is not node:
                    # one node split over several places: merge, first definition wins per key
                    for key, value in node.items():
                        known.setdefault(key, value)

    def _walk_raw(self, value: Any, depth: int) -> Iterator[dict[str, Any]]:
        if depth > _MAX_DEPTH:
            return
        if isinstance(value, list):
            for item in value:
                yield from self._walk_raw(item, depth + 1)
        elif isinstance(value, dict):
            yield value
            for key, item in value.items():
                if key != "@context":
                    yield from self._walk_raw(item, depth + 1)

    def resolve(self, value: Any) -> Any:
        """The full node for a bare reference; anything else unchanged."""
        if isinstance(value, dict) and "@id" in value:
            target = self.by_id.get(value["@id"])
            if target is not None:
                return target
        return value

    def nodes(self) -> Iterator[dict[str, Any]]:
        """Every node once (by @id or identity), following references, in document order."""
        seen_ids: set[str] = set()
        seen_objs: set[int] = set()
        stack: list[tuple[Any, int]] = [(self.roots, 0)]
        while stack:
            value, depth = stack.pop()
            if depth > _MAX_DEPTH:
                continue
            if isinstance(value, list):
                stack.extend((item, depth + 1) for item in reversed(value))
                continue
            if not isinstance(value, dict):
                continue
            node = self.resolve(value)
            node_id = node.get("@id")
            if id(node) in seen_objs or (isinstance(node_id, str) and node_id in seen_ids):
                continue
            seen_objs.add(id(node))
            if isinstance(node_id, str):
                seen_ids.add(node_id)
            yield node
            stack.extend(
                (item, depth + 1) for key, item in reversed(list(node.items())) if key != "@context"
            )


def _first(value: Any) -> Any:
    while isinstance(value, list):
        if not value:
            return None
        value = value[0]
    return value


def _text(graph: Graph, value: Any) -> str | None:
    value = graph.resolve(_first(value))
    if value is None:
        return None
    if isinstance(value, dict):
        for key in ("name", "alternateName", "@value", "value", "text"):
            if key in value:
                return _text(graph, value[key])
        return None
    text = str(value).strip()
    return text or None


def _get(graph: Graph, node: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        if key in node:
            text = _text(graph, node[key])
            if text:
                return text
    return None


def review_id(node: dict[str, Any]) -> str | None:
    """identifier, else the @id fragment after '#r-' or the last '#', else None."""
    ident = _first(node.get("identifier"))
    if isinstance(ident, dict):
        ident = ident.get("value", ident.get("@value"))
    if ident is not None and str(ident).strip():
        return str(ident).strip()
    node_id = node.get("@id")
    if isinstance(node_id, str) and "#" in node_id and not node_id.startswith("_:"):
        fragment = node_id.split("#r-", 1)[1] if "#r-" in node_id else node_id.rsplit("#", 1)[1]
        return fragment or None
    return None


def _float(value: Any) -> float | None:
    number, _ = parse_rating_text(value)
    return number


def review_item(graph: Graph, node: dict[str, Any], url: str, extractor: str) -> ReviewItem:
    """Map one schema.org Review node to a ReviewItem with raw fields."""
    item = ReviewItem(
        body=_get(graph, node, "reviewBody", "description", "text"),
        title=_get(graph, node, "headline", "name"),
        author=_get(graph, node, "author", "creator"),
        site_review_id=review_id(node),
        date_raw=_get(graph, node, "datePublished", "dateCreated", "dateModified"),
        url=url,
        extractor=extractor,
    )
    rating = graph.resolve(_first(node.get("reviewRating")))
    if isinstance(rating, dict):
        value, stated_best = parse_rating_text(_text(graph, rating.get("ratingValue")))
        item.rating_value = value
        item.rating_max = _float(_first(rating.get("bestRating"))) or stated_best
        item.rating_min = _float(_first(rating.get("worstRating")))
    elif rating is not None:
        item.rating_value, item.rating_max = parse_rating_text(rating)
    return item


def aggregate_of(graph: Graph, node: dict[str, Any]) -> Aggregate | None:
    """The page's AggregateRating: value, scale and count."""
    value = _float(_first(node.get("ratingValue")))
    count = _float(_first(node.get("reviewCount", node.get("ratingCount"))))
    if value is None and count is None:
        return None
    best = _float(_first(node.get("bestRating")))
    return Aggregate(
        rating_value=value,
        rating_max=best if best is not None else (5.0 if value is not None and value <= 5 else None),
        review_count=int(count) if count is not None else None,
        rating_min=_float(_first(node.get("worstRating"))),
    )


def extract_from_nodes(
    roots: list[Any], url: str, extractor: str
) -> tuple[list[ReviewItem], Aggregate | None]:
    """Reviews (each once, even when linked by @id and also inlined) and the first AggregateRating."""
    graph = Graph(roots)
    reviews: list[ReviewItem] = []
    aggregate: Aggregate | None = None
    for node in graph.nodes():
        if is_review(node):
            reviews.append(review_item(graph, node, url, extractor))
        elif aggregate is None and "AggregateRating" in types_of(node):
            aggregate = aggregate_of(graph, node)
    return reviews, aggregate
