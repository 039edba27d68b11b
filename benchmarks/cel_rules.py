"""The CEL rules benchmark: what 10 custom CEL rules add to a scan, as a ratio to parsing the corpus with PyYAML's
CSafeLoader in the same run; and the two CEL libraries for Python on the same rules.

    python benchmarks/cel_rules.py [--objects 20000] [--repeat 3]

- parse:     reading the corpus files and parsing them with CSafeLoader (the floor every ratio is against)
- catalogue: the scan with the built-in catalogue (schema validation off)
- + 10 CEL:  the same scan with the 10 rules of RULES below added (--rules); "added" is the difference,
             whose ratio to parse the issue bounds at 1.0
- libraries: every validation of the 10 rules evaluated on every object it matches, with
             common-expression-language (what tbyte-policy uses: one conversion per object, shared by the rules)
             and, when it is installed (pip install cel-python), cel-python (celpy), per object
Medians of --repeat runs, the three scans run in turn; the machine is noisy, so read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from generate_corpus import generate

from tbyte_policy import k8s_cel
from tbyte_policy.audit import AuditOptions, scan_paths
from tbyte_policy.catalogue import load_catalogue
from tbyte_policy.cel_rules import compile_rule, load_rule_files
from tbyte_policy.config import Config, configure_rules
from tbyte_policy.schemas import SCHEMA_CHECKS

RULES = """\
family: bench
rules:
  - id: BEN001
    name: team-label
    severity: low
    title: Workloads carry a team label
    match: {kinds: [Deployment, StatefulSet, Rollout]}
    validations:
      - expression: has(object.metadata.labels) && 'team' in object.metadata.labels
        message: no team label
        fieldPath: .metadata.labels
  - id: BEN002
    name: company-registry
    severity: high
    title: Images come from the company registry
    match: {kinds: [pod-bearing]}
    params: {registry: ghcr.io/acme/}
    validations:
      - expression: variables.containers.all(c, has(c.image) && c.image.startsWith(params.registry))
        message: an image comes from elsewhere
  - id: BEN003
    name: memory-limit-cap
    severity: low
    title: Memory limits stay under 4Gi
    match: {kinds: [pod-bearing]}
    validations:
      - expression: >-
          variables.containers.all(c, !has(c.resources) || !has(c.resources.limits)
          || !has(c.resources.limits.memory)
          || !quantity(string(c.resources.limits.memory)).isGreaterThan(quantity('4Gi')))
        message: a memory limit is above 4Gi
  - id: BEN004
    name: probes-on-named-ports
    severity: low
    title: Readiness probes use named ports
    match: {kinds: [pod-bearing]}
    validations:
      - expression: >-
          variables.containers.all(c, !has(c.readinessProbe) || !has(c.readinessProbe.httpGet)
          || type(c.readinessProbe.httpGet.port) == string)
        message: a readiness probe uses a port number
  - id: BEN005
    name: service-ports-named
    severity: info
    title: Service ports are named
    match: {kinds: [Service]}
    validations:
      - expression: "!has(object.spec.ports) || object.spec.ports.all(p, has(p.name))"
        message: a Service port has no name
  - id: BEN006
    name: ingress-hosts-company-domain
    severity: medium
    title: Ingress hosts are under the company domain
    match: {kinds: [Ingress]}
    validations:
      - expression: >-
          !has(object.spec.rules) || object.spec.rules.all(r, !has(r.host) || r.host.endsWith('.example.com'))
        message: a host is outside example.com
  - id: BEN007
    name: configmap-small
    severity: info
    title: ConfigMaps hold few keys
    match: {kinds: [ConfigMap]}
    validations:
      - expression: "!has(object.data) || size(object.data) <= 20"
        message: too many keys
  - id: BEN008
    name: pdb-budget
    severity: low
    title: PodDisruptionBudgets set a budget
    match: {kinds: [PodDisruptionBudget]}
    validations:
      - expression: has(object.spec.minAvailable) || has(object.spec.maxUnavailable)
        message: no budget
  - id: BEN009
    name: hpa-max-bounded
    severity: low
    title: Autoscalers stop at 50 replicas
    match: {kinds: [HorizontalPodAutoscaler]}
    validations:
      - expression: object.spec.maxReplicas <= 50
        messageExpression: "'maxReplicas ' + string(object.spec.maxReplicas) + ' is above 50'"
  - id: BEN010
    name: network-policy-types
    severity: low
    title: NetworkPolicies declare their policyTypes
    match: {kinds: [NetworkPolicy]}
    validations:
      - expression: has(object.spec.policyTypes) && size(object.spec.policyTypes) > 0
        message: no policyTypes
