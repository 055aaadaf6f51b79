// voltproof dashboard: plain JS, no build step. Libraries (uPlot, Leaflet) are served by this
// API from api/static/vendor/ (copied from the npm lockfile); no request leaves this origin
// unless a tile URL is configured.
"use strict";

const KEY = "voltproof-api-key";
const $ = (sel) => document.querySelector(sel);
const VIEWS = ["login", "fleet", "alarms", "quarantine", "checkpoints", "asset"];
const state = { me: null, config: null, fleet: [], sort: { key: "id", dir: 1 }, map: null,
  mapLayers: null, route: "", refreshTimer: null, stream: null, gen: 0, verdict: null };
// A view loader checks after each await that no newer navigation started (else it stops).
const stale = (gen) => gen !== state.gen;

function apiKey() { return sessionStorage.getItem(KEY); }

class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

async function api(path, init = {}) {
  const headers = { Authorization: `Bearer ${apiKey()}`, ...(init.headers || {}) };
  const response = await fetch(path, { ...init, headers });
  if (response.status === 401) { showLogin("the key was refused"); throw new ApiError(401, "the key was refused"); }
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail; } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, detail);
  }
  return response;
}
const getJson = async (path) => (await api(path)).json();
const postJson = async (path, body) => (await api(path, { method: "POST",
  headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })).json();
// Every list answers one keyset page and a `next` cursor; these read the following page.
const withCursor = (path, cursor) => (cursor ? `${path}${path.includes("?") ? "&" : "?"}cursor=${encodeURIComponent(cursor)}` : path);
async function allPages(path, onPage) {
  let cursor = null;
  do {
    const page = await getJson(withCursor(path, cursor));
    if (onPage(page) === false) return;
    cursor = page.next;
  } while (cursor);
}

// --- formatting ---------------------------------------------------------------------------
function fmtTime(ms) { return ms == null ? "never" : new Date(ms).toISOString().replace(".000Z", "Z").replace("T", " "); }
function fmtAge(ms) {
  if (ms == null) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}
const pct = (v, digits = 1) => (v == null ? "–" : `${(v * 100).toFixed(digits)} %`);
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  node.append(...children.filter((c) => c != null));
  return node;
}
const td = (text, cls) => el("td", { class: cls, text: text == null ? "" : String(text) });
const levelName = { 0: "none", 1: "1 no effect", 2: "2 limit driving", 3: "3 stop", 4: "4 thermal event" };

// --- views --------------------------------------------------------------------------------
function show(section) {
  for (const id of VIEWS) $(`#${id}`).hidden = id !== section;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.view === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}
function pageError(message) {
  const box = $("#page-error");
  box.textContent = message || "";
  box.hidden = !message;
}

function showLogin(message) {
  sessionStorage.removeItem(KEY);
  stopStream();
  state.me = null;
  $("#login-error").textContent = message || "";
  $("#logout").hidden = true;
  $("#nav").hidden = true;
  $("#who").textContent = "";
  show("login");
}

// --- fleet --------------------------------------------------------------------------------
// The fleet arrives in keyset pages: a small first page is drawn at once, the rest follows
// in large pages, each asked for before the page in hand is drawn (the server works while
// the browser draws).
const FLEET_FIRST_PAGE = 500, FLEET_PAGE = 2500;
async function fetchFleet(gen, onPage) {
  const rows = [];
  let pending = getJson(`/api/dashboard/fleet?limit=${FLEET_FIRST_PAGE}`);
  while (pending) {
    const page = await pending;
    if (stale(gen)) return rows;
    pending = page.next ? getJson(withCursor(`/api/dashboard/fleet?limit=${FLEET_PAGE}`, page.next)) : null;
    rows.push(...page.data);
    onPage(rows, !pending);
  }
  return rows;
}

async function loadFleet() {
  show("fleet");
  const gen = state.gen;
  loadOpenAlarms(gen);
  await fetchFleet(gen, (rows, last) => {
    state.fleet = rows;
    renderKpis(rows);
    renderFleetTable();
    renderMap(rows);
  });
  if (stale(gen)) return;
  loadTrails();
}

async function loadOpenAlarms(gen) {
  try {
    const open = await getJson("/api/alarms/open");
    if (stale(gen)) return;
    state.openAlarms = open;
    renderKpis(state.fleet);
  } catch (err) { if (err.status !== 401) pageError(`open alarms: ${err.message}`); }
}

function renderKpis(rows) {
  const box = $("#kpis");
  box.replaceChildren();
  const online = rows.filter((r) => r.online).length;
  // a pack's SoC, and a GB/T 32960 terminal bus's (its frames carry its pack's); SoH: packs only
  const band = (lo, hi) => rows.filter((p) => p.soc != null && p.soc >= lo && p.soc < hi).length;
  const soh = (lo, hi) => rows.filter((p) => p.soh != null && p.soh >= lo && p.soh < hi).length;
  const open = state.openAlarms ? state.openAlarms.levels : {};
  const level = (n) => open[n] || 0;
  const kpi = (title, items) => {
    const dl = el("dl");
    for (const [label, value, cls] of items) dl.append(el("dt", { text: label }), el("dd", { text: String(value), class: cls }));
    box.append(el("div", { class: "kpi" }, el("h2", { text: title }), dl));
  };
  kpi("Online", [["online", online, "ok"], ["offline", rows.length - online, "muted"],
    ["window", `${state.config.online_window_s} s`]]);
  kpi("Pack SoC", [["< 20 %", band(0, 0.2), band(0, 0.2) ? "bad" : ""], ["20–50 %", band(0.2, 0.5)],
    ["50–80 %", band(0.5, 0.8)], ["≥ 80 %", band(0.8, 9)]]);
  kpi("Pack SoH", [["< 80 %", soh(0, 0.8), soh(0, 0.8) ? "bad" : ""], ["80–90 %", soh(0.8, 0.9)],
    ["90–95 %", soh(0.9, 0.95)], ["≥ 95 %", soh(0.95, 9)]]);
  kpi("Open alarms", [["level 4", level(4), level(4) ? "bad" : ""], ["level 3", level(3), level(3) ? "bad" : ""],
    ["level 2", level(2), level(2) ? "warn" : ""], ["level 1", level(1)],
    ["acknowledged", state.openAlarms ? state.openAlarms.acknowledged : "–", "muted"]]);
}

