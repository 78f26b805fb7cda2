// The orchestration console: plain JavaScript, no build step, no external asset.
// The token lives in sessionStorage and travels only in the Authorization header;
// the live feed opens EventSource with a single-use ticket instead.
"use strict";

const BASE = "/api/orchestration";
const TOKEN_KEY = "orchestration.token";
const state = { source: null, lastId: null, filters: {}, admin: false, retry: null };

const $ = (id) => document.getElementById(id);
const token = () => sessionStorage.getItem(TOKEN_KEY);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

async function api(path, options) {
  const opts = options || {};
  const headers = { Authorization: `Bearer ${token()}` };
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(BASE + path, {
    method: opts.method || "GET", headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const body = response.status === 204 ? null : await response.json();
  if (!response.ok && !opts.allow) throw Object.assign(new Error(body.detail || response.statusText), { status: response.status });
  return opts.allow ? { status: response.status, body } : body;
}

async function all(path) {  // every page of a list
  let items = [], after = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(`${path}${sep}limit=1000${after ? `&after=${encodeURIComponent(after)}` : ""}`);
    items = items.concat(page.items);
    after = page.next;
  } while (after);
  return items;
}

function entityLink(entity) {
  const code = entity.code || String(entity.id);
  return el("a", { href: `#/entity/${entity.type}/${encodeURIComponent(code)}`, text: `${entity.type} ${code}` });
}

function sessionLink(key) {
  return key ? el("a", { href: `#/session/${encodeURIComponent(key)}`, text: key }) : "";
}

function eventRow(e, withSession) {
  const cells = [e.id, e.timestamp.slice(0, 19).replace("T", " "), e.type];
  const row = el("tr", { "data-event-id": String(e.id) }, ...cells.map((c) => el("td", { text: String(c) })));
  row.append(el("td", {}, entityLink(e.entity)), el("td", { text: e.actor }));
  if (withSession) row.append(el("td", {}, sessionLink(e.session_key)));
  return row;
}

// ---- sign in -------------------------------------------------------------

async function signIn(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
  try {
    await api("/events?limit=1");
  } catch (err) {
    sessionStorage.removeItem(TOKEN_KEY);
    throw err;
  }
  // Only admins may undo: the probe writes nothing (an unknown run is 404 for an admin, 403 for others).
  const probe = await api("/rules/runs/0/undo", { method: "POST", allow: true });
  state.admin = probe.status !== 403;
}

function showPage(id) {
  for (const page of document.querySelectorAll(".page")) page.hidden = page.id !== id;
  $("nav").hidden = id === "signin";
  $("who").textContent = state.admin ? "admin" : "";
}

// ---- live feed -----------------------------------------------------------

async function connect() {
  if (state.source) state.source.close();
  clearTimeout(state.retry);
  const { ticket } = await api("/events/stream/tickets", { method: "POST" });
  const params = new URLSearchParams({ ticket });
  for (const [k, v] of Object.entries(state.filters)) if (v) params.append(k, v);
  if (state.lastId !== null) params.set("after", state.lastId);
  const source = new EventSource(`${BASE}/events/stream?${params}`);
  state.source = source;
  source.onopen = () => setStatus("live", "ok");
  source.onerror = () => {  // tickets are single-use: reconnect ourselves with a new one, after the last id seen
    source.close();
    setStatus("reconnecting", "bad");
    state.retry = setTimeout(() => connect().catch(() => setStatus("disconnected", "bad")), 1500);
  };
  source.addEventListener("message", onEvent);
  for (const type of KNOWN_TYPES) source.addEventListener(type, onEvent);
}

// The stream names each message after its event type, and EventSource dispatches named messages only to
// listeners of that name: listen for every catalogue type and every type the log has seen so far.
const KNOWN_TYPES = [];

function onEvent(message) {
  const e = JSON.parse(message.data);
  state.lastId = e.id;
  const row = eventRow(e, true);
  row.className = "fresh";
  $("feed-rows").prepend(row);
  while ($("feed-rows").children.length > 500) $("feed-rows").lastChild.remove();
}

function setStatus(text, kind) {
  $("feed-status").textContent = text;
  $("feed-status").className = `status ${kind || ""}`;
}

async function loadTypes() {  // listen for every type the log has seen, plus the catalogue's
  const stats = await api("/events/stats");
  const catalogue = ["sprint.created", "sprint.updated", "sprint.deleted", "sprint.status_changed",
    "sprint.metadata_updated", "sprint.validation_failed", "task.created", "task.updated", "task.deleted",
    "task.status_changed", "task.blocked", "task.assigned", "task.priority_changed", "task.progress_updated",
    "task.validation_failed", "session.started", "session.resumed", "session.ended", "context.assembled",
    "notification.created", "alert.raised", "automation.rule_failed"].map((t) => `orchestration.${t}`);
  for (const t of new Set([...catalogue, ...Object.keys(stats.by_type)])) if (!KNOWN_TYPES.includes(t)) KNOWN_TYPES.push(t);
}

// ---- overview: timeline and counts ---------------------------------------

async function loadOverview() {
  const [timeline, stats] = await Promise.all([api("/events/timeline?bucket=hour&from=24h"), api("/events/stats?from=24h")]);
  drawTimeline(timeline.buckets);
  fillCounts($("by-type"), stats.by_type);
  fillCounts($("by-actor"), stats.by_actor);
}

function drawTimeline(buckets) {
  const ns = "http://www.w3.org/2000/svg";
  const width = 600, height = 140, pad = 20;
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", "100%");
  svg.setAttribute("id", "timeline-chart");
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const step = (width - 2 * pad) / Math.max(1, buckets.length);
  buckets.forEach((b, i) => {
    const h = ((height - 2 * pad) * b.count) / max;
    const bar = document.createElementNS(ns, "rect");
    for (const [k, v] of Object.entries({ x: pad + i * step + 1, y: height - pad - h, width: step - 2, height: h, class: "bar" })) bar.setAttribute(k, v);
    const title = document.createElementNS(ns, "title");
    title.textContent = `${b.start}: ${b.count}`;
    bar.append(title);
    svg.append(bar);
    if (i % 4 === 0) {
      const label = document.createElementNS(ns, "text");
      label.setAttribute("x", pad + i * step);
      label.setAttribute("y", height - 5);
      label.textContent = b.start.slice(11, 16);
      svg.append(label);
    }
  });
  const top = document.createElementNS(ns, "text");
  top.setAttribute("x", 2);
  top.setAttribute("y", 12);
  top.textContent = `max ${max}/h`;
  svg.append(top);
  $("timeline").replaceChildren(svg);
}

function fillCounts(table, counts) {
  const rows = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  table.replaceChildren(...rows.map(([k, n]) => el("tr", {}, el("td", { text: k }), el("td", { text: String(n) }))));
}

// ---- entity page -----------------------------------------------------------

function changesCell(changes) {
  const cell = el("td");
  for (const [field, diff] of Object.entries(changes || {})) {
    cell.append(el("div", {}, el("b", { text: `${field}: ` }),
      el("span", { class: "before", text: JSON.stringify(diff.before) }), " → ",
      el("span", { class: "after", text: JSON.stringify(diff.after) })));
  }
  return cell;
}

async function showEntity(type, code) {
  showPage("entity");
  $("entity-title").textContent = `${type} ${code}`;
  $("entity-state").textContent = "";
  const tracked = type === "task" || type === "sprint";
  const events = tracked ? (await all(`/${type}s/${encodeURIComponent(code)}/history`)).map((i) => i.event)
    : await all(`/events/entity/${type}/${encodeURIComponent(code)}`);
  $("entity-rows").replaceChildren(...events.map((e) => el("tr", {},
    el("td", { text: String(e.sequence ?? "–") }), el("td", { text: e.timestamp.slice(0, 19).replace("T", " ") }),
    el("td", { text: e.type }), el("td", { text: e.actor }), changesCell(e.changes))));
  $("at-form").hidden = !tracked;
  $("at-form").dataset.path = `/${type}s/${encodeURIComponent(code)}/history`;
  if (events.length) await showChain(events[0].correlation_id);
}

async function showChain(correlationId) {
  const report = await api(`/events/correlation/${correlationId}/validate`);
  const chain = $("entity-chain");
  chain.textContent = report.valid ? `valid (${report.events} events)` : `INVALID: ${report.problems.map((p) => p.kind).join(", ")}`;
  chain.className = `status ${report.valid ? "ok" : "bad"}`;
}

async function showStateAt(event) {
  event.preventDefault();
  const at = $("at").value;
  if (!at) return;
  const result = await api(`${$("at-form").dataset.path}?at=${encodeURIComponent(`${at}Z`)}`, { allow: true });
  $("entity-state").textContent = JSON.stringify(result.body, null, 2);
}

// ---- session page ------------------------------------------------------------

async function showSession(key) {
  showPage("session");
  $("session-title").textContent = `Session ${key}`;
  const events = await all(`/events/session/${encodeURIComponent(key)}`);
  $("session-rows").replaceChildren(...events.map((e) => eventRow(e, false)));
  const touched = new Map(events.map((e) => [`${e.entity.type}/${e.entity.code || e.entity.id}`, e.entity]));
  $("session-entities").replaceChildren(...[...touched.values()].map((entity) => el("li", {}, entityLink(entity))));
}

// ---- rule runs -----------------------------------------------------------------

async function showRules() {
  showPage("rules");
  const runs = await api("/rules/runs?limit=200");
  $("run-rows").replaceChildren(...runs.items.map(runRow));
}

function runRow(run) {
  const actions = el("td");
  if (state.admin) {
    const dry = el("button", { type: "button", text: "dry-run" });
    dry.onclick = () => report(api(`/rules/${run.rule_id}/dry-run`, { method: "POST", body: { event_id: run.event_id }, allow: true }));
    const undo = el("button", { type: "button", text: "undo" });
    undo.onclick = () => report(api(`/rules/runs/${run.id}/undo`, { method: "POST", allow: true })).then(showRules);
    actions.append(dry, " ", undo);
  }
  return el("tr", {}, el("td", { text: String(run.id) }), el("td", { text: run.rule_name }),
    el("td", { text: String(run.event_id) }), el("td", { text: run.status }),
    el("td", { text: String((run.effects || []).length) }), el("td", { text: run.finished_at || "" }), actions);
}

async function report(promise) {
  const result = await promise;
  $("run-result").textContent = `${result.status}\n${JSON.stringify(result.body, null, 2)}`;
}

// ---- routing -------------------------------------------------------------------

async function route() {
  if (!token()) return showPage("signin");
  const [, page, a, b] = location.hash.split("/");
  try {
    if (page === "entity") return await showEntity(decodeURIComponent(a), decodeURIComponent(b));
    if (page === "session") return await showSession(decodeURIComponent(a));
    if (page === "rules") return await showRules();
    showPage("feed");
    await loadOverview();
    if (!state.source) { await loadTypes(); await connect(); }
  } catch (err) {
    if (err.status === 401) { sessionStorage.removeItem(TOKEN_KEY); showPage("signin"); }
    else console.error(err);
  }
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await signIn($("token").value.trim());
    $("token").value = "";
    $("signin-error").textContent = "";
    location.hash = "#/feed";
    await route();
  } catch (err) {
    $("signin-error").textContent = `Sign-in failed: ${err.message}`;
  }
});
$("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  if (state.source) state.source.close();
  state.source = null;
  showPage("signin");
});
$("feed-filters").addEventListener("submit", (event) => {
  event.preventDefault();
  state.filters = Object.fromEntries(new FormData(event.target));
  state.lastId = null;
  $("feed-rows").replaceChildren();
  connect();
});
$("at-form").addEventListener("submit", showStateAt);
window.addEventListener("hashchange", route);
if (token()) {
  api("/rules/runs/0/undo", { method: "POST", allow: true }).then((p) => { state.admin = p.status !== 403; route(); });
} else {
  route();
}
