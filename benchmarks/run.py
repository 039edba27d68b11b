"""The scan benchmark: every number is a ratio against a baseline measured in the same run.

    python benchmarks/run.py [--sizes 1000 5000 20000] [--repeat 5] [--one-namespace]

- parse:   reading the files and parsing them with PyYAML's CSafeLoader (our floor)
- scan:    the full catalogue with line numbers, schema validation off, in-process
- schema:  the same with schema validation on
- memory:  peak RSS of a `tbyte-policy scan` process over the largest corpus
- startup: `tbyte-policy scan one-deployment.yaml --format json` against `python -c "import typer, yaml"`,
           with the on-disk cache warm (the usual case) and cold (the first run after an install or a change)
Medians of --repeat runs; the machine is noisy, so read the ratios, not the seconds. --one-namespace puts
every release in one namespace, the worst case for cross-resource rules (every object meets every other).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from generate_corpus import RELEASES_PER_NAMESPACE, generate

from tbyte_policy.audit import AuditOptions, scan_paths
from tbyte_policy.catalogue import load_catalogue
from tbyte_policy.config import Config, configure_rules
from tbyte_policy.schemas import SCHEMA_CHECKS

ONE_DEPLOYMENT = Path(__file__).parents[1] / "reference_manifests" / "backend" / "deployment.yaml"


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


def catalogue(schema: bool):
    rules = configure_rules(load_catalogue(), Config())
    return rules if schema else [rule for rule in rules if rule.check.name not in SCHEMA_CHECKS]


def peak_rss_mib(corpus: Path) -> float:
    script = ("import resource, sys; from tbyte_policy.cli import main; sys.argv = ['tbyte-policy', 'scan', "
              f"{str(corpus)!r}, '--format', 'json', '--output', '/dev/null']\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\n"
              "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return int(output.strip().splitlines()[-1]) / 1024


def startup(repeat: int) -> tuple[float, float, float]:
    """Medians of the baseline, a warm-cache run and a cold-cache run (a fresh, empty cache folder each time)."""
    script = Path(sys.executable).with_name("tbyte-policy")
    # As installed: bytecode is written once and reused (a PYTHONDONTWRITEBYTECODE shell would recompile every
    # module at every start and measure that instead).
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    command = [str(script), "scan", str(ONE_DEPLOYMENT), "--format", "json"]
    baseline, warm, cold = [], [], []
    with tempfile.TemporaryDirectory() as scratch:
        warm_environment = {**environment, "TBYTE_POLICY_CACHE_DIR": str(Path(scratch) / "warm")}
        subprocess.run(command, env=warm_environment, capture_output=True)  # fills the cache and the bytecode
        for index in range(repeat):  # interleaved, so that noise hits every side alike
            cold_environment = {**environment, "TBYTE_POLICY_CACHE_DIR": str(Path(scratch) / f"cold-{index}")}
            for timings, arguments, env in ((baseline, [sys.executable, "-c", "import typer, yaml"], environment),
                                            (warm, command, warm_environment), (cold, command, cold_environment)):
                started = time.perf_counter()
                subprocess.run(arguments, env=env, capture_output=True)
                timings.append(time.perf_counter() - started)
    return statistics.median(baseline), statistics.median(warm), statistics.median(cold)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--one-namespace", action="store_true")
    arguments = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}, "
          f"median of {arguments.repeat} runs")
    without_schema, with_schema = catalogue(schema=False), catalogue(schema=True)
    print(f"{'objects':>8} {'parse s':>8} {'scan s':>8} {'x parse':>8} {'schema s':>9} {'x parse':>8} "
          f"{'findings':>9}")
    with tempfile.TemporaryDirectory() as scratch:
        largest = None
        for size in arguments.sizes:
            corpus = Path(scratch) / str(size)
            per_namespace = size if arguments.one_namespace else RELEASES_PER_NAMESPACE
            files = [str(path) for path in generate(corpus, size, releases_per_namespace=per_namespace)]
            largest = corpus
            scan_paths(files, AuditOptions(rules=with_schema))  # warm: imports, compiled validators
            parse = median_seconds(partial(parse_only, files), arguments.repeat)
            scan = median_seconds(partial(scan_paths, files, AuditOptions(rules=without_schema)), arguments.repeat)
            schema = median_seconds(partial(scan_paths, files, AuditOptions(rules=with_schema)), arguments.repeat)
            findings = len(scan_paths(files, AuditOptions(rules=with_schema)).findings)
            print(f"{size:>8} {parse:>8.2f} {scan:>8.2f} {scan / parse:>8.2f} {schema:>9.2f} {schema / parse:>8.2f} "
                  f"{findings:>9}", flush=True)
        print(f"peak memory, scan of {arguments.sizes[-1]} objects: {peak_rss_mib(largest):.0f} MiB")
    baseline, warm, cold = startup(max(arguments.repeat, 20))
    print(f"startup: python -c 'import typer, yaml' {baseline * 1000:.0f} ms; tbyte-policy scan one file: "
          f"warm cache {warm * 1000:.0f} ms, ratio {warm / baseline:.2f}; cold cache {cold * 1000:.0f} ms, "
          f"ratio {cold / baseline:.2f}")


if __name__ == "__main__":
    main()