function relationOf(r) { return r.kind === "bus" ? r.packs.join(", ") : (r.host || ""); }

function renderFleetTable() {
  const text = $("#filter-text").value.trim().toLowerCase();
  const kind = $("#filter-kind").value, status = $("#filter-status").value;
  const minAlarm = Number($("#filter-alarm").value || 0);
  const { key, dir } = state.sort;
  const value = (r) => (key === "relation" ? relationOf(r) : r[key]);
  const rows = state.fleet.filter((r) =>
    (!text || `${r.id} ${r.fleet} ${relationOf(r)}`.toLowerCase().includes(text)) &&
    (!kind || r.kind === kind) &&
    (!status || (status === "online") === r.online) &&
    (!minAlarm || (r.alarm_level || 0) >= minAlarm));
  rows.sort((a, b) => {
    const x = value(a), y = value(b);
    if (x == null && y == null) return a.id.localeCompare(b.id);
    if (x == null) return 1;
    if (y == null) return -1;
    return (x < y ? -1 : x > y ? 1 : 0) * dir || a.id.localeCompare(b.id);
  });
  const body = $("#assets tbody");
  const fragment = document.createDocumentFragment();
  for (const r of rows) {
    const tr = el("tr", { class: "asset-row", "data-asset": r.id });
    const link = el("a", { href: `#asset/${encodeURIComponent(r.id)}`, text: r.id });
    const relation = r.kind === "bus"
      ? r.packs.map((p) => el("a", { href: `#asset/${encodeURIComponent(p)}`, text: p }))
      : (r.host ? [el("a", { href: `#asset/${encodeURIComponent(r.host)}`, text: r.host })] : []);
    const relCell = el("td");
    relation.forEach((a, i) => { if (i) relCell.append(", "); relCell.append(a); });
    tr.append(el("td", {}, link), td(r.kind), td(r.fleet),
      td(r.online ? "online" : "offline", r.online ? "ok" : "muted"),
      el("td", { title: fmtTime(r.last_seen_ms), text: fmtAge(r.last_seen_ms) }),
      td(r.soc == null ? "" : pct(r.soc)), td(r.soh == null ? "" : pct(r.soh)),
      td(r.alarm_level == null ? "" : levelName[r.alarm_level] || r.alarm_level, r.alarm_level >= 2 ? "bad" : ""),
      relCell);
    fragment.append(tr);
  }
  body.replaceChildren(fragment);
  $("#fleet-count").textContent = `${rows.length} of ${state.fleet.length} assets`;
  for (const th of document.querySelectorAll("#assets th")) {
    const button = th.querySelector("button");
    if (button.dataset.sort === key) th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
    else th.removeAttribute("aria-sort");
  }
}

function markerColour(r) {
  if ((r.alarm_level || 0) >= 3) return "#b3261e";
  if ((r.alarm_level || 0) >= 2) return "#b35c00";
  return r.online ? "#1b7f3b" : "#5f6b76";
}

function renderMap(rows) {
  if (typeof L === "undefined") { $("#map-note").textContent = "map library missing (run scripts/setup.sh)"; return; }
  if (!state.map) {
    state.map = L.map("map", { preferCanvas: true, zoomControl: true, attributionControl: true });
    if (state.config.tile_url) {
      L.tileLayer(state.config.tile_url, { attribution: state.config.tile_attribution, maxZoom: 19 }).addTo(state.map);
      $("#map-note").textContent = "";
    } else {
      $("#map").classList.add("offline");
      $("#map-note").textContent = "Offline map: no tile URL is configured (tile_url), so positions and routes are drawn on a plain background.";
    }
    state.mapLayers = { markers: L.layerGroup().addTo(state.map), trails: L.layerGroup().addTo(state.map) };
    state.map.getContainer().setAttribute("aria-label", "map of bus positions and routes");
  }
  state.mapLayers.markers.clearLayers();
  const points = [];
  for (const r of rows) {
    if (r.kind !== "bus" || r.lat == null || r.lon == null) continue;
    const marker = L.circleMarker([r.lat, r.lon], { radius: 6, color: "#fff", weight: 1.5,
      fillColor: markerColour(r), fillOpacity: 0.95 });
    marker.bindTooltip(`${r.id} · ${r.online ? "online" : "offline"}${r.packs.length ? ` · ${r.packs.join(", ")}` : ""}`);
    marker.on("click", () => { location.hash = `#asset/${encodeURIComponent(r.id)}`; });
    marker.addTo(state.mapLayers.markers);
    points.push([r.lat, r.lon]);
  }
  if (points.length) state.map.fitBounds(L.latLngBounds(points).pad(0.15), { maxZoom: 15, animate: false });
  else state.map.setView([0, 0], 1);
  $("#map").dataset.markers = String(points.length);
}

