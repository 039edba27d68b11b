"""What writing a report costs, as a ratio to parsing the same corpus with PyYAML's CSafeLoader.

    python benchmarks/reporters.py [--sizes 1000 5000 20000] [--repeat 5]

Each format renders the report of one scan of the generated corpus (see benchmarks/run.py). ``text``
reads the scanned files again for its source lines and composes them with libyaml to mask secret
values; ``text --no-source`` shows what that costs. Start-up is the other budget of the pre-commit
hook's format: ``text`` imports no rich, ``table`` does. Medians of --repeat runs; read the ratios.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from generate_corpus import generate
from run import catalogue, median_seconds, parse_only

from tbyte_policy.audit import AuditOptions, scan_paths
from tbyte_policy.reporters import render

FORMATS = (("json", {}), ("table", {}), ("text", {}), ("text --no-source", {"source": False}), ("html", {}))


def render_fresh(name: str, report, options: dict) -> None:
    render(name.split()[0], report, **options)


def import_seconds(module: str, repeat: int) -> float:
    """Median wall time of a fresh interpreter importing ``module`` after what a scan has imported."""
    script = f"import time, tbyte_policy.cli, tbyte_policy.commands; started = time.perf_counter(); import {module}; " \
             "print(time.perf_counter() - started)"
    timings = sorted(float(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                          check=True).stdout) for _ in range(repeat))
    return timings[len(timings) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--repeat", type=int, default=5)
    arguments = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, python {platform.python_version()}, "
          f"median of {arguments.repeat} runs; each number: seconds, then x parse")
    rules = catalogue(schema=False)
    print(f"{'objects':>8} {'findings':>9} {'parse s':>8} " + " ".join(f"{name:>22}" for name, _ in FORMATS))
    with tempfile.TemporaryDirectory() as scratch:
        for size in arguments.sizes:
            files = [str(path) for path in generate(Path(scratch) / str(size), size)]
            parse = median_seconds(partial(parse_only, files), arguments.repeat)
            report = scan_paths(files, AuditOptions(rules=rules))
            cells = []
            for name, options in FORMATS:
                seconds = median_seconds(partial(render_fresh, name, report, options), arguments.repeat)
                cells.append(f"{seconds:>8.2f} {seconds / parse:>6.2f}x".rjust(22))
            print(f"{size:>8} {len(report.findings):>9} {parse:>8.2f} " + " ".join(cells), flush=True)
    repeat = max(arguments.repeat, 11)
    text, table = import_seconds("tbyte_policy.reporters.text", repeat), import_seconds(
        "tbyte_policy.reporters.table", repeat)
    print(f"import after the scan's modules: text reporter {text * 1000:.1f} ms, table reporter {table * 1000:.1f} ms")


if __name__ == "__main__":
    main()
