#!/usr/bin/env bash
# npm run bench: SQLite's speedtest1 natively and as ferry's wasm on ferry's
# VFS (memory and file stores), wasm/native time ratios, and durable one-row
# commits on Node 'file', Chromium IndexedDB and OPFS (latency, bytes);
# sync, time to first data, the cost of the server's access checks, and
# file transfer throughput against a plain fetch. FERRY_BENCH_ONLY=size runs
# only the package size comparison (bench/package-size.mjs).
# Not part of npm test. Bounded to FERRY_BENCH_BUDGET seconds in all
# (default 570, builds included); writes only under build/ (build/bench/) and
# the OS temp dir. See BENCHMARKS.md and bench/README.md.
#
#   FERRY_BENCH_VARIANTS=1  also build and time the flag variants (bench/CMakeLists.txt)
#   FERRY_BENCH_REPS=N      repetitions (default 5); more in bench/run.mjs
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
budget=${FERRY_BENCH_BUDGET:-570}
jobs=$(nproc 2>/dev/null || echo 2)
say() { printf '\n== %s\n' "$*" >&2; }
fail() { printf '\nnpm run bench: FAILED at: %s\n' "$*" >&2; exit 1; }
left() { echo $(( budget - ($(date +%s) - start) )); }

# Access checks (issue 9): this checkout's server with a per-user filter
# against the same code with a filter that names no user (same run), and
# against the server of the commit before the checks, extracted from git and
# built with the product's flags under build/bench/access-base (cached; our
# own history, never committed). Within what is left of the budget.
access_bench() {
  access_base=${FERRY_BENCH_ACCESS_BASE:-d666266^}
  base_dir=build/bench/access-base
  unset FERRY_BENCH_ACCESS_BASE_DIR
  if [ "$access_base" != none ] && rev=$(git rev-parse -q --verify "$access_base^{commit}" 2>/dev/null); then
    if [ "$(cat "$base_dir/commit" 2>/dev/null)" = "$rev" ] && [ -f "$base_dir/src/bindings/dist/ferry-core.wasm" ]; then
      export FERRY_BENCH_ACCESS_BASE_DIR="$base_dir/src"
    elif [ "$(left)" -gt 300 ]; then
      say "access: building the server of $access_base (${rev:0:7}) under $base_dir"
      rm -rf "$base_dir" && mkdir -p "$base_dir/src"
      git archive "$rev" | tar -x -C "$base_dir/src" || fail "extracting $access_base"
      ln -s "$PWD/.deps" "$base_dir/src/.deps"
      export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}
      emcmake cmake -S "$base_dir/src" -B "$base_dir/wasm" -DCMAKE_BUILD_TYPE=Release >/dev/null || fail "cmake (access base)"
      cmake --build "$base_dir/wasm" -j"$jobs" --target ferry_wasm >/dev/null || fail "access base wasm build"
      if git diff --quiet "$rev" HEAD -- core/ferry_errors.h bindings/gen_codes.c; then
        cp bindings/dist/codes.js "$base_dir/src/bindings/dist/codes.js"
      else
        cmake -S "$base_dir/src" -B "$base_dir/native" -DCMAKE_BUILD_TYPE=Release >/dev/null && \
          cmake --build "$base_dir/native" -j"$jobs" --target ferry_codes_js >/dev/null || fail "access base codes.js"
      fi
      echo "$rev" > "$base_dir/commit"
      export FERRY_BENCH_ACCESS_BASE_DIR="$base_dir/src"
    else
      printf 'bench: access: no time left to build the server of %s; comparing with the same-code baseline only (FERRY_BENCH_ONLY=access npm run bench builds it)\n' "$access_base" >&2
    fi
  fi
  # What the files benchmark after it needs is kept back (files_reserve, 0 when it is not run).
  remaining=$(( $(left) - ${files_reserve:-0} ))
  if [ "$remaining" -lt 90 ]; then
    printf 'bench: access: skipped, %s s left of the %s s budget (FERRY_BENCH_ONLY=access npm run bench runs it alone)\n' "$remaining" "$budget" >&2
    return 0
  fi
  say "access checks: 100,000-object pull through a per-user filter, 10,000-change push, with and without the checks (up to ${remaining} s)"
  export FERRY_BENCH_DEADLINE=$(( (start + budget - 10 - ${files_reserve:-0}) * 1000 ))
  timeout --kill-after=10 "$remaining" node bench/access.mjs || fail "access benchmark (bench/access.mjs)"
}