async function loadTrails() {
  if (!state.map || state.me.role === "auditor") return;
  try {
    state.mapLayers.trails.clearLayers();
    let count = 0;
    await allPages("/api/dashboard/trails?minutes=60&points=60", (trails) => {
      for (const t of trails.data) {
        if (t.points.length > 1) L.polyline(t.points, { color: "#1f5f99", weight: 2, opacity: 0.7 }).addTo(state.mapLayers.trails);
      }
      count += trails.count;
      return true;
    });
    $("#map").dataset.trails = String(count);
  } catch (err) { if (err.status !== 401) $("#map-note").textContent = `routes: ${err.message}`; }
}

// --- alarms -------------------------------------------------------------------------------
// Acknowledgements are stored by the API (who, when, a note): every session sees them, and
// they never change the evidence. Only operator keys may acknowledge.
async function loadAlarms(more = false) {
  show("alarms");
  const gen = state.gen;
  const level = $("#alarm-level").value;
  const hide = $("#alarm-hide-acked").checked;
  const path = `/api/alarms?min_level=${level}&limit=100${hide ? "&state=open" : ""}`;
  const alarms = await getJson(withCursor(path, more ? state.alarmsNext : null));
  if (stale(gen)) return;
  state.alarmsNext = alarms.next;
  $("#alarms-more").hidden = !alarms.next;
  const body = $("#alarm-table tbody");
  if (!more) body.replaceChildren();
  const operator = state.me.role === "operator";
  for (const a of alarms.data) {
    body.append(el("tr", { class: `alarm-row level-${a.level}`, "data-alarm": String(a.alarm_id) }, td(fmtTime(a.t_ms)),
      el("td", {}, el("a", { href: `#asset/${encodeURIComponent(a.device)}`, text: a.device })),
      td(levelName[a.level] || a.level, a.level >= 2 ? "bad" : ""), td(a.source), td(a.detail), td(a.leaf_index),
      ackCell(a, operator)));
  }
  if (!body.children.length) body.append(el("tr", {}, el("td", { colspan: "7", text: "no alarms at this level" })));
}

function ackCell(alarm, operator) {
  const cell = el("td", { class: "ack" });
  const ack = alarm.acknowledged;
  if (ack) {
    cell.append(el("span", { class: "ok", text: `✓ ${ack.by}, ${fmtTime(ack.at_ms)}`, title: ack.note || "" }));
    if (ack.note) cell.append(el("div", { class: "muted", text: ack.note }));
    return cell;
  }
  if (!operator) { cell.append(el("span", { class: "muted", text: "open" })); return cell; }
  const label = `${alarm.device} alarm at ${fmtTime(alarm.t_ms)}`;
  const note = el("input", { type: "text", class: "ack-note", maxlength: "500", placeholder: "note (optional)",
    "aria-label": `note for the ${label}` });
  const button = el("button", { type: "button", class: "ack-button", text: "Acknowledge",
    "aria-label": `acknowledge ${label}` });
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const done = await postJson(`/api/alarms/${alarm.alarm_id}/acknowledgement`, { note: note.value.trim() });
      cell.replaceWith(ackCell({ ...alarm, acknowledged: done }, operator));
    } catch (err) { button.disabled = false; pageError(`acknowledge: ${err.message}`); }
  });
  cell.append(note, " ");
  cell.append(button);
  return cell;
}

// --- quarantine ---------------------------------------------------------------------------
async function loadQuarantine(more = false) {
  show("quarantine");
  const gen = state.gen;
  const q = await getJson(withCursor("/api/quarantine?limit=200", more ? state.quarantineNext : null));
  if (stale(gen)) return;
  state.quarantineNext = q.next;
  $("#quarantine-more").hidden = !q.next;
  const totals = Object.entries(q.totals).map(([k, v]) => `${k}: ${v}`).join(" · ");
  $("#quarantine-totals").textContent = totals ? `Totals by reason: ${totals}` : "Nothing was quarantined.";
  const body = $("#quarantine-table tbody");
  if (!more) body.replaceChildren();
  for (const r of q.data) {
    body.append(el("tr", {}, td(fmtTime(r.received_at_ms)), td(r.reason), td(r.device || "–"),
      el("td", { class: "mono", text: r.topic }), td(`${r.raw_size} B`), td(r.detail)));
  }
}

