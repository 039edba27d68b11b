"""What the CLI commands do, as plain functions of their options (the CLI only parses them)."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from tbyte_policy.audit import AuditOptions, scan_paths
from tbyte_policy.catalogue import Rule, load_catalogue
from tbyte_policy.config import Config, ConfigError, configure_rules, find_config, load_config
from tbyte_policy.exit_codes import EXIT_INPUT, EXIT_OK
from tbyte_policy.findings import SEVERITIES, Report
from tbyte_policy.reporters import FORMATS, render
from tbyte_policy.sources import RenderOptions, ToolMissing


def _error(message: str) -> None:
    print(f"tbyte-policy: {message}", file=sys.stderr)


def resolve_config(config_path: Path | None, paths: list[str]) -> Config:
    if config_path is not None:
        if not config_path.is_file():
            raise ConfigError(f"{config_path}: config file not found")
        return load_config(config_path)
    start = next((Path(path) for path in paths if path != "-"), Path.cwd())
    found = find_config(start if start.exists() else Path.cwd())
    return load_config(found) if found else Config()


def parse_report_targets(reports: Sequence[str]) -> list[tuple[str, Path]]:
    targets = []
    for entry in reports:
        name, separator, file = entry.partition("=")
        if not separator or not file or name not in FORMATS:
            raise ValueError(f"--report takes FORMAT=FILE with FORMAT one of {', '.join(FORMATS)}, not {entry!r}")
        targets.append((name, Path(file)))
    return targets


class Outputs(NamedTuple):
    """Where and how a run's report goes, and what fails it: the options `scan` and `live` share."""

    format: str = "table"
    output: Path | None = None
    reports: Sequence[str] = ()
    fail_on: str | None = None
    quiet: bool = False
    color: bool = False
    baseline: Path | None = None
    write_baseline: Path | None = None
    source: bool = True  # source lines in the text format

    def targets(self) -> list[tuple[str, Path]]:
        """The --report targets; ValueError on a bad format or option."""
        if self.format not in FORMATS:
            raise ValueError(f"--format must be one of {', '.join(FORMATS)}")
        if self.fail_on is not None and self.fail_on not in SEVERITIES:
            raise ValueError(f"--fail-on must be one of {', '.join(SEVERITIES)}")
        return parse_report_targets(self.reports)


def configure_schema_rules(rules: list[Rule], *, enabled: bool = True,
                           kubernetes_version: str | None = None) -> list[Rule]:
    """The configured rules with the command line's schema options applied.

    ``enabled=False`` (``--no-schema``) drops the rules that read schema files; the removed-API table and
    the structural checks stay. ``kubernetes_version`` (``--kubernetes-version``) becomes the
    ``kubernetes_version`` param of every rule that has one. Raises SchemaVersionError for a version
    that is not one, or, while a schema rule is on, one the installed schemas do not cover.
    """
    from tbyte_policy.schemas import SCHEMA_CHECKS, parse_kubernetes_version, resolve_version

    if not enabled:
        rules = [rule for rule in rules if rule.check.name not in SCHEMA_CHECKS]
    if kubernetes_version is not None:
        rules = [rule.with_overrides(params={**rule.params, "kubernetes_version": kubernetes_version})
                 if "kubernetes_version" in rule.params else rule for rule in rules]
    # A version from the config file is checked here too, once, rather than failing on every object.
    for rule in rules:
        if "kubernetes_version" in rule.params:
            parse_kubernetes_version(rule.params["kubernetes_version"])
            if rule.check.name in SCHEMA_CHECKS:
                resolve_version(rule.params["kubernetes_version"])
    return rules