# File transfers (issue "Files on the device", Measure): a 100 MB file up
# and down through ferry's file queue against a plain fetch PUT/GET of the
# same bytes to a plain server in the same server process (same run). About
# 20 s (45 s are kept back for it from the access benchmark before it).
files_bench() {
  remaining=$(left)
  if [ "$remaining" -lt 30 ]; then
    printf 'bench: files: skipped, %s s left of the %s s budget (FERRY_BENCH_ONLY=files npm run bench runs it alone)\n' "$remaining" "$budget" >&2
    return 0
  fi
  say "files: ${FERRY_BENCH_FILE_MB:-100} MB upload and download, ferry against a plain fetch (up to ${remaining} s)"
  export FERRY_BENCH_DEADLINE=$(( (start + budget - 10) * 1000 ))
  timeout --kill-after=10 "$remaining" node --expose-gc bench/files.mjs || fail "files benchmark (bench/files.mjs)"
  remaining=$(left)
  if [ "$remaining" -lt 30 ]; then
    printf 'bench: files: the photo benchmark skipped, %s s left (FERRY_BENCH_ONLY=files npm run bench runs it)\n' "$remaining" >&2
    return 0
  fi
  say "files: a 5 MB photo from db.files.put to an <img> through db.files.url() in Chromium (up to ${remaining} s)"
  timeout --kill-after=10 "$remaining" node bench/files-browser.mjs || fail "photo benchmark (bench/files-browser.mjs)"
}

# Package size (issue 12): ferry's npm package, installed, and its gzip'd
# wasm against @sqlite.org/sqlite-wasm and wa-sqlite at pinned versions
# (installed from the npm registry into the OS temp dir, never kept). About
# 30 s; needs the registry.
size_bench() {
  say "size: installed package and gzip'd wasm, ferry against @sqlite.org/sqlite-wasm and wa-sqlite"
  timeout --kill-after=10 "$(left)" node bench/package-size.mjs || fail "package size (bench/package-size.mjs)"
}

# Load (issue 13): 200 simulated devices for 60 s against the server on
# SQLite, one process on PostgreSQL and two on one PostgreSQL (a throwaway
# cluster, scripts/pg.sh), after the 100k-object initial pull from each.
# About 5 minutes.
load_bench() {
  say "load: 200 devices for 60 s on sqlite, one and two processes on PostgreSQL"
  timeout --kill-after=10 "$(left)" node bench/load.mjs || fail "load (bench/load.mjs)"
}

# A new device's first sync (issue 11): rows, the server's snapshot, and
# fetch + JSON.parse + @sqlite.org/sqlite-wasm inserts, on replayed replies.
# FERRY_BENCH_FIRST_SYNC_OBJECTS (default 1,000,000): about 3 minutes.
first_sync_bench() {
  say "first sync of ${FERRY_BENCH_FIRST_SYNC_OBJECTS:-1000000} objects: rows, snapshot, naive sqlite-wasm"
  timeout --kill-after=10 "$(left)" node bench/first-sync.mjs --objects "${FERRY_BENCH_FIRST_SYNC_OBJECTS:-1000000}" || fail "first sync (bench/first-sync.mjs)"
}

# Queries during a first sync (issue 11): a point query every 20 ms while a
# Node client on `file`, then a Chromium worker on OPFS, pulls 200,000
# objects; whole pages, slices of 1000, and steps sized by time. About 3 minutes.
queries_bench() {
  say "queries during a first sync: Node file, Chromium worker on OPFS"
  timeout --kill-after=10 "$(left)" node bench/query-during-sync.mjs || fail "queries during a sync (bench/query-during-sync.mjs)"
  timeout --kill-after=10 "$(left)" node bench/query-during-sync-browser.mjs || fail "queries during a sync in Chromium (bench/query-during-sync-browser.mjs)"
}

open_bench() {
  say "open to first result in Chromium: ferry's worker on OPFS vs sqlite-wasm's opfs-sahpool"
  timeout --kill-after=10 "$(left)" node bench/open-browser.mjs || fail "open in Chromium (bench/open-browser.mjs)"
}

# FERRY_BENCH_ONLY=open: only the Chromium open benchmark;
# FERRY_BENCH_ONLY=queries: only the queries-during-a-sync benchmarks;
# FERRY_BENCH_ONLY=access: only the access-check benchmark (and the build of its base);
# FERRY_BENCH_ONLY=files: only the file transfer benchmark;
# FERRY_BENCH_ONLY=size: only the package sizes;
# FERRY_BENCH_ONLY=load: only the load benchmark;
# FERRY_BENCH_ONLY=first-sync: only the first-sync benchmark.
case "${FERRY_BENCH_ONLY:-}" in
  first-sync)
    [ -f bindings/dist/ferry-core.wasm ] || fail "bindings/dist is missing: npm run build first"
    first_sync_bench
    exit 0 ;;
  queries)
    [ -f bindings/dist/ferry-core.wasm ] || fail "bindings/dist is missing: npm run build first"
    queries_bench
    exit 0 ;;
  open)
    [ -f bindings/dist/ferry-core.wasm ] || fail "bindings/dist is missing: npm run build first"
    open_bench
    exit 0 ;;
  access|files|size|load)
    [ -f bindings/dist/ferry-core.wasm ] || fail "bindings/dist is missing: npm run build first"
    bash scripts/deps.sh || fail "fetching dependencies (see the message above)"
    "${FERRY_BENCH_ONLY}_bench"
    exit 0 ;;
