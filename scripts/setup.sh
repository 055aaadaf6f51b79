#!/usr/bin/env bash
# Prepare this checkout: system packages (when missing and we are allowed to install them),
# a virtual environment in .venv with voltproof and its development tools.
# Idempotent: a second run only checks what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

apt_install() {
    # Install Debian packages that are missing; needs root (or sudo) and apt-get.
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        log "missing system packages: ${missing[*]} (no apt-get here: install them by hand)"
        return 1
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
            log "missing system packages: ${missing[*]}; run: apt-get install -y ${missing[*]}"
            return 1
        fi
    fi
    log "installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# mosquitto: the reference MQTT broker that the demo and the integration tests start themselves.
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || apt_install mosquitto

# PostgreSQL server binaries (initdb, pg_ctl): the store tests and the multi-gateway tests start
# their own throwaway cluster. Debian keeps them in /usr/lib/postgresql/<version>/bin, off PATH.
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    apt_install postgresql
fi

# npm packages pinned by package-lock.json: solc-js (compiles contracts/AnchorRegistry.sol),
# anvil (the EVM node that the EVM anchor tests, benchmark and demo start themselves), the
# dashboard's browser libraries and axe-core (the dashboard's accessibility test).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
    command -v npm >/dev/null 2>&1 || apt_install nodejs npm
    log "installing npm packages (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
    touch node_modules
fi
# The dashboard's browser libraries (uPlot, Leaflet, Swagger UI, ReDoc), copied from node_modules
# into api/static/vendor/ so the API serves them itself (no CDN; /docs works offline).
if [ ! -f api/static/vendor/versions.json ] || [ package-lock.json -nt api/static/vendor/versions.json ]; then
    node scripts/vendor-assets.mjs >&2
fi

# chromium: the browser the dashboard test drives through Playwright (never `playwright install`).
command -v chromium >/dev/null 2>&1 || apt_install chromium

# systemd-analyze: the test that hands configs/systemd/*.service to systemd's own checker.
command -v systemd-analyze >/dev/null 2>&1 || apt_install systemd

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    log "creating .venv with $($PYTHON --version 2>&1)"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.voltproof-installed
# constraints.txt pins every Python package to the versions the project was last tested
# with (regenerate: .venv/bin/pip freeze --exclude-editable > constraints.txt).
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
    log "installing voltproof and its development tools into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -c constraints.txt -e '.[dev]'
    touch "$stamp"
fi
log "ready: .venv/bin/voltproof"
