"""The probes and resources rules, loaded from their own files only, for tests of the machinery around rules
(reporters, baselines) that must not move when other families add or edit rules."""

from __future__ import annotations

import shutil
import tempfile
from functools import cache
from pathlib import Path

from tbyte_policy.bundle import bundled_dir
from tbyte_policy.catalogue import Rule, load_catalogue

FAMILIES = ("probes", "resources")


@cache
def stable_catalogue() -> tuple[Rule, ...]:
    with tempfile.TemporaryDirectory() as directory:
        for family in FAMILIES:
            shutil.copy(bundled_dir("rules") / f"{family}.yaml", directory)
        return tuple(load_catalogue(Path(directory)))


def stable_rules(*ids: str) -> list[Rule]:
    """The rules with these ids (all of the stable families' rules when none are given), in id order."""
    return [rule for rule in stable_catalogue() if not ids or rule.id in ids]
