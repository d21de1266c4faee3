#!/usr/bin/env bash
# npm test: everything. Fetches what is missing, builds, then runs the native
# tests (ctest), the Node suites, the server suites again on PostgreSQL (a
# throwaway cluster this run starts and stops) and the browser suites
# (headless Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== %s\n' "$*"; }
fail() { printf '\nnpm test: FAILED at: %s\n' "$*" >&2; exit 1; }

# The suites whose server runs on either backend: they run on SQLite with the
# rest, then on PostgreSQL (tests/node/backend.js picks it up from FERRY_TEST_POSTGRES).
SERVER_SUITES=(server security sync sync-faults server-restart auth signout verify files file-refs files-server blob-stores server-throughput sync-durability sync-indexeddb convergence random snapshot postgres)

step "dependencies"; bash scripts/deps.sh || fail "fetching dependencies (see the message above)"
step "build";        bash scripts/build.sh || fail "build"
step "native tests"; (cd build/native && ctest --output-on-failure -j2) || fail "native tests (ctest)"
step "node tests";   node --test --test-concurrency=1 tests/node/ || fail "node tests"

step "server tests on PostgreSQL"
pgdir=$(mktemp -d)
trap 'bash scripts/pg.sh stop "$pgdir/pg"; rm -rf "$pgdir"' EXIT
url=$(bash scripts/pg.sh start "$pgdir/pg") || fail "starting a PostgreSQL cluster for the server tests (see the message above)"
FERRY_TEST_POSTGRES=$url node --test --test-concurrency=1 $(printf "tests/node/%s.test.js " "${SERVER_SUITES[@]}") \
  || fail "server tests on PostgreSQL"
bash scripts/pg.sh stop "$pgdir/pg"

step "browser tests"; node --test --test-concurrency=1 tests/browser/ || fail "browser tests (headless Chromium)"