// --- checkpoints --------------------------------------------------------------------------
async function loadCheckpoints() {
  show("checkpoints");
  const gen = state.gen;
  const [health, list, anchored] = await Promise.all([
    fetch("/healthz").then((r) => r.json()),
    getJson("/api/checkpoints?limit=50"),
    getJson("/api/checkpoints?limit=1&anchored=true"),
  ]);
  if (stale(gen)) return;
  const newest = list.data[0], final = anchored.data[0];
  const box = $("#checkpoint-kpis");
  box.replaceChildren();
  const kpi = (title, items) => {
    const dl = el("dl");
    for (const [label, value] of items) dl.append(el("dt", { text: label }), el("dd", { text: String(value) }));
    box.append(el("div", { class: "kpi" }, el("h2", { text: title }), dl));
  };
  kpi("Log", [["leaves", health.log_size]]);
  kpi("Newest checkpoint", newest ? [["size", newest.size], ["signed", fmtAge(newest.signed_at_ms)],
    ["behind the log", `${health.log_size - newest.size} leaves`]] : [["none", "yet"]]);
  kpi("Newest final anchor", final ? [["size", final.size], ["signed", fmtAge(final.signed_at_ms)],
    ["anchor lag", `${health.log_size - final.size} leaves`]] : [["none", "yet"]]);
  state.logSize = health.log_size;
  $("#checkpoint-table tbody").replaceChildren();
  appendCheckpoints(list);
  const auditor = state.me.role === "auditor";
  $("#auditor-devices").hidden = !auditor;
  if (auditor) {
    const found = new Set();
    await allPages("/api/registry?limit=10000", (registry) => {
      if (stale(gen)) return false;
      for (const r of registry.data) found.add(r.device);
      return true;
    });
    if (stale(gen)) return;
    const ids = [...found].sort();
    $("#auditor-device-list").replaceChildren(...ids.map((id) =>
      el("li", {}, el("a", { href: `#asset/${encodeURIComponent(id)}`, text: id }))));
  }
}

function appendCheckpoints(list) {
  state.checkpointsNext = list.next;
  $("#checkpoints-more").hidden = !list.next;
  const body = $("#checkpoint-table tbody");
  for (const c of list.data) {
    body.append(el("tr", { class: "checkpoint-row" }, td(c.size), td(fmtTime(c.signed_at_ms)),
      td(c.anchor_state, c.anchor_state === "final" ? "ok" : "warn"), td(`${state.logSize - c.size} leaves`),
      el("td", { class: "mono", text: `${c.root.slice(0, 16)}…`, title: c.root })));
  }
}

// --- asset --------------------------------------------------------------------------------
const CHARTS = {
  pack: [
    { title: "State of charge", unit: "%", lines: [["soc", "avg", 100, "SoC"]] },
    { title: "State of health (capacity)", unit: "%", lines: [["soh_capacity", "avg", 100, "SoH"]] },
    { title: "Temperatures", unit: "°C", lines: [["temp_max_c", "max", 1, "hottest probe"], ["temp_min_c", "min", 1, "coldest probe"]] },
    { title: "Cell voltage spread (max − min of the same sample)", unit: "mV", lines: [["cell_spread_v", "max", 1000, "spread, bucket max"], ["cell_spread_v", "avg", 1000, "spread, bucket mean"]] },
    { title: "Energy throughput", unit: "kWh", lines: [["energy_out_wh", "max", 0.001, "discharged"], ["energy_in_wh", "max", 0.001, "charged"]] },
    { title: "Alarm level", unit: "level", step: true, range: [0, 4], lines: [["alarm_level", "max", 1, "highest level"]] },
  ],
  bus: [
    { title: "Speed", unit: "km/h", lines: [["speed_mps", "avg", 3.6, "mean"], ["speed_mps", "max", 3.6, "max"]] },
    { title: "Odometer", unit: "km", lines: [["odometer_m", "max", 0.001, "odometer"]] },
    { title: "Traction power", unit: "kW", lines: [["traction_power_w", "avg", 0.001, "mean"]] },
    { title: "Ambient temperature", unit: "°C", lines: [["ambient_c", "avg", 1, "ambient"]] },
  ],
};
const COLOURS = ["#1f5f99", "#b3261e", "#1b7f3b"];

function clearAsset() {
  $("#asset-title").textContent = "";
  $("#asset-facts").textContent = "";
  $("#proof-summary").textContent = "Proof: checking…";
  $("#proof-body").replaceChildren();
  $("#proof").open = false;
  state.verdict = null;
  $("#charts").replaceChildren();
  $("#download-list").replaceChildren();
  $("#downloads").hidden = true;
  for (const sel of ["#stints tbody", "#asset-alarms tbody"]) $(sel).replaceChildren();
  $("#telemetry").hidden = false;
  $("#proof").hidden = false;
}

function assetMessage(id, err) {
  if (err.status === 404) return `There is no asset “${id}” you may see: it does not exist, or it is not in your fleet or leases.`;
  if (err.status === 403) return `Your key may not read “${id}”: ${err.message}`;
  return `Could not load “${id}”: ${err.message}`;
}

// GB/T 32960 terminals: what the newest frame proves (docs/protocol.md, evidence labels).
const EVIDENCE_LABELS = {
  "received-only": ["received-only (GB/T 32960 2016: signed by no vehicle key)", "warn"],
  "signed-by-terminal": ["signed by the terminal (GB/T 32960 2025, SM2)", "ok"],
};

// A pack's stints, every page of them; a stint that goes on into the next page is joined.
async function packHistory(id) {
  const data = [];
  await allPages(`/api/assets/${encodeURIComponent(id)}/history`, (page) => {
    for (const s of page.data) {
      const last = data[data.length - 1];
      if (last && last.bus === s.bus) data[data.length - 1] = { ...last, to_ms: s.to_ms, messages: last.messages + s.messages };
      else data.push(s);
    }
    return true;
  });
  return { data };
}

