"use strict";
// Draws the report from its embedded JSON document. Every piece of report text goes into the page as
// text (textContent, text nodes), never as markup.
(() => {
  const SEVERITIES = ["critical", "high", "medium", "low", "info"];
  const RANK = { critical: 4, high: 3, medium: 2, low: 1, info: 0 };
  const CLUSTER = "(cluster-scoped)";
  const FIELDS = ["severity", "family", "namespace", "kind"];
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const rules = data.rules || {};
  const byId = (id) => document.getElementById(id);

  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child !== null && child !== undefined && child !== false) node.append(child);
    }
    return node;
  }

  const plural = (count, word) => `${count} ${word}${count === 1 ? "" : "s"}`;
  const ref = (kind, namespace, name) => (namespace ? `${kind}/${namespace}/${name}` : `${kind}/${name}`);
  const resourceRef = (finding) => ref(finding.resource.kind, finding.resource.namespace, finding.resource.name);
  const namespaceOf = (finding) => finding.resource.namespace || CLUSTER;

  function position(path, line, column) {
    if (!path) return "";
    return [path, line, line && column].filter(Boolean).join(":");
  }

  function where(finding) {
    const location = finding.location;
    return location.path ? position(location.path, location.line, location.column) : resourceRef(finding);
  }

  function lineCell(finding) {  // the file is in the group's header; a live object has only its field
    const location = finding.location;
    if (!location.path) return h("td", { class: "loc", title: location.pointer }, h("code", { text: location.pointer || "/" }));
    const at = location.line ? [`line ${location.line}`, location.column ? `col ${location.column}` : ""].filter(Boolean).join(", ") : "";
    return h("td", { class: "loc", title: where(finding) }, at || location.path);
  }

  // Rule docs are plain text with `code` spans; indented lines are YAML to show as is.
  function inline(text) {
    return text.split(/(`[^`]+`)/).filter(Boolean).map(
      (part) => (part.length > 2 && part.startsWith("`") && part.endsWith("`") ? h("code", { text: part.slice(1, -1) }) : part));
  }

  function prose(text) {
    const blocks = [];
    let paragraph = [];
    let code = [];
    const flushParagraph = () => {
      if (paragraph.length) blocks.push(h("p", null, inline(paragraph.join(" "))));
      paragraph = [];
    };
    const flushCode = () => {
      const indent = Math.min(...code.map((line) => line.match(/^\s*/)[0].length));
      if (code.length) blocks.push(h("pre", null, h("code", { text: code.map((line) => line.slice(indent)).join("\n") })));
      code = [];
    };
    for (const line of (text || "").trim().split("\n")) {
      if (!line.trim()) {
        flushParagraph();
        flushCode();
      } else if (/^\s{2,}\S/.test(line) && (paragraph.length || code.length || blocks.length)) {
        flushParagraph();
        code.push(line);
      } else {
        flushCode();
        paragraph.push(line.trim());
      }
    }
    flushParagraph();
    flushCode();
    return blocks;
  }

  function severityBadge(severity) {
    return h("span", { class: `sev sev-${severity}`, text: severity });
  }

  // ---- header, totals and problems

  const summary = data.summary;
  const active = data.findings.filter((finding) => !finding.suppressed);
  const suppressed = data.findings.filter((finding) => finding.suppressed);
  const problems = [
    ...data.errors.map((entry) => ["error", position(entry.path, entry.line), entry.message]),
    ...Object.entries(data.unreadable_kinds || {}).map(([kind, reason]) => ["error", "", `could not read ${kind}: ${reason}`]),
    ...data.warnings.map((entry) => ["warning", position(entry.path, entry.line), entry.message]),
  ];
  const errorCount = problems.filter((problem) => problem[0] === "error").length;

  byId("mode").textContent = data.mode === "live" ? "live" : "scan";
  const scope = data.mode === "live" ? `${plural(summary.resources, "resource")} read from the cluster`
    : `${plural(summary.resources, "resource")} in ${plural(summary.files, "file")}`;
  byId("meta").textContent = [scope, summary.skipped_documents ? `${summary.skipped_documents} non-Kubernetes documents skipped` : "",
    `${data.tool.name} ${data.tool.version}`].filter(Boolean).join(" · ");

  const cards = byId("cards");
  cards.append(h("div", { class: "card total" }, h("span", { class: "n", text: summary.findings }),
    h("span", { class: "l", text: summary.findings === 1 ? "finding" : "findings" })));
  for (const severity of SEVERITIES) {
    const count = summary.by_severity[severity];
    cards.append(h("button", {
      type: "button", class: `card sev-${severity}${count ? "" : " zero"}`, "data-severity": severity, "aria-pressed": "false",
      title: `Show only ${severity} findings`, onclick: () => setFilter("severity", state.severity === severity ? "" : severity),
    }, h("span", { class: "n", text: count }), h("span", { class: "l", text: severity })));
  }
  if (suppressed.length) {
    cards.append(h("a", { class: "card suppressed-card", href: "#suppressed" }, h("span", { class: "n", text: suppressed.length }),
      h("span", { class: "l", text: "suppressed" })));
  }
  if (problems.length) {
    cards.append(h("a", { class: "card errors", href: "#problems" }, h("span", { class: "n", text: problems.length }),
      h("span", { class: "l", text: errorCount < problems.length ? "errors & warnings" : problems.length === 1 ? "error" : "errors" })));
  }

  const families = new Map();
  for (const finding of active) {
    const counts = families.get(finding.family) || Object.fromEntries(SEVERITIES.map((severity) => [severity, 0]));
    counts[finding.severity] += 1;
    families.set(finding.family, counts);
  }
  const familyTable = byId("families");
  const total = (counts) => SEVERITIES.reduce((sum, severity) => sum + counts[severity], 0);
  const familyRows = [...families.entries()].sort((a, b) => total(b[1]) - total(a[1]) || a[0].localeCompare(b[0]));
  const most = Math.max(1, ...familyRows.map(([, counts]) => total(counts)));
  for (const [family, counts] of familyRows) {
    const bar = h("div", { class: "bar", role: "img", "aria-label": SEVERITIES.filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`).join(", ") });
    bar.style.width = `${(100 * total(counts)) / most}%`;
    for (const severity of SEVERITIES) {
      if (!counts[severity]) continue;
      const segment = h("span", { class: `sev-${severity}`, title: `${counts[severity]} ${severity}` });
      segment.style.flexGrow = String(counts[severity]);
      bar.append(segment);
    }
    familyTable.append(h("tr", { "data-family": family, title: `Show only ${family} findings`, onclick: () => setFilter("family", state.family === family ? "" : family) },
      h("td", { class: "name", text: family }), h("td", null, h("div", { class: "track" }, bar)), h("td", { class: "num", text: total(counts) })));
  }
  if (!familyRows.length) byId("families-panel").append(h("p", { class: "hint", text: "No findings." }));

  const ruleCounts = new Map();
  for (const finding of active) {
    const entry = ruleCounts.get(finding.rule_id) || { finding, count: 0 };
    entry.count += 1;
    ruleCounts.set(finding.rule_id, entry);
  }
  const topRules = [...ruleCounts.values()].sort((a, b) => b.count - a.count || RANK[b.finding.severity] - RANK[a.finding.severity]
    || a.finding.rule_id.localeCompare(b.finding.rule_id)).slice(0, 12);
  const rulesTable = byId("top-rules");
  for (const { finding, count } of topRules) {
    rulesTable.append(h("tr", { "data-rule": finding.rule_id, title: `Search for ${finding.rule_id}`, onclick: () => setFilter("q", state.q === finding.rule_id ? "" : finding.rule_id) },
      h("td", { class: "name" }, h("span", { class: `dot sev-${finding.severity}` }), h("span", { class: "rule-id", text: finding.rule_id })),
      h("td", { class: "title", text: (rules[finding.rule_id] || {}).title || finding.rule_name }), h("td", { class: "num", text: count })));
  }
  byId("rules-panel").hidden = topRules.length === 0;

  if (problems.length) {
    byId("problems").hidden = false;
    byId("problems-title").textContent = errorCount === problems.length ? `Errors (${problems.length})`
      : `Errors and warnings (${problems.length})`;
    for (const [level, at, message] of problems) {
      byId("problem-list").append(h("li", null, h("span", { class: `tag ${level}`, text: level }), at ? h("code", { text: at }) : null,
        h("span", { text: message })));
    }
  }

  // ---- filters

  const state = { severity: "", family: "", namespace: "", kind: "", q: "" };
  const values = {
    severity: (finding) => finding.severity, family: (finding) => finding.family,
    namespace: namespaceOf, kind: (finding) => finding.resource.kind,
  };
  const labels = { severity: "All severities", family: "All families", namespace: "All namespaces", kind: "All kinds" };
  for (const field of FIELDS) {
    const select = byId(`filter-${field}`);
    const counts = new Map();
    for (const finding of data.findings) counts.set(values[field](finding), (counts.get(values[field](finding)) || 0) + 1);
    const options = field === "severity" ? SEVERITIES.filter((severity) => counts.has(severity)) : [...counts.keys()].sort();
    select.append(h("option", { value: "", text: labels[field] }));
    for (const option of options) select.append(h("option", { value: option, text: `${option} (${counts.get(option)})` }));
    select.addEventListener("change", () => setFilter(field, select.value));
  }
  const search = byId("search");
  search.addEventListener("input", () => setFilter("q", search.value));
  byId("clear").addEventListener("click", () => {
    for (const field of [...FIELDS, "q"]) state[field] = "";
    apply();
  });
  byId("filters").addEventListener("submit", (event) => event.preventDefault());
  document.addEventListener("keydown", (event) => {
    const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement && document.activeElement.tagName);
    if (event.key === "/" && !typing) { event.preventDefault(); search.focus(); search.select(); }
    if (event.key === "Escape" && document.activeElement === search) { setFilter("q", ""); }
  });

  function setFilter(field, value) {
    state[field] = value;
    apply();
  }

  // ---- findings, grouped by resource, worst first

  const items = [];  // {finding, index, node, text}
  function searchText(finding) {
    const location = finding.location;
    return [finding.rule_id, finding.rule_name, finding.family, finding.severity, finding.message, resourceRef(finding),
      finding.container, location.path, location.pointer, location.helm_source, finding.suppression_reason,
      ...finding.related.map((other) => ref(other.kind, other.namespace, other.name)),
      (rules[finding.rule_id] || {}).title].filter(Boolean).join("\n").toLowerCase();
  }

  function details(finding) {
    const rule = rules[finding.rule_id] || {};
    const docs = rule.docs || {};
    const location = finding.location;
    const doc = h("dl", null);
    for (const [section, title] of [["what", "What it checks"], ["why", "Why it matters"], ["fix", "How to fix"]]) {
      if (docs[section]) doc.append(h("dt", { text: title }), h("dd", null, prose(docs[section])));
    }
    if (docs.example) doc.append(h("dt", { text: "Example" }), h("dd", null, h("pre", null, h("code", { text: docs.example.trim() }))));
    if (!doc.childElementCount && finding.remediation) doc.append(h("dt", { text: "How to fix" }), h("dd", null, prose(finding.remediation)));
    const facts = h("dl", null);
    const fact = (title, ...content) => facts.append(h("dt", { text: title }), h("dd", null, ...content));
    fact("Location", h("code", { text: where(finding) }));
    if (location.pointer) fact("Field", h("code", { text: location.pointer }));
    if (location.helm_source) fact("Helm template", h("code", { text: location.helm_source }));
    fact("Resource", h("code", { text: resourceRef(finding) }), finding.resource.apiVersion ? ` (${finding.resource.apiVersion})` : "");
    if (finding.container) fact("Container", h("code", { text: finding.container }));
    if (finding.related.length) {
      fact("Related", h("ul", null, finding.related.map((other) => h("li", null, h("code", { text: ref(other.kind, other.namespace, other.name) }),
        other.path ? ` at ${position(other.path, other.line)}` : ""))));
    }
    if (finding.suppressed) fact("Suppressed because", h("span", { class: "reason", text: finding.suppression_reason || "" }));
    fact("Rule", `${finding.family} · default severity ${rule.severity || finding.severity}`);
    return h("div", { class: "doc" },
      h("div", null, h("h4", null, `${finding.rule_id} ${finding.rule_name}`, rule.title ? ` — ${rule.title}` : ""), doc),
      h("div", null, facts));
  }

  function findingBody(finding, index, cells, columns) {
    const row = h("tr", { class: "row", tabindex: "0", "aria-expanded": "false" }, cells);
    const body = h("tbody", { class: "finding", "data-index": index, id: `finding-${index}` }, row);
    const toggle = () => {
      const open = row.getAttribute("aria-expanded") !== "true";
      row.setAttribute("aria-expanded", String(open));
      let panel = body.querySelector("tr.details");
      if (!panel) {  // drawn on first use: a large report stays light
        panel = h("tr", { class: "details" }, h("td", { colspan: columns }, details(finding)));
        body.append(panel);
      }
      panel.hidden = !open;
    };
    row.addEventListener("click", () => { if (!window.getSelection().toString()) toggle(); });  // selecting text is not a click
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); toggle(); }
    });
    items.push({ finding, index, node: body, text: searchText(finding) });
    return body;
  }

  function ruleCell(finding) {
    return h("td", null, h("span", { class: "chev", "aria-hidden": "true", text: "›" }), " ",
      h("span", { class: "rule-id", text: finding.rule_id }), h("span", { class: "rule-name", text: finding.rule_name }));
  }

  function messageCell(finding) {
    const named = finding.container && finding.message.includes(`container ${finding.container}`);
    return h("td", null, finding.message, finding.container && !named ? h("span", { class: "container", text: ` · container ${finding.container}` }) : null);
  }

  const groups = new Map();  // one per object: the same name in two files is two objects
  data.findings.forEach((finding, index) => {
    if (finding.suppressed) return;
    const key = `${finding.location.path || ""}\u0000${resourceRef(finding)}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push([finding, index]);
  });
  const worst = (entries) => Math.max(...entries.map(([finding]) => RANK[finding.severity]));
  const ordered = [...groups.entries()].sort((a, b) => worst(b[1]) - worst(a[1]) || b[1].length - a[1].length || a[0].localeCompare(b[0]));
  const sections = [];
  const container = byId("findings");
  for (const [key, entries] of ordered) {
    entries.sort((a, b) => RANK[b[0].severity] - RANK[a[0].severity] || a[0].rule_id.localeCompare(b[0].rule_id)
      || (a[0].location.line || 0) - (b[0].location.line || 0));
    const first = entries[0][0];
    const resource = first.resource;
    const files = [...new Set(entries.map(([finding]) => finding.location.path).filter(Boolean))];
    const helm = [...new Set(entries.map(([finding]) => finding.location.helm_source).filter(Boolean))];
    const table = h("table", { class: "findings" },
      h("colgroup", null, h("col", { class: "c-sev" }), h("col", { class: "c-rule" }), h("col", { class: "c-msg" }), h("col", { class: "c-loc" })));
    for (const [finding, index] of entries) {
      table.append(findingBody(finding, index, [h("td", null, severityBadge(finding.severity)), ruleCell(finding), messageCell(finding),
        lineCell(finding)], 4));
    }
    const section = h("section", { class: "resource", "data-resource": resourceRef(first) },
      h("header", { class: "resource-head" },
        h("span", { class: "kind", text: resource.kind }),
        h("h3", null, resource.namespace ? h("span", { class: "ns", text: `${resource.namespace}/` }) : null, resource.name),
        files.length ? h("span", { class: "file", text: files.join(", ") + (helm.length ? ` · from ${helm.join(", ")}` : "") }) : null,
        h("span", { class: "chips" })),
      table);
    sections.push({ node: section, entries, chips: section.querySelector(".chips") });
    container.append(section);
  }

  if (suppressed.length) {
    byId("suppressed").hidden = false;
    byId("suppressed-count").textContent = `(${suppressed.length})`;
    const table = byId("suppressed-table");
    data.findings.forEach((finding, index) => {
      if (!finding.suppressed) return;
      table.append(findingBody(finding, index, [h("td", null, severityBadge(finding.severity)), ruleCell(finding),
        h("td", null, h("code", { text: resourceRef(finding) })), messageCell(finding),
        h("td", { class: "reason", text: finding.suppression_reason || "" })], 5));
    });
  }

  // ---- applying the filters

  function matches(item, words) {
    for (const field of FIELDS) {
      if (state[field] && values[field](item.finding) !== state[field]) return false;
    }
    return words.every((word) => item.text.includes(word));
  }

  function apply() {
    const words = state.q.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    let shownSuppressed = 0;
    const visible = new Set();
    for (const item of items) {
      const ok = matches(item, words);
      item.node.hidden = !ok;
      if (ok) {
        visible.add(item.index);
        if (item.finding.suppressed) shownSuppressed += 1; else shown += 1;
      }
    }
    for (const section of sections) {  // a resource shows while one of its findings does, with the shown ones' tally
      const shownHere = section.entries.filter(([, index]) => visible.has(index)).map(([finding]) => finding.severity);
      section.node.hidden = shownHere.length === 0;
      section.chips.replaceChildren(...SEVERITIES.filter((severity) => shownHere.includes(severity)).map((severity) =>
        h("span", { class: `sev sev-${severity}`, text: `${shownHere.filter((shown) => shown === severity).length} ${severity}` })));
    }
    const filtered = FIELDS.some((field) => state[field]) || words.length > 0;
    byId("shown").textContent = filtered ? `${shown} of ${plural(active.length, "finding")} shown` : plural(active.length, "finding");
    byId("suppressed-count").textContent = filtered ? `(${shownSuppressed} of ${suppressed.length})` : `(${suppressed.length})`;
    const empty = byId("empty");
    empty.hidden = shown > 0;
    empty.textContent = active.length === 0 ? `No findings: ${scope} passed every rule.` : "No finding matches these filters.";
    for (const field of FIELDS) {
      const select = byId(`filter-${field}`);
      if (select.value !== state[field]) select.value = state[field];
      select.classList.toggle("active", Boolean(state[field]));
    }
    if (search.value !== state.q) search.value = state.q;
    search.classList.toggle("active", Boolean(state.q));
    for (const card of cards.querySelectorAll("[data-severity]")) card.setAttribute("aria-pressed", String(card.dataset.severity === state.severity));
    for (const row of familyTable.querySelectorAll("tr")) row.setAttribute("aria-selected", String(row.dataset.family === state.family));
    for (const row of rulesTable.querySelectorAll("tr")) row.setAttribute("aria-selected", String(row.dataset.rule === state.q));
    const params = new URLSearchParams();
    for (const field of [...FIELDS, "q"]) if (state[field]) params.set(field, state[field]);
    const hash = params.toString();
    if (location.hash.slice(1) !== hash && (hash || location.hash.includes("="))) {
      try { history.replaceState(null, "", hash ? `#${hash}` : location.pathname + location.search); } catch (error) { /* a file: URL in some browsers */ }
    }
  }

  // A filtered view survives a reload and can be shared: the filters live in the URL's fragment.
  if (location.hash.includes("=")) {
    const params = new URLSearchParams(location.hash.slice(1));
    for (const field of [...FIELDS, "q"]) state[field] = params.get(field) || "";
  }
  apply();
  document.documentElement.dataset.ready = "true";
})();
