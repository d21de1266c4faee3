#!/usr/bin/env bash
# Fetches and checks everything ferry builds with, into .deps/ (ignored by git).
# Idempotent: a second run only verifies. Debian packages are installed when
# running as root; otherwise it names the missing ones and stops.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEPS=$ROOT/.deps
mkdir -p "$DEPS"

# Pinned versions: SQLite comes inside better-sqlite3's npm tarball.
BSQLITE_VERSION=12.11.1
BSQLITE_SHA256=ebf0ed75a7a59dbcb3b24bbd014ef49d9f15bc328e4adcbf516f2a8fadfa2835
SQLITE_VERSION=3.53.2
CJSON_DEB_VERSION=1.7.15   # Debian source package cjson, with Debian's patches

say() { printf 'deps: %s\n' "$*" >&2; }
die() { printf 'deps: FAILED: %s\n' "$*" >&2; exit 1; }

# --- Debian packages -------------------------------------------------------
need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
have cmake || need_pkgs+=(cmake)
have gcc || need_pkgs+=(gcc)
have make || need_pkgs+=(make)
have emcc || need_pkgs+=(emscripten)
have wasm-opt || need_pkgs+=(binaryen)
have dpkg-source || need_pkgs+=(dpkg-dev)
have xz || need_pkgs+=(xz-utils)
# What only the test suites use (npm start and npm pack set FERRY_NO_BROWSER and FERRY_NO_POSTGRES):
# Chromium, and the sqlite3 shell, a SQLite that is not ferry's, which reads
# ferry's database files to prove they are plain SQLite files.
if [ "${FERRY_NO_BROWSER:-}" != 1 ]; then
  [ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
  have sqlite3 || need_pkgs+=(sqlite3)
fi
[ -d /usr/share/nodejs/acorn ] || need_pkgs+=(node-acorn)
# The server suites run against PostgreSQL too (scripts/pg.sh starts a throwaway cluster).
if [ "${FERRY_NO_POSTGRES:-}" != 1 ]; then
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_pkgs+=(postgresql)
fi

apt_updated=0
apt_update() {
  if [ $apt_updated = 0 ]; then
    apt-get update -qq || die "apt-get update failed (is the network to Debian's mirrors reachable?)"
    apt_updated=1
  fi
}

if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing Debian packages: ${need_pkgs[*]}"
    apt_update
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null \
      || die "apt-get install ${need_pkgs[*]} failed"
  else
    die "missing Debian packages: ${need_pkgs[*]} (run: sudo apt-get install ${need_pkgs[*]})"
  fi
fi

# --- deb-src entries, mirrored from the machine's own Debian sources --------
ensure_deb_src() {
  if apt-cache showsrc cjson 2>/dev/null | grep '^Package: cjson' >/dev/null; then return 0; fi
  [ "$(id -u)" = 0 ] || die "no deb-src entry for Debian sources; as root this script adds one (or add it by hand)"
  local out=/etc/apt/sources.list.d/ferry-deb-src.sources
  : > "$out.tmp"
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] && [ "$f" != "$out" ] || continue
    # Copy each deb822 stanza whose URIs point at a Debian archive, as deb-src.
    awk 'BEGIN{RS=""; ORS="\n\n"} /Types: deb\n/ && /URIs:[^\n]*debian/ {sub(/Types: deb\n/, "Types: deb-src\n"); print}' "$f" >> "$out.tmp"
  done
  if [ -f /etc/apt/sources.list ]; then
    grep -E '^deb [^#]*debian' /etc/apt/sources.list | sed 's/^deb /deb-src /' > /etc/apt/sources.list.d/ferry-deb-src.list || true
  fi
  if [ -s "$out.tmp" ]; then mv "$out.tmp" "$out"; else rm -f "$out.tmp"; fi
  apt_updated=0; apt_update
  apt-cache showsrc cjson 2>/dev/null | grep '^Package: cjson' >/dev/null \
    || die "could not enable Debian source packages (deb-src) for cjson"
}