async function loadAsset(id, range) {
  show("asset");
  clearAsset();
  const gen = state.gen;
  $("#back").textContent = state.me.role === "auditor" ? "← Checkpoints" : "← Fleet";
  $("#back").setAttribute("href", state.me.role === "auditor" ? "#checkpoints" : "#fleet");
  if (state.me.role === "auditor") {
    $("#telemetry").hidden = true;
    $("#asset-title").textContent = id;
    $("#asset-facts").textContent = "Auditor view: the proof of this device's newest anchored message.";
    await showProof(id, true);
    return;
  }
  let asset;
  try {
    asset = await getJson(`/api/assets/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err.status === 401 || stale(gen)) return;
    $("#asset-title").textContent = "Asset not available";
    $("#proof").hidden = true;
    $("#telemetry").hidden = true;
    pageError(assetMessage(id, err));
    return;
  }
  if (stale(gen)) return;
  $("#asset-title").textContent = `${asset.kind === "bus" ? "Bus" : "Pack"} ${asset.id}`;
  $("#asset-facts").textContent = `${asset.fleet} · ${asset.registry_status} · ${asset.online ? "online" : "offline"} · last seen ${fmtTime(asset.last_seen_ms)}`;
  const evidence = EVIDENCE_LABELS[asset.evidence];
  if (evidence) $("#asset-facts").append(" · ", el("span", { id: "asset-evidence", class: evidence[1], text: evidence[0] }));
  const lessor = state.me.role === "lessor";
  showDownloads(asset, lessor);
  // the proof panel (one line until opened) is asked for once the charts are drawn, so the
  // chart data does not queue behind proof reads on the server
  try { await drawCharts(asset, range || {}); } finally { if (!stale(gen)) showProof(id, false); }
  const [alarms, stints] = await Promise.all([
    getJson(`/api/alarms?asset=${encodeURIComponent(id)}&limit=100`),
    asset.kind === "pack" ? packHistory(id) : Promise.resolve({ data: [] }),
  ]);
  if (stale(gen)) return;
  const alarmBody = $("#asset-alarms tbody");
  for (const a of alarms.data) alarmBody.append(el("tr", {}, td(fmtTime(a.t_ms)), td(levelName[a.level] || a.level, a.level >= 2 ? "bad" : ""), td(a.flags), td(a.source)));
  if (!alarms.data.length) alarmBody.append(el("tr", {}, el("td", { colspan: "4", text: "no alarms in this period" })));
  const stintBody = $("#stints tbody");
  for (const s of stints.data) stintBody.append(el("tr", {}, el("td", {}, s.bus ? el("a", { href: `#asset/${encodeURIComponent(s.bus)}`, text: s.bus }) : "not installed"), td(fmtTime(s.from_ms)), td(fmtTime(s.to_ms)), td(s.messages)));
  const noStints = asset.kind === "pack" ? "no installation recorded"
    : asset.columns && asset.columns.pack ? "a GB/T 32960 terminal reports its pack in its own frames (the Pack charts above)"
    : "buses carry packs; see each pack's page";
  if (!stints.data.length) stintBody.append(el("tr", {}, el("td", { colspan: "4", text: noStints })));
}

// Tick labels in UTC, 24 h, as precise as the visible span needs.
function timeTicks(u, splits) {
  const span = u.scales.x.max - u.scales.x.min;
  const cut = span > 60 * 86400000 ? [0, 10] : span > 2 * 86400000 ? [5, 16] : span > 120000 ? [11, 16] : [11, 19];
  return splits.map((v) => new Date(v).toISOString().slice(cut[0], cut[1]).replace("T", " "));
}

function isoInput(ms) { return new Date(ms).toISOString().slice(0, 19); }

// The charts of each kind of samples the asset has (asset.columns): its own kind's, and for a
// GB/T 32960 terminal's bus also its pack's; a chart only when the asset carries every column
// it draws (a terminal's frames carry no state of health, throughput or ambient temperature).
function chartsOf(asset) {
  const columns = asset.columns || { [asset.kind]: null };
  return Object.entries(columns).map(([kind, names]) => ({
    kind,
    specs: (CHARTS[kind] || []).filter((spec) => !names || spec.lines.every(([field]) => names.includes(field))),
  })).filter((group) => group.specs.length);
}

async function drawCharts(asset, range) {
  const box = $("#charts");
  const gen = state.gen;
  const groups = chartsOf(asset);
  const answers = await Promise.all(groups.map(({ kind, specs }) => {
    const fields = [...new Set(specs.flatMap((s) => s.lines.map((l) => l[0])))];
    const q = new URLSearchParams({ kind, fields: fields.join(","), points: "800" });
    if (range.from) q.set("from", range.from);
    if (range.to) q.set("to", range.to);
    return getJson(`/api/dashboard/assets/${encodeURIComponent(asset.id)}/series?${q}`);
  }));
  if (stale(gen)) return;
  box.replaceChildren();
  if (!answers.length) return;
  $("#range-from").value = isoInput(answers[0].from_ms);
  $("#range-to").value = isoInput(answers[0].to_ms);
  state.span = { from: answers[0].from_ms, to: answers[0].to_ms };
  const width = Math.max(320, Math.min(560, box.clientWidth - 24));
  groups.forEach(({ kind, specs }, i) => drawGroup(box, asset, kind, specs, answers[i], width));
}

function drawGroup(box, asset, kind, specs, series, width) {
  // a terminal's pack charts say whose pack they are (the bus's page shows both kinds)
  const prefix = kind !== asset.kind ? "Pack: " : "";
  for (const spec of specs) {
    const chart = el("figure", { class: "chart", "data-title": spec.title, "data-kind": kind });
    chart.append(el("figcaption", { text: `${prefix}${spec.title} (${spec.unit})` }));
    box.append(chart);
    if (!series.t_ms.length) { chart.append(el("p", { class: "muted", text: "no samples in this period" })); continue; }
    const data = [series.t_ms];
    for (const [field, stat, scale] of spec.lines) {
      data.push(series.columns[field][stat].map((v) => (v == null ? null : v * scale)));
    }
    const opts = {
      width, height: 200, ms: 1,
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: true }, ...(spec.range ? { y: { range: spec.range } } : {}) },
      axes: [{ stroke: "#333", grid: { stroke: "#eee" }, values: timeTicks, space: 70 }, { stroke: "#333", grid: { stroke: "#eee" }, label: spec.unit, size: 60 }],
      series: [{ label: "time (UTC)", value: (u, v) => (v == null ? "–" : fmtTime(v)) },
        ...spec.lines.map(([, , , label], i) => ({ label, stroke: COLOURS[i], width: 1.5, spanGaps: false,
          paths: spec.step && uPlot.paths.stepped ? uPlot.paths.stepped({ align: 1 }) : undefined,
          value: (u, v) => (v == null ? "–" : `${v.toFixed(Math.abs(v) < 10 ? 2 : 1)} ${spec.unit}`) }))],
      tzDate: (ts) => uPlot.tzDate(new Date(ts), "Etc/UTC"),
    };
    if (typeof uPlot === "undefined") { chart.append(el("p", { text: "chart library missing (run scripts/setup.sh)" })); continue; }
    const plot = new uPlot(opts, data, chart);
    chart.dataset.points = String(series.t_ms.length);
    chart.dataset.gaps = String(data[1].filter((v) => v == null).length);
  }
}

