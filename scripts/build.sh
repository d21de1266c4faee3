#!/usr/bin/env bash
# Builds the native library and tests (build/native) and the wasm module
# (build/wasm -> bindings/dist/). Run scripts/deps.sh first (npm test does).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
native_flags=()
[ "${FERRY_SANITIZE:-1}" = 1 ] && native_flags+=(-DFERRY_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
cmake -S . -B build/native "${native_flags[@]}" >/dev/null
cmake --build build/native -j"$jobs"
# Debian's emcc runs its optimizer on Debian's acorn.
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}
if [ ! -f build/wasm/CMakeCache.txt ]; then
  emcmake cmake -S . -B build/wasm -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build build/wasm -j"$jobs"
node scripts/build-web.mjs
