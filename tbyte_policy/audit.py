"""The pipeline: sources → resources + inventory → engine → findings → suppressions → report."""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NamedTuple

from tbyte_policy import __version__
from tbyte_policy.catalogue import Rule, active_rules, load_catalogue
from tbyte_policy.config import Config, apply_suppressions, configure_rules
from tbyte_policy.engine import Engine
from tbyte_policy.findings import Report, ReportError
from tbyte_policy.inventory import Inventory
from tbyte_policy.model import CLUSTER_SCOPED_KINDS, Resource, Source, mapping
from tbyte_policy.shape import shape_problems
from tbyte_policy.sources import Document, LoadResult, RenderOptions, load_all, scan_inputs

if TYPE_CHECKING:
    from tbyte_policy.drift import RenderedManifests

UNNAMED = "<unnamed>"


class AuditOptions(NamedTuple):
    namespace: str = "default"
    config: Config = Config()
    today: dt.date | None = None  # the date exemptions expire against; the run's date when None
    rules: list[Rule] | None = None  # the configured catalogue; loaded from rules/ when None
    jobs: int = 1  # processes that parse files
    render: RenderOptions = RenderOptions()  # how charts and kustomizations are rendered


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a run builds its objects.

    Manifests make acyclic data (recursive aliases are refused), which reference counting frees; but
    each full collection walks every live object, so with the collector on a 20,000-object scan spent
    about a third of its time in it, and more the larger the run (measured in benchmarks/run.py).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def scan_paths(paths: Iterable[str], options: AuditOptions) -> Report:
    with cyclic_gc_paused():
        # A chart's release namespace is the scan's namespace unless --chart-namespace says otherwise.
        render = options.render._replace(namespace=options.render.namespace or options.namespace)
        loaded = load_all(scan_inputs(list(paths), max_file_bytes=options.config.max_file_size,
                                      exclude=list(options.config.exclude), jobs=options.jobs, render=render))
        return audit_documents(loaded, options)


def audit_documents(loaded: LoadResult, options: AuditOptions, mode: str = "scan") -> Report:
    errors = [ReportError(error.path, error.line, error.message) for error in loaded.errors]
    resources = build_resources(loaded.documents, options.namespace, errors)
    report = audit_resources(resources, options, mode, errors)
    return report._replace(files=loaded.files, skipped_documents=loaded.skipped_documents,
                           source_texts=loaded.texts)


def build_resources(documents: Iterable[Document], default_namespace: str, errors: list[ReportError]) -> list[Resource]:
    resources = []
    for document in documents:
        body = document.body
        metadata = mapping(body.get("metadata"))
        name = metadata.get("name")
        if not isinstance(name, str) or not name:
            generated = metadata.get("generateName")
            if isinstance(generated, str) and generated:
                name = generated + "*"
            else:
                # Still audited, so that every other problem of the object is seen in the same run.
                errors.append(ReportError(document.path, document.line,
                                          f"{body['kind']} has no metadata.name; it cannot be applied"))
                name = UNNAMED
        namespace = None
        if body["kind"] not in CLUSTER_SCOPED_KINDS:
            given = metadata.get("namespace")
            namespace = given if isinstance(given, str) and given else document.namespace or default_namespace
        source = Source(document.path, document.line, document.column, document.helm_source, document.list_pointer,
                        document.origin)
        resource = Resource(body["apiVersion"], body["kind"], name, namespace, body, source)
        for pointer, message in shape_problems(resource):
            line, _ = resource.position(pointer)
            errors.append(ReportError(document.path, line, f"{resource.ref}: {message}"))
        resources.append(resource)
    return resources


def audit_resources(resources: list[Resource], options: AuditOptions, mode: str,
                    errors: list[ReportError] | None = None, unreadable: dict[str, str] | None = None,
                    collected_kinds: Iterable[str] | None = None, rendered: RenderedManifests | None = None) -> Report:
    """``unreadable``: kind -> why a live run could not read it (reported, and known to the checks);
    ``collected_kinds``: what a live run reads (see ``Inventory.sees``); ``rendered``: the manifests a live run
    compares the namespace with (the drift rules run then)."""
    rules = options.rules if options.rules is not None else configure_rules(load_catalogue(), options.config)
    inventory = Inventory(resources, options.namespace, unreadable_kinds=unreadable or {},
                          collected_kinds=collected_kinds)
    drift = rendered is not None
    findings, check_errors, internal_errors = Engine(rules, mode, drift=drift).run(inventory, rendered)
    annotated = [*inventory.resources, *(rendered.inventory.resources if rendered is not None else ())]
    findings, suppression_errors, warnings = apply_suppressions(findings, annotated, options.config, rules,
                                                                options.today or dt.date.today())
    if rendered is not None:
        warnings = sorted([*warnings, *rendered.coverage_warnings(inventory)], key=ReportError.sort_key)
    all_errors = sorted([*(errors or []), *check_errors, *suppression_errors], key=ReportError.sort_key)
    return Report(tool_version=__version__, rules=active_rules(rules, mode, drift=drift), findings=findings,
                  errors=all_errors, warnings=warnings, internal_errors=internal_errors, resources=len(resources),
                  unreadable_kinds=dict(unreadable or {}), mode=mode)