"""


def rules_file(directory: Path) -> Path:
    path = directory / "bench-rules.yaml"
    path.write_text(RULES.replace("    severity:", "    docs: {what: a benchmark rule, fix: none}\n    severity:"))
    return path


def parse_only(files: list[str]) -> None:
    for file in files:
        with open(file, "rb") as handle:
            for _ in yaml.load_all(handle.read().decode("utf-8"), Loader=yaml.CSafeLoader):
                pass


def median_seconds(action, repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def interleaved_medians(actions: list, repeat: int) -> list[float]:
    """Median seconds of each action, the actions run in turn, so that the machine's noise hits all of them."""
    timings: list[list[float]] = [[] for _ in actions]
    for _ in range(repeat):
        for index, action in enumerate(actions):
            started = time.perf_counter()
            action()
            timings[index].append(time.perf_counter() - started)
    return [statistics.median(values) for values in timings]


def objects_of(files: list[str]) -> list[dict]:
    found = []
    for file in files:
        with open(file, encoding="utf-8") as handle:
            found.extend(document for document in yaml.load_all(handle, Loader=yaml.CSafeLoader) if document)
    return found


def library_comparison(rules, objects: list[dict], repeat: int) -> None:
    """Every validation of every rule on every object it matches: per object, both libraries, on the CEL the
    exported policies hold (the predefined variables substituted)."""
    compiled = [(rule, compile_rule(rule, as_exported=True)) for rule in rules]
    matched = [obj for obj in objects if any(obj.get("kind") in rule.kinds for rule in rules)]

    def with_cel() -> int:
        failed = 0
        for obj in matched:
            context = k8s_cel.context({"object": obj, "oldObject": None, "namespaceObject": None})
            for rule, program in compiled:
                if obj["kind"] in rule.kinds:
                    failed += sum(item.program.execute(context) is False for item in program.validations)
        return failed

    cel_seconds = median_seconds(with_cel, repeat)
    print(f"common-expression-language {_version('common-expression-language')}: {len(matched)} objects, "
          f"{cel_seconds:.2f} s, {cel_seconds / len(matched) * 1e6:.0f} us per object "
          f"({with_cel()} failed validations)")
    try:
        import celpy
    except ImportError:
        print("cel-python: not installed (pip install cel-python to compare)")
        return
    # celpy has none of the Kubernetes libraries: a Python quantity() that compares like ours stands in.
    from decimal import Decimal

    from tbyte_policy.quantity import parse_quantity

    def quantity(text):
        return celpy.celtypes.DoubleType(float(parse_quantity(str(text))))

    def is_greater_than(a, b):
        return celpy.celtypes.BoolType(Decimal(a) > Decimal(b))

    environment = celpy.Environment()
    programs = []
    for rule, program in compiled:
        for item in program.validations:
            text = item.program.source
            programs.append((rule, environment.program(environment.compile(text),
                                                       functions={"quantity": quantity,
                                                                  "isGreaterThan": is_greater_than})))

    def with_celpy() -> int:
        failed = 0
        for obj in matched:
            activation = {"object": celpy.json_to_cel(obj)}
            for rule, program in programs:
                if obj["kind"] in rule.kinds:
                    result = program.evaluate(activation)
                    failed += isinstance(result, celpy.celtypes.BoolType) and not bool(result)
        return failed

    celpy_seconds = median_seconds(with_celpy, repeat)
    print(f"cel-python {_version('cel-python')}: {celpy_seconds:.2f} s, {celpy_seconds / len(matched) * 1e6:.0f} us "
          f"per object ({with_celpy()} failed validations); {celpy_seconds / cel_seconds:.1f}x "
          f"common-expression-language")


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}, "
          f"median of {arguments.repeat} runs, {arguments.objects} objects")
    builtin = [rule for rule in configure_rules(load_catalogue(), Config()) if rule.check.name not in SCHEMA_CHECKS]
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        custom = load_rule_files([rules_file(Path(scratch))], builtin)
        print(f"loading and compiling the 10 rules: {(time.perf_counter() - started) * 1000:.1f} ms "
              f"(the CEL library's import included)")
        files = [str(path) for path in generate(Path(scratch) / "corpus", arguments.objects)]
        scan_paths(files, AuditOptions(rules=[*builtin, *custom]))  # warm
        parse, plain, with_cel = interleaved_medians(
            [partial(parse_only, files), partial(scan_paths, files, AuditOptions(rules=builtin)),
             partial(scan_paths, files, AuditOptions(rules=[*builtin, *custom]))], arguments.repeat)
        report = scan_paths(files, AuditOptions(rules=[*builtin, *custom]))
        cel_findings = sum(finding.rule_id.startswith("BEN") for finding in report.findings)
        print(f"{'parse s':>8} {'catalogue s':>12} {'+ 10 CEL s':>11} {'added s':>8} {'added x parse':>14} "
              f"{'CEL findings':>13} {'errors':>7}")
        print(f"{parse:>8.2f} {plain:>12.2f} {with_cel:>11.2f} {with_cel - plain:>8.2f} "
              f"{(with_cel - plain) / parse:>14.2f} {cel_findings:>13} {len(report.errors):>7}")
        print(f"ratio: 10 CEL rules add {(with_cel - plain) / parse:.2f}x CSafeLoader parse time (bound: 1.0x)")
        library_comparison(custom, objects_of(files), arguments.repeat)


if __name__ == "__main__":
    main()