# --- SQLite amalgamation ----------------------------------------------------
if [ ! -f "$DEPS/sqlite/sqlite3.c" ]; then
  say "fetching SQLite $SQLITE_VERSION from better-sqlite3@$BSQLITE_VERSION (npm registry)"
  tmp=$(mktemp -d)
  # --pack-destination: under `npm pack` (prepack) npm hands its own options
  # down (npm_config_pack_destination), which would put the tarball elsewhere.
  ( cd "$tmp" && npm pack --silent --pack-destination "$tmp" "better-sqlite3@$BSQLITE_VERSION" >/dev/null ) \
    || die "npm pack better-sqlite3@$BSQLITE_VERSION failed (npm registry unreachable?)"
  echo "$BSQLITE_SHA256  $tmp/better-sqlite3-$BSQLITE_VERSION.tgz" | sha256sum -c --quiet - \
    || die "sha256 mismatch for better-sqlite3-$BSQLITE_VERSION.tgz"
  mkdir -p "$DEPS/sqlite.tmp"
  tar -xzf "$tmp/better-sqlite3-$BSQLITE_VERSION.tgz" -C "$DEPS/sqlite.tmp" --strip-components=3 \
    package/deps/sqlite3/sqlite3.c package/deps/sqlite3/sqlite3.h package/deps/sqlite3/sqlite3ext.h
  rm -rf "$tmp" "$DEPS/sqlite"; mv "$DEPS/sqlite.tmp" "$DEPS/sqlite"
fi
grep -q "#define SQLITE_VERSION *\"$SQLITE_VERSION\"" "$DEPS/sqlite/sqlite3.h" \
  || die "$DEPS/sqlite holds the wrong SQLite version (want $SQLITE_VERSION); delete .deps/sqlite"

# --- cJSON from Debian's source package (patches applied by dpkg-source) ----
if [ ! -f "$DEPS/cjson/cJSON.c" ]; then
  ensure_deb_src
  say "fetching cJSON from Debian's cjson source package"
  tmp=$(mktemp -d)
  ( cd "$tmp" && apt-get source -qq cjson >/dev/null 2>&1 ) || die "apt-get source cjson failed"
  src=$(ls -d "$tmp"/cjson-*/ | head -1)
  grep -q "CJSON_VERSION_MINOR 7" "$src/cJSON.h" || die "unexpected cJSON version in $src"
  mkdir -p "$DEPS/cjson"
  cp "$src/cJSON.c" "$src/cJSON.h" "$DEPS/cjson/"
  ls "$tmp"/cjson_*.dsc | xargs -n1 basename > "$DEPS/cjson/SOURCE"
  rm -rf "$tmp"
fi

# --- speedtest1.c (benchmarks only) from Debian's sqlite3 source package ----
if [ "${FERRY_DEPS_BENCH:-}" = 1 ] && [ ! -f "$DEPS/speedtest1/speedtest1.c" ]; then
  ensure_deb_src
  say "fetching speedtest1.c from Debian's sqlite3 source package"
  tmp=$(mktemp -d)
  ( cd "$tmp" && apt-get source --download-only -qq sqlite3 >/dev/null 2>&1 ) || die "apt-get source sqlite3 failed"
  orig=$(ls "$tmp"/sqlite3_*.orig.tar.xz | grep -v www | head -1)
  mkdir -p "$DEPS/speedtest1"
  tar -xJf "$orig" -C "$tmp" --wildcards '*/test/speedtest1.c'
  cp "$(find "$tmp" -name speedtest1.c | head -1)" "$DEPS/speedtest1/"
  rm -rf "$tmp"
fi

# --- npm packages -------------------------------------------------------------
# Every dependency and devDependency package.json names (pinned by the lock).
missing=$(node -e '
  const p = require("./package.json");
  const names = Object.keys({ ...p.dependencies, ...p.devDependencies });
  console.log(names.filter((n) => !require("fs").existsSync(`node_modules/${n}/package.json`)).join(" "));
')
if [ -n "$missing" ]; then
  say "installing npm packages (missing: $missing)"
  npm install --no-audit --no-fund --silent || die "npm install failed"
fi
say "ok"
