/* restless-cds playground and dashboard. Hand-written, no dependencies, no network
   beyond this service. Everything from a response is inserted as text, except card
   details, which the service renders from Markdown with raw HTML escaped. */
"use strict";

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function say(text, kind) {
  const box = $("#messages");
  box.replaceChildren(...[].concat(text).map((t) => el("div", { class: kind || "" }, t)));
}

const operatorToken = () => {
  const field = $("#operator-token");
  const fromUrl = new URLSearchParams(location.search).get("token");
  if (fromUrl && field && !field.value) field.value = fromUrl;
  return field ? field.value : "";
};

async function api(path, options) {
  const headers = Object.assign({ "Content-Type": "application/json" }, (options || {}).headers);
  const token = operatorToken();
  if (token) headers["X-Operator-Token"] = token;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  const body = await response.text();
  let data = null;
  try { data = body ? JSON.parse(body) : null; } catch (e) { data = body; }
  return { ok: response.ok, status: response.status, data };
}

function problemsOf(result) {
  const data = result.data;
  if (data && data.resourceType === "OperationOutcome") {
    return data.issue.map((i) => `${(i.expression || [""]).join(", ")}: ${i.diagnostics || i.code}`);
  }
  if (data && data.detail) return [typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail)];
  return [`HTTP ${result.status}`];
}

/* ---------------------------------------------------------------- playground */