function showDownloads(asset, lessor) {
  $("#downloads").hidden = false;
  const id = encodeURIComponent(asset.id);
  const items = [
    ["Evidence bundle", `/api/assets/${id}/bundle`, `${asset.id}.vpbundle.json`,
      `voltproof verify ${asset.id}.vpbundle.json --gateway-key gateway-verifier-key.txt --anchors anchors-export.json`],
    ["Condition report (JSON)", `/api/assets/${id}/report`, `${asset.id}-report.json`,
      `voltproof report ${asset.id}.vpbundle.json --json   # recomputes the same numbers from the bundle`],
  ];
  if (asset.kind === "pack") {
    items.push(["Battery passport (JSON)", `/api/assets/${id}/passport`, `${asset.id}-passport.json`,
      `voltproof report ${asset.id}.vpbundle.json --json   # the passport's values come from this report`]);
  }
  $("#downloads-period").textContent = lessor
    ? "Everything below is clipped to your lease. Verify each file yourself with the command beside it."
    : "Verify each file yourself with the command beside it.";
  const list = $("#download-list");
  for (const [label, url, name, command] of items) {
    const button = el("button", { type: "button", class: "download", "data-url": url, "data-name": name, text: `Download ${label}` });
    button.addEventListener("click", () => download(button, url, name));
    list.append(el("li", {}, button, el("code", { class: "command", text: command })));
  }
  const printable = el("a", { href: `report.html?asset=${id}`, class: "printable", text: "Printable condition report (for a credit committee)" });
  list.append(el("li", {}, printable, el("span", { class: "muted", text: " opens a page to print or save as PDF" })));
}

