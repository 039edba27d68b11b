"""Parsed YAML that remembers where each key and item stood in its source text, and the loader that builds it.

Manifests (``sources.yaml_documents``) and the config file are read with ``MarkingLoader``; the model and
the config read positions from ``MarkedDict`` and ``MarkedList``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import yaml
from yaml._yaml import CParser
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"

# A position is packed into one int (line * LINE_FACTOR + column, both 0-based) to keep the per-key cost small.
LINE_FACTOR = 1 << 24


def pack_position(line: int, column: int) -> int:
    """0-based line and column as one int."""
    return line * LINE_FACTOR + column


def unpack_position(packed: int) -> tuple[int, int]:
    """1-based (line, column) of a packed position."""
    line, column = divmod(packed, LINE_FACTOR)
    return line + 1, column + 1


class MarkedDict(dict):
    """A mapping that remembers where each of its keys stands in the source."""

    __slots__ = ("marks",)
    marks: dict[Any, int]

    def key_position(self, key: Any) -> tuple[int, int] | None:
        marks = getattr(self, "marks", None)
        packed = marks.get(key) if marks else None
        return unpack_position(packed) if packed is not None else None


class MarkedList(list):
    """A sequence that remembers where each of its items stands in the source."""

    __slots__ = ("marks",)
    marks: list[int]

    def item_position(self, index: int) -> tuple[int, int] | None:
        marks = getattr(self, "marks", None)
        if marks and 0 <= index < len(marks):
            return unpack_position(marks[index])
        return None


class _MarkingConstructor(SafeConstructor):
    line_offset = 0

    def construct_marked_map(self, node: MappingNode):
        data = MarkedDict()
        yield data
        if any(key_node.tag == _MERGE_TAG for key_node, _ in node.value):
            self.flatten_mapping(node)
        marks = {}
        offset = self.line_offset
        construct = self.construct_object
        for key_node, value_node in node.value:
            # Plain strings are most of a manifest: they are taken from the node without a constructor call.
            key = key_node.value if key_node.tag == _STR_TAG and key_node.__class__ is ScalarNode \
                else construct(key_node)
            try:
                data[key] = value_node.value if value_node.tag == _STR_TAG and value_node.__class__ is ScalarNode \
                    else construct(value_node)
            except TypeError:
                raise ConstructorError(
                    "while constructing a mapping", node.start_mark, "found unhashable key", key_node.start_mark
                ) from None
            mark = key_node.start_mark
            marks[key] = pack_position(mark.line + offset, mark.column)
        data.marks = marks

    def construct_marked_seq(self, node: SequenceNode):
        data = MarkedList()
        yield data
        offset = self.line_offset
        construct = self.construct_object
        data.extend(child.value if child.tag == _STR_TAG and child.__class__ is ScalarNode else construct(child)
                    for child in node.value)
        data.marks = [pack_position(child.start_mark.line + offset, child.start_mark.column)
                      for child in node.value]

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except (ValueError, KeyError):
            # A value that does not fit its explicit tag (`!!int abc`); the exception's text would quote it.
            raise ConstructorError(None, None, "a value does not fit its explicit YAML tag", node.start_mark) from None

    def construct_timestamp_as_text(self, node):
        # Kubernetes decodes YAML through JSON: a timestamp-looking value is a string there.
        return self.construct_scalar(node)


# The stubs type add_constructor for whole loaders; this constructor is the part MarkingLoader mixes in.
_MarkingConstructor.add_constructor(  # type: ignore[type-var]
    "tag:yaml.org,2002:map", _MarkingConstructor.construct_marked_map)
_MarkingConstructor.add_constructor(  # type: ignore[type-var]
    "tag:yaml.org,2002:seq", _MarkingConstructor.construct_marked_seq)
_MarkingConstructor.add_constructor(  # type: ignore[type-var]
    "tag:yaml.org,2002:timestamp", _MarkingConstructor.construct_timestamp_as_text)


class _CachingResolver(yaml.resolver.Resolver):
    """The standard implicit resolution, remembered per (value, style): manifests repeat their scalars.

    There are no path resolvers here, so the per-node path bookkeeping is skipped.
    """

    _scalar_tags: ClassVar[dict[tuple[str, tuple[bool, bool]], str]] = {}
    _MAX_CACHED = 200_000

    def resolve(self, kind, value, implicit):
        if kind is not ScalarNode:
            return super().resolve(kind, value, implicit)
        key = (value, implicit)
        tag = self._scalar_tags.get(key)
        if tag is None:
            if len(self._scalar_tags) >= self._MAX_CACHED:
                self._scalar_tags.clear()
            tag = self._scalar_tags[key] = super().resolve(kind, value, implicit)
        return tag

    def descend_resolver(self, current_node, current_index):
        pass

    def ascend_resolver(self):
        pass


class MarkingLoader(CParser, _MarkingConstructor, _CachingResolver):
    """libyaml's parser and composer, with our position-keeping constructor."""

    def __init__(self, stream: str, line_offset: int = 0):
        CParser.__init__(self, stream)
        _MarkingConstructor.__init__(self)
        _CachingResolver.__init__(self)
        self.line_offset = line_offset
