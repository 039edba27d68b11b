"""Precision on real manifests: scan the corpus of tests/precision/corpus.yaml, join the findings with the
reviewer's verdicts in tests/precision/verdicts.yaml, and print precision per family and overall.

    python scripts/precision.py              # the table, then every finding without a verdict and every
                                             # verdict that matches no finding (exit 1 if there are any)
    python scripts/precision.py --stubs      # verdict entries (verdict: TODO) for the findings without one
    python scripts/precision.py --list       # every finding with its verdict, grouped by rule and project

A verdict is `keep` (right on the facts, and worth acting on), `false-positive` (wrong on the facts, or
aimed at something the rule's own words exclude) or `opinion` (right on the facts, but a house policy
that experienced reviewers disagree on). Precision counts opinions as not kept; the table also shows
it with opinions left out.

tests/precision/test_precision.py holds the findings equal to the judged set and precision to its floor.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import yaml

REPO = Path(__file__).resolve().parents[1]
PRECISION_DIR = REPO / "tests" / "precision"
CORPUS_FILE = PRECISION_DIR / "corpus.yaml"
VERDICTS_FILE = PRECISION_DIR / "verdicts.yaml"
VERDICTS = ("keep", "false-positive", "opinion")


def shared_dir() -> Path | None:
    """The read-only shared/ folder beside the checkout (or beside a parent of it: worktrees nest)."""
    given = os.environ.get("TBYTE_POLICY_SHARED")
    if given:
        return Path(given)
    for parent in REPO.parents:
        if (parent / "shared").is_dir():
            return parent / "shared"
    return None


def roots() -> dict[str, Path | None]:
    shared = shared_dir()
    fetched = [shared / "precision-corpus" if shared else None, PRECISION_DIR / "corpus"]
    realworld = shared / "realworld" if shared else None
    return {"realworld": realworld if realworld and realworld.is_dir() else None,
            "fetched": next((path for path in fetched if path and path.is_dir()), None)}


class Project(NamedTuple):
    name: str
    root: str
    paths: tuple[str, ...]


class Key(NamedTuple):
    """What a verdict names: a finding without its line, pointer or message."""

    project: str
    rule: str
    object: str  # Kind/namespace/name, then a space and the container when the finding has one


class Judged(NamedTuple):
    key: Key
    family: str
    verdict: str | None  # None: no verdict yet
    message: str


def projects() -> list[Project]:
    data = yaml.safe_load(CORPUS_FILE.read_text())
    return [Project(entry["name"], entry["root"], tuple(entry["paths"])) for entry in data["projects"]]


def available_projects() -> tuple[list[Project], list[Project]]:
    """(projects whose files are here, projects whose root is missing)."""
    found = roots()
    present = [project for project in projects() if found.get(project.root) is not None]
    return present, [project for project in projects() if found.get(project.root) is None]


def object_name(finding) -> str:
    resource = finding.resource
    name = f"{resource.kind}/{resource.namespace}/{resource.name}" if resource.namespace \
        else f"{resource.kind}/{resource.name}"
    return f"{name} {finding.container}" if finding.container else name


def scan_project(project: Project) -> list:
    """The project's findings, as `tbyte-policy scan` reports them with no config file (default preset, schemas on)."""
    from tbyte_policy.audit import AuditOptions, scan_paths
    from tbyte_policy.catalogue import load_catalogue
    from tbyte_policy.config import Config, configure_rules

    root = roots()[project.root]
    assert root is not None, project
    rules = configure_rules(load_catalogue(), Config())  # what `scan` runs without a config file
    report = scan_paths([str(root / path) for path in project.paths], AuditOptions(rules=rules))
    if report.errors or report.internal_errors:
        raise RuntimeError(f"{project.name}: {report.errors or report.internal_errors}")
    return list(report.findings)


def load_verdicts(path: Path = VERDICTS_FILE) -> dict[Key, list[tuple[str, str]]]:
    """Key -> [(verdict, reason)], one item per finding the entry accepts (an object listed twice: two)."""
    entries = yaml.safe_load(path.read_text()) or []
    verdicts: dict[Key, list[tuple[str, str]]] = defaultdict(list)
    for entry in entries:
        if entry["verdict"] not in VERDICTS:
            raise ValueError(f"{path}: {entry['rule']} {entry['project']}: verdict must be one of {VERDICTS}")
        if not str(entry.get("reason", "")).strip():
            raise ValueError(f"{path}: {entry['rule']} {entry['project']}: every verdict gives a reason")
        for obj in entry["objects"]:
            verdicts[Key(entry["project"], entry["rule"], obj)].append((entry["verdict"], entry["reason"]))
    return verdicts


