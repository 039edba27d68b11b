"""The loader: positions from the parse, Helm sources, lists, and one test per kind of bad input."""

from __future__ import annotations

import time

import pytest

from tbyte_policy.audit import AuditOptions, audit_documents, scan_paths
from tbyte_policy.sources.files import load_paths
from tbyte_policy.sources.yaml_documents import load_text

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: web
          image: nginx:1.27
"""


def errors_of(text: str, path: str = "input.yaml") -> list[tuple[int | None, str]]:
    return [(error.line, error.message) for error in load_text(text, path).errors]


def test_positions_come_from_the_parse():
    document = load_text(DEPLOYMENT, "d.yaml").documents[0]
    spec = document.body["spec"]
    assert document.line == 1 and document.column == 1
    assert spec.key_position("replicas") == (6, 3)
    containers = spec["template"]["spec"]["containers"]
    assert containers.item_position(0) == (10, 11)
    assert containers[0].key_position("image") == (11, 11)


def test_multi_document_lines_helm_sources_and_skipped_documents():
    text = ("# Source: chart/templates/a.yaml\n" + DEPLOYMENT + "---\n"
            "# Source: chart/values.yaml\nreplicaCount: 2\n---\n---\n"
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n")
    result = load_text(text, "multi.yaml")
    assert [(doc.body["metadata"]["name"], doc.line, doc.helm_source) for doc in result.documents] == [
        ("web", 2, "chart/templates/a.yaml"), ("plain", 18, None)]
    assert result.skipped_documents == 1 and result.errors == []


def test_kind_list_items_are_resources_and_non_mapping_items_are_errors():
    text = ("apiVersion: v1\nkind: List\nitems:\n"
            "  - apiVersion: v1\n    kind: ConfigMap\n    metadata: {name: a}\n"
            "  - just a string\n"
            "  - apiVersion: v1\n    kind: Service\n    metadata: {name: b}\n")
    result = load_text(text, "list.yaml")
    assert [(doc.body["kind"], doc.line, doc.list_pointer) for doc in result.documents] == [
        ("ConfigMap", 4, "/items/0"), ("Service", 8, "/items/2")]
    assert [(error.line, error.message) for error in result.errors] == [(7, "item 1 of List is not a mapping")]


def test_json_files_load(tmp_path):
    path = tmp_path / "cm.json"
    path.write_text('{"apiVersion": "v1", "kind": "ConfigMap",\n "metadata": {"name": "cm"}}\n')
    result = load_paths([str(path)])
    assert [(doc.body["metadata"]["name"], doc.line) for doc in result.documents] == [("cm", 1)]


def test_invalid_yaml_is_reported_and_later_documents_still_load():
    text = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a\n---\n"
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n")
    result = load_text(text, "broken.yaml")
    assert [doc.body["metadata"]["name"] for doc in result.documents] == ["b"]
    assert [(error.line, error.message.split(":")[0]) for error in result.errors] == [(4, "invalid YAML")]


def test_binary_file(tmp_path):
    path = tmp_path / "image.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    result = load_paths([str(path)])
    assert [(error.path, error.message) for error in result.errors] == [
        (str(path), "binary file (contains NUL bytes), not YAML or JSON")]


def test_undecodable_bytes(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: caf\xe9\n")
    assert [(error.line, error.message) for error in load_paths([str(path)]).errors] == [
        (4, "not valid UTF-8 text (binary file?)")]


def test_python_tags_are_refused_and_never_executed(tmp_path):
    marker = tmp_path / "executed"
    text = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: !!python/object/apply:os.system ['touch {marker}']\n"
    assert errors_of(text) == [(4, "unsafe YAML tag refused (only plain YAML is loaded): "
                                   "tag:yaml.org,2002:python/object/apply:os.system")]
    assert not marker.exists()


def test_unrendered_helm_template():
    text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-web\n{{- if .Values.x }}\n"
    assert errors_of(text) == [(4, "looks like an unrendered Helm template: render it with helm template first")]


def test_go_templates_inside_string_values_are_not_helm_errors():
    text = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: alerts\ndata:\n"
            "  rule: 'summary: {{ $labels.instance }} is down'\n")
    result = load_text(text, "alerts.yaml")
    assert result.errors == [] and len(result.documents) == 1


def test_nesting_past_the_parsers_depth_limit():
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n  x: " + "[" * 5000 + "]" * 5000 + "\n"
    assert errors_of(text) == [(6, "invalid YAML: while increasing flow level: exceeded maximum nesting depth")]


def test_deep_but_parseable_nesting_runs_through_every_rule_without_a_traceback():
    nested = "[" * 990 + "]" * 990
    text = (DEPLOYMENT.replace("        - name: web\n", f"        - name: web\n          args: {nested}\n"))
    report = audit_documents(load_text(text, "deep.yaml"), AuditOptions())
    assert report.internal_errors == []


def test_alias_bomb_is_bounded():
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for index in range(1, 10):
        previous, current = chr(96 + index), chr(97 + index)
        lines.append(f"{current}: &{current} [{','.join(['*' + previous] * 9)}]")
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\ndata:\n" + "\n".join(
        "  " + line for line in lines) + "\n"
    started = time.perf_counter()
    assert errors_of(text) == [(1, "YAML aliases expand to more than 1000000 nodes (an alias bomb?)")]
    assert time.perf_counter() - started < 30  # bounded work, not a benchmark: the unbounded walk never ends


def test_recursive_alias():
    assert errors_of("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: r\ndata: &d\n  self: *d\n") == [
        (5, "a YAML alias refers to a node that contains it (a recursive document)")]


def test_file_over_the_size_limit(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(DEPLOYMENT + "#" * 2048)
    result = load_paths([str(path)], max_file_bytes=1024)
    assert [(error.path, error.message) for error in result.errors] == [
        (str(path), f"file is {path.stat().st_size} bytes, over the 1024-byte limit")]


def test_missing_path():
    assert [(error.path, error.message) for error in load_paths(["/no/such/file.yaml"]).errors] == [
        ("/no/such/file.yaml", "no such file or directory")]


def test_fields_of_the_wrong_type_are_errors_with_their_line(tmp_path):
    path = tmp_path / "typed.yaml"
    path.write_text(DEPLOYMENT.replace("replicas: 2", 'replicas: "two"') + "---\n"
                    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    web:\n      image: x\n")
    report = scan_paths([str(path)], AuditOptions())
    assert [(error.line, error.message) for error in report.errors] == [
        (6, "Deployment/default/web: spec.replicas must be an integer, not a string"),
        (18, "Pod/default/p: spec.containers must be a list, not a mapping")]
    assert report.internal_errors == []


def test_wrong_type_messages_never_quote_the_value(tmp_path):
    path = tmp_path / "typed.yaml"
    path.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels:\n    token: [hunter2-secret]\n"
                    "spec:\n  containers: []\n")
    report = scan_paths([str(path)], AuditOptions())
    assert [(error.line, error.message) for error in report.errors] == [
        (6, "Pod/default/p: metadata.labels.token must be a string, not a list")]


def test_objects_without_a_name_are_errors():
    report = audit_documents(load_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "n.yaml"), AuditOptions())
    assert [(error.line, error.message) for error in report.errors] == [
        (1, "ConfigMap has no metadata.name; it cannot be applied")]


@pytest.mark.parametrize("text", ["", "---\n", "# only a comment\n", "just a string\n", "- a\n- list\n"])
def test_documents_that_are_not_objects_are_not_errors(text):
    result = load_text(text, "x.yaml")
    assert result.errors == [] and result.documents == []
