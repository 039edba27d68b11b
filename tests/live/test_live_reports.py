"""The text and HTML formats of a live audit, end to end: the real client against the API double."""

from __future__ import annotations

import json
import re

from .cluster_fixtures import BROKEN, broken
from .test_live import cli

SNIPPET_LINE = re.compile(r"^\s*\d*\s\|")


def test_live_text_locates_objects_without_source_and_html_embeds_the_json_report(k8s_server, tmp_path):
    server = k8s_server(broken("crash-loop").objects, errors={"secrets": 403})
    page = tmp_path / "live.html"
    result = cli(server, "--format", "text", "--report", f"html={page}")
    assert result.exit_code == 2, result.output  # an unreadable kind
    lines = result.stdout.splitlines()
    for rule_id, ref in BROKEN["crash-loop"].expected:
        assert any(line.startswith(f"{ref}: {rule_id} ") for line in lines), (rule_id, ref)
    assert not any(SNIPPET_LINE.match(line) for line in lines)
    assert "error: could not read Secret: forbidden" in result.stdout
    assert lines[-1].endswith("resources read from the cluster; 1 errors")
    assert cli(server, "--format", "text", "--no-source").stdout == result.stdout  # nothing to drop

    (data,) = re.findall(r'<script type="application/json" id="report-data">(.*?)</script>', page.read_text(), re.S)
    document = json.loads(data)
    assert set(document.pop("rules")) == {finding["rule_id"] for finding in document["findings"]}
    assert document == json.loads(cli(server, "--format", "json").stdout)
    assert document["mode"] == "live" and list(document["unreadable_kinds"]) == ["Secret"]
