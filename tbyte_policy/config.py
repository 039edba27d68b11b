"""Configuration (``.tbyte-policy.yaml``) and suppressions: exemptions and per-object annotations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import yaml

from tbyte_policy.catalogue import Rule, find_rule
from tbyte_policy.findings import SEVERITIES, Finding, ReportError
from tbyte_policy.marked import MarkedDict, MarkedList, MarkingLoader
from tbyte_policy.model import Resource, escape_pointer_part

CONFIG_NAME = ".tbyte-policy.yaml"
IGNORE_ANNOTATION_PREFIX = "tbyte-policy.io/ignore."
PRESETS = ("default", "strict")
_TOP_KEYS = {"preset", "fail_on", "namespace", "exclude", "max_file_size", "rules", "exemptions", "custom_rules"}
_RULE_KEYS = {"enabled", "severity", "params"}
_EXEMPTION_KEYS = {"rule", "kind", "namespace", "name", "reason", "expires"}


class ConfigError(Exception):
    pass


class Exemption(NamedTuple):
    rule: str  # a rule id or name, or a glob over them
    kind: str
    namespace: str
    name: str
    reason: str
    expires: dt.date | None
    line: int | None

    def covers(self, finding: Finding) -> bool:
        return ((fnmatchcase(finding.rule_id, self.rule) or fnmatchcase(finding.rule_name, self.rule))
                and fnmatchcase(finding.resource.kind, self.kind)
                and fnmatchcase(finding.resource.namespace or "", self.namespace)
                and fnmatchcase(finding.resource.name, self.name))


class Config(NamedTuple):
    path: str | None = None
    preset: str = "default"
    fail_on: str | None = None
    namespace: str | None = None
    exclude: Sequence[str] = ()
    max_file_size: int | None = None
    rules: Mapping[str, Mapping[str, Any]] = MappingProxyType({})  # rule id or name -> settings (and `_line`)
    exemptions: Sequence[Exemption] = ()
    custom_rules: Sequence[str] = ()  # rule files and folders (cel_rules), relative to the config file's folder


def find_config(start: Path) -> Path | None:
    directory = start if start.is_dir() else start.parent
    for candidate in (directory.resolve(), *directory.resolve().parents):
        if (candidate / CONFIG_NAME).is_file():
            return candidate / CONFIG_NAME
    return None


def load_config(path: Path) -> Config:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=MarkingLoader)  # type: ignore[arg-type]
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"{path}:{mark.line + 1 if mark else '?'}: invalid YAML in config") from None
    return parse_config(data if data is not None else {}, str(path))


def parse_config(data: Any, path: str) -> Config:
    def fail(message: str, node: Any = None, key: Any = None) -> ConfigError:
        position = node.key_position(key) if isinstance(node, MarkedDict) and key is not None else None
        return ConfigError(f"{path}:{position[0]}: {message}" if position else f"{path}: {message}")

    if not isinstance(data, dict):
        raise fail("the config must be a mapping")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise fail(f"unknown option {unknown[0]!r} (known: {', '.join(sorted(_TOP_KEYS))})", data, unknown[0])
    settings: dict[str, Any] = {"path": path, "preset": data.get("preset", "default")}
    if settings["preset"] not in PRESETS:
        raise fail(f"preset must be one of {', '.join(PRESETS)}", data, "preset")
    if "fail_on" in data:
        if data["fail_on"] not in SEVERITIES:
            raise fail(f"fail_on must be one of {', '.join(SEVERITIES)}", data, "fail_on")
        settings["fail_on"] = data["fail_on"]
    for key, expected in (("namespace", str), ("max_file_size", int)):
        if key in data:
            if not isinstance(data[key], expected):
                raise fail(f"{key} must be a {expected.__name__}", data, key)
            settings[key] = data[key]
    exclude = data.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(item, str) for item in exclude):
        raise fail("exclude must be a list of path patterns", data, "exclude")
    settings["exclude"] = exclude
    rules = data.get("rules", {}) or {}
    if not isinstance(rules, dict):
        raise fail("rules must be a mapping of rule id or name to settings", data, "rules")
    settings["rules"] = {}
    for key, rule_settings in rules.items():
        if not isinstance(rule_settings, dict) or set(rule_settings) - _RULE_KEYS:
            raise fail(f"rules.{key}: settings may only be {', '.join(sorted(_RULE_KEYS))}", rules, key)
        position = rules.key_position(key) if isinstance(rules, MarkedDict) else None
        line = position[0] if position else None
        settings["rules"][str(key)] = {**rule_settings, "_line": line}
    custom = data.get("custom_rules", []) or []
    if not isinstance(custom, list) or not all(isinstance(item, str) and item for item in custom):
        raise fail("custom_rules must be a list of rule files or folders", data, "custom_rules")
    base = Path(path).parent
    settings["custom_rules"] = []
    for index, item in enumerate(custom):
        resolved = base / item
        if not resolved.exists():
            position = custom.item_position(index) if isinstance(custom, MarkedList) else None
            line = position[0] if position else None
            raise ConfigError(f"{path}:{line}: custom_rules: no such rule file or folder {item!r}"
                              if line else f"{path}: custom_rules: no such rule file or folder {item!r}")
        settings["custom_rules"].append(str(resolved))
    exemptions = data.get("exemptions", []) or []
    if not isinstance(exemptions, list):
        raise fail("exemptions must be a list", data, "exemptions")
    settings["exemptions"] = []
    for index, entry in enumerate(exemptions):
        line = exemptions.item_position(index)[0] if hasattr(exemptions, "item_position") else None
        where = f"{path}:{line}" if line else path
        if not isinstance(entry, dict) or set(entry) - _EXEMPTION_KEYS or "rule" not in entry:
            raise ConfigError(f"{where}: an exemption has `rule`, `reason` and optionally kind, namespace, name, "
                              "expires")
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError(f"{where}: exemption for {entry['rule']} needs a non-empty reason")
        expires = entry.get("expires")
        if expires is not None:
            try:
                expires = dt.date.fromisoformat(str(expires))
            except ValueError:
                raise ConfigError(f"{where}: expires must be a date (YYYY-MM-DD)") from None
        settings["exemptions"].append(Exemption(str(entry["rule"]), str(entry.get("kind", "*")),
                                                str(entry.get("namespace", "*")), str(entry.get("name", "*")),
                                                reason.strip(), expires, line))
    return Config(**settings)


def configure_rules(rules: list[Rule], config: Config) -> list[Rule]:
    """The catalogue with the config's preset, enablement, severities and params applied."""
    configured = {rule.id: rule for rule in rules}
    for key, settings in config.rules.items():
        where = f"{config.path}:{settings.get('_line')}" if settings.get("_line") else str(config.path)
        rule = find_rule(rules, key)
        if rule is None:
            raise ConfigError(f"{where}: unknown rule {key!r} (see `tbyte-policy rules`)")
        changes: dict[str, Any] = {}
        if "enabled" in settings:
            if not isinstance(settings["enabled"], bool):
                raise ConfigError(f"{where}: rules.{key}.enabled must be true or false")
            changes["enabled"] = settings["enabled"]
        if "severity" in settings:
            if settings["severity"] not in SEVERITIES:
                raise ConfigError(f"{where}: rules.{key}.severity must be one of {', '.join(SEVERITIES)}")
            changes["severity"] = settings["severity"]
        if "params" in settings:
            params = settings["params"]
            if not isinstance(params, dict):
                raise ConfigError(f"{where}: rules.{key}.params must be a mapping")
            unknown = sorted(set(params) - set(rule.params))
            if unknown:
                raise ConfigError(f"{where}: rule {rule.name} has no param {unknown[0]!r} "
                                  f"(params: {', '.join(sorted(rule.params)) or 'none'})")
            for name, value in params.items():
                default = rule.params[name]
                if default is not None and not isinstance(value, type(default)):
                    raise ConfigError(f"{where}: rules.{key}.params.{name} must be a {type(default).__name__}")
            changes["params"] = {**rule.params, **params}
        configured[rule.id] = rule.with_overrides(**changes)
    active = []
    for rule in configured.values():
        explicitly = config.rules.get(rule.id, config.rules.get(rule.name, {}))
        enabled = rule.enabled or (config.preset in rule.presets and "enabled" not in explicitly)
        if enabled:
            active.append(rule if rule.enabled else rule.with_overrides(enabled=True))
    return sorted(active, key=lambda rule: rule.id)