const Playground = {
  lastResponse: null,
  report: null,

  async init() {
    const discovery = await this.cds("GET", "/cds-services");
    const services = discovery.ok ? discovery.data.services : [];
    this.services = services;
    $("#service").replaceChildren(...services.map((s) => el("option", { value: s.id }, `${s.id} (${s.hook})`)));
    const examples = await api("/ui/api/examples");
    if (!examples.ok) { say(problemsOf(examples), "error"); return; }
    $("#example").replaceChildren(...examples.data.map((e) => el("option", { value: e.name, "data-service": e.service || "" }, `${e.name} (${e.hook})`)));
    const preferred = examples.data.find((e) => e.name === "restless-back-amisulpride");
    if (preferred) $("#example").value = preferred.name;
    $("#load-example").addEventListener("click", () => this.loadExample());
    $("#build").addEventListener("click", () => this.build());
    $("#fire").addEventListener("click", () => this.fire());
    $("#editor").addEventListener("input", () => this.validate());
    await this.loadExample();
  },

  async cds(method, path, body) {
    const headers = { "Content-Type": "application/json" };
    const jwt = $("#client-jwt").value.trim();
    if (jwt) headers.Authorization = `Bearer ${jwt}`;
    const started = performance.now();
    const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
    return { ok: response.ok, status: response.status, data, ms: performance.now() - started };
  },

  async loadExample() {
    const option = $("#example").selectedOptions[0];
    if (!option || !option.value) return;
    const result = await api(`/ui/api/examples/${encodeURIComponent(option.value)}`);
    if (!result.ok) { say(problemsOf(result), "error"); return; }
    $("#editor").value = JSON.stringify(result.data, null, 2);
    if (option.dataset.service) $("#service").value = option.dataset.service;
    this.validate();
  },

  build() {
    const server = $("#fhir-server").value.trim().replace(/\/+$/, "");
    const patient = $("#patient-id").value.trim();
    const service = this.services.find((s) => s.id === $("#service").value);
    const problems = [];
    if (!/^https?:\/\/\S+$/.test(server)) problems.push("FHIR base URL: give an http(s) URL");
    if (!/^[A-Za-z0-9\-.]{1,64}$/.test(patient)) problems.push("Patient id: 1-64 letters, digits, '-' or '.'");
    if (problems.length) { say(problems, "error"); return; }
    const context = { userId: "Practitioner/playground", patientId: patient };
    if (service.hook !== "patient-view") {
      context.draftOrders = { resourceType: "Bundle", type: "collection", entry: [] };
      say("Add the draft MedicationRequest(s) to context.draftOrders.entry before firing an order hook.", "");
    }
    const request = { hook: service.hook, hookInstance: crypto.randomUUID(), fhirServer: server, context };
    $("#editor").value = JSON.stringify(request, null, 2);
    if (service.hook === "patient-view") this.validate();
  },

  /* Quick checks before sending; the service's own 400 names anything else. */
  validate() {
    let request;
    try { request = JSON.parse($("#editor").value); } catch (e) {
      say(`JSON: ${e.message}`, "error"); return null;
    }
    const problems = [];
    if (typeof request !== "object" || request === null || Array.isArray(request)) problems.push("(body): must be a JSON object");
    else {
      for (const field of ["hook", "hookInstance", "context"]) if (!(field in request)) problems.push(`${field}: required`);
      const service = this.services.find((s) => s.id === $("#service").value);
      if (service && request.hook && request.hook !== service.hook) problems.push(`hook: service ${service.id} answers '${service.hook}' only`);
      if (request.context && typeof request.context === "object" && !request.context.patientId) problems.push("context.patientId: required");
    }
    if (problems.length) { say(problems, "error"); return null; }
    say("Request looks valid.", "ok");
    return request;
  },

  async fire() {
    const request = this.validate();
    if (!request) return;
    const serviceId = $("#service").value;
    $("#fire").disabled = true;
    $("#timings").textContent = "Firing…";
    try {
      const result = await this.cds("POST", `/cds-services/${serviceId}`, request);
      $("#raw").textContent = typeof result.data === "string" ? result.data : JSON.stringify(result.data, null, 2);
      if (!result.ok) {
        say(problemsOf(result).map((p) => `HTTP ${result.status}: ${p}`), "error");
        $("#timings").textContent = `HTTP ${result.status} in ${result.ms.toFixed(0)} ms`;
        $("#cards").replaceChildren();
        return;
      }
      const explained = await api("/ui/api/explain", { method: "POST", body: JSON.stringify({ service: serviceId, request }) });
      this.report = explained.ok ? explained.data : null;
      const cards = result.data.cards || [];
      const stages = this.report ? Object.entries(this.report.timings_ms).map(([k, v]) => `${k} ${v} ms`).join(", ") : "";
      $("#timings").textContent = `HTTP ${result.status}, ${cards.length} card(s), round trip ${result.ms.toFixed(0)} ms` + (stages ? ` (service stages when explained: ${stages})` : "");
      await this.renderCards(serviceId, cards);
      this.renderReport();
    } finally {
      $("#fire").disabled = false;
    }
  },

  async renderCards(serviceId, cards) {
    const details = await api("/ui/api/markdown", { method: "POST", body: JSON.stringify({ texts: cards.map((c) => c.detail || "") }) });
    const html = details.ok ? details.data.html : cards.map(() => "");
    const rendered = cards.map((card, i) => el("div", { class: "card-pair" }, this.card(serviceId, card, html[i]), this.why(card)));
    $("#cards").replaceChildren(...(rendered.length ? rendered : [el("p", {}, "No cards: the rules found nothing to flag (see the explanation below).")]));
  },

  card(serviceId, card, detailHtml) {
    const status = el("div", { class: "feedback-status", role: "status", "aria-live": "polite" });
    const detail = el("div", { class: "detail" });
    detail.innerHTML = detailHtml; /* escaped and link-checked server-side by markdown-it */
    const actions = el("div", { class: "actions" });
    for (const s of card.suggestions || []) {
      actions.append(el("button", { type: "button", class: "primary", onclick: () => this.feedback(serviceId, card, { outcome: "accepted", acceptedSuggestions: [{ id: s.uuid }] }, status) }, s.label));
    }
    const reasons = card.overrideReasons || [];
    if (reasons.length) {
      const id = `reason-${card.uuid}`;
      const select = el("select", { id }, reasons.map((r, i) => el("option", { value: String(i) }, r.display || r.code)));
      actions.append(el("label", { for: id }, "Override reason"), select,
        el("button", { type: "button", onclick: () => this.feedback(serviceId, card, { outcome: "overridden", overrideReason: { reason: reasons[Number(select.value)] } }, status) }, "Dismiss with reason"));
    }
    const source = card.source || {};
    return el("article", { class: `card ${card.indicator}`, "aria-label": `${card.indicator} card` },
      el("span", { class: "indicator" }, card.indicator),
      el("h3", {}, card.summary),
      detail,
      el("div", { class: "source" }, "Source: ", source.url ? el("a", { href: source.url, target: "_blank", rel: "noopener noreferrer" }, source.label) : source.label),
      (card.links || []).length ? el("ul", {}, card.links.map((l) => el("li", {}, el("a", { href: l.url, target: "_blank", rel: "noopener noreferrer" }, l.label)))) : null,
      actions, status);
  },

  async feedback(serviceId, card, item, status) {
    const body = { feedback: [Object.assign({ card: card.uuid, outcomeTimestamp: new Date().toISOString() }, item)] };
    const result = await this.cds("POST", `/cds-services/${serviceId}/feedback`, body);
    status.className = `feedback-status ${result.ok ? "ok" : "error"}`;
    status.textContent = result.ok
      ? `Feedback "${item.outcome}" sent: HTTP ${result.status}, stored ${result.data.stored}, duplicates ${result.data.duplicates}.`
      : `Feedback refused: HTTP ${result.status}: ${problemsOf(result).join("; ")}`;
  },

  why(card) {
    const rule = (card.extension || {})["restless-cds-rule"];
    const box = el("aside", { class: "why", "aria-label": `Why this card (${rule})` }, el("h4", {}, "Why this card"));
    if (!this.report) return box.append("No explanation (the explain call failed)."), box;
    const facts = new Map(this.report.facts.map((f) => [f.source, f]));
    const firing = this.report.fired.find((f) => f.rule === rule);
    box.append(el("p", {}, "Rule ", el("code", {}, rule || "?"), ` (rules ${this.report.rules_version})`));
    if (firing) {
      box.append(el("p", {}, "It bound:"), el("ul", {}, Object.entries(firing.bound).map(([alias, label]) => el("li", {}, el("code", {}, alias), ` = ${label}`))));
    }
    const chain = this.report.fired.filter((f) => f.stage === 1 || f.rule === rule);
    box.append(el("p", {}, "Rules fired, in order:"), el("ol", {}, chain.map((f) => el("li", {}, el("code", {}, f.rule), f.derived ? ` → ${f.derived.fact}` : ""))));
    box.append(el("p", {}, `${facts.size} fact(s) from the record; full report below.`));
    return box;
  },

  renderReport() {
    const r = this.report;
    if (!r) { $("#explain").replaceChildren(el("p", {}, "No explanation.")); return; }
    const attrs = (f) => Object.entries(f).filter(([k]) => k !== "fact" && k !== "source").map(([k, v]) => `${k}=${v}`).join(", ");
    $("#explain").replaceChildren(
      el("p", {}, `Service ${r.service}, rules ${r.rules_version}`),
      r.skipped.length ? el("div", {}, el("h3", {}, "Skipped input"), el("ul", {}, r.skipped.map((s) => el("li", {}, s)))) : "",
      el("h3", {}, `Facts extracted (${r.facts.length})`),
      el("ul", {}, r.facts.map((f) => el("li", {}, el("strong", {}, f.fact), " from ", el("code", {}, f.source || "?"), `: ${attrs(f)}`))),
      el("h3", {}, "Rules fired, in order"),
      el("ol", {}, r.fired.map((f) => el("li", {}, `[stage ${f.stage}] `, el("code", {}, f.rule), ` (${Object.entries(f.bound).map(([a, v]) => `${a}=${v}`).join(", ")})`, f.derived ? ` → ${f.derived.fact}` : ""))),
      el("h3", {}, "Rules that did not fire (first unmet condition)"),
      el("ul", {}, r.not_fired.map((n) => el("li", {}, el("code", {}, n.rule), `: ${n.reason}`))));
  },
};

