"""The HTML report: one self-contained file whose data is the JSON report, checked as a file and in a
real browser (Debian's headless chromium, driven through the DevTools protocol by tests/browser.py).

The browser tests skip only when /usr/bin/chromium is absent; .ci/run installs it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from pathlib import Path

import pytest
from browser import Browser, chromium_missing

from tbyte_policy.catalogue import load_catalogue
from tbyte_policy.findings import Finding, Location, Report, ReportError, ResourceId
from tbyte_policy.model import ObjectRef
from tbyte_policy.reporters import render
from tbyte_policy.reporters.html_report import ASSETS
from tbyte_policy.reporters.json_report import as_document as json_document

SCRIPT_ATTACK = '</script><script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"><!-- ]]>'
OUTSIDE_URL = "https://cdn.example.invalid/evil.js"
CATALOGUE = {rule.id: rule for rule in load_catalogue()}


def finding(rule_id: str, kind: str, namespace: str | None, name: str, path: str | None, line: int | None,
            message: str, **changes) -> Finding:
    rule = CATALOGUE[rule_id]
    api_version = {"Namespace": "v1", "Secret": "v1", "CronJob": "batch/v1"}.get(kind, "apps/v1")
    return Finding(rule.id, rule.name, rule.family, rule.severity, message,
                   ResourceId(api_version, kind, name, namespace), changes.pop("container", None),
                   Location(path, line, 3 if line else None, changes.pop("pointer", "/spec")),
                   remediation=rule.remediation, **changes)


# Index: rule, object, severity (the rule's), family. Each filter below has a known answer in this list.
FINDINGS = [
    finding("PRB001", "Deployment", "shop", "api", "deploy/api.yaml", 20, "container api has no readinessProbe",
            container="api", related=[ObjectRef("Service", "api", "shop", "deploy/api.yaml", 40)]),   # 0 high
    finding("PRB002", "Deployment", "shop", "api", "deploy/api.yaml", 20, "container api has no livenessProbe",
            container="api"),                                                                         # 1 medium
    finding("RES003", "Deployment", "shop", "api", "deploy/api.yaml", 31, "container api sets no memory limit "
            "(quux)", container="api"),                                                               # 2 high
    finding("SEC001", "StatefulSet", "shop", "db", "deploy/db.yaml", 15, "container db may run as root",
            container="db"),                                                                          # 3 high
    finding("PDB002", "StatefulSet", "shop", "db", "deploy/db.yaml", 1, "StatefulSet/db runs a single replica"),
    finding("NET001", "Namespace", None, "monitoring", "deploy/ns.yaml", 1,
            "namespace monitoring has no default-deny NetworkPolicy for ingress"),                    # 5 medium
    finding("HPA001", "Deployment", "monitoring", "grafana", "deploy/grafana.yaml", 8,
            "no HorizontalPodAutoscaler targets Deployment/grafana (quux)"),                          # 6 medium
    finding("PRB001", "Deployment", "monitoring", "grafana", "deploy/grafana.yaml", 12,
            "container grafana has no readinessProbe", container="grafana", suppressed=True,
            suppression_reason="vendor image without a health endpoint (OPS-123)"),            # 7 high, suppressed
    finding("SCR001", "Secret", "monitoring", "creds", "deploy/secret.yaml", 5,
            "Secret creds carries its values in the manifest (data: password)"),                      # 8 high
    finding("IMG004", "CronJob", "shop", "report", "deploy/cron.yaml", 14,
            "image busybox:1.36 of container report is not pinned by digest", container="report"),   # 9 info
    finding("SEC004", "Deployment", "shop", "evil", "deploy/evil.yaml", 9, f"container evil {SCRIPT_ATTACK} "
            f"loads {OUTSIDE_URL}", container="evil"),                                                # 10 critical
    finding("RES003", "Deployment", "monitoring", "grafana", "deploy/grafana.yaml", 12,
            "container grafana sets no memory limit", container="grafana", suppressed=True,
            suppression_reason="in baseline .tbyte-policy-baseline.json"),                     # 11 high, suppressed
]


def scan_report() -> Report:
    return Report(tool_version="0.0.0-test", rules=list(CATALOGUE.values()), findings=list(FINDINGS),
                  errors=[ReportError("deploy/broken.yaml", 4, "invalid YAML: mapping values are not allowed here")],
                  warnings=[ReportError(".tbyte-policy.yaml", 7, "exemption for readiness-probe-missing expired")],
                  files=7, resources=9, skipped_documents=1)


def live_report() -> Report:
    live = [finding("RUN002", "Deployment", "tbyte", "backend", None, None,
                    "pod backend-7d9c-x2x4 of Deployment/backend is crash-looping", container="backend",
                    pointer="/spec/template/spec/containers/0"),
            finding("PRB002", "Deployment", "tbyte", "backend", None, None, "container backend has no livenessProbe",
                    container="backend", pointer="/spec/template/spec/containers/0")]
    return Report(tool_version="0.0.0-test", rules=list(CATALOGUE.values()), findings=live, resources=31,
                  mode="live", unreadable_kinds={"Secret": "forbidden: secrets is forbidden"})


def embedded(page: str) -> dict:
    (data,) = re.findall(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S)
    return json.loads(data)


def without_data(page: str) -> str:
    return re.sub(r'(<script type="application/json" id="report-data">).*?(</script>)', r"\1\2", page, flags=re.S)


# --- the file

def test_the_data_is_the_json_report_embedded_once_plus_the_docs_of_the_rules_found():
    report = scan_report()
    page = render("html", report)
    data = embedded(page)
    rules = data.pop("rules")
    assert data == json_document(report)
    assert set(rules) == {item.rule_id for item in FINDINGS}
    for rule_id, entry in rules.items():
        rule = CATALOGUE[rule_id]
        assert (entry["name"], entry["title"], entry["family"], entry["severity"]) == (
            rule.name, rule.title, rule.family, rule.severity)
        assert entry["docs"] == {section: rule.docs[section].strip() for section in ("what", "why", "example", "fix")}
    assert page.count('type="application/json"') == 1
    # Once: the page repeats no report text outside the data (the script draws it all).
    assert page.count("vendor image without a health endpoint") == 1
    assert page.count("deploy/broken.yaml") == 1


def test_report_text_cannot_close_the_data_element_or_open_markup():
    page = render("html", scan_report())
    assert page.count("</script>") == 2 and page.count("<script") == 2  # the data and the page's script
    assert "<!--" not in page and "]]>" not in page and "<img" not in page
    assert "\\u003c/script\\u003e" in page
    messages = [item["message"] for item in embedded(page)["findings"]]
    assert messages[10] == f"container evil {SCRIPT_ATTACK} loads {OUTSIDE_URL}"


def test_the_page_references_nothing_outside_itself():
    page = render("html", scan_report())
    code = without_data(page)
    assert not re.search(r"https?:|//[a-z0-9.-]+\.[a-z]{2,}|@import|@font-face|url\(", code, re.I), \
        "the page's own code must not name an outside address"
    # The markup's one src or href is the data: icon; the data holds no markup at all (no "<").
    assert re.findall(r"""\b(?:src|href|action|srcset)\s*=\s*["']?([^"'\s>]*)""", code, re.I) == ["data:,"]
    (data,) = re.findall(r'id="report-data">(.*?)</script>', page, re.S)
    assert "<" not in data and OUTSIDE_URL in data
    assert re.findall(r"<script\b[^>]*>", page) == ['<script type="application/json" id="report-data">', "<script>"]
    assert "<link" not in page.replace('<link rel="icon" href="data:,">', "")


def test_the_content_security_policy_allows_only_the_inline_style_and_script():
    page = render("html", scan_report())
    (policy,) = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    (style,) = re.findall(r"<style>(.*?)</style>", page, re.S)
    (script,) = re.findall(r"<script>(.*?)</script>", page, re.S)

    def digest(text: str) -> str:
        return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    assert policy.startswith("default-src 'none';")
    assert f"style-src '{digest(style)}'" in policy and f"script-src '{digest(script)}'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_the_page_code_stays_under_100_kb():
    code = sum(len(path.read_bytes()) for path in ASSETS.iterdir())
    assert code < 100_000, f"the HTML report's code is {code} bytes"
    assert len(without_data(render("html", scan_report())).encode()) < 100_000


def test_no_framework_and_the_page_is_valid_utf8_html5():
    page = render("html", live_report())
    assert page.startswith("<!doctype html>\n") and '<meta charset="utf-8">' in page
    assert "<title>tbyte-policy live: 2 findings</title>" in page
    script = (ASSETS / "report.js").read_text()
    assert not re.search(r"\b(import|require)\s*\(|innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(",
                         script), "report text must go into the page as text only"


# --- in the browser

@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    reason = chromium_missing()
    if reason and os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser tests")
    if reason:
        pytest.skip(reason)
    session = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield session
    session.close()


def write(report: Report, directory: Path) -> str:
    path = directory / "report.html"
    path.write_text(render("html", report), encoding="utf-8")
    return path.as_uri()


VISIBLE_ROWS = """[...document.querySelectorAll("tbody.finding")].filter((node) => node.getClientRects().length > 0)
                  .map((node) => Number(node.dataset.index)).sort((a, b) => a - b)"""
VISIBLE_GROUPS = """[...document.querySelectorAll("section.resource")]
                    .filter((node) => node.getClientRects().length > 0).map((node) => node.dataset.resource).sort()"""


def where(predicate) -> list[int]:
    return [index for index, item in enumerate(FINDINGS) if predicate(item)]


def test_filters_and_search_hide_and_show_exactly_the_matching_rows(browser, tmp_path):
    browser.open(write(scan_report(), tmp_path))
    rows = lambda: browser.evaluate(VISIBLE_ROWS)  # noqa: E731
    everything = list(range(len(FINDINGS)))
    assert rows() == everything
    assert browser.evaluate("document.getElementById('shown').textContent") == "10 findings"

    # A severity card is a real button: a mouse click on it filters, a second click lets go.
    browser.click('.card[data-severity="medium"]')
    assert rows() == where(lambda item: item.severity == "medium") == [1, 5, 6]
    assert browser.evaluate("document.getElementById('shown').textContent") == "3 of 10 findings shown"
    browser.click('.card[data-severity="medium"]')
    assert rows() == everything

    chips = """[...document.querySelectorAll('section.resource[data-resource="Deployment/shop/api"] .chips .sev')]
               .map((chip) => chip.textContent)"""
    assert browser.evaluate(chips) == ["2 high", "1 medium"]
    browser.choose("#filter-severity", "high")
    assert rows() == where(lambda item: item.severity == "high") == [0, 2, 3, 7, 8, 11]  # suppressed ones too
    assert browser.evaluate(chips) == ["2 high"]  # a resource's tally counts what is shown
    browser.choose("#filter-severity", "")

    browser.choose("#filter-family", "probes")
    assert rows() == where(lambda item: item.family == "probes") == [0, 1, 7]
    browser.click('#families tr[data-family="resources"]')  # the family table filters too
    assert rows() == [2, 11]
    assert browser.evaluate("document.getElementById('filter-family').value") == "resources"
    browser.choose("#filter-family", "")

    browser.choose("#filter-namespace", "monitoring")
    assert rows() == where(lambda item: item.resource.namespace == "monitoring") == [6, 7, 8, 11]
    browser.choose("#filter-namespace", "(cluster-scoped)")
    assert rows() == [5]
    assert browser.evaluate(VISIBLE_GROUPS) == ["Namespace/monitoring"]
    browser.choose("#filter-namespace", "")

    browser.choose("#filter-kind", "StatefulSet")
    assert rows() == [3, 4]
    assert browser.evaluate(VISIBLE_GROUPS) == ["StatefulSet/shop/db"]
    browser.choose("#filter-kind", "")

    # Typed text: every word must match, case aside, in the rule, message, object, file or related objects.
    browser.type("#search", "QUUX")
    assert rows() == [2, 6]
    browser.type("#search", "quux grafana")
    assert rows() == [6]
    browser.type("#search", "readiness-probe-missing")
    assert rows() == [0, 7]
    browser.type("#search", "OPS-123")  # a suppression's reason
    assert rows() == [7]
    browser.type("#search", "Service/shop/api")  # a related object
    assert rows() == [0]
    browser.type("#search", "deploy/db.yaml")
    assert rows() == [3, 4]
    browser.type("#search", "no such text")
    assert rows() == []
    assert browser.evaluate("document.getElementById('empty').hidden") is False
    assert browser.evaluate(VISIBLE_GROUPS) == []

    # Filters combine, the view lives in the URL's fragment (a reload keeps it), and Clear lets go of all.
    browser.type("#search", "container")
    browser.choose("#filter-severity", "high")
    browser.choose("#filter-namespace", "shop")
    assert rows() == [0, 2, 3]
    assert browser.evaluate("location.hash") == "#severity=high&namespace=shop&q=container"
    browser.reload()
    assert rows() == [0, 2, 3]
    assert browser.evaluate("document.getElementById('search').value") == "container"
    browser.click("#clear")
    assert rows() == everything
    assert browser.evaluate("location.hash") == ""
    assert browser.page_errors() == []


def test_a_row_opens_to_its_rule_docs_and_location_and_the_page_loads_nothing(browser, tmp_path):
    browser.events.clear()
    browser.open(write(scan_report(), tmp_path))
    browser.click('tbody.finding[data-index="0"] tr.row')
    details = browser.evaluate("document.querySelector('tbody.finding[data-index=\"0\"] tr.details').innerText")
    rule = CATALOGUE["PRB001"]
    for text in (rule.title, rule.docs["what"].strip(), " ".join(rule.docs["why"].split()), rule.docs["fix"].strip(),
                 "deploy/api.yaml:20:3", "/spec", "Service/shop/api", "deploy/api.yaml:40", "container"):
        assert text in details, text
    assert browser.evaluate("document.querySelector('tbody.finding[data-index=\"0\"] tr.row')"
                            ".getAttribute('aria-expanded')") == "true"
    # Totals, the input errors and the suppressed findings with their reasons are on the page.
    text = browser.evaluate("document.body.innerText")
    assert "invalid YAML: mapping values are not allowed here" in text and "deploy/broken.yaml:4" in text
    assert "exemption for readiness-probe-missing expired" in text
    assert "vendor image without a health endpoint (OPS-123)" in text
    assert browser.evaluate("[...document.querySelectorAll('.card[data-severity] .n')].map((n) => n.textContent)") == [
        "1", "4", "3", "1", "1"]  # critical, high, medium, low, info: active findings only
    screenshot = browser.screenshot(tmp_path / "report.png")
    assert screenshot.stat().st_size > 10_000
    assert browser.page_errors() == []  # a style or script the policy refused would show here
    assert {url.split(":", 1)[0] for url in browser.requested_urls()} <= {"file", "data"}


def test_report_text_never_runs_as_script(browser, tmp_path):
    browser.events.clear()
    browser.open(write(scan_report(), tmp_path))
    assert browser.evaluate("window.pwned") is None
    assert browser.evaluate("document.querySelectorAll('img').length") == 0
    message = browser.evaluate("document.querySelector('tbody.finding[data-index=\"10\"] tr.row').innerText")
    assert SCRIPT_ATTACK in message and OUTSIDE_URL in message
    assert browser.requested_urls() == [browser.evaluate("location.href").split("#")[0]]


def test_a_live_report_locates_objects_and_lists_unreadable_kinds(browser, tmp_path):
    browser.open(write(live_report(), tmp_path))
    text = browser.evaluate("document.body.innerText")
    assert "could not read Secret: forbidden: secrets is forbidden" in text
    assert "31 resources read from the cluster" in text
    assert browser.evaluate("document.getElementById('mode').textContent") == "live"
    assert browser.evaluate(VISIBLE_GROUPS) == ["Deployment/tbyte/backend"]
    cells = browser.evaluate("[...document.querySelectorAll('td.loc')].map((cell) => cell.textContent)")
    assert cells == ["/spec/template/spec/containers/0", "/spec/template/spec/containers/0"]
    browser.screenshot(tmp_path / "live.png")
    assert browser.page_errors() == []