def apply_suppressions(findings: list[Finding], resources: Iterable[Resource], config: Config, rules: list[Rule],
                       today: dt.date) -> tuple[list[Finding], list[ReportError], list[ReportError]]:
    """The findings with those the exemptions and the ignore annotations of ``resources`` cover suppressed;
    and the errors and warnings met in them."""
    errors: list[ReportError] = []
    warnings: list[ReportError] = []
    ignores: dict[tuple[str, str | None, str], dict[str, str]] = {}
    names = {rule.name for rule in rules}
    for resource in resources:
        for key, value in resource.annotations.items():
            if not key.startswith(IGNORE_ANNOTATION_PREFIX):
                continue
            rule_name = key[len(IGNORE_ANNOTATION_PREFIX):]
            line, _ = resource.position(f"/metadata/annotations/{escape_pointer_part(key)}")
            if rule_name not in names:
                errors.append(ReportError(resource.source.path, line,
                                          f"{resource.ref}: annotation {key} names no known rule"))
            elif not value.strip():
                errors.append(ReportError(resource.source.path, line,
                                          f"{resource.ref}: annotation {key} needs a reason as its value"))
            else:
                ignores.setdefault((resource.kind, resource.namespace, resource.name), {})[rule_name] = value.strip()
    active = [exemption for exemption in config.exemptions if exemption.expires is None or exemption.expires >= today]
    for exemption in config.exemptions:
        if exemption not in active:
            warnings.append(ReportError(config.path, exemption.line,
                                        f"exemption for {exemption.rule} expired on {exemption.expires}; "
                                        f"its findings are reported again"))
    suppressed = []
    for finding in findings:
        reason = ignores.get((finding.resource.kind, finding.resource.namespace, finding.resource.name), {}) \
            .get(finding.rule_name)
        if reason is None:
            reason = next((exemption.reason for exemption in active if exemption.covers(finding)), None)
        suppressed.append(finding if reason is None else finding.suppressed_because(reason))
    return suppressed, errors, warnings