/* ----------------------------------------------------------------- dashboard */

const PALETTE = ["#0a5cad", "#b3261e", "#1f6f3f", "#7b3fa0", "#9a5b00", "#00707a", "#5a5a5a", "#a0325a"];

function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

const pct = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(0)}%`);

const Dashboard = {
  init() {
    const today = new Date().toISOString().slice(0, 10);
    const month = new Date(Date.now() - 29 * 864e5).toISOString().slice(0, 10);
    $("#start").value = month;
    $("#end").value = today;
    $("#range").addEventListener("submit", (e) => { e.preventDefault(); this.load(); });
    $("#csv").addEventListener("click", () => this.csv());
    operatorToken();
    this.load();
  },

  query() { return `start=${$("#start").value}&end=${$("#end").value}`; },

  async load() {
    const result = await api(`/ui/api/dashboard?${this.query()}`);
    if (!result.ok) { say(problemsOf(result), "error"); return; }
    const d = result.data;
    say(`${d.rows.reduce((n, r) => n + r.issued, 0)} card(s) issued from ${d.start} to ${d.end}.`, "ok");
    this.table(d.rows);
    this.overrides(d.overrides);
    this.series(d);
    this.bars(d.rows);
  },

  async csv() {
    const headers = {};
    if (operatorToken()) headers["X-Operator-Token"] = operatorToken();
    const response = await fetch(`/ui/api/dashboard.csv?${this.query()}`, { headers });
    if (!response.ok) { say(`CSV: HTTP ${response.status}`, "error"); return; }
    const url = URL.createObjectURL(await response.blob());
    const link = el("a", { href: url, download: `restless-cds-dashboard-${$("#start").value}-${$("#end").value}.csv` });
    document.body.append(link); link.click(); link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  },

  table(rows) {
    $("#table tbody").replaceChildren(...(rows.length ? rows.map((r) => el("tr", {},
      el("td", {}, el("code", {}, r.rule)), el("td", {}, r.rules_version), el("td", {}, r.issued), el("td", {}, r.accepted),
      el("td", {}, r.overridden), el("td", {}, pct(r.acceptance_rate)), el("td", {}, pct(r.override_rate)), el("td", {}, r.suppressions_set),
      el("td", {}, Object.entries(r.override_reasons).map(([k, v]) => `${k}: ${v}`).join(", ") || "–")))
      : [el("tr", {}, el("td", { colspan: "9" }, "No cards issued in this range."))]));
  },

  overrides(list) {
    $("#overrides tbody").replaceChildren(...(list.length ? list.map((o) => el("tr", {},
      el("td", {}, o.at), el("td", {}, el("code", {}, o.rule)), el("td", {}, o.rules_version), el("td", {}, o.reason || "(none)"),
      el("td", {}, el("a", { href: o.explanation, target: "_blank", rel: "noopener" }, "explanation (JSON)"))))
      : [el("tr", {}, el("td", { colspan: "5" }, "No overrides in this range."))]));
  },

  series(d) {
    const days = [];
    for (let t = Date.parse(d.start); t <= Date.parse(d.end); t += 864e5) days.push(new Date(t).toISOString().slice(0, 10));
    const keys = [...new Set(d.daily.map((p) => `${p.rule} @ ${p.rules_version}`))];
    const counts = new Map(d.daily.map((p) => [`${p.rule} @ ${p.rules_version}|${p.day}`, p.issued]));
    const max = Math.max(1, ...d.daily.map((p) => p.issued));
    const W = 560, H = 220, L = 34, B = 28, T = 8, R = 8;
    const x = (i) => L + (days.length < 2 ? 0 : (i * (W - L - R)) / (days.length - 1));
    const y = (v) => H - B - (v * (H - B - T)) / max;
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%" });
    chart.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#4a5561" }), svg("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#4a5561" }));
    chart.append(svg("text", { x: 4, y: y(max) + 4 }, max), svg("text", { x: 4, y: H - B + 4 }, 0));
    chart.append(svg("text", { x: L, y: H - 8 }, days[0] || ""), svg("text", { x: W - R, y: H - 8, "text-anchor": "end" }, days[days.length - 1] || ""));
    keys.forEach((key, k) => {
      const colour = PALETTE[k % PALETTE.length];
      const points = days.map((day, i) => `${x(i).toFixed(1)},${y(counts.get(`${key}|${day}`) || 0).toFixed(1)}`).join(" ");
      chart.append(svg("polyline", { points, fill: "none", stroke: colour, "stroke-width": 2 }));
      days.forEach((day, i) => { const v = counts.get(`${key}|${day}`); if (v) chart.append(svg("circle", { cx: x(i), cy: y(v), r: 3, fill: colour }, svg("title", {}, `${key}, ${day}: ${v}`))); });
    });
    const legend = el("div", { class: "legend" }, keys.map((key, k) => el("span", {}, el("span", { class: "swatch", style: `background:${PALETTE[k % PALETTE.length]}` }), key)));
    $("#series").replaceChildren(chart, keys.length ? legend : el("p", {}, "No cards in this range."));
  },

  bars(rows) {
    const W = 560, rowH = 26, L = 250, R = 40;
    const H = Math.max(40, rows.length * rowH + 24);
    const max = Math.max(1, ...rows.map((r) => r.issued));
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%" });
    rows.forEach((r, i) => {
      const top = 4 + i * rowH, scale = (W - L - R) / max;
      chart.append(svg("text", { x: L - 6, y: top + 15, "text-anchor": "end" }, `${r.rule}`.slice(0, 38)));
      chart.append(svg("rect", { x: L, y: top + 3, width: r.issued * scale, height: 16, fill: "#d5dde5" }, svg("title", {}, `issued ${r.issued}`)));
      chart.append(svg("rect", { x: L, y: top + 3, width: r.accepted * scale, height: 16, fill: "#1f6f3f" }, svg("title", {}, `accepted ${r.accepted}`)));
      chart.append(svg("rect", { x: L + r.accepted * scale, y: top + 3, width: r.overridden * scale, height: 16, fill: "#b3261e" }, svg("title", {}, `overridden ${r.overridden}`)));
      chart.append(svg("text", { x: L + r.issued * scale + 4, y: top + 15 }, `${r.accepted}/${r.overridden}/${r.issued}`));
    });
    const legend = el("div", { class: "legend" },
      el("span", {}, el("span", { class: "swatch", style: "background:#1f6f3f" }), "accepted"),
      el("span", {}, el("span", { class: "swatch", style: "background:#b3261e" }), "overridden"),
      el("span", {}, el("span", { class: "swatch", style: "background:#d5dde5" }), "issued, no feedback"));
    $("#bars").replaceChildren(chart, rows.length ? legend : el("p", {}, "No cards in this range."));
  },
};

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  if (page === "playground") Playground.init();
  if (page === "dashboard") Dashboard.init();
});
