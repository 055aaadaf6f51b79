// Copy the dashboard's browser libraries from node_modules (pinned by package-lock.json) into
// api/static/vendor/, which the API serves; nothing is fetched from a CDN at run time.
// Run by scripts/setup.sh after `npm ci`; idempotent. api/static/vendor/ is not committed.
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const modules = join(root, "node_modules");
const target = join(root, "api", "static", "vendor");

// [package, file inside the package, name under vendor/]
const FILES = [
  ["uplot", "dist/uPlot.iife.min.js", "uplot/uPlot.iife.min.js"],
  ["uplot", "dist/uPlot.min.css", "uplot/uPlot.min.css"],
  ["leaflet", "dist/leaflet.js", "leaflet/leaflet.js"],
  ["leaflet", "dist/leaflet.css", "leaflet/leaflet.css"],
  ["swagger-ui-dist", "swagger-ui-bundle.js", "swagger-ui/swagger-ui-bundle.js"],
  ["swagger-ui-dist", "swagger-ui.css", "swagger-ui/swagger-ui.css"],
  ["redoc", "bundles/redoc.standalone.js", "redoc/redoc.standalone.js"],
];
const DIRS = [["leaflet", "dist/images", "leaflet/images"]];
// ReDoc's bundle names one outside URL (the logo in its "API docs by Redocly" footer): point it
// at the dashboard's own icon so /redoc makes no request beyond this API (offline, no errors).
const REWRITES = [["redoc/redoc.standalone.js", "https://cdn.redoc.ly/redoc/logo-mini.svg", "/favicon.svg"]];

rmSync(target, { recursive: true, force: true });
const versions = {};
for (const [pkg, from, to] of FILES) {
  mkdirSync(dirname(join(target, to)), { recursive: true });
  copyFileSync(join(modules, pkg, from), join(target, to));
  versions[pkg] = JSON.parse(readFileSync(join(modules, pkg, "package.json"), "utf8")).version;
}
for (const [pkg, from, to] of DIRS) {
  mkdirSync(join(target, to), { recursive: true });
  for (const name of readdirSync(join(modules, pkg, from))) {
    copyFileSync(join(modules, pkg, from, name), join(target, to, name));
  }
}
for (const [file, from, to] of REWRITES) {
  const text = readFileSync(join(target, file), "utf8");
  if (!text.includes(from)) throw new Error(`${file} no longer names ${from}: review the rewrite`);
  writeFileSync(join(target, file), text.split(from).join(to));
}
writeFileSync(join(target, "versions.json"), JSON.stringify(versions, null, 1) + "\n");
console.log(`[vendor] ${Object.entries(versions).map(([p, v]) => `${p}@${v}`).join(" ")} -> api/static/vendor/`);
