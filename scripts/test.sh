#!/usr/bin/env bash
# npm test: everything. Fetches what is missing, builds, then runs the native
# tests (ctest), the Node suites and the browser suites (headless Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== %s\n' "$*"; }
fail() { printf '\nnpm test: FAILED at: %s\n' "$*" >&2; exit 1; }

step "dependencies"; bash scripts/deps.sh || fail "fetching dependencies (see the message above)"
step "build";        bash scripts/build.sh || fail "build"
step "native tests"; (cd build/native && ctest --output-on-failure -j2) || fail "native tests (ctest)"
step "node tests";   node --test --test-concurrency=1 tests/node/ || fail "node tests"
step "browser tests"; node --test --test-concurrency=1 tests/browser/ || fail "browser tests (headless Chromium)"
