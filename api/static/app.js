// voltproof dashboard: plain JS, no build step, no network beyond this API.
"use strict";

const KEY = "voltproof-api-key";
const $ = (sel) => document.querySelector(sel);

function apiKey() { return sessionStorage.getItem(KEY); }

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { Authorization: `Bearer ${apiKey()}`, ...(options.headers || {}) },
  });
  if (response.status === 401) { showLogin("the key was refused"); throw new Error("401"); }
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail; } catch (_) { /* not JSON */ }
    throw new Error(`${response.status}: ${detail}`);
  }
  return response;
}
const getJson = async (path) => (await api(path)).json();

function fmtTime(ms) { return ms == null ? "never" : new Date(ms).toISOString().replace(".000Z", "Z"); }
function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function show(section) {
  for (const id of ["login", "fleet", "asset"]) $(`#${id}`).hidden = id !== section;
}

function showLogin(message) {
  sessionStorage.removeItem(KEY);
  $("#login-error").textContent = message || "";
  $("#logout").hidden = true;
  $("#who").textContent = "";
  show("login");
}

async function loadFleet() {
  show("fleet");
  const [assets, alarms] = await Promise.all([
    getJson("/api/assets"),
    getJson("/api/alarms?limit=50").catch(() => ({ data: [] })),
  ]);
  const body = $("#assets tbody");
  body.replaceChildren();
  let online = 0;
  for (const a of assets.data) {
    if (a.online) online += 1;
    const tr = document.createElement("tr");
    tr.className = "clickable asset-row";
    tr.dataset.asset = a.id;
    const soc = a.latest && a.latest.soc != null ? `${(a.latest.soc * 100).toFixed(1)} %` : "";
    tr.append(cell(a.id), cell(a.kind), cell(a.fleet),
      cell(a.online ? "online" : "offline", a.online ? "online" : "offline"),
      cell(fmtTime(a.last_seen_ms)), cell(soc),
      cell(a.alarm_level == null ? "" : String(a.alarm_level), `level-${a.alarm_level}`));
    tr.addEventListener("click", () => { location.hash = `#asset/${encodeURIComponent(a.id)}`; });
    body.append(tr);
  }
  $("#fleet-summary").textContent =
    `${assets.count} assets, ${online} online, ${alarms.data.length} recent alarms`;
  fillAlarms($("#alarms tbody"), alarms.data, true);
}

function fillAlarms(body, alarms, withAsset) {
  body.replaceChildren();
  for (const al of alarms) {
    const tr = document.createElement("tr");
    tr.append(cell(fmtTime(al.t_ms)));
    if (withAsset) tr.append(cell(al.device));
    tr.append(cell(String(al.level), `level-${al.level}`));
    if (!withAsset) tr.append(cell(String(al.flags)));
    tr.append(cell(al.source));
    if (withAsset) tr.append(cell(al.detail));
    body.append(tr);
  }
}

const CHARTS = {
  pack: [
    { title: "State of charge (%)", fields: ["soc"], scale: 100 },
    { title: "State of health, capacity (%)", fields: ["soh_capacity"], scale: 100 },
    { title: "Temperatures (°C): max and min probe", fields: ["temp_max_c", "temp_min_c"], scale: 1 },
    { title: "Cell voltage spread (mV)", fields: ["cell_v_max", "cell_v_min"], spread: true, scale: 1000 },
  ],
  bus: [
    { title: "Speed (km/h)", fields: ["speed_mps"], scale: 3.6 },
    { title: "Odometer (km)", fields: ["odometer_m"], scale: 0.001 },
    { title: "Ambient temperature (°C)", fields: ["ambient_c"], scale: 1 },
  ],
};
const COLOURS = ["#1f77b4", "#d62728"];

function drawChart(spec, seriesList) {
  const NS = "http://www.w3.org/2000/svg";
  const W = 500, H = 170, L = 46, B = 18;
  const box = document.createElement("div");
  box.className = "chart";
  box.dataset.fields = spec.fields.join(",");
  const h4 = document.createElement("h4");
  h4.textContent = spec.title;
  box.append(h4);
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const pts = seriesList.flat();
  if (pts.length === 0) {
    const p = document.createElement("p");
    p.textContent = "no samples in this period";
    box.append(p);
    return box;
  }
  const t0 = Math.min(...pts.map((p) => p.t)), t1 = Math.max(...pts.map((p) => p.t)) || t0 + 1;
  let lo = Math.min(...pts.map((p) => p.min)), hi = Math.max(...pts.map((p) => p.max));
  if (hi === lo) { hi += 1; lo -= 1; }
  const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - 4);
  const y = (v) => 4 + (1 - (v - lo) / (hi - lo)) * (H - B - 8);
  for (const v of [lo, (lo + hi) / 2, hi]) {
    const label = document.createElementNS(NS, "text");
    label.setAttribute("x", 2); label.setAttribute("y", y(v) + 4);
    label.setAttribute("font-size", "10");
    label.textContent = v.toFixed(Math.abs(hi - lo) < 10 ? 2 : 0);
    svg.append(label);
  }
  seriesList.forEach((series, i) => {
    if (series.length === 0) return;
    const band = document.createElementNS(NS, "polygon");
    const upper = series.map((p) => `${x(p.t)},${y(p.max)}`);
    const lower = series.slice().reverse().map((p) => `${x(p.t)},${y(p.min)}`);
    band.setAttribute("points", upper.concat(lower).join(" "));
    band.setAttribute("fill", COLOURS[i]); band.setAttribute("fill-opacity", "0.15");
    svg.append(band);
    const line = document.createElementNS(NS, "polyline");
    line.setAttribute("points", series.map((p) => `${x(p.t)},${y(p.avg)}`).join(" "));
    line.setAttribute("fill", "none"); line.setAttribute("stroke", COLOURS[i]);
    line.setAttribute("stroke-width", "1.5");
    line.classList.add("series");
    svg.append(line);
  });
  const axis = document.createElementNS(NS, "text");
  axis.setAttribute("x", L); axis.setAttribute("y", H - 3); axis.setAttribute("font-size", "10");
  axis.textContent = `${fmtTime(t0)} … ${fmtTime(t1)}`;
  svg.append(axis);
  box.append(svg);
  return box;
}

