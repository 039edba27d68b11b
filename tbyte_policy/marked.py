"""Parsed YAML that remembers where each key and item stood in its source text, and the loader that builds it.

Manifests (``sources.yaml_documents``) and the config file are read with ``MarkingLoader``; the model and
the config read positions from ``MarkedDict`` and ``MarkedList``. Scalars, keys and merges are read as
Kubernetes reads them (``yaml_scalars``), not as PyYAML's resolver would.
"""

from __future__ import annotations

from typing import Any, ClassVar

from yaml._yaml import CParser
from yaml.constructor import BaseConstructor, ConstructorError
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from tbyte_policy.lazyre import lazy_compile
from tbyte_policy.yaml_scalars import (
    BINARY_TAG,
    BOOL_TAG,
    FLOAT_TAG,
    INT_TAG,
    MERGE_TAG,
    NULL_TAG,
    STR,
    STR_TAG,
    TAG_OF_KIND,
    TIMESTAMP_TAG,
    ScalarError,
    json_value,
    key_text,
    resolve_plain,
    resolve_tagged,
)

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


class _MarkingConstructor(BaseConstructor):
    """Builds MarkedDict/MarkedList with positions, and reads every scalar and key as Kubernetes does
    (``yaml_scalars``): go-yaml v2's resolution, then the JSON that sigs.k8s.io/yaml makes of it."""

    line_offset = 0
    source = ""  # the text being parsed: marks index into it
    json_numbers = False  # JSON text: Kubernetes decodes its numbers as written (1.0 stays a float)
    _plain_values: ClassVar[dict[str, Any]] = {}  # untagged plain scalar text -> value, for the non-string ones
    _MAX_CACHED = 200_000

    def __init__(self):
        super().__init__()
        self._merging: set[MappingNode] = set()

    def construct_node(self, node):
        # go-yaml decodes by node kind: a tag on a mapping or sequence (!!set, !!omap, !foo) changes nothing.
        if node.__class__ is MappingNode:
            return self._marked_map(node)
        if node.__class__ is SequenceNode:
            return self._marked_seq(node)
        return node.value if node.tag == STR_TAG else self._scalar_value(node)

    def construct_other(self, node):
        """A node with a tag of no YAML type Kubernetes knows: decoded by its kind, except Python objects."""
        _refuse_python_tag(node)
        return self.construct_node(node)

    def _marked_map(self, node: MappingNode):
        data = MarkedDict()
        yield data
        data.marks = {}
        self._fill_map(node, data, data.marks)

    def _fill_map(self, node: MappingNode, data: MarkedDict, marks: dict[Any, int]) -> None:
        offset = self.line_offset
        construct = self.construct_object
        scalar = self._scalar_value
        for key_node, value_node in node.value:
            if key_node.__class__ is ScalarNode:
                # Plain strings are most of a manifest: they are taken from the node without a constructor call.
                key_tag = key_node.tag
                if key_tag == STR_TAG:
                    key = key_node.value
                elif key_tag == MERGE_TAG and key_node.value == "<<":
                    self._merge(key_node, value_node, data, marks)
                    continue
                else:
                    key = self._key(key_node)
            else:
                key = construct(key_node)
            if value_node.__class__ is ScalarNode:
                value = value_node.value if value_node.tag == STR_TAG else scalar(value_node)
            else:
                value = construct(value_node)
            try:
                data[key] = value
            except TypeError:
                raise ConstructorError(
                    "while constructing a mapping", node.start_mark, "found unhashable key", key_node.start_mark
                ) from None
            mark = key_node.start_mark
            marks[key] = pack_position(mark.line + offset, mark.column)

    def _merge(self, key_node: ScalarNode, value_node: Any, data: MarkedDict, marks: dict[Any, int]) -> None:
        # decode.go merge(): the merged pairs are written where `<<` stands, so keys before it are overwritten
        # and keys after it win; of a list of mappings, the first wins (they are applied last to first).
        # A list must be written there: an alias to one is refused (an aliased node starts before the key).
        if value_node.__class__ is MappingNode:
            sources = [value_node]
        elif (value_node.__class__ is SequenceNode and value_node.start_mark.index > key_node.start_mark.index
              and all(item.__class__ is MappingNode for item in value_node.value)):
            sources = value_node.value[::-1]
        else:
            raise ConstructorError(None, None, "a merge key (<<) needs a mapping or a list of mappings",
                                   key_node.start_mark)
        for source in sources:
            if source in self._merging:
                raise ConstructorError(None, None, "a merge key (<<) refers to a mapping that contains it",
                                       source.start_mark)
            self._merging.add(source)
            try:
                self._fill_map(source, data, marks)
            finally:
                self._merging.discard(source)

    def _marked_seq(self, node: SequenceNode):
        data = MarkedList()
        yield data
        offset = self.line_offset
        construct = self.construct_object
        scalar = self._scalar_value
        data.extend((child.value if child.tag == STR_TAG else scalar(child)) if child.__class__ is ScalarNode
                    else construct(child) for child in node.value)
        data.marks = [pack_position(child.start_mark.line + offset, child.start_mark.column)
                      for child in node.value]

    def _scalar_value(self, node: ScalarNode) -> Any:
        text = node.value
        # An untagged, unanchored plain scalar spans exactly its text; its value depends on the text alone.
        if node.end_mark.index - node.start_mark.index == len(text) and not self.json_numbers:
            value = self._plain_values.get(text, _MISSING)
            if value is _MISSING:
                value = self._checked(node, json_value, *resolve_plain(text))
                if len(self._plain_values) >= self._MAX_CACHED:
                    self._plain_values.clear()
                self._plain_values[text] = value
            return value
        return self._checked(node, json_value, *self._resolve(node), self.json_numbers)

    def _key(self, node: ScalarNode) -> str:
        return self._checked(node, key_text, *self._resolve(node))

    def _resolve(self, node: ScalarNode) -> tuple[str, Any]:
        """The kind and Go value of a scalar that is tagged, anchored or in JSON text."""
        tag = node.tag
        if tag in _IMPLICIT_TAGS:
            # The resolver gave this tag: to an untagged scalar, or to one tagged `!`, which libyaml resolves like
            # an untagged one but go-yaml (and the YAML spec) reads as a string.
            if self.source and _NON_SPECIFIC_TAG.match(self.source, node.start_mark.index):
                return STR, node.value
        elif tag not in _KNOWN_TAGS:
            _refuse_python_tag(node)
            if not node.value and not node.style:
                # `password: !s3cr3t` is a tag with no value, which Kubernetes would read as "": refused instead.
                raise ConstructorError(None, None, "could not determine a constructor for a tag with no value",
                                       node.start_mark)
        return self._checked(node, resolve_tagged, tag, node.value)

    @staticmethod
    def _checked(node: ScalarNode, convert: Any, *arguments: Any) -> Any:
        try:
            return convert(*arguments)
        except ScalarError as error:
            raise ConstructorError(None, None, str(error), node.start_mark) from None