class Result(NamedTuple):
    judged: list[Judged]
    stale: list[Key]  # verdicts (one per accepted finding) that match no finding
    missing_projects: list[Project]


def evaluate(verdicts: dict[Key, list[tuple[str, str]]] | None = None) -> Result:
    verdicts = load_verdicts() if verdicts is None else verdicts
    present, missing = available_projects()
    remaining = {key: list(items) for key, items in verdicts.items()}
    judged = []
    for project in present:
        for finding in scan_project(project):
            key = Key(project.name, finding.rule_id, object_name(finding))
            items = remaining.get(key)
            verdict = items.pop(0)[0] if items else None
            judged.append(Judged(key, finding.family, verdict, finding.message))
    present_names = {project.name for project in present}
    stale = [key for key, items in remaining.items() for _ in items if key.project in present_names]
    return Result(judged, sorted(stale), missing)


class Tally(NamedTuple):
    keep: int
    opinion: int
    false_positive: int
    unjudged: int

    @property
    def total(self) -> int:
        return self.keep + self.opinion + self.false_positive + self.unjudged

    @property
    def precision(self) -> float:
        """Kept findings among all findings: an opinion or an unjudged finding counts as not kept."""
        return self.keep / self.total if self.total else 1.0

    @property
    def precision_without_opinions(self) -> float:
        judged = self.keep + self.false_positive + self.unjudged
        return self.keep / judged if judged else 1.0


def tally(judged: Iterable[Judged]) -> Tally:
    counts = Counter(item.verdict for item in judged)
    return Tally(counts["keep"], counts["opinion"], counts["false-positive"], counts[None])


def by_family(judged: list[Judged]) -> dict[str, Tally]:
    groups: dict[str, list[Judged]] = defaultdict(list)
    for item in judged:
        groups[item.family].append(item)
    return {family: tally(items) for family, items in sorted(groups.items())}


def table(result: Result) -> str:
    rows = [("family", "findings", "keep", "opinion", "false-pos", "unjudged", "precision", "w/o opinions")]
    for family, counts in [*by_family(result.judged).items(), ("overall", tally(result.judged))]:
        rows.append((family, str(counts.total), str(counts.keep), str(counts.opinion), str(counts.false_positive),
                     str(counts.unjudged), f"{counts.precision:.1%}", f"{counts.precision_without_opinions:.1%}"))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) if column == 0 else cell.rjust(width)
                       for column, (cell, width) in enumerate(zip(row, widths, strict=True))) for row in rows]
    projects_seen = len({item.key.project for item in result.judged})
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    header = f"{len(result.judged)} findings in {projects_seen} projects with findings"
    if result.missing_projects:
        header += f"; not here (root missing): {', '.join(project.name for project in result.missing_projects)}"
    return header + "\n" + "\n".join(lines)


def stubs(judged: list[Judged]) -> str:
    groups: dict[tuple[str, str], list[Judged]] = defaultdict(list)
    for item in judged:
        if item.verdict is None:
            groups[(item.key.rule, item.key.project)].append(item)
    out = []
    for (rule, project), items in sorted(groups.items()):
        out.append(f"- rule: {rule}\n  project: {project}\n  verdict: TODO\n  reason: TODO  # {items[0].message}\n"
                   f"  objects:\n" + "".join(f"    - {item.key.object}\n" for item in items))
    return "".join(out)


def listing(judged: list[Judged]) -> str:
    out = []
    for item in sorted(judged, key=lambda item: (item.key.rule, item.key.project, item.key.object)):
        out.append(f"{item.key.rule}  {item.key.project}  {item.key.object}  [{item.verdict or 'UNJUDGED'}]  "
                   f"{item.message}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stubs", action="store_true", help="print verdict entries for unjudged findings")
    parser.add_argument("--list", action="store_true", help="print every finding with its verdict")
    args = parser.parse_args(argv)
    result = evaluate()
    if args.stubs:
        print(stubs(result.judged), end="")
        return 0
    if args.list:
        print(listing(result.judged))
        return 0
    print(table(result))
    unjudged = [item for item in result.judged if item.verdict is None]
    for item in unjudged:
        print(f"no verdict: {item.key.rule} {item.key.project} {item.key.object}: {item.message}")
    for key in result.stale:
        print(f"stale verdict (no such finding): {key.rule} {key.project} {key.object}")
    return 1 if unjudged or result.stale else 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
