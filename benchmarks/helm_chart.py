"""The chart benchmark: a generated 50-template chart, rendered and scanned; render time as a ratio of scan time.

    python benchmarks/helm_chart.py [--templates 50] [--repeat 7]

- render:  the chart rendered to helm template's text through the helm extra's SDK (what a chart adds to a scan)
- scan:    the full catalogue (schema off) over that rendered text, read from a file: a scan of `helm template`
           output, the baseline
- chart:   `scan CHART`, render and scan together, with every finding placed on its template
- import:  the first import of the Helm SDK, paid once per process that scans a chart
Medians of --repeat runs, after one warm-up run; the machine is noisy, so read the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tbyte_policy.audit import AuditOptions, scan_paths
from tbyte_policy.catalogue import load_catalogue
from tbyte_policy.config import Config, configure_rules
from tbyte_policy.schemas import SCHEMA_CHECKS

KINDS = ("Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler", "PodDisruptionBudget")


def generate_chart(root: Path, templates: int) -> None:
    """A chart whose templates use what real charts use: helpers, include/nindent, toYaml, range, if."""
    (root / "templates").mkdir(parents=True)
    (root / "Chart.yaml").write_text("apiVersion: v2\nname: big\nversion: 1.0.0\n")
    values = ["common:\n  labels:\n    team: platform\nservices:"]
    for index in range(templates):
        values.append(f"  svc{index}:\n    replicas: {index % 4 + 2}\n"
                      f"    image: registry.example/svc{index}:1.{index}.0\n"
                      f"    env: {{LOG_LEVEL: info, REGION: eu}}\n    port: {8000 + index}\n"
                      "    resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {cpu: 500m, memory: 256Mi}}")
    (root / "values.yaml").write_text("\n".join(values) + "\n")
    (root / "templates" / "_helpers.tpl").write_text(
        '{{- define "big.labels" -}}\napp.kubernetes.io/name: {{ .name }}\n'
        "app.kubernetes.io/instance: {{ .root.Release.Name }}\n{{ toYaml .root.Values.common.labels }}\n{{- end -}}\n")
    for index in range(templates):
        kind = KINDS[index % len(KINDS)]
        name = f"svc{index}"
        head = (f"{{{{- $s := .Values.services.{name} }}}}\n"
                f"metadata:\n  name: {{{{ .Release.Name }}}}-{name}\n  labels:\n"
                f'    {{{{- include "big.labels" (dict "root" . "name" "{name}") | nindent 4 }}}}\n')
        selector = f'{{{{- include "big.labels" (dict "root" . "name" "{name}") | nindent 6 }}}}'
        bodies = {
            "Deployment": "apiVersion: apps/v1\nkind: Deployment\n" + head + (
                "spec:\n  replicas: {{ $s.replicas }}\n  selector:\n    matchLabels:\n      " + selector + "\n"
                "  template:\n    metadata:\n      labels:\n        " + selector.replace("6", "8") + "\n"
                "    spec:\n      containers:\n        - name: main\n          image: {{ $s.image | quote }}\n"
                "          env:\n          {{- range $key, $value := $s.env }}\n            - name: {{ $key }}\n"
                "              value: {{ $value | quote }}\n          {{- end }}\n"
                "          ports:\n            - containerPort: {{ $s.port }}\n"
                "          readinessProbe:\n            tcpSocket: {port: {{ $s.port }}}\n"
                "          resources:\n            {{- toYaml $s.resources | nindent 12 }}\n"),
            "Service": "apiVersion: v1\nkind: Service\n" + head + (
                "spec:\n  selector:\n    " + selector.replace("6", "4") + "\n  ports:\n    - port: 80\n"
                "      targetPort: {{ $s.port }}\n"),
            "ConfigMap": "apiVersion: v1\nkind: ConfigMap\n" + head + "data:\n  {{- toYaml $s.env | nindent 2 }}\n",
            "HorizontalPodAutoscaler": "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n" + head + (
                "spec:\n  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n"
                f"    name: {{{{ .Release.Name }}}}-{name}\n"
                "  minReplicas: 2\n  maxReplicas: 10\n"),
            "PodDisruptionBudget": "apiVersion: policy/v1\nkind: PodDisruptionBudget\n" + head + (
                "spec:\n  maxUnavailable: 1\n  selector:\n    matchLabels:\n      " + selector + "\n"),
        }
        (root / "templates" / f"{index:02d}-{name}.yaml").write_text(bodies[kind])


def median_time(function, repeat: int) -> float:
    function()  # warm-up: the first render starts the Go runtime, the first scan fills caches
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--templates", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=7)
    arguments = parser.parse_args()
    first_import = subprocess.run([sys.executable, "-X", "importtime", "-c", "import helm_python"],
                                  capture_output=True, text=True, check=True).stderr.splitlines()[-1]
    import_seconds = int(first_import.split("|")[1]) / 1e6
    from tbyte_policy.sources import helm_sdk

    rules = [rule for rule in configure_rules(load_catalogue(), Config()) if rule.check.name not in SCHEMA_CHECKS]
    options = AuditOptions(rules=rules)
    with tempfile.TemporaryDirectory() as directory:
        chart = Path(directory) / "big"
        generate_chart(chart, arguments.templates)

        def render() -> str:
            return helm_sdk.render(str(chart), values_files=[], set_values=[], set_string_values=[],
                                   release="bench", namespace="bench", kube_version="v1.33.0")

        rendered = Path(directory) / "rendered.yaml"
        rendered.write_text(render())
        report = scan_paths([str(chart)], options)
        assert not report.errors, report.errors
        render_seconds = median_time(render, arguments.repeat)
        scan_seconds = median_time(lambda: scan_paths([str(rendered)], options), arguments.repeat)
        chart_seconds = median_time(lambda: scan_paths([str(chart)], options), arguments.repeat)
    print(f"{arguments.templates} templates, {report.resources} objects, {len(report.findings)} findings; "
          f"Python {platform.python_version()}, {platform.machine()}, medians of {arguments.repeat}")
    print(f"{'':8}{'seconds':>10}{'x scan':>10}")
    for label, seconds in (("scan", scan_seconds), ("render", render_seconds), ("chart", chart_seconds),
                           ("import", import_seconds)):
        print(f"{label:8}{seconds:10.4f}{seconds / scan_seconds:9.2f}x")


if __name__ == "__main__":
    main()
