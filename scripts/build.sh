#!/usr/bin/env bash
# Builds the native library and tests (build/native) and the wasm module
# (build/wasm -> bindings/dist/). Run scripts/deps.sh first (npm test does).
#   --dist  only what the npm package ships (bindings/dist/: the wasm module,
#           the database worker as one module, the generated codes.js and
#           codes.d.ts); npm pack runs this.
set -euo pipefail
cd "$(dirname "$0")/.."
dist=0
[ "${1:-}" = --dist ] && dist=1
jobs=$(nproc 2>/dev/null || echo 2)
native_flags=()
[ "${FERRY_SANITIZE:-1}" = 1 ] && native_flags+=(-DFERRY_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
cmake -S . -B build/native "${native_flags[@]}" >/dev/null
if [ $dist = 1 ]; then
  cmake --build build/native -j"$jobs" --target ferry_codes_js
else
  cmake --build build/native -j"$jobs"
fi
# Debian's emcc runs its optimizer on Debian's acorn.
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}
if [ ! -f build/wasm/CMakeCache.txt ]; then
  emcmake cmake -S . -B build/wasm -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build build/wasm -j"$jobs"
# The database worker as one module (bindings/worker.js and its imports).
node scripts/bundle-worker.mjs >/dev/null
if [ $dist = 1 ]; then
  for f in ferry-core.mjs ferry-core.wasm worker.mjs codes.js codes.d.ts; do
    [ -s "bindings/dist/$f" ] || { echo "build: bindings/dist/$f was not built" >&2; exit 1; }
  done
else
  node scripts/build-web.mjs
fi
