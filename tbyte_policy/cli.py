"""The command line: thin commands that parse options, call the library and return an exit code.

Every command keeps the exit-code contract of ``tbyte_policy.exit_codes``.
"""

# No `from __future__ import annotations`: Typer would have to evaluate every annotation string of every command
# at start-up (typing.get_type_hints), a millisecond of each run.
import gc
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from tbyte_policy import __version__
from tbyte_policy.exit_codes import EXIT_FINDINGS, EXIT_INPUT, EXIT_INTERNAL, EXIT_OK

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Policy-as-code production-readiness scanner for Kubernetes.")
rules_app = typer.Typer(add_completion=False, invoke_without_command=True, help="List and explain the rules.")
reference_app = typer.Typer(add_completion=False, no_args_is_help=True, help="The bundled reference manifests.")
app.add_typer(rules_app, name="rules")
app.add_typer(reference_app, name="reference")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tbyte-policy {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Policy-as-code production-readiness scanner for Kubernetes."""


def fail(message: str, code: int = EXIT_INPUT) -> typer.Exit:
    typer.echo(f"tbyte-policy: {message}", err=True)
    return typer.Exit(code)


def _severity(value: str) -> str:
    from tbyte_policy.findings import SEVERITIES

    if value not in SEVERITIES:
        raise typer.BadParameter(f"must be one of {', '.join(SEVERITIES)}")
    return value


def _use_color(output: Optional[Path]) -> bool:
    return output is None and "NO_COLOR" not in os.environ and sys.stdout.isatty()


# The report options `scan` and `live` share.
FORMAT = typer.Option(None, "--format", "-f", help="table, text, html, json, sarif, junit, markdown, github or "
                                                   "policyreport [default: table on a terminal, else text].")
OUTPUT = typer.Option(None, "--output", "-o", help="Write the report here instead of stdout.")
REPORTS = typer.Option([], "--report", help="FORMAT=FILE: also write this report (repeatable).")
FAIL_ON = typer.Option(None, "--fail-on", callback=lambda value: value and _severity(value),
                       help="Lowest severity that fails the run [default: high].")
QUIET = typer.Option(False, "--quiet", "-q", help="Print nothing; only the exit code (and --output/--report).")
BASELINE = typer.Option(None, "--baseline", help="Accept the findings recorded in this baseline file; fail only "
                                                 "on new ones.")
WRITE_BASELINE = typer.Option(None, "--write-baseline", help="Record this run's findings as a baseline file.")
RULES = typer.Option([], "--rules", help="A CEL rule file or folder of them (repeatable; adds to the config's "
                                         "custom_rules). Needs the cel extra.")
SOURCE = typer.Option(True, "--source/--no-source", help="Show the source line of each finding (text format).")


def _outputs(output_format: Optional[str], output: Optional[Path], reports: list[str], fail_on: Optional[str],
             quiet: bool, baseline: Optional[Path], write_baseline: Optional[Path], source: bool):
    from tbyte_policy.commands import Outputs

    if output_format is None:  # the table for a person at a terminal; text for logs, pipes, files and hooks
        output_format = "table" if output is None and sys.stdout.isatty() else "text"
    return Outputs(format=output_format, output=output, reports=reports, fail_on=fail_on, quiet=quiet,
                   color=_use_color(output), baseline=baseline, write_baseline=write_baseline, source=source)


# How the charts and kustomizations among the paths are rendered: `scan` and `live --against` share these.
VALUES = typer.Option([], "--values", help="Helm: values file for the charts, as helm template -f (repeatable; "
                                           "later files win).")
SET_VALUES = typer.Option([], "--set", help="Helm: a value, as helm template --set (repeatable).")
SET_STRING_VALUES = typer.Option([], "--set-string", help="Helm: a value kept a string, as helm template "
                                                          "--set-string (repeatable).")
RELEASE = typer.Option("release-name", "--release", help="Helm: the release name charts render with.")
CHART_NAMESPACE = typer.Option(None, "--chart-namespace", help="Helm: the release namespace [default: --namespace].")
INCLUDE_TESTS = typer.Option(False, "--include-tests", help="Helm: also take the charts' test hooks "
                                                            "(templates/tests/).")
HELM_BIN = typer.Option(None, "--helm-bin", help="Helm: render with this helm binary [default: the helm extra's "
                                                 "SDK, else helm on PATH].")
KUSTOMIZE_BIN = typer.Option(None, "--kustomize-bin", help="kustomize or kubectl to build kustomizations with "
                                                           "[default: kustomize on PATH, else kubectl].")
RENDER_TIMEOUT = typer.Option(120.0, "--render-timeout", min=1.0, help="Seconds one helm or kustomize process "
                                                                       "may take.")


def _render_options(values: list[str], set_values: list[str], set_string_values: list[str], release: str,
                    chart_namespace: Optional[str], include_tests: bool, helm_bin: Optional[str],
                    kustomize_bin: Optional[str], render_timeout: float):
    from tbyte_policy.sources import RenderOptions

    return RenderOptions(values=tuple(values), set_values=tuple(set_values),
                         set_string_values=tuple(set_string_values), release=release, namespace=chart_namespace,
                         include_tests=include_tests, helm_bin=helm_bin, kustomize_bin=kustomize_bin,
                         timeout=render_timeout)


@app.command()
def scan(
    paths: list[str] = typer.Argument(None, help="Files, directories (recursive), Helm charts (a folder with "
                                                 "Chart.yaml, a .tgz) and kustomizations; - for stdin. "
                                                 "Default: the bundled reference manifests."),
    output_format: Optional[str] = FORMAT,
    output: Optional[Path] = OUTPUT,
    reports: list[str] = REPORTS,
    fail_on: Optional[str] = FAIL_ON,
    namespace: Optional[str] = typer.Option(None, "--namespace", "-n",
                                            help="Namespace for objects without one [default: default]."),
    config_path: Optional[Path] = typer.Option(None, "--config", help="Config file [default: .tbyte-policy.yaml "
                                                                      "found upward from the scanned path]."),
    quiet: bool = QUIET,
    baseline: Optional[Path] = BASELINE,
    write_baseline: Optional[Path] = WRITE_BASELINE,
    schema: bool = typer.Option(True, "--schema/--no-schema", help="Validate objects against the API schemas."),
    kubernetes_version: Optional[str] = typer.Option(None, "--kubernetes-version",
                                                     help="Kubernetes release to validate against and to "
                                                          "render charts for "
                                                          "[default: the newest known]."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Processes that parse files (output is the same "
                                                            "whatever the count)."),
    source: bool = SOURCE,
    values: list[str] = VALUES,
    set_values: list[str] = SET_VALUES,
    set_string_values: list[str] = SET_STRING_VALUES,
    release: str = RELEASE,
    chart_namespace: Optional[str] = CHART_NAMESPACE,
    include_tests: bool = INCLUDE_TESTS,
    helm_bin: Optional[str] = HELM_BIN,
    kustomize_bin: Optional[str] = KUSTOMIZE_BIN,
    render_timeout: float = RENDER_TIMEOUT,
    rule_paths: list[str] = RULES,
) -> None:
    """Audit manifests: files, Helm charts (rendered as helm template renders them) and kustomizations (built)."""
    from tbyte_policy.commands import run_scan

    outputs = _outputs(output_format, output, reports, fail_on, quiet, baseline, write_baseline, source)
    render = _render_options(values, set_values, set_string_values, release, chart_namespace, include_tests,
                             helm_bin, kustomize_bin, render_timeout)
    raise typer.Exit(run_scan(paths or [], outputs, namespace=namespace, config_path=config_path, schema=schema,
                              kubernetes_version=kubernetes_version, jobs=jobs, render_options=render,
                              rule_paths=rule_paths))


CONFIG = typer.Option(None, "--config", help="Config file, for its custom_rules [default: .tbyte-policy.yaml found "
                                             "upward from the current directory].")


def _rules(ctx: typer.Context, rule_paths: list[str], config_path: Optional[Path]):
    """The catalogue with the CEL rules of the config and --rules (given to `rules` or to its subcommand), or
    exit 2."""
    from tbyte_policy.commands import rule_catalogue
    from tbyte_policy.config import ConfigError

    given = ctx.parent.params if ctx.parent is not None and ctx.parent.info_name == "rules" else {}
    try:
        return rule_catalogue([*given.get("rule_paths", []), *rule_paths], config_path or given.get("config_path"))
    except ConfigError as exc:
        raise fail(str(exc)) from None


@rules_app.callback()
def rules_list(ctx: typer.Context, rule_paths: list[str] = RULES, config_path: Optional[Path] = CONFIG) -> None:
    """List every rule with its id, family and severity, and whether `export vap` can enforce it at admission."""
    if ctx.invoked_subcommand is not None:
        return
    from tbyte_policy.ruledocs import list_rules

    typer.echo(list_rules(_rules(ctx, rule_paths, config_path)), nl=False)


@rules_app.command("explain")
def rules_explain(ctx: typer.Context, rule: str = typer.Argument(..., help="Rule id or name."),
                  rule_paths: list[str] = RULES, config_path: Optional[Path] = CONFIG) -> None:
    """Print one rule's documentation."""
    from tbyte_policy.ruledocs import explain_rule

    text = explain_rule(rule, _rules(ctx, rule_paths, config_path))
    if text is None:
        raise fail(f"no rule {rule!r} (see `tbyte-policy rules`)")
    typer.echo(text, nl=False)


@rules_app.command("docs")
def rules_docs(ctx: typer.Context,
               directory: Path = typer.Argument(..., help="Where to write the pages (e.g. docs/rules)."),
               rule_paths: list[str] = RULES, config_path: Optional[Path] = CONFIG) -> None:
    """Write one Markdown page per rule and an index README.md into DIRECTORY."""
    from tbyte_policy.ruledocs import write_rule_docs

    for path in write_rule_docs(directory, _rules(ctx, rule_paths, config_path)):
        typer.echo(str(path))


@rules_app.command("test")
def rules_test(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="Fixture files or folders: manifests whose `# expect: RULE "
                                                 "Kind/name LINE` header lists the findings expected of them."),
    rule_paths: list[str] = RULES,
    config_path: Optional[Path] = CONFIG,
    update: bool = typer.Option(False, "--update", help="Rewrite each fixture's header from what the rules find."),
) -> None:
    """Run the rules on fixture files and compare what they find with each file's `# expect:` header
    (exit 1 on a difference, with the difference)."""
    from tbyte_policy.rule_tests import run_fixture_tests

    rules = _rules(ctx, rule_paths, config_path)
    try:
        report = run_fixture_tests(rules, paths, update=update)
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None
    typer.echo(report.text, nl=False)
    raise typer.Exit(report.exit_code)


