"""The inventory's selector indexes stay selective when every pod shares the first label of a selector: the API
server returns labels sorted by key, so a live selector often starts with ``app.kubernetes.io/instance``, which
every pod of the release carries. Counted in selector evaluations, not timed."""

from __future__ import annotations

from tbyte_policy import inventory as inventory_module
from tbyte_policy.inventory import Inventory
from tbyte_policy.model import Resource, Source

APPS = 200


def _labels(app: int) -> dict[str, str]:
    # sorted by key, as the API server serialises maps: the shared pair comes first
    return {"app.kubernetes.io/instance": "shop", "app.kubernetes.io/name": f"app-{app}"}


def _resource(kind: str, name: str, spec: dict) -> Resource:
    raw = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "shop"}, "spec": spec}
    return Resource(raw["apiVersion"], kind, name, "shop", raw, Source(None, None))


def _namespace() -> list[Resource]:
    resources = []
    for app in range(APPS):
        labels = _labels(app)
        resources.append(_resource("Deployment", f"app-{app}", {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}}}))
        resources.append(_resource("PodDisruptionBudget", f"app-{app}", {"selector": {"matchLabels": labels}}))
        resources.append(_resource("Service", f"app-{app}", {"selector": labels}))
    return resources


def test_lookups_use_the_pair_fewest_pods_carry(monkeypatch):
    calls = 0
    matches = inventory_module.label_selector_matches

    def counted(selector, labels):
        nonlocal calls
        calls += 1
        return matches(selector, labels)

    monkeypatch.setattr(inventory_module, "label_selector_matches", counted)
    inventory = Inventory(_namespace(), "shop")
    for pdb in inventory.kind("PodDisruptionBudget"):
        (pods,) = inventory.pods_matching("shop", pdb.spec["selector"])
        assert pods.resource.name == pdb.name
    for pods in inventory.workloads("shop"):
        assert [pdb.name for pdb in inventory.pdbs.matching("shop", pods.labels)] == [pods.resource.name]
        assert [service.name for service in inventory.services.matching("shop", pods.labels)] == [pods.resource.name]
    # one evaluation per lookup (the one pod, the one PDB): filed under the shared pair it would be APPS each
    assert calls == 2 * APPS