def load_rules(config: Config, rule_paths: Sequence[str] = ()) -> list[Rule]:
    """The bundled catalogue and the CEL rules of the config's ``custom_rules`` and of ``--rules``.

    ConfigError (exit 2) for a rule file that cannot be used, or for CEL rules without the cel extra; the CEL
    library is imported only when there are rule files.
    """
    catalogue = load_catalogue()
    paths = [*config.custom_rules, *rule_paths]
    if not paths:
        return catalogue
    from tbyte_policy.cel_rules import RuleFileError, load_rule_files
    from tbyte_policy.k8s_cel import CelUnavailable

    try:
        return [*catalogue, *load_rule_files([Path(path) for path in paths], catalogue)]
    except (RuleFileError, CelUnavailable) as exc:
        raise ConfigError(str(exc)) from None


def rule_catalogue(rule_paths: Sequence[str] = (), config_path: Path | None = None) -> list[Rule]:
    """Every rule as defined (not configured): the bundled catalogue and the CEL rules of the config found
    from the current directory (or ``config_path``) and of ``rule_paths``, in id order."""
    rules = load_rules(resolve_config(config_path, []), rule_paths)
    return sorted(rules, key=lambda rule: rule.id)


def compile_cel_rules(rules: list[Rule]) -> None:
    """Compile the configured CEL rules (with the params the config gives them) before any object is read."""
    custom = [rule for rule in rules if rule.cel is not None and rule.check.name == "cel"]
    if not custom:
        return
    from tbyte_policy.cel_rules import RuleFileError, compile_rule

    try:
        for rule in custom:
            compile_rule(rule)
    except RuleFileError as exc:
        raise ConfigError(str(exc)) from None


def prepare(paths: list[str], config_path: Path | None, namespace: str | None, *, schema: bool = True,
            kubernetes_version: str | None = None, rule_paths: Sequence[str] = ()) -> AuditOptions:
    """The audit options: the config found for ``paths`` and the catalogue it configures (with the CEL rules
    of ``custom_rules`` and ``rule_paths``)."""
    config = resolve_config(config_path, paths)
    rules = configure_schema_rules(configure_rules(load_rules(config, rule_paths), config), enabled=schema,
                                   kubernetes_version=kubernetes_version)
    compile_cel_rules(rules)
    return AuditOptions(namespace=namespace or config.namespace or "default", config=config, rules=rules)


def run_scan(paths: list[str], outputs: Outputs, *, namespace: str | None, config_path: Path | None,
             schema: bool = True, kubernetes_version: str | None = None, jobs: int = 1,
             rule_paths: Sequence[str] = (), render_options: RenderOptions | None = None) -> int:
    from tbyte_policy.schemas import SchemaVersionError

    try:
        targets = outputs.targets()
        options = prepare(paths, config_path, namespace, schema=schema, kubernetes_version=kubernetes_version,
                          rule_paths=rule_paths)
    except (ValueError, ConfigError, SchemaVersionError) as exc:
        _error(str(exc))
        return EXIT_INPUT
    render_options = (render_options or RenderOptions())._replace(kubernetes_version=kubernetes_version)
    options = options._replace(jobs=jobs, render=render_options)
    if not paths:
        from tbyte_policy import reference

        paths = [str(path) for path in reference.variant_files(None)]
        options = options._replace(namespace=namespace or reference.REFERENCE_NAMESPACE)
    try:
        report = scan_paths(paths, options)
    except ToolMissing as exc:
        _error(str(exc))
        return EXIT_INPUT
    return deliver(report, outputs, targets, options)


def deliver(report: Report, outputs: Outputs, targets: list[tuple[str, Path]], options: AuditOptions,
            before_output: Callable[[Report], bool] | None = None) -> int:
    """Apply the baselines, write every output, and return the run's exit code. ``before_output`` (live
    --publish) sees the report as it is written; when it fails (False), the outputs are still written and
    the run exits 2."""
    report, failure = apply_baselines(report, outputs.baseline, outputs.write_baseline)
    if failure is not None:
        return failure
    succeeded = before_output(report) if before_output is not None else True
    code = emit(report, output_format=outputs.format, output=outputs.output, targets=targets, quiet=outputs.quiet,
                color=outputs.color, fail_on=outputs.fail_on or options.config.fail_on or "high",
                source=outputs.source)
    return code if succeeded else EXIT_INPUT


