"""Live-mode cost: a namespace of thousands of pods read through the Kubernetes API and audited.

    python benchmarks/live_benchmark.py [--pods 500 5000 50000] [--pods-per-deployment 10] [--chunk-size 0]
                                        [--no-baseline]

Builds the production reference namespace plus N/10 copies of the backend (Deployment, ReplicaSet,
10 running pods, Service, EndpointSlice, PDB, NetworkPolicy, HPA), serves it from the test suite's HTTP
API double (tests/live/k8s_api_server.py, in a process of its own) and runs the live audit against it
with the real kubernetes client, each audit in a fresh process, timing the collection (HTTP + JSON) and
the audit (every rule) separately and reporting the audit process's peak memory (max RSS).

Baseline, measured in the same run: the same audit keeping whole objects (`collect(trimmed=False)`),
i.e. without dropping the fields no rule reads. The ratios are trimmed / whole, of the audit process's
CPU time (the wall-clock times include the test server's, which renders every answer in Python) and of its
peak memory; the findings must be the same (the benchmark stops if they are not).

The request count does not grow with the object count: one GET for the namespace, one discovery GET per
CRD group-version and one list per kind. Only --chunk-size (off by default, as in `tbyte-policy live`)
adds requests: a kind with more objects than the chunk size is then read in ceil(objects / chunk size)
requests, as kubectl reads lists in chunks of 500. There is never one request per object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def serve(pods: int, pods_per_deployment: int, kubeconfig: str) -> None:
    """Child process: serve the namespace until stdin closes."""
    from tests.live.cluster_fixtures import scaled_namespace
    from tests.live.k8s_api_server import FakeK8sServer, kubeconfig_yaml

    live = scaled_namespace(pods // pods_per_deployment, pods_per_deployment)
    server = FakeK8sServer(live.objects).start()
    Path(kubeconfig).write_text(kubeconfig_yaml(server.url))
    print(json.dumps({"objects": len(live.objects)}), flush=True)
    sys.stdin.read()
    server.stop()


def audit(kubeconfig: str, chunk_size: int, trimmed: bool) -> None:
    """Child process: one live audit; prints its numbers as JSON."""
    from tbyte_policy.audit import AuditOptions, cyclic_gc_paused
    from tbyte_policy.live.command import audit_collection
    from tbyte_policy.sources.cluster import collect

    with cyclic_gc_paused():  # as `tbyte-policy live` runs
        started = time.perf_counter()
        collection = collect("tbyte", kubeconfig=kubeconfig, context="test", timeout=300, deadline=None,
                             chunk_size=chunk_size, trimmed=trimmed)
        collected = time.perf_counter() - started
        started = time.perf_counter()
        report = audit_collection(collection, AuditOptions())
        audited = time.perf_counter() - started
    kinds = Counter(obj["kind"] for obj in collection.objects)
    print(json.dumps({
        "pods": kinds["Pod"], "objects": len(collection.objects), "requests": collection.requests,
        "findings": sorted(f"{f.rule_id} {f.resource.kind}/{f.resource.name}" for f in report.active_findings),
        "runtime_findings": sum(finding.family == "runtime" for finding in report.active_findings),
        "collect_s": collected, "audit_s": audited,
        "cpu_s": (usage := resource.getrusage(resource.RUSAGE_SELF)).ru_utime + usage.ru_stime,
        "peak_mib": usage.ru_maxrss / 1024}))


def _child(*args: str, stdin=None) -> subprocess.Popen:
    environment = {key: value for key, value in os.environ.items()
                   if key.upper() not in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")}
    environment["NO_PROXY"] = "127.0.0.1,localhost"
    return subprocess.Popen([sys.executable, __file__, *args], stdin=stdin, stdout=subprocess.PIPE, text=True,
                            env=environment, cwd=ROOT)


def measure(pods: int, pods_per_deployment: int, chunk_size: int, baseline: bool) -> dict:
    with tempfile.TemporaryDirectory() as directory:
        kubeconfig = str(Path(directory) / "kubeconfig")
        started = time.perf_counter()
        server = _child("--serve", str(pods), str(pods_per_deployment), kubeconfig, stdin=subprocess.PIPE)
        try:
            assert server.stdout is not None
            served = json.loads(server.stdout.readline())
            built = time.perf_counter() - started
            runs = {}
            for trimmed in (True, False) if baseline else (True,):
                worker = _child("--audit", kubeconfig, str(chunk_size), "trimmed" if trimmed else "whole")
                output, _ = worker.communicate()
                if worker.returncode:
                    raise SystemExit(f"the audit failed ({worker.returncode})")
                runs[trimmed] = json.loads(output)
        finally:
            assert server.stdin is not None
            server.stdin.close()
            server.wait(timeout=60)
    result = {**runs[True], "served": served["objects"], "build_s": built}
    if baseline:
        whole = runs[False]
        if whole["findings"] != result["findings"]:
            raise SystemExit("trimming changed the findings")
        result["whole_peak_mib"] = whole["peak_mib"]
        result["whole_cpu_s"] = whole["cpu_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--pods-per-deployment", type=int, default=10)
    parser.add_argument("--chunk-size", type=int, default=0)
    parser.add_argument("--no-baseline", dest="baseline", action="store_false",
                        help="Do not also audit whole objects (the baseline of the ratios).")
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--audit", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), int(args.serve[1]), args.serve[2])
        return
    if args.audit:
        audit(args.audit[0], int(args.audit[1]), args.audit[2] == "trimmed")
        return

    print(f"chunk size {args.chunk_size or 'none (one request per kind)'}; "
          f"{args.pods_per_deployment} pods per Deployment; each audit in a fresh process")
    header = (f"{'pods':>6} {'objects':>8} {'requests':>8} {'findings':>8} {'collect s':>9} {'audit s':>8} "
              f"{'total s':>8} {'CPU s':>6} {'peak MiB':>8}")
    if args.baseline:
        header += f" {'whole: CPU s':>12} {'peak MiB':>8} {'CPU ratio':>9} {'peak ratio':>10}"
    print(header)
    results = []
    for pods in args.pods:
        result = measure(pods, args.pods_per_deployment, args.chunk_size, args.baseline)
        results.append(result)
        total = result["collect_s"] + result["audit_s"]
        line = (f"{result['pods']:>6} {result['objects']:>8} {result['requests']:>8} {len(result['findings']):>8} "
                f"{result['collect_s']:>9.2f} {result['audit_s']:>8.2f} {total:>8.2f} {result['cpu_s']:>6.2f} "
                f"{result['peak_mib']:>8.0f}")
        if args.baseline:
            line += (f" {result['whole_cpu_s']:>12.2f} {result['whole_peak_mib']:>8.0f}"
                     f" {result['cpu_s'] / result['whole_cpu_s']:>8.2f}x"
                     f" {result['peak_mib'] / result['whole_peak_mib']:>9.2f}x")
        print(line, flush=True)
    print(f"requests per audit: {sorted({result['requests'] for result in results})}")
    if any(result["runtime_findings"] for result in results):
        print("warning: the healthy namespace produced runtime findings", file=sys.stderr)


if __name__ == "__main__":
    main()