async function download(button, url, name) {
  const label = button.textContent;
  button.disabled = true;
  button.textContent = "Preparing…";
  try {
    const blob = await (await api(url)).blob();
    const link = el("a", { href: URL.createObjectURL(blob), download: name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
  } catch (err) {
    if (err.status !== 401) pageError(`Download failed: ${err.message}`);
  } finally {
    button.disabled = false;
    button.textContent = label;
  }
}

// --- proofs, checked in the browser with WebCrypto (RFC 9162 section 2.1.3.2) -------------
const hex = (bytes) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
const unhex = (text) => new Uint8Array(text.match(/../g).map((h) => parseInt(h, 16)));
const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
async function hashPrefixed(prefix, ...parts) {
  const buf = new Uint8Array(1 + parts.reduce((n, p) => n + p.length, 0));
  buf[0] = prefix;
  let at = 1;
  for (const p of parts) { buf.set(p, at); at += p.length; }
  return sha256(buf);
}

async function rootFromInclusion(leafHash, index, size, proof) {
  if (index >= size) throw new Error(`index ${index} is beyond size ${size}`);
  let fn = BigInt(index), sn = BigInt(size - 1), r = leafHash;
  for (const p of proof) {
    if (sn === 0n) throw new Error("proof is too long");
    if ((fn & 1n) === 1n || fn === sn) {
      r = await hashPrefixed(1, p, r);
      while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = await hashPrefixed(1, r, p);
    }
    fn >>= 1n; sn >>= 1n;
  }
  if (sn !== 0n) throw new Error("proof is too short");
  return r;
}

function noteRoot(note) {
  const raw = atob(note.split("\n")[2]);
  return hex(Uint8Array.from(raw, (c) => c.charCodeAt(0)));
}

async function showProof(id, open) {
  const summary = $("#proof-summary"), body = $("#proof-body");
  const gen = state.gen;
  let status;
  try {
    status = await getJson(`/api/proofs/assets/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err.status === 401 || stale(gen)) return;
    summary.textContent = "Proof: unavailable";
    $("#asset-title").textContent = "Asset not available";
    pageError(assetMessage(id, err));
    return;
  }
  if (stale(gen)) return;
  const line = (label, text, cls) => {
    const span = el("span", { class: cls, text });
    body.append(el("p", {}, el("b", { text: `${label}: ` }), span));
    return span;
  };
  if (!status.anchored || !status.inclusion) {
    summary.textContent = `Proof: not yet — ${status.server_check}`;
    summary.className = "warn";
    return;
  }
  const inc = status.inclusion;
  line("anchored checkpoint", `tree size ${status.anchored_size} (${status.anchor_backend} anchor)`);
  line("newest anchored message", `leaf ${inc.leaf_index}, ${inc.device} seq ${inc.seq}, ${fmtTime(inc.t_ms)}`);
  line("server check", status.server_check);
  const result = line("browser check", "checking…");
  result.id = "browser-check";
  try {
    if (!crypto.subtle) throw new Error("WebCrypto is unavailable (serve over https or localhost)");
    let leafHash = unhex(inc.leaf_hash), from = "the leaf hash (auditors do not receive message content)";
    if (inc.message_b64) {
      const message = Uint8Array.from(atob(inc.message_b64), (c) => c.charCodeAt(0));
      leafHash = await hashPrefixed(0, message);
      if (hex(leafHash) !== inc.leaf_hash) throw new Error("the message bytes do not hash to the leaf hash");
      from = "SHA-256 of the message";
    }
    const root = await rootFromInclusion(leafHash, inc.leaf_index, inc.tree_size, inc.proof.map(unhex));
    if (hex(root) !== inc.root) throw new Error("the inclusion proof does not lead to the root");
    if (inc.checkpoint && noteRoot(inc.checkpoint) !== inc.root) throw new Error("the signed checkpoint names another root");
    result.textContent = `verified: ${from} and ${inc.proof.length} proof hashes give root ${inc.root.slice(0, 16)}…`;
    result.className = "verified";
    summary.textContent = `Proof: verified in this browser — newest anchored message (leaf ${inc.leaf_index}) is in the ${status.anchor_backend}-anchored tree of size ${status.anchored_size}`;
    summary.className = "verified";
  } catch (err) {
    result.textContent = `FAILED: ${err.message}`;
    result.className = "failed";
    summary.textContent = `Proof: FAILED — ${err.message}`;
    summary.className = "failed";
  }
  body.append(el("pre", { class: "mono", text: inc.checkpoint || "" }));
  // The evidence v2 verdict of the bundle the download gives: asked for when the panel opens
  // (it costs what `voltproof verify` costs), never for auditors (they get no bundle).
  if (state.me.role !== "auditor") {
    state.verdict = { id, gen, asked: false };
    body.append(el("div", { id: "evidence-verdict" }, el("p", {}, el("b", { text: "evidence bundle (v2): " }),
      el("span", { id: "verdict-line", class: "muted", text: "checked on the server when this panel is opened" }))));
    if ($("#proof").open) showVerdict();
  }
  if (open) $("#proof").open = true;
}

// The server's v2 check of the asset's bundle: the verdict `voltproof verify` will give the
// download, except that the server holds only the operator's copy of the anchor table.
async function showVerdict() {
  const ask = state.verdict;
  if (!ask || ask.asked || stale(ask.gen)) return;
  ask.asked = true;
  const line = $("#verdict-line"), box = $("#evidence-verdict");
  line.textContent = "checking on the server…";
  let v;
  try {
    v = await getJson(`/api/assets/${encodeURIComponent(ask.id)}/verdict`);
  } catch (err) {
    if (err.status === 401 || stale(ask.gen)) return;
    line.textContent = `unavailable — ${err.message}`;
    line.className = "warn";
    return;
  }
  if (stale(ask.gen)) return;
  line.textContent = v.verdict;
  line.className = !v.valid ? "failed" : v.complete ? "verified" : "warn";
  $("#proof-summary").append(el("span", { id: "verdict-summary", class: line.className, text: ` · evidence: ${v.valid ? v.verdict : "INVALID"} (server check)` }));
  if (!v.valid) return;
  const anchored = v.anchored_at_ms == null ? "" : `, anchored ${fmtTime(v.anchored_at_ms)}`;
  box.append(el("p", { class: "muted", text: `period ${fmtTime(v.from_ms)} .. ${fmtTime(v.to_ms)}; checkpoint ${v.checkpoint_origin} size ${v.checkpoint_size}${anchored}. ` +
    `This server checked the anchor only against the operator's own table (${v.anchor_source}): for a verdict of your own, run the voltproof verify command below on the download with your anchor export or witnesses.` }));
  const rows = v.chains.map((c) => el("tr", {}, td(c.role), td(c.device), td(`${fmtTime(c.from_ms)} .. ${fmtTime(c.to_ms)}`),
    td(c.first_seq == null ? "none" : `${c.first_seq}..${c.last_seq}`), td(`${c.received}/${c.expected}`),
    td(c.missing.map(([a, b]) => (a === b ? `${a}` : `${a}..${b}`)).join(", ") || "none", c.missing.length ? "warn" : ""),
    td(c.start_proven ? "proven" : "NOT proven", c.start_proven ? "" : "warn"), td(c.end_proven ? "proven" : "NOT proven", c.end_proven ? "" : "warn")));
  const head = el("tr", {}, ...["chain", "device", "interval (UTC)", "seq", "received/expected", "missing", "start", "end"].map((h) => el("th", { scope: "col", text: h })));
  box.append(el("table", { id: "verdict-chains" }, el("thead", {}, head), el("tbody", {}, ...rows)));
  for (const device of v.absent) box.append(el("p", { class: "muted", text: `${device}: not enrolled (absence proven)` }));
}

// --- live updates (server-sent events read with fetch: the key goes in a header) ----------
function stopStream() { if (state.stream) state.stream.abort(); state.stream = null; }

async function startStream() {
  stopStream();
  const controller = new AbortController();
  state.stream = controller;
  try {
    const response = await fetch("/api/dashboard/events", { headers: { Authorization: `Bearer ${apiKey()}` }, signal: controller.signal });
    if (!response.ok || !response.body) return;
    $("#live").textContent = "live";
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "", first = true;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (!block.startsWith("event: log")) continue;
        const data = JSON.parse(block.split("\n").find((l) => l.startsWith("data: ")).slice(6));
        $("#live").textContent = `live · log ${data.log_size}`;
        if (!first) scheduleRefresh();
        first = false;
      }
    }
  } catch (err) {
    if (err.name === "AbortError") return;
  }
  if (state.stream === controller) {
    $("#live").textContent = "reconnecting…";
    setTimeout(() => { if (state.stream === controller && apiKey()) startStream(); }, 5000);
  }
}

function scheduleRefresh() {
  if (state.refreshTimer) return;
  state.refreshTimer = setTimeout(async () => {
    state.refreshTimer = null;
    const view = state.route;
    try {
      if (view === "fleet") {
        const gen = state.gen;
        const rows = await fetchFleet(gen, () => {});
        if (stale(gen)) return;
        state.fleet = rows; renderKpis(rows); renderFleetTable(); renderMap(rows); loadOpenAlarms(gen);
      }
      else if (view === "checkpoints") await loadCheckpoints();
    } catch (_) { /* the next event retries */ }
  }, 3000);
}

// --- routing ------------------------------------------------------------------------------
async function route() {
  const gen = ++state.gen;
  pageError("");
  if (!apiKey()) { showLogin(); return; }
  try {
    if (!state.me) {
      [state.me, state.config] = await Promise.all([getJson("/api/me"), getJson("/api/dashboard/config")]);
      $("#who").textContent = `${state.me.name} (${state.me.role}${state.me.fleet ? `, ${state.me.fleet}` : ""})`;
      $("#logout").hidden = false;
      $("#nav").hidden = false;
      for (const link of document.querySelectorAll("#nav a")) link.hidden = !link.dataset.roles.split(" ").includes(state.me.role);
      startStream();
    }
    if (stale(gen)) return;
    const hash = location.hash;
    const asset = hash.match(/^#asset\/([^?]+)$/);
    const home = state.me.role === "auditor" ? "checkpoints" : "fleet";
    const view = asset ? "asset" : (hash.slice(1) || home);
    state.route = view;
    if (asset) await loadAsset(decodeURIComponent(asset[1]));
    else if (view === "alarms") await loadAlarms();
    else if (view === "quarantine") await loadQuarantine();
    else if (view === "checkpoints") await loadCheckpoints();
    else if (home === "fleet") await loadFleet();
    else await loadCheckpoints();
  } catch (err) {
    if (err.status !== 401) pageError(`Error: ${err.message}`);
  }
}

$("#login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, $("#key").value.trim());
  $("#key").value = "";
  route();
});
$("#logout").addEventListener("click", () => showLogin());
for (const id of ["#filter-text", "#filter-kind", "#filter-status", "#filter-alarm"]) {
  $(id).addEventListener("input", renderFleetTable);
}
$("#fleet-filter").addEventListener("submit", (event) => event.preventDefault());
for (const button of document.querySelectorAll("#assets th button")) {
  button.addEventListener("click", () => {
    const key = button.dataset.sort;
    state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : 1 };
    renderFleetTable();
  });
}
$("#alarm-level").addEventListener("change", () => loadAlarms().catch((e) => pageError(e.message)));
$("#alarm-hide-acked").addEventListener("change", () => loadAlarms().catch((e) => pageError(e.message)));
$("#alarms-more").addEventListener("click", () => loadAlarms(true).catch((e) => pageError(e.message)));
$("#quarantine-more").addEventListener("click", () => loadQuarantine(true).catch((e) => pageError(e.message)));
$("#checkpoints-more").addEventListener("click", async () => {
  try { appendCheckpoints(await getJson(withCursor("/api/checkpoints?limit=50", state.checkpointsNext))); }
  catch (e) { pageError(e.message); }
});
$("#range").addEventListener("submit", async (event) => {
  event.preventDefault();
  const id = decodeURIComponent((location.hash.match(/^#asset\/(.+)$/) || [])[1] || "");
  const from = $("#range-from").value, to = $("#range-to").value;
  const asset = await getJson(`/api/assets/${encodeURIComponent(id)}`);
  try { await drawCharts(asset, { from: from && `${from}Z`, to: to && `${to}Z` }); } catch (err) { pageError(err.message); }
});
$("#range-all").addEventListener("click", async () => {
  const id = decodeURIComponent((location.hash.match(/^#asset\/(.+)$/) || [])[1] || "");
  await drawCharts(await getJson(`/api/assets/${encodeURIComponent(id)}`), {});
});
$("#range-day").addEventListener("click", async () => {
  const id = decodeURIComponent((location.hash.match(/^#asset\/(.+)$/) || [])[1] || "");
  const asset = await getJson(`/api/assets/${encodeURIComponent(id)}`);
  const to = (state.span && state.span.to) || Date.now();
  await drawCharts(asset, { from: String(Math.max(0, to - 86400000)), to: String(to) });
});
$("#proof").addEventListener("toggle", () => { if ($("#proof").open) showVerdict(); });
window.addEventListener("hashchange", route);
route();