esac
variants=OFF
[ "${FERRY_BENCH_VARIANTS:-}" = 1 ] && variants=ON

say "dependencies (with speedtest1.c)"
FERRY_DEPS_BENCH=1 bash scripts/deps.sh || fail "fetching dependencies (see the message above)"

# The native baseline is gcc -O2 (as the peers' figures use), no sanitizers; the
# wasm build is the product's configuration (Release: -O3 -mbulk-memory).
say "native build (build/bench/native, gcc -O2)"
cmake -S . -B build/bench/native -DCMAKE_BUILD_TYPE=Release "-DCMAKE_C_FLAGS_RELEASE=-O2 -DNDEBUG" \
  -DFERRY_SANITIZE=OFF -DFERRY_BENCH=ON -DFERRY_BENCH_VARIANTS=$variants >/dev/null || fail "cmake (native)"
native_targets=(ferry_speedtest1 ferry_runsql)
[ $variants = ON ] && native_targets+=(ferry_bench_variants)
cmake --build build/bench/native -j"$jobs" --target "${native_targets[@]}" >/dev/null || fail "native build"

say "wasm build (build/bench/wasm, Debian emcc)"
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}
emcmake cmake -S . -B build/bench/wasm -DCMAKE_BUILD_TYPE=Release -DFERRY_BENCH=ON \
  -DFERRY_BENCH_VARIANTS=$variants >/dev/null || fail "cmake (wasm)"
wasm_targets=(ferry_speedtest1 ferry_runsql)
[ $variants = ON ] && wasm_targets+=(ferry_bench_variants)
cmake --build build/bench/wasm -j"$jobs" --target "${wasm_targets[@]}" >/dev/null || fail "wasm build"

# The commit benchmarks load the real ES module, bindings/index.js, which
# needs the product's module in bindings/dist/ (what npm run build makes).
# When it is missing, build it from the bench build dirs (same configuration
# as scripts/build.sh's build/wasm); when it is older than the sources, say so.
if [ ! -f bindings/dist/ferry-core.wasm ] || [ ! -f bindings/dist/codes.js ]; then
  say "product module (bindings/dist is missing)"
  cmake --build build/bench/wasm -j"$jobs" --target ferry_wasm >/dev/null || fail "product wasm build"
  cmake --build build/bench/native -j"$jobs" --target ferry_codes_js >/dev/null || fail "product codes.js"
elif [ -n "$(find core bindings/wasm_glue.c bindings/exports.txt CMakeLists.txt -newer bindings/dist/ferry-core.wasm \( -name '*.[ch]' -o -name '*.txt' \) 2>/dev/null | head -1)" ]; then
  printf 'bench: note: bindings/dist is older than core/ or the glue; the commit figures use it as built (npm run build refreshes it)\n' >&2
fi

now=$(date +%s)
remaining=$(( budget - (now - start) ))
[ $remaining -gt 60 ] || fail "builds took $((now - start)) s; no time left in the ${budget} s budget (run again: builds are cached)"
say "measuring (up to ${remaining} s)"
export FERRY_BENCH_DEADLINE=$(( (start + budget - 15) * 1000 ))
timeout --kill-after=10 "$remaining" node bench/run.mjs || fail "measurements (bench/run.mjs)"

# Sync (issue 3) and the demo's time to first data (issue 4).
say "sync: 100,000-object initial sync, incremental rounds, 10,000-change push"
timeout --kill-after=10 300 node bench/sync.mjs || fail "sync benchmark (bench/sync.mjs)"
say "demo: time to first data (cold, warm, offline)"
timeout --kill-after=10 200 node bench/first-data.mjs || fail "first-data benchmark (bench/first-data.mjs)"
say "watch: a committed write in one tab to a db.watch callback in another (Chromium)"
timeout --kill-after=10 150 node bench/watch-browser.mjs || fail "watch benchmark (bench/watch-browser.mjs)"
case ",${FERRY_BENCH_SKIP:-}," in *,queries,*) ;; *) queries_bench ;; esac
case ",${FERRY_BENCH_SKIP:-}," in *,open,*) ;; *) open_bench ;; esac

case ",${FERRY_BENCH_SKIP:-}," in *,files,*) files_reserve=0 ;; *) files_reserve=45 ;; esac
case ",${FERRY_BENCH_SKIP:-}," in *,access,*) ;; *) access_bench ;; esac
case ",${FERRY_BENCH_SKIP:-}," in *,files,*) ;; *) files_bench ;; esac
