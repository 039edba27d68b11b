"""Vendor the CRD schemas the schema rules validate custom resources with.

    python scripts/vendor_crd_schemas.py [CRD_DIR]     (default: ../shared/schemas/crds)

For each served version of each CRD in CRD_DIR, writes that version's `openAPIV3Schema` to
`tbyte_policy/_crd_schemas/<group>_<Kind>_<version>.json`, as compact JSON without the `description`
texts (they are most of the bytes and no check reads them). Versions that are not served are left out:
the API server rejects them, which the removed-API rule reports. Update the attribution table in
`tbyte_policy/_crd_schemas/README.md` when the sources change.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from tbyte_policy.schemas import CRD_SCHEMA_DIR, map_subschemas

DEFAULT_SOURCE = Path(__file__).resolve().parents[2] / "shared" / "schemas" / "crds"


def _without_description(node: dict, structural: bool) -> dict:
    node.pop("description", None)
    return node


def vendored_schemas(source: Path) -> dict[str, str]:
    """File name -> file text for every served CRD version under ``source``."""
    files = {}
    for path in sorted(source.glob("*.yaml")):
        crd = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        spec = crd["spec"]
        for version in spec["versions"]:
            if not version.get("served"):
                continue
            schema = map_subschemas(version["schema"]["openAPIV3Schema"], _without_description)
            name = f"{spec['group']}_{spec['names']['kind']}_{version['name']}.json"
            files[name] = json.dumps(schema, separators=(",", ":"), ensure_ascii=False) + "\n"
    return files


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else DEFAULT_SOURCE
    files = vendored_schemas(source)
    if not files:
        print(f"no CRDs under {source}", file=sys.stderr)
        return 1
    for stale in CRD_SCHEMA_DIR.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    for name, text in files.items():
        (CRD_SCHEMA_DIR / name).write_text(text, encoding="utf-8")
        print(f"{name}: {len(text):,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
