"""Rewrite the `# expect:` headers of rule fixtures from what the rules find, for review in `git diff`.

    python scripts/update_expectations.py PRB001 [RULE-ID ...]     # those rules' fixtures
    python scripts/update_expectations.py --all                     # every fixture

A header's own lines shift the lines below them; this keeps them consistent. Read the diff: a header
is the test's expectation, and it is only right when each listed finding is one the rule should report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The checkout's own package, whichever installation the interpreter has (a second worktree, say).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tbyte_policy.catalogue import find_rule, load_catalogue
from tbyte_policy.rule_tests import fixture_files, rewrite_expectations

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "rules"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rules", nargs="*", help="rule ids whose fixtures to rewrite")
    parser.add_argument("--all", action="store_true", help="rewrite every rule's fixtures")
    arguments = parser.parse_args()
    if not arguments.rules and not arguments.all:
        parser.error("name rule ids, or --all")
    catalogue = load_catalogue()
    ids = sorted(path.name for path in FIXTURES.iterdir() if path.is_dir()) if arguments.all else arguments.rules
    for rule_id in ids:
        rule = find_rule(catalogue, rule_id)
        if rule is None:
            print(f"no rule {rule_id}", file=sys.stderr)
            return 2
        for fixture in fixture_files(FIXTURES / rule.id):
            if rewrite_expectations(rule, fixture):
                print(f"rewrote {fixture.relative_to(FIXTURES.parents[2])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
