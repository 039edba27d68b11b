"""The seeds the campaign mutates: the reference manifests and, when ../shared is beside the checkout (or
TBYTE_POLICY_SHARED names it), the real-world manifests of ../shared/realworld."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tbyte_policy import reference
from tbyte_policy.sources.yaml_documents import load_text

ROOT = Path(__file__).resolve().parents[2]
# ../shared beside the checkout (as CI lays it); TBYTE_POLICY_SHARED points elsewhere (a worktree).
SHARED = Path(os.environ["TBYTE_POLICY_SHARED"]) if "TBYTE_POLICY_SHARED" in os.environ else next(
    (parent / "shared" for parent in ROOT.parents if (parent / "shared").is_dir()), ROOT.parent / "shared")
REALWORLD = SHARED / "realworld"
SARIF_SCHEMA = next(path for path in (SHARED / "schemas" / "sarif-schema-2.1.0.json",
                                      ROOT / "tests" / "schemas" / "sarif-schema-2.1.0.json") if path.is_file())
POLICYREPORT_CRD = ROOT / "tests" / "schemas" / "wgpolicyk8s.io_v1alpha2_policyreports.yaml"
# The seeds a mutation starts from are small files: a mutation of a large one is mostly slow, not different.
MAX_SEED_BYTES = 20_000


def _reference_files() -> list[Path]:
    return sorted({path for name in reference.variants() for path in reference.variant_files(name)})


def _realworld_files() -> list[Path]:
    return sorted(REALWORLD.rglob("*.yaml")) if REALWORLD.is_dir() else []


def seed_texts() -> list[tuple[str, str]]:
    """(name, text) of every seed file."""
    seeds = []
    for path in [*_reference_files(), *_realworld_files()]:
        data = path.read_bytes()
        if len(data) <= MAX_SEED_BYTES:
            seeds.append((path.name, data.decode("utf-8")))
    return seeds


def seed_objects() -> list[dict]:
    """Every Kubernetes object of the seeds, as plain JSON data (the position-keeping types dropped)."""
    objects = []
    for name, text in seed_texts():
        for document in load_text(text, name).documents:
            objects.append(json.loads(json.dumps(document.body)))
    return objects


SEED_TEXTS = seed_texts()
SEED_OBJECTS = seed_objects()
