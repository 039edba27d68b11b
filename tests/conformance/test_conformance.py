"""Run every entry of the shared conformance corpus through the rules we map its peer check to.

The mapping (peer check -> our rule ids) lives in ``peer_mapping.yaml``; every entry on which we
disagree with the peer is listed, with our argument, in ``DISAGREEMENTS.md`` (its ``file | check``
table), and this test holds both files to what actually happens.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tbyte_policy.audit import AuditOptions, scan_paths
from tbyte_policy.catalogue import load_catalogue

HERE = Path(__file__).parent
# ../shared beside the checkout, or beside a folder above it (a worktree under the main checkout's parent).
CORPUS = next((parent / "shared" / "conformance" for parent in HERE.resolve().parents
               if (parent / "shared" / "conformance").is_dir()), HERE.parents[2] / "shared" / "conformance")
MAPPING = yaml.safe_load((HERE / "peer_mapping.yaml").read_text())
_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*`([^`]+)`\s*\|")


def _disagreements() -> set[tuple[str, str]]:
    rows = set()
    for line in (HERE / "DISAGREEMENTS.md").read_text().splitlines():
        match = _ROW.match(line)
        if match:
            rows.add((match.group(1), match.group(2)))
    return rows


def _entries() -> list[dict]:
    if not CORPUS.is_dir():
        return []
    return yaml.safe_load((CORPUS / "expectations.yaml").read_text())


ENTRIES = _entries()
CATALOGUE = {rule.id: rule for rule in load_catalogue()}


def outcome(entry: dict) -> str:
    rule_ids = MAPPING[entry["source_check"]]
    rules = [CATALOGUE[rule_id].with_overrides(enabled=True) for rule_id in rule_ids]
    report = scan_paths([str(CORPUS / entry["file"])], AuditOptions(rules=rules))
    return "violation" if report.active_findings else "clean"


@pytest.mark.skipif(not ENTRIES, reason="../shared/conformance is not beside this checkout")
def test_every_peer_check_is_mapped_to_existing_rules():
    checks = {entry["source_check"] for entry in ENTRIES}
    assert checks <= set(MAPPING), f"unmapped peer checks: {sorted(checks - set(MAPPING))}"
    for check, rule_ids in MAPPING.items():
        assert rule_ids and set(rule_ids) <= set(CATALOGUE), f"{check} maps to unknown rules {rule_ids}"


@pytest.mark.skipif(not ENTRIES, reason="../shared/conformance is not beside this checkout")
def test_agreement_with_peers_is_at_least_90_percent_and_every_disagreement_is_argued():
    disagreeing = {(entry["file"], entry["source_check"]) for entry in ENTRIES if outcome(entry) != entry["expect"]}
    argued = _disagreements()
    assert disagreeing == argued, (
        f"not argued in DISAGREEMENTS.md: {sorted(disagreeing - argued)}; "
        f"argued but we now agree: {sorted(argued - disagreeing)}")
    agreement = 1 - len(disagreeing) / len(ENTRIES)
    print(f"conformance: {len(ENTRIES) - len(disagreeing)}/{len(ENTRIES)} entries agree ({agreement:.1%})")
    assert agreement >= 0.90
