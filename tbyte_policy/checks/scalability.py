"""Workloads whose manifest says that more replicas would not add capacity: datastores and brokers (by
image), `strategy: Recreate`, and singleton reconcilers (leader election on, operator or provisioner images).
Shared by the hpa, replicas and pdb families.

Not a family module: it registers no checks.
"""

from __future__ import annotations

import re

from tbyte_policy.checks.serving import serving_workload
from tbyte_policy.inventory import Inventory
from tbyte_policy.lazyre import lazy_compile
from tbyte_policy.model import PodView, Resource, mapping, sequence

# Images (the last part of the repository, in words) of datastores and brokers: more replicas of a
# Deployment running one are more independent instances, not more capacity.
_DATASTORES = frozenset({
    "redis", "valkey", "keydb", "memcached", "mongo", "mongodb", "mysql", "mariadb", "percona", "postgres",
    "postgresql", "postgis", "timescaledb", "spilo", "cockroach", "cockroachdb", "cassandra", "scylla", "etcd",
    "zookeeper", "consul", "elasticsearch", "opensearch", "solr", "neo4j", "couchdb", "couchbase", "influxdb",
    "clickhouse", "mssql", "kafka", "rabbitmq", "activemq", "artemis", "pulsar", "nats", "minio", "prometheus",
    "db", "database"})
# Words that make an image a tool around a datastore rather than the datastore (redis-operator, mysqld-exporter).
_TOOLING = frozenset({"operator", "exporter", "adapter", "proxy", "controller", "ui", "client", "reloader",
                      "sidecar", "backup", "injector", "webhook", "cli", "tools", "agent", "dashboard", "admin"})
# Words of the images of controllers that reconcile objects: one instance acts (often behind leader election).
_RECONCILER_WORDS = frozenset({"operator", "provisioner"})
# ...unless the image serves something beside one (postgres-operator-ui, an operator's admission webhook).
_SERVING_WORDS = frozenset({"ui", "web", "dashboard", "webhook", "admission", "api", "proxy", "gateway"})
_IMAGE_WORDS = lazy_compile(r"[-_.]+")
_LEADER_ELECTION = lazy_compile(r"leader[-_]?elect", re.IGNORECASE)


def _image_words(image: object) -> set[str]:
    if not isinstance(image, str):
        return set()
    repository = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0].lower()
    return {word for word in _IMAGE_WORDS.split(repository) if word}


def _reconciler_image(image: object) -> bool:
    words = _image_words(image)
    return bool(words & _RECONCILER_WORDS) and not words & _SERVING_WORDS


def _datastore_image(image: object) -> str | None:
    words = _image_words(image)
    if not isinstance(image, str) or words & _TOOLING:
        return None
    if any(word in _DATASTORES or any(word.startswith(name) for name in _DATASTORES if len(name) >= 5)
           for word in words):
        return image
    return None


def _leader_elected(container: dict) -> bool:
    """Whether the container's flags or env turn leader election on: one replica works, the others wait."""
    for part in (*sequence(container.get("command")), *sequence(container.get("args"))):
        if isinstance(part, str) and _LEADER_ELECTION.search(part) and not part.lower().endswith("=false"):
            return True
    return any(isinstance(mapping(env).get("name"), str) and _LEADER_ELECTION.search(mapping(env)["name"])
               and str(mapping(env).get("value", "true")).lower() != "false" for env in sequence(container.get("env")))


def reconciler(pods: PodView | None) -> str | None:
    """Why the pods are a singleton reconciler, when their manifest says so: one instance acts at a time."""
    containers = list(pods.containers(frozenset({"container"}))) if pods else []
    if any(_leader_elected(container.raw) for container in containers):
        return "it elects a leader, so one replica works and the others stand by"
    reconciler = next((c.raw.get("image") for c in containers if _reconciler_image(c.raw.get("image"))), None)
    if reconciler:
        return f"it runs {reconciler}, an operator or provisioner: one instance reconciles"
    return None


def not_horizontally_scalable(workload: Resource, pods: PodView | None) -> str | None:
    """Why more replicas of the workload would not add capacity, when its manifest says so."""
    strategy = mapping(workload.spec.get("strategy")).get("type")
    if workload.kind == "Deployment" and strategy == "Recreate":
        return "it uses strategy Recreate, so it is meant to run one pod at a time"
    containers = list(pods.containers(frozenset({"container"}))) if pods else []
    image = next((found for found in (_datastore_image(c.raw.get("image")) for c in containers) if found), None)
    if image:
        return f"it runs {image}, a datastore or broker"
    return reconciler(pods)


def singleton_by_design(pods: PodView | None, inventory: Inventory, non_serving: bool) -> bool:
    """Whether one replica is the design rather than a gap: a singleton reconciler, or (unless ``non_serving``
    asks to judge those too) a workload no Service routes to, where the run can tell."""
    if reconciler(pods) is not None:
        return True
    return not non_serving and pods is not None and not serving_workload(pods, inventory)
