"""What `live --against` adds: a namespace of thousands of pods audited, then compared with its manifests.

    python benchmarks/live_drift_benchmark.py [--pods 500 5000] [--pods-per-deployment 10] [--chunk-size 0]

(`benchmarks/live_benchmark.py` measures the plain audit's requests and peak memory.)

Builds the production reference namespace plus N/10 copies of the backend (Deployment, ReplicaSet,
10 running pods, Service, EndpointSlice, PDB, NetworkPolicy, HPA), serves it from the test suite's HTTP
API double (tests/live/k8s_api_server.py) and runs the live audit against it with the real kubernetes
client, timing the collection (HTTP + JSON) and the audit (every rule) separately; then audits the same
collection again with the manifests it was applied from (`live --against`, the objects' last-applied
configuration written out as one rendered file) and prints what comparing them adds, as a ratio to the
plain audit of the same run.

The request count does not grow with the object count: one GET for the namespace, one discovery GET per
CRD group-version and one list per kind. Only --chunk-size (off by default, as in `tbyte-policy live`)
adds requests: a kind with more objects than the chunk size is then read in ceil(objects / chunk size)
requests, as kubectl reads lists in chunks of 500. There is never one request per object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tbyte_policy.audit import AuditOptions, cyclic_gc_paused
from tbyte_policy.live.command import audit_collection
from tbyte_policy.sources import load_all, scan_inputs
from tbyte_policy.sources.cluster import collect
from tests.live.cluster_fixtures import NS, scaled_namespace
from tests.live.k8s_api_server import FakeK8sServer, kubeconfig_yaml

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
REPEATS = 3


def run(pods: int, pods_per_deployment: int, chunk_size: int) -> dict:
    started = time.perf_counter()
    live = scaled_namespace(pods // pods_per_deployment, pods_per_deployment)
    built = time.perf_counter() - started
    server = FakeK8sServer(live.objects).start()
    try:
        with tempfile.TemporaryDirectory() as directory:
            kubeconfig = Path(directory) / "kubeconfig"
            kubeconfig.write_text(kubeconfig_yaml(server.url))
            started = time.perf_counter()
            collection = collect(NS, kubeconfig=str(kubeconfig), context="test", timeout=60, chunk_size=chunk_size)
            collected = time.perf_counter() - started
            rendered = Path(directory) / "rendered.yaml"  # one multi-document file, as `helm template` writes
            rendered.write_text(yaml.safe_dump_all(
                (json.loads(applied) for obj in live.objects
                 if (applied := obj["metadata"].get("annotations", {}).get(LAST_APPLIED))), sort_keys=False))
            with cyclic_gc_paused():  # as `tbyte-policy live` runs them
                audit_collection(collection, AuditOptions())  # warm-up: the catalogue, compiled patterns
                timings: dict[str, list[float]] = {"audit": [], "load": [], "drift": []}
                for _ in range(REPEATS):  # alternated, medians: the machine is shared
                    started = time.perf_counter()
                    report = audit_collection(collection, AuditOptions())
                    timings["audit"].append(time.perf_counter() - started)
                    started = time.perf_counter()
                    manifests = load_all(scan_inputs([str(rendered)]))
                    timings["load"].append(time.perf_counter() - started)
                    started = time.perf_counter()
                    compared = audit_collection(collection, AuditOptions(), manifests)
                    timings["drift"].append(time.perf_counter() - started)
                audited, loaded, drift_audited = (statistics.median(timings[key]) for key in ("audit", "load", "drift"))
    finally:
        server.stop()
    kinds = Counter(obj["kind"] for obj in collection.objects)
    per_resource = server.count_by_resource()
    return {"pods": kinds["Pod"], "objects": len(collection.objects), "requests": len(server.requests),
            "extra_chunks": sum(count - 1 for resource, count in per_resource.items() if resource != "discovery"),
            "findings": len(report.active_findings),
            "runtime_findings": sum(finding.family == "runtime" for finding in report.active_findings),
            "drift_findings": sum(finding.family == "drift" for finding in compared.active_findings),
            "manifests": len(manifests.documents), "build_s": built, "collect_s": collected, "audit_s": audited,
            "load_s": loaded, "drift_s": drift_audited}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--pods-per-deployment", type=int, default=10)
    parser.add_argument("--chunk-size", type=int, default=0)
    args = parser.parse_args()
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        os.environ.pop(variable, None)
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"

    print(f"chunk size {args.chunk_size or 'none (one request per kind)'}; "
          f"{args.pods_per_deployment} pods per Deployment")
    print(f"{'pods':>6} {'objects':>8} {'requests':>8} {'of which extra chunks':>21} {'findings':>8} "
          f"{'collect s':>9} {'audit s':>8} {'total s':>8} {'build s':>8} | {'manifests':>9} {'parse s':>8} "
          f"{'--against audit s':>17} {'ratio':>6}")
    results = []
    for pods in args.pods:
        result = run(pods, args.pods_per_deployment, args.chunk_size)
        results.append(result)
        print(f"{result['pods']:>6} {result['objects']:>8} {result['requests']:>8} {result['extra_chunks']:>21} "
              f"{result['findings']:>8} {result['collect_s']:>9.2f} {result['audit_s']:>8.2f} "
              f"{result['collect_s'] + result['audit_s']:>8.2f} {result['build_s']:>8.2f} | "
              f"{result['manifests']:>9} {result['load_s']:>8.2f} {result['drift_s']:>17.2f} "
              f"{result['drift_s'] / result['audit_s']:>5.2f}x")
    print(f"audit, parse and --against audit: medians of {REPEATS} alternated runs after a warm-up; ratio: the "
          "audit with --against (the manifests already parsed) to the plain audit of the same collection")
    print("requests besides chunking (namespace, discovery, one list per kind): "
          f"{sorted({result['requests'] - result['extra_chunks'] for result in results})}")
    if any(result["runtime_findings"] for result in results):
        print("warning: the healthy namespace produced runtime findings", file=sys.stderr)
    if any(result["drift_findings"] for result in results):
        print("warning: the namespace drifted from the manifests it was applied from", file=sys.stderr)


if __name__ == "__main__":
    main()