@rules_app.command("new")
def rules_new(
    family: str = typer.Argument(..., help="The family (e.g. probes)."),
    name: str = typer.Argument(..., help="The rule's kebab-case name, also its check's."),
    target: str = typer.Option("container", "--target", help="What the check gets: container, pod, object or "
                                                             "namespace."),
    severity: str = typer.Option("medium", "--severity", help="critical, high, medium, low or info."),
    root: Optional[Path] = typer.Option(None, "--root", help="The source checkout [default: the one this "
                                                             "tbyte-policy runs from]."),
) -> None:
    """Start a new built-in rule in a source checkout: its YAML entry, a check stub and two fixtures."""
    from tbyte_policy.scaffold import ScaffoldError, new_rule

    try:
        created = new_rule(family, name, target=target, severity=severity, root=root)
    except ScaffoldError as exc:
        raise fail(str(exc)) from None
    for path in created.written:
        typer.echo(str(path))
    typer.echo(f"""
{created.rule_id} {name} started. Next (DEVELOPING.md, Adding a rule):
  1. replace every TODO in its rules/ entry and write the check;
  2. make fail.yaml break the rule and pass.yaml keep it, then write their headers:
     python scripts/update_expectations.py {created.rule_id}   (and read the diff);
  3. tbyte-policy rules docs docs/rules; ruff check --fix .; the bundled reference manifests must still pass;
  4. python -m pytest""")


