// The condition report as a printable page: the same JSON the API serves and
// `voltproof report BUNDLE --json` recomputes from the evidence bundle.
"use strict";

const main = document.getElementById("report");
const fmtTime = (ms) => (ms == null ? "–" : new Date(ms).toISOString().replace(".000Z", "Z").replace("T", " "));
const human = (key) => key.replace(/_/g, " ").replace(/\bsoh\b/g, "SoH").replace(/\bsoc\b/g, "SoC")
  .replace(/\bkm\b/g, "km").replace(/^./, (c) => c.toUpperCase());
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}
function fmtValue(value, unit) {
  if (value == null) return "not determined";
  if (typeof value !== "number") return String(value);
  if (unit === "/" || unit === "1/1") return `${(value * 100).toFixed(1)} %`;
  const text = Number.isInteger(value) || Math.abs(value) >= 100 ? value.toFixed(0) : value.toPrecision(4);
  return unit && unit !== "1" ? `${text} ${unit}` : text;
}
function table(head, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r))));
}
const cell = (text, cls) => el("td", cls ? { class: cls, text } : { text });

async function load() {
  const params = new URLSearchParams(location.search);
  const asset = params.get("asset");
  const key = sessionStorage.getItem("voltproof-api-key");
  if (!asset) throw new Error("no asset given (report.html?asset=ID)");
  if (!key) throw new Error("no API key in this tab: open the dashboard, paste a key, and use its report link");
  const q = new URLSearchParams();
  for (const name of ["from", "to"]) if (params.get(name)) q.set(name, params.get(name));
  const response = await fetch(`/api/assets/${encodeURIComponent(asset)}/report?${q}`, { headers: { Authorization: `Bearer ${key}` } });
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail; } catch (_) { /* not JSON */ }
    throw new Error(response.status === 404 ? `no asset “${asset}” you may see` : detail);
  }
  render(await response.json());
}

function render(r) {
  document.title = `Condition report ${r.asset.id} – voltproof`;
  const complete = r.completeness.every((c) => !c.missing.length && c.received === c.expected);
  main.replaceChildren(
    el("p", { class: "no-print" }, el("button", { type: "button", id: "print", text: "Print or save as PDF" })),
    el("h1", { text: `Battery condition report: ${r.asset.kind} ${r.asset.id}` }),
    el("p", { class: "sub", text: `Period ${fmtTime(r.period.from_ms)} to ${fmtTime(r.period.to_ms)} (UTC) · format ${r.format}` }),
    el("p", { class: `verdict ${complete ? "complete" : "incomplete"}`,
      text: complete ? "Data completeness: every message of every chain in the period is present."
        : "Data completeness: messages are MISSING (see the completeness table)." }),
    el("p", {}, "Every figure is computed from device-signed messages. Recompute it yourself from the evidence bundle: ",
      el("code", { text: `voltproof verify ${r.asset.id}.vpbundle.json` }), " then ",
      el("code", { text: `voltproof report ${r.asset.id}.vpbundle.json` }), "."),
    el("h2", { text: "Figures" }),
    table(["Figure", "Value", "How it is computed"], Object.entries(r.figures).map(([k, f]) => [
      cell(human(k)), cell(fmtValue(f.value, f.unit), "num"),
      el("td", { class: "method" }, f.reason ? `${f.method} (${f.reason})` : f.method)])),
    el("h2", { text: "Alarms by level" }),
    table(["Level", "Count"], Object.entries(r.alarms_by_level).map(([level, n]) => [cell(level), cell(String(n), "num")])),
    el("h2", { text: "State-of-charge residence" }),
    table(["SoC band", "Hours"], r.soc_histogram.map((b) => [cell(`${(b.low * 100).toFixed(0)}–${(b.high * 100).toFixed(0)} %`), cell(b.hours.toFixed(2), "num")])),
    el("h2", { text: "Pack swaps" }),
    r.pack_swaps.length ? table(["Time (UTC)", "Bus", "Out", "In"], r.pack_swaps.map((s) => [cell(fmtTime(s.t_ms)), cell(s.device), cell(s.out || "–"), cell(s.in || "–")]))
      : el("p", { text: "No pack swap in the period." }),
    el("h2", { text: "Completeness" }),
    table(["Device", "Seq range", "Received / expected", "Missing"], r.completeness.map((c) => [cell(c.device),
      cell(`${c.first_seq ?? "–"} … ${c.last_seq ?? "–"}`), cell(`${c.received} / ${c.expected}`, "num"),
      cell(c.missing.length ? c.missing.map(([a, b]) => (a === b ? a : `${a}–${b}`)).join(", ") : "none")])),
  );
  document.getElementById("print").addEventListener("click", () => window.print());
}

load().catch((err) => {
  main.replaceChildren(el("h1", { text: "Condition report unavailable" }), el("p", { class: "error", role: "alert", text: err.message }));
});
