"""The frozen rules (tests/frozen_rules/): the catalogue of the tests of the machinery around rules (CLI,
baselines, reporters), which must not move when the real catalogue gains or changes rules."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from tbyte_policy.catalogue import Rule, load_catalogue

FROZEN_RULES = Path(__file__).parent / "frozen_rules"


@cache
def _frozen() -> tuple[Rule, ...]:
    return tuple(load_catalogue(FROZEN_RULES))


def frozen_rules(*ids: str) -> list[Rule]:
    """The frozen rules with these ids (all of them when none are given), in id order."""
    return [rule for rule in _frozen() if not ids or rule.id in ids]


def use_frozen_rules(monkeypatch, *ids: str) -> None:
    """Make the commands (scan, live) run on the frozen rules instead of the bundled catalogue."""
    monkeypatch.setattr("tbyte_policy.commands.load_catalogue", lambda: frozen_rules(*ids))