def apply_baselines(report: Report, baseline: Path | None,
                    write_baseline: Path | None) -> tuple[Report, int | None]:
    """Record the report's findings (--write-baseline), then accept those of --baseline: the report that
    results, and an exit code on error."""
    from tbyte_policy import baseline as baselines

    try:
        if write_baseline is not None:
            baselines.write_baseline(report, write_baseline)
        if baseline is not None:
            report = baselines.apply_baseline(report, baselines.load_baseline(baseline), str(baseline))
    except OSError as exc:
        _error(f"cannot write baseline: {exc}")
        return report, EXIT_INPUT
    except baselines.BaselineError as exc:
        _error(str(exc))
        return report, EXIT_INPUT
    return report, None


def emit(report: Report, *, output_format: str, output: Path | None, targets: list[tuple[str, Path]], quiet: bool,
         color: bool, fail_on: str, source: bool = True) -> int:
    """Write the main output and every --report file; return the exit code."""
    try:
        for name, file in targets:
            _write_file(file, _render(name, report, color=False, source=source))
        if output is not None:
            _write_file(output, _render(output_format, report, color=False, source=source))
        elif not quiet:
            _write_stdout(_render(output_format, report, color=color, source=source), output_format)
    except OSError as exc:
        _error(f"cannot write report: {exc}")
        return EXIT_INPUT
    return report.exit_code(fail_on)


# Formats that declare their encoding as UTF-8 (JSON by its RFC, the XML header, the HTML meta charset): written
# so whatever the terminal's encoding; the others are for reading, in the terminal's encoding.
_UTF8_FORMATS = frozenset({"json", "sarif", "junit", "policyreport", "html"})


def _write_file(path: Path, text: str) -> None:
    # A character UTF-8 cannot carry (a file name's undecodable byte, kept by Python as a lone surrogate) is
    # written as its escape, which is also what it means inside a JSON string.
    path.write_text(text, encoding="utf-8", errors="backslashreplace")


def _write_stdout(text: str, output_format: str) -> None:
    stream = sys.stdout
    buffer = getattr(stream, "buffer", None)
    if output_format in _UTF8_FORMATS and buffer is not None:
        stream.flush()
        buffer.write(text.encode("utf-8", "backslashreplace"))
        buffer.flush()
        return
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        # An ASCII or Latin-1 terminal (LANG=C, PYTHONIOENCODING, a Windows console) shows what it cannot
        # encode as escapes rather than failing the run.
        reconfigure(errors="backslashreplace")
    stream.write(text)


def _render(output_format: str, report: Report, *, color: bool, source: bool) -> str:
    """A report in one format, with the terminal options of the formats that take them."""
    if output_format == "table":
        return render("table", report, color=color)
    if output_format == "text":
        return render("text", report, color=color, source=source)
    return render(output_format, report)


def run_export_vap(rule_paths: Sequence[str], config_path: Path | None, *, actions: Sequence[str], builtin: bool,
                   output: Path | None) -> int:
    """`export vap`: the configured CEL rules (and with ``builtin`` the built-in rules' CEL twins) as
    ValidatingAdmissionPolicies and bindings."""
    from tbyte_policy import vap

    try:
        vap.check_actions(actions)
        config = resolve_config(config_path, [])
        rules = configure_rules(load_rules(config, rule_paths), config)
        compile_cel_rules(rules)
        selected = [rule for rule in rules if rule.cel is not None and (builtin or rule.check.name == "cel")]
        if not selected:
            raise ValueError("no CEL rule to export: give --rules PATH, list custom_rules in the config, or --builtin")
        today = dt.date.today()
        exemptions = [item for item in config.exemptions if item.expires is None or item.expires >= today]
        text = vap.export_text(selected, actions, exemptions)
    except (ValueError, ConfigError, vap.ExportError) as exc:
        _error(str(exc))
        return EXIT_INPUT
    try:
        if output is not None:
            output.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
    except OSError as exc:
        _error(f"cannot write {output}: {exc}")
        return EXIT_INPUT
    return EXIT_OK
