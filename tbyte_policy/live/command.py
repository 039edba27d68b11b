"""``tbyte-policy live``: collect a namespace from the API server, audit it, report like ``scan``."""

from __future__ import annotations

from pathlib import Path

from tbyte_policy.audit import audit_resources, build_resources
from tbyte_policy.commands import EXIT_INPUT, _error, apply_baselines, emit, parse_report_targets, prepare
from tbyte_policy.config import ConfigError
from tbyte_policy.findings import SEVERITIES, Report, ReportError
from tbyte_policy.loader import Document
from tbyte_policy.reporters import FORMATS

from .collect import ALL_KINDS, Collection, LiveError, collect


def live_documents(objects: list[dict]) -> list[Document]:
    """API objects as documents without a source file: findings locate them as kind/namespace/name."""
    return [Document(path=None, line=None, column=None, body=body) for body in objects]


def audit_collection(collection: Collection, options) -> Report:
    options.namespace = collection.namespace or options.namespace
    errors: list[ReportError] = []
    resources = build_resources(live_documents(collection.objects), options.namespace, errors)
    return audit_resources(resources, options, "live", errors, collection.unreadable,
                           collected_kinds=[kind.kind for kind in ALL_KINDS])


def run_live(*, namespace: str | None, all_namespaces: bool, kubeconfig: str | None, context: str | None,
             timeout: float, verbose: bool, output_format: str, output: Path | None, reports: list[str],
             fail_on: str | None, config_path: Path | None, quiet: bool, color: bool,
             baseline: Path | None = None, write_baseline: Path | None = None) -> int:
    if output_format not in FORMATS:
        _error(f"--format must be one of {', '.join(FORMATS)}")
        return EXIT_INPUT
    if fail_on is not None and fail_on not in SEVERITIES:
        _error(f"--fail-on must be one of {', '.join(SEVERITIES)}")
        return EXIT_INPUT
    try:
        targets = parse_report_targets(reports)
        options = prepare([], config_path, None)
    except (ValueError, ConfigError) as exc:
        _error(str(exc))
        return EXIT_INPUT
    try:
        collection = collect(namespace, kubeconfig=kubeconfig, context=context, timeout=timeout,
                             all_namespaces=all_namespaces, verbose=verbose)
    except LiveError as exc:
        _error(str(exc))
        return EXIT_INPUT
    report = audit_collection(collection, options)
    failure = apply_baselines(report, baseline, write_baseline)
    if failure is not None:
        return failure
    return emit(report, output_format=output_format, output=output, targets=targets, quiet=quiet, color=color,
                fail_on=fail_on or options.config.fail_on or "high")