# The stubs type add_constructor for whole loaders; this constructor is the part MarkingLoader mixes in.
for _tag in ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", STR_TAG, INT_TAG, FLOAT_TAG, BOOL_TAG,
             NULL_TAG, MERGE_TAG):
    _MarkingConstructor.add_constructor(_tag, _MarkingConstructor.construct_node)  # type: ignore[type-var]
_MarkingConstructor.add_constructor(None, _MarkingConstructor.construct_other)  # type: ignore[type-var]


def _refuse_python_tag(node: Any) -> None:
    # Only safe YAML is loaded; go-yaml would decode the node as if it had no tag.
    if node.tag.startswith("tag:yaml.org,2002:python/"):
        raise ConstructorError(None, None, f"could not determine a constructor for the tag {node.tag!r}",
                               node.start_mark)


_MISSING = object()
_IMPLICIT_TAGS = frozenset({INT_TAG, FLOAT_TAG, BOOL_TAG, NULL_TAG, MERGE_TAG, STR_TAG})
_KNOWN_TAGS = frozenset({*_IMPLICIT_TAGS, TIMESTAMP_TAG, BINARY_TAG})
# The non-specific tag `!`, after an anchor if there is one, at a scalar's start.
_NON_SPECIFIC_TAG = lazy_compile(r"(?:&[^\s,\[\]{}]+\s+)?!(?=\s|$)")


def _starts_with_brace(text: str) -> bool:
    for character in text:  # only the leading white space is walked
        if not character.isspace():
            return character == "{"
    return False


class _CachingResolver(BaseResolver):
    """go-yaml v2's implicit resolution (``yaml_scalars.resolve_plain``), remembered per plain scalar text:
    manifests repeat their scalars. Quoted scalars are strings; there are no path resolvers here, so the
    per-node path bookkeeping is skipped."""

    _scalar_tags: ClassVar[dict[str, str]] = {}
    _MAX_CACHED = 200_000

    def resolve(self, kind, value, implicit):
        if kind is ScalarNode:
            if not implicit[0]:
                return STR_TAG
            tag = self._scalar_tags.get(value)
            if tag is None:
                if len(self._scalar_tags) >= self._MAX_CACHED:
                    self._scalar_tags.clear()
                tag = self._scalar_tags[value] = MERGE_TAG if value == "<<" else TAG_OF_KIND[resolve_plain(value)[0]]
            return tag
        return self.DEFAULT_SEQUENCE_TAG if kind is SequenceNode else self.DEFAULT_MAPPING_TAG

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
        if isinstance(stream, str):  # (a stream of another type reads `! 12` as libyaml does: the number)
            self.source = stream[1:] if stream.startswith("\ufeff") else stream  # libyaml's marks skip the BOM
            # kubectl decodes a stream that starts with "{" as JSON (apimachinery util/yaml GuessJSONStream).
            self.json_numbers = _starts_with_brace(stream)
