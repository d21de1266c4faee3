#!/usr/bin/env bash
# npm run fuzz: builds the libFuzzer targets of tests/fuzz (clang, ASan and
# UBSan) into build/fuzz and runs each for FERRY_FUZZ_SECONDS (default 60),
# one after the other, then prints one summary line per target.
#   FERRY_FUZZ_SECONDS=600 npm run fuzz        ten minutes each
#   FERRY_FUZZ_TARGETS="pull" npm run fuzz     some targets only
#   FERRY_FUZZ_JOBS=2                          build jobs (default 2)
# Inputs that found new coverage stay in build/fuzz/corpus/<target> for the
# next run; crashes go to build/fuzz/artifacts/<target>/ (docs/FUZZING.md says
# what to do with them). Exits non-zero if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_EACH=${FERRY_FUZZ_SECONDS:-60}
TARGETS=${FERRY_FUZZ_TARGETS:-"model pull push sha256"}
JOBS=${FERRY_FUZZ_JOBS:-2}
OUT=$ROOT/build/fuzz

say() { printf 'fuzz: %s\n' "$*" >&2; }
die() { printf 'fuzz: FAILED: %s\n' "$*" >&2; exit 1; }

if [ ! -f .deps/sqlite/sqlite3.c ] || [ ! -f .deps/cjson/cJSON.c ]; then
  bash scripts/deps.sh || die "scripts/deps.sh"
fi

# --- clang with libFuzzer (Debian: clang, libclang-rt-<major>-dev) ----------
apt_install() {
  [ "$(id -u)" = 0 ] || die "missing Debian packages: $* (run: sudo apt-get install $*)"
  say "installing Debian packages: $*"
  apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || die "apt-get install $* failed"
}
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
fuzzer_links() {
  printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' > "$probe/t.c"
  clang -fsanitize=fuzzer,address,undefined "$probe/t.c" -o "$probe/t" >/dev/null 2>&1
}
command -v clang >/dev/null 2>&1 || apt_install clang
if ! fuzzer_links; then
  major=$(clang -dumpversion | cut -d. -f1)
  apt_install "libclang-rt-$major-dev"
  fuzzer_links || die "clang -fsanitize=fuzzer still does not link (libclang-rt-$major-dev installed)"
fi

# --- build ---------------------------------------------------------------------
if [ ! -f "$OUT/CMakeCache.txt" ]; then
  cmake -S . -B "$OUT" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DFERRY_FUZZ=ON >/dev/null || die "cmake configure"
fi
build_targets=()
for t in $TARGETS; do
  [ -f "tests/fuzz/fuzz_$t.c" ] || die "no target '$t' (tests/fuzz/fuzz_$t.c)"
  build_targets+=(--target "fuzz_$t")
done
cmake --build "$OUT" -j"$JOBS" "${build_targets[@]}" >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log" >&2; die "build (see $OUT/build.log)"; }

# --- run -------------------------------------------------------------------------
# A crash aborts the process; UBSan findings must stop it too, and leaks count.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
summary=()
total_crashes=0
for t in $TARGETS; do
  corpus=$OUT/corpus/$t
  artifacts=$OUT/artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  dict=(-dict=tests/fuzz/sync.dict)
  [ "$t" = model ] && dict=(-dict=tests/fuzz/model.dict)
  [ "$t" = sha256 ] && dict=()   # any bytes are a message: no words to suggest
  seeds=(tests/fuzz/corpus/$t)
  [ -d "tests/fuzz/regressions/$t" ] && seeds+=("tests/fuzz/regressions/$t")
  before=$(find "$artifacts" -type f | wc -l)
  log=$OUT/$t.log
  say "$t: running for $SECONDS_EACH s (log: build/fuzz/$t.log)"
  start=$(date +%s)
  status=0
  # The first folder receives new inputs; the seed folders are only read.
  "$OUT/tests/fuzz/fuzz_$t" -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
    "${dict[@]}" -max_len=8192 -timeout=30 -rss_limit_mb=4096 \
    -artifact_prefix="$artifacts/" "$corpus" "${seeds[@]}" >"$log" 2>&1 || status=$?
  elapsed=$(( $(date +%s) - start ))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  [ -n "$runs" ] || runs=$(printf '%s' "$last" | sed -n 's/^#\([0-9]*\).*/\1/p')
  cov=$(printf '%s' "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
  ft=$(printf '%s' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
  corp=$(printf '%s' "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
  crashes=$(( $(find "$artifacts" -type f | wc -l) - before ))
  [ "$status" != 0 ] && [ "$crashes" = 0 ] && crashes=1   # died without writing an artifact
  total_crashes=$(( total_crashes + crashes ))
  line="$t: ${runs:-0} runs in ${elapsed} s (${rate:-?} exec/s), cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}, crashes $crashes"
  summary+=("$line")
  if [ "$crashes" != 0 ]; then
    say "$t crashed: see build/fuzz/$t.log and build/fuzz/artifacts/$t/"
    grep -E 'ERROR: |runtime error:|fuzz invariant broken|SUMMARY:' "$log" | head -5 >&2 || true
  fi
done
printf '\n'
for line in "${summary[@]}"; do printf 'fuzz %s\n' "$line"; done
[ "$total_crashes" = 0 ] || exit 1
