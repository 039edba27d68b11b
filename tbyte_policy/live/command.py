"""``tbyte-policy live``: collect a namespace from the API server, audit it, report like ``scan``; with
``--against``, compare it with the rendered manifests too (the drift rules)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from tbyte_policy.audit import AuditOptions, audit_resources, build_resources, cyclic_gc_paused
from tbyte_policy.commands import Outputs, _error, deliver, prepare
from tbyte_policy.config import ConfigError
from tbyte_policy.exit_codes import EXIT_INPUT
from tbyte_policy.findings import Report, ReportError
from tbyte_policy.sources import LoadResult, RenderOptions, ToolMissing, load_all, scan_inputs
from tbyte_policy.sources.cluster import ALL_KINDS, ClusterSource, Collection, LiveError, collect
from tbyte_policy.sources.cluster_transport import Deadline


def audit_collection(collection: Collection, options: AuditOptions, against: LoadResult | None = None) -> Report:
    """The live audit of ``collection``; ``against``: the rendered manifests to compare it with."""
    options = options._replace(namespace=collection.namespace or options.namespace)
    errors: list[ReportError] = []
    resources = build_resources(ClusterSource(collection.objects).load().documents, options.namespace, errors)
    rendered = None
    if against is not None:
        from tbyte_policy.drift import RenderedManifests

        errors.extend(against.errors)
        rendered = RenderedManifests(build_resources(against.documents, options.namespace, errors),
                                     namespace=collection.namespace, default_namespace=options.namespace,
                                     not_served=collection.skipped_crds)
        problem = rendered.scope_error()
        if problem is not None:
            errors.append(ReportError(None, None, problem))
    report = audit_resources(resources, options, "live", errors, collection.unreadable,
                             collected_kinds=[kind.kind for kind in ALL_KINDS], rendered=rendered)
    if against is not None:
        report = report._replace(files=against.files, skipped_documents=against.skipped_documents,
                                 source_texts=against.texts)
    return report


def run_live(outputs: Outputs, *, namespace: str | None, all_namespaces: bool, kubeconfig: str | None,
             context: str | None, timeout: float, verbose: bool, config_path: Path | None,
             chunk_size: int = 0, deadline: float | None = None, publish: bool = False,
             against: list[str] | None = None, render_options: RenderOptions | None = None,
             rule_paths: Sequence[str] = ()) -> int:
    """``against``: rendered manifests (``scan``'s inputs) to compare the namespace with, charts and
    kustomizations rendered with ``render_options`` (a chart's release namespace: the audited one)."""
    if publish and all_namespaces:
        _error("--publish writes the PolicyReport of one namespace: it cannot be used with --all-namespaces")
        return EXIT_INPUT
    try:
        targets = outputs.targets()
        options = prepare(list(against or ()), config_path, None, rule_paths=rule_paths)
        run_deadline = Deadline.after(deadline) if deadline else None
    except (ValueError, ConfigError, LiveError) as exc:
        _error(str(exc))
        return EXIT_INPUT
    with cyclic_gc_paused():
        try:
            collection = collect(namespace, kubeconfig=kubeconfig, context=context, timeout=timeout,
                                 all_namespaces=all_namespaces, verbose=verbose, chunk_size=chunk_size,
                                 deadline=run_deadline)
        except LiveError as exc:
            _error(str(exc))
            return EXIT_INPUT
        rendered = None
        if against:
            render = render_options or RenderOptions()
            render = render._replace(namespace=render.namespace or collection.namespace or options.namespace)
            try:
                rendered = load_all(scan_inputs(list(against), max_file_bytes=options.config.max_file_size,
                                                exclude=list(options.config.exclude), render=render))
            except ToolMissing as exc:
                _error(str(exc))
                return EXIT_INPUT
        report = audit_collection(collection, options, rendered)

    def published(final: Report) -> bool:
        """After the baselines, before the outputs: the audit's own report is written whatever happens here."""
        from .publish import open_api
        from .publish import publish as apply_report

        assert collection.namespace is not None
        try:
            api = open_api(kubeconfig, context, timeout, run_deadline, verbose)
            try:
                done = apply_report(api, final, collection.namespace, collection.objects)
            finally:
                api.close()
        except LiveError as exc:
            _error(str(exc))
            return False
        if not outputs.quiet:
            print(f"tbyte-policy: {done}", file=sys.stderr)
        return True

    return deliver(report, outputs, targets, options, before_output=published if publish else None)