async function bucketsOf(asset, field, scale) {
  const data = await getJson(`/api/assets/${encodeURIComponent(asset)}/buckets?field=${field}&points=300`);
  return data.data.map((b) => ({ t: b.t_ms, min: b.min * scale, max: b.max * scale, avg: b.avg * scale }));
}

async function loadAsset(id) {
  show("asset");
  const asset = await getJson(`/api/assets/${encodeURIComponent(id)}`);
  $("#asset-title").textContent =
    `${asset.kind} ${asset.id} (${asset.fleet}) — ${asset.online ? "online" : "offline"}, last seen ${fmtTime(asset.last_seen_ms)}`;
  const charts = $("#charts");
  charts.replaceChildren();
  for (const spec of CHARTS[asset.kind] || []) {
    const series = await Promise.all(spec.fields.map((f) => bucketsOf(id, f, spec.scale)));
    if (spec.spread) {
      const [top, bottom] = series;
      const spread = top.map((p, i) => {
        const q = bottom[i] || p;
        return { t: p.t, min: p.min - q.max, max: p.max - q.min, avg: p.avg - q.avg };
      });
      charts.append(drawChart(spec, [spread]));
    } else {
      charts.append(drawChart(spec, series));
    }
  }
  const alarms = await getJson(`/api/alarms?asset=${encodeURIComponent(id)}&limit=50`);
  fillAlarms($("#asset-alarms tbody"), alarms.data, false);
  await showProof(id);
}

// --- proofs, checked in the browser with WebCrypto (RFC 9162 section 2.1.3.2) -------------
const hex = (bytes) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
const unhex = (text) => new Uint8Array(text.match(/../g).map((h) => parseInt(h, 16)));
const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
async function hashPrefixed(prefix, ...parts) {
  const total = 1 + parts.reduce((n, p) => n + p.length, 0);
  const buf = new Uint8Array(total);
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
  const lines = note.split("\n");
  const raw = atob(lines[2]);
  return hex(Uint8Array.from(raw, (c) => c.charCodeAt(0)));
}

async function showProof(id) {
  const box = $("#proof");
  box.replaceChildren();
  const status = await getJson(`/api/proofs/assets/${encodeURIComponent(id)}`);
  const line = (label, text, cls) => {
    const p = document.createElement("p");
    const b = document.createElement("b");
    b.textContent = `${label}: `;
    const span = document.createElement("span");
    span.textContent = text;
    if (cls) span.className = cls;
    p.append(b, span);
    box.append(p);
    return span;
  };
  if (!status.anchored || !status.inclusion) {
    line("proof", status.server_check, "failed");
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
    const message = Uint8Array.from(atob(inc.message_b64), (c) => c.charCodeAt(0));
    const leafHash = await hashPrefixed(0, message);
    if (hex(leafHash) !== inc.leaf_hash) throw new Error("the message bytes do not hash to the leaf hash");
    const root = await rootFromInclusion(leafHash, inc.leaf_index, inc.tree_size, inc.proof.map(unhex));
    if (hex(root) !== inc.root) throw new Error("the inclusion proof does not lead to the root");
    if (inc.checkpoint && noteRoot(inc.checkpoint) !== inc.root) {
      throw new Error("the signed checkpoint names another root");
    }
    result.textContent = `verified: SHA-256 of the message and ${inc.proof.length} proof hashes give root ${inc.root.slice(0, 16)}…`;
    result.className = "verified";
  } catch (err) {
    result.textContent = `FAILED: ${err.message}`;
    result.className = "failed";
  }
  const pre = document.createElement("pre");
  pre.className = "mono";
  pre.textContent = inc.checkpoint || "";
  box.append(pre);
}

async function route() {
  if (!apiKey()) { showLogin(); return; }
  try {
    const me = await getJson("/api/me");
    $("#who").textContent = `${me.name} (${me.role}${me.fleet ? `, ${me.fleet}` : ""})`;
    $("#logout").hidden = false;
    const match = location.hash.match(/^#asset\/(.+)$/);
    if (match) await loadAsset(decodeURIComponent(match[1]));
    else await loadFleet();
  } catch (err) {
    if (err.message !== "401") {
      $("#fleet-summary").textContent = `error: ${err.message}`;
    }
  }
}

$("#login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, $("#key").value.trim());
  $("#key").value = "";
  route();
});
$("#logout").addEventListener("click", () => showLogin());
$("#back").addEventListener("click", (event) => { event.preventDefault(); location.hash = ""; });
window.addEventListener("hashchange", route);
route();
