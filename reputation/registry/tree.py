"""Phase 1: read the registry's YAML into plain values that remember their line.

PyYAML composes the node tree (a ``SafeLoader`` subclass refuses aliases, anchors and deep
nesting while composing, before anything is built); the tree is then walked into
:class:`Located` values, reporting duplicate keys, non-text keys and unexpected tags.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from reputation.registry.problems import Problems
from storage.errors import RegistryError

# A registry is at most six levels deep (document -> brands -> [i] -> sources -> [j] -> url);
# a deeper document is a mistake or an attack, refused before recursion can run away.
MAX_DEPTH = 8

_CORE = "tag:yaml.org,2002:"
_DOCUMENT = "(document)"
SCALAR_TAGS = {_CORE + name for name in ("str", "int", "float", "bool", "null", "timestamp")}


@dataclass(frozen=True)
class Located:
    """A YAML value with the line it came from (``key_line``: the line of its key, when it has one)."""

    value: Any  # dict[str, Located], list[Located] or a scalar
    line: int
    key_line: int = 0

    @property
    def mapping(self) -> dict[str, Located]:
        return self.value if isinstance(self.value, dict) else {}


class RefusedYaml(yaml.MarkedYAMLError):
    """Valid YAML that a registry may not use (aliases, anchors, deep nesting)."""


class RegistryYamlLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses aliases and anchors (no alias bombs) and nesting past ``MAX_DEPTH``."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.path: list[str] = []

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        mark: Any = event.start_mark
        where = self._where(parent, index)
        if isinstance(event, yaml.AliasEvent):
            raise RefusedYaml(problem=f"{where or _DOCUMENT}: YAML aliases (*{event.anchor}) are not allowed "
                                      "in a registry", problem_mark=mark)
        if getattr(event, "anchor", None) is not None:
            raise RefusedYaml(problem=f"{where or _DOCUMENT}: YAML anchors (&{event.anchor}) are not allowed "
                                      "in a registry", problem_mark=mark)
        if len(self.path) >= MAX_DEPTH:
            raise RefusedYaml(problem=f"{where or _DOCUMENT}: nested deeper than {MAX_DEPTH} levels",
                              problem_mark=mark)
        self.path.append(where)
        try:
            node = super().compose_node(parent, index)
        finally:
            self.path.pop()
        return node

    def _where(self, parent: yaml.Node | None, index: Any) -> str:
        """The dotted field name of the node about to be composed ("" for the document), for messages."""
        above = self.path[-1] if self.path else ""
        if isinstance(parent, yaml.SequenceNode):
            return f"{above}[{index}]"
        if isinstance(parent, yaml.MappingNode):
            if isinstance(index, yaml.ScalarNode):
                return f"{above}.{index.value}" if above else str(index.value)
            return f"{above} (a key)" if above else "(a key)"
        return ""


def read_tree(text: str, problems: Problems) -> Located:
    """Compose and check ``text``; fatal YAML problems raise, the rest are added to ``problems``."""
    try:
        loader = RegistryYamlLoader(text)
    except yaml.reader.ReaderError as exc:  # the reader refuses control characters before parsing
        line = text.count("\n", 0, max(exc.position, 0)) + 1
        raise RegistryError(
            f"{problems.path}:{line}: not valid YAML: unacceptable character #x{exc.character:04x}: {exc.reason}"
        ) from exc
    try:
        node = loader.get_single_node()
        if not isinstance(node, yaml.MappingNode):
            raise RegistryError(
                f"{problems.path}:1: the registry must be a mapping with vendors, brands and engagements"
            )
        return _walk(node, "", loader, problems)
    except RefusedYaml as exc:
        raise RegistryError(f"{problems.path}:{_line(exc)}: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        raise RegistryError(f"{problems.path}:{_line(exc)}: not valid YAML: {problem}") from exc
    finally:
        loader.dispose()


def _line(exc: yaml.YAMLError) -> int:
    mark = getattr(exc, "problem_mark", None)
    return mark.line + 1 if mark is not None else 1


def _walk(node: yaml.Node, where: str, loader: yaml.SafeLoader, problems: Problems) -> Located:
    """Turn a composed node into Located values; the first of two equal keys wins, the second is a mistake."""
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        if node.tag != _CORE + "map":
            problems.add(line, where or _DOCUMENT, f"tag {node.tag} is not allowed")
        items: dict[str, Located] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == _CORE + "merge":
                problems.add(key_line, where or _DOCUMENT, "merge keys (<<) are not allowed in a registry")
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _CORE + "str":
                problems.add(key_line, where or _DOCUMENT, f"key {_key_text(key_node)} must be text")
                continue
            key = str(key_node.value)
            field = f"{where}.{key}" if where else key
            if key in items:
                problems.add(key_line, field, f"duplicate key (first at line {items[key].key_line})")
                continue
            value = _walk(value_node, field, loader, problems)
            items[key] = Located(value.value, value.line, key_line)
        return Located(items, line)
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _CORE + "seq":
            problems.add(line, where, f"tag {node.tag} is not allowed")
        return Located([_walk(v, f"{where}[{i}]", loader, problems) for i, v in enumerate(node.value)], line)
    if node.tag not in SCALAR_TAGS:
        problems.add(line, where, f"tag {node.tag} is not allowed")
        return Located(node.value, line)  # kept as written, never constructed
    try:
        return Located(loader.construct_object(node, deep=True), line)
    except (ValueError, yaml.YAMLError):
        return Located(node.value, line)  # e.g. an impossible date: the field check names it


def _key_text(node: yaml.Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        return repr(node.value)
    return "(a list)" if isinstance(node, yaml.SequenceNode) else "(a mapping)"
