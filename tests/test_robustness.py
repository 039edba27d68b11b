"""Property: for arbitrary mutations of valid manifests the scanner never raises; every problem ends up
in findings or errors (never an internal error)."""

from __future__ import annotations

import copy
import json

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tbyte_policy import reference
from tbyte_policy.audit import AuditOptions, audit_documents
from tbyte_policy.reporters import render
from tbyte_policy.sources.files import load_paths
from tbyte_policy.sources.yaml_documents import load_text

VALID = [json.loads(json.dumps(document.body)) for document in load_paths(
    [str(path) for name in reference.variants() for path in reference.variant_files(name)]).documents]
OPTIONS = AuditOptions()

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False),
                    st.text(max_size=12))
garbage = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                       max_leaves=12)


def paths_of(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths_of(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths_of(value, (*prefix, index))


def parent_of(document, path):
    """The container holding the node at ``path`` (a tuple of keys and indexes)."""
    for part in path[:-1]:
        document = document[part]
    return document


@st.composite
def mutated_documents(draw):
    documents = copy.deepcopy(draw(st.lists(st.sampled_from(VALID), min_size=1, max_size=6)))
    for _ in range(draw(st.integers(1, 8))):
        document = draw(st.sampled_from(documents))
        candidates = [p for p in paths_of(document) if p]
        if not candidates:
            continue
        path = draw(st.sampled_from(candidates))
        parent = parent_of(document, path)
        action = draw(st.sampled_from(["delete", "retype", "garbage"]))
        if action == "delete":
            if isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent.pop(path[-1])
        else:
            parent[path[-1]] = draw(scalars if action == "retype" else garbage)
    return documents


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated_documents())
def test_mutated_manifests_never_crash_the_scan(documents):
    text = yaml.safe_dump_all(documents, sort_keys=False)
    report = audit_documents(load_text(text, "mutated.yaml"), OPTIONS)
    assert report.internal_errors == []
    render("table", report)
    render("json", report)
