#!/usr/bin/env bash
# npm run soak: the convergence test (tests/node/convergence.js) on new random
# seeds, one process per seed, until FERRY_SOAK_SECONDS (default 600) have
# passed. Prints each seed's result, then how many passed and failed and the
# failing seeds (rerun one with FERRY_SEED=<n> npm test, or
# node tests/node/convergence.js <n>). Exit 1 when a seed failed.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${FERRY_SOAK_SECONDS:-600}
[ -f bindings/dist/ferry-core.wasm ] || bash scripts/build.sh || { echo "soak: the build failed" >&2; exit 2; }
out=$(mktemp -d "${TMPDIR:-/tmp}/ferry-soak-XXXXXX")
# The power-cut test of the log store (tests/native/test_power.c) on 20,000
# new seeds first, when the native build is there (scripts/build.sh makes it).
power=build/native/test_power
if [ -x "$power" ]; then
  first=$(node -e 'console.log(require("node:crypto").randomInt(100000, 2 ** 31 - 100000))')
  echo "soak: power cuts, seeds $first..$((first + 19999))"
  FERRY_POWER_FIRST=$first FERRY_POWER_CASES=20000 "$power" 2>&1 | tail -8 || { echo "soak: power-cut seeds failed (rerun one with FERRY_SEED=<n> $power)"; exit 1; }
fi
end=$(( $(date +%s) + secs ))
pass=0
fail=0
failed=()
while [ "$(date +%s)" -lt "$end" ]; do
  seed=$(node -e 'console.log(require("node:crypto").randomInt(1, 2 ** 31))')
  # A failing seed's databases are not kept (a rerun of the seed brings them back); FERRY_KEEP=1 keeps them.
  if FERRY_KEEP="${FERRY_KEEP:-0}" node tests/node/convergence.js "$seed" > "$out/seed-$seed.txt" 2>&1; then
    pass=$((pass + 1))
    grep -m1 "^convergence seed $seed:" "$out/seed-$seed.txt"
    rm -f "$out/seed-$seed.txt"
  else
    fail=$((fail + 1))
    failed+=("$seed")
    # The headline and the invariants that failed, each with its first example.
    awk -v s="$seed" 'index($0, "convergence seed " s ":") == 1 { print } /^  \[/ { print; if ((getline line) > 0) print substr(line, 1, 400) }' "$out/seed-$seed.txt" | head -20
    echo "  full report: $out/seed-$seed.txt"
  fi
done
echo
echo "soak: $((pass + fail)) seeds in ${secs}s: $pass passed, $fail failed"
if [ "$fail" -gt 0 ]; then
  echo "failing seeds: ${failed[*]}"
  exit 1
fi
rmdir "$out" 2>/dev/null
exit 0