@reference_app.command("list")
def reference_list() -> None:
    """List the variants of the reference manifests and their files."""
    from tbyte_policy import reference

    typer.echo(reference.describe(), nl=False)


@reference_app.command("show")
def reference_show(
    variant: Optional[str] = typer.Option(None, "--variant", help="Variant [default: production]."),
) -> None:
    """Print a variant's YAML."""
    from tbyte_policy import reference

    try:
        typer.echo(reference.show(variant), nl=False)
    except reference.UnknownVariant as exc:
        raise fail(str(exc)) from None


@reference_app.command("export")
def reference_export(
    directory: Path = typer.Argument(..., help="Where to write the files."),
    variant: Optional[str] = typer.Option(None, "--variant", help="Variant [default: production]."),
    namespace: Optional[str] = typer.Option(None, "--namespace", "-n", help="Namespace [default: tbyte]."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
) -> None:
    """Write a variant's files into DIRECTORY."""
    from tbyte_policy import reference

    try:
        written = reference.export(directory, variant, namespace, force=force)
    except (reference.UnknownVariant, reference.WouldOverwrite) as exc:
        raise fail(str(exc)) from None
    for path in written:
        typer.echo(str(path))


@reference_app.command("check")
def reference_check(
    directory: Path = typer.Argument(..., help="Where the exported files are."),
    variant: Optional[str] = typer.Option(None, "--variant", help="Variant [default: production]."),
    namespace: Optional[str] = typer.Option(None, "--namespace", "-n", help="Namespace [default: tbyte]."),
) -> None:
    """Fail (exit 1) when files `reference export` wrote into DIRECTORY differ from the bundled ones."""
    from tbyte_policy import reference

    try:
        drifted = reference.drift(directory, variant, namespace)
    except reference.UnknownVariant as exc:
        raise fail(str(exc)) from None
    if drifted:
        typer.echo("".join(drifted), nl=False)
        options = (f" --variant {variant}" if variant else "") + (f" --namespace {namespace}" if namespace else "")
        raise fail(f"{len(drifted)} reference file(s) in {directory} differ from the bundled ones; re-export with "
                   f"`tbyte-policy reference export {directory}{options} --force`", EXIT_FINDINGS)
    typer.echo(f"{directory}: up to date with the bundled reference manifests")


live_app = typer.Typer(add_completion=False, invoke_without_command=True,
                       help="Audit a live namespace through the Kubernetes API (reads only, but for --publish; needs "
                            "the `live` extra).")
app.add_typer(live_app, name="live")


@live_app.callback()
def live(
    ctx: typer.Context,
    namespace: Optional[str] = typer.Option(None, "--namespace", "-n",
                                            help="Namespace to audit [default: the context's, else default]."),
    all_namespaces: bool = typer.Option(False, "--all-namespaces", "-A", help="Audit every namespace."),
    kubeconfig: Optional[str] = typer.Option(None, "--kubeconfig", help="Kubeconfig file(s) [default: $KUBECONFIG, "
                                                                        "~/.kube/config, or the in-cluster account]."),
    context: Optional[str] = typer.Option(None, "--context", help="Kubeconfig context [default: the current one]."),
    timeout: float = typer.Option(10.0, "--timeout", help="Seconds each API request may take, its answer included."),
    deadline: float = typer.Option(600.0, "--deadline", min=0,
                                   help="Seconds all the audit's API requests may take together (0: no limit)."),
    publish: bool = typer.Option(False, "--publish", help="Also create or update the namespace's PolicyReport "
                                                          "tbyte-policy (server-side apply; the one write)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log each API request to stderr."),
    chunk_size: int = typer.Option(0, "--chunk-size", min=0,
                                   help="Read each list in chunks of this many objects, like kubectl's --chunk-size "
                                        "[default: 0, each kind in one request]."),
    against: list[str] = typer.Option([], "--against", help="Rendered manifests to compare the namespace with, as "
                                                            "`scan` takes them (files, directories, charts, "
                                                            "kustomizations, - for stdin; repeatable): adds the "
                                                            "drift rules."),
    output_format: Optional[str] = FORMAT,
    output: Optional[Path] = OUTPUT,
    reports: list[str] = REPORTS,
    fail_on: Optional[str] = FAIL_ON,
    config_path: Optional[Path] = typer.Option(None, "--config", help="Config file [default: .tbyte-policy.yaml "
                                                                      "found upward from the first --against path, "
                                                                      "else the current directory]."),
    quiet: bool = QUIET,
    baseline: Optional[Path] = BASELINE,
    write_baseline: Optional[Path] = WRITE_BASELINE,
    source: bool = SOURCE,
    values: list[str] = VALUES,
    set_values: list[str] = SET_VALUES,
    set_string_values: list[str] = SET_STRING_VALUES,
    release: str = RELEASE,
    chart_namespace: Optional[str] = CHART_NAMESPACE,
    include_tests: bool = INCLUDE_TESTS,
    helm_bin: Optional[str] = HELM_BIN,
    kustomize_bin: Optional[str] = KUSTOMIZE_BIN,
    render_timeout: float = RENDER_TIMEOUT,
    rule_paths: list[str] = RULES,
) -> None:
    """Audit the objects of a running namespace: the manifest rules plus the runtime family (pods, rollouts,
    Services, HPAs, PDBs, ExternalSecrets); with --against, the drift family too (missing, changed, not rolled
    out, unmanaged objects). Reads only (get, list), but for --publish; `live rbac` prints the role it needs."""
    if ctx.invoked_subcommand is not None:
        return
    from tbyte_policy.live.command import run_live

    outputs = _outputs(output_format, output, reports, fail_on, quiet, baseline, write_baseline, source)
    render = _render_options(values, set_values, set_string_values, release, chart_namespace, include_tests,
                             helm_bin, kustomize_bin, render_timeout)
    raise typer.Exit(run_live(outputs, namespace=namespace, all_namespaces=all_namespaces, kubeconfig=kubeconfig,
                              context=context, timeout=timeout, verbose=verbose, config_path=config_path,
                              chunk_size=chunk_size, deadline=deadline or None, publish=publish, against=against,
                              render_options=render, rule_paths=rule_paths))


@live_app.command("rbac")
def live_rbac(
    namespace: Optional[str] = typer.Option(None, "--namespace", "-n", help="Namespace the audit reads "
                                                                             "[default: every namespace]."),
    service_account: str = typer.Option("tbyte-policy-audit", "--service-account", help="ServiceAccount to bind."),
    service_account_namespace: Optional[str] = typer.Option(None, "--service-account-namespace",
                                                            help="Its namespace [default: --namespace, else default]."),
    publish: bool = typer.Option(False, "--publish", help="Also what `live --publish` needs: get, create and patch "
                                                          "of its PolicyReport in --namespace."),
) -> None:
    """Print the least-privilege RBAC the live audit needs (get and list; with --publish, the writing of its
    PolicyReport too)."""
    from tbyte_policy.live.rbac import rbac_manifest

    try:
        manifest = rbac_manifest(namespace=namespace, service_account=service_account,
                                 service_account_namespace=service_account_namespace, publish=publish)
    except ValueError as exc:
        raise fail(str(exc)) from None
    typer.echo(manifest, nl=False)


export_app = typer.Typer(add_completion=False, no_args_is_help=True,
                         help="Carry rules to the cluster's own admission control.")
app.add_typer(export_app, name="export")


@export_app.command("vap")
def export_vap(
    rule_paths: list[str] = RULES,
    config_path: Optional[Path] = typer.Option(None, "--config", help="Config file: its custom_rules, preset, "
                                                                      "enabled rules and params [default: "
                                                                      ".tbyte-policy.yaml found upward from the "
                                                                      "current directory]."),
    actions: list[str] = typer.Option(["Deny"], "--action", help="validationActions of the bindings: Deny, Warn or "
                                                                  "Audit (repeatable: Deny or Warn, plus Audit)."),
    builtin: bool = typer.Option(False, "--builtin", help="Also the built-in rules that have a CEL twin."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the manifests here instead of stdout."),
) -> None:
    """Write a ValidatingAdmissionPolicy and its binding (admissionregistration.k8s.io/v1) per CEL rule."""
    from tbyte_policy.commands import run_export_vap

    raise typer.Exit(run_export_vap(rule_paths, config_path, actions=actions, builtin=builtin, output=output))


def main() -> None:
    try:
        app(standalone_mode=True)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # the exit-code contract holds even for our own bugs
        if os.environ.get("TBYTE_POLICY_DEBUG"):
            raise
        # Only the type: an exception's text could quote input, and input may hold secret values.
        typer.echo(f"tbyte-policy: internal error ({type(exc).__name__}); set TBYTE_POLICY_DEBUG=1 for a traceback",
                   err=True)
        sys.exit(EXIT_INTERNAL)
    finally:
        # The process ends now. The interpreter's last garbage collection would walk every object the run
        # left behind (catalogue, schemas, manifests) just before the OS takes the memory back anyway: about
        # a tenth of a one-file scan. That collection skips frozen objects.
        gc.freeze()
