#!/usr/bin/env bash
# The whole test suite, from a fresh clone (`npm test` runs this):
#   1. installs what it needs: Debian packages for the peers, npm packages
#      pinned in package-lock.json (the VM's own packages: test/vm/run.sh);
#   2. checks: format, lint, type-check of both adapters, npm build, JSR dry run;
#   3. unit tests on Bun, Deno and Node (no vsock traffic: this machine's own
#      CID and bind/listen only);
#   4. the end-to-end suite over real AF_VSOCK CID 1 on all three: natively
#      when this kernel has vsock_loopback, otherwise in a throwaway QEMU guest.
# Ends with one line "N passed, N failed, N skipped" over everything (each
# check in step 2 counts as one).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export NO_COLOR=1
source test/setup.sh
LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT
passed=0 failed=0 skipped=0
summary=()

# One check: counts as one test.
check() {
  local name=$1
  shift
  if "$@" >"$LOGS/check" 2>&1; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
    sed 's/^/     /' "$LOGS/check" | tail -40
  fi
}

# Adds up the runner summaries found in a log: bun test ("N pass" / "N fail" /
# "N skip" lines), deno test ("ok | N passed | N failed | N ignored") and
# node --test ("ℹ pass N" / "ℹ fail N" / "ℹ skipped N", or "# pass N" in TAP).
# A runner that printed no summary crashed: it counts as one failure.
tally() {
  local label=$1 log=$2 runners=$3 found=0 p f s line
  while read -r line; do
    p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+')
    f=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+')
    s=$(grep -oE '[0-9]+ ignored' <<<"$line" | grep -oE '[0-9]+' || echo 0)
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s)) found=$((found + 1))
    summary+=("$label (deno): $p passed, $f failed, $s skipped")
  done < <(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$log")
  if grep -qE '^ *[0-9]+ pass$' "$log"; then
    p=$(grep -E '^ *[0-9]+ pass$' "$log" | grep -oE '[0-9]+' | awk '{ s += $1 } END { print s + 0 }')
    f=$(grep -E '^ *[0-9]+ fail$' "$log" | grep -oE '[0-9]+' | awk '{ s += $1 } END { print s + 0 }')
    s=$(grep -E '^ *[0-9]+ skip$' "$log" | grep -oE '[0-9]+' | awk '{ s += $1 } END { print s + 0 }')
    passed=$((passed + p)) failed=$((failed + ${f:-0})) skipped=$((skipped + ${s:-0})) found=$((found + 1))
    summary+=("$label (bun): $p passed, ${f:-0} failed, ${s:-0} skipped")
  fi
  if grep -qE '^(ℹ|#) pass [0-9]+$' "$log"; then
    p=$(grep -E '^(ℹ|#) pass [0-9]+$' "$log" | grep -oE '[0-9]+' | awk '{ s += $1 } END { print s + 0 }')
    f=$(grep -E '^(ℹ|#) fail [0-9]+$' "$log" | grep -oE '[0-9]+' | awk '{ s += $1 } END { print s + 0 }')
    s=$(grep -E '^(ℹ|#) skipped [0-9]+$' "$log" | grep -oE '[0-9]+' | awk '{ s += $1 } END { print s + 0 }')
    passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s)) found=$((found + 1))
    summary+=("$label (node): $p passed, $f failed, $s skipped")
  fi
  if ((found < runners)); then
    failed=$((failed + runners - found))
    summary+=("$label: $((runners - found)) runner(s) printed no summary (crashed or never ran): counted as failed")
  fi
}

install

say "checks"
check "format (deno fmt --check)" "$DENO" fmt --check
check "lint (deno lint)" "$DENO" lint
check "type-check the adapters, tests, examples (deno check)" "$DENO" check mod.ts http.ts cli.ts ffi/deno.ts ffi/bun.ts ffi/node.ts test/ examples/ bench/
check "npm build (tsup + tsc declarations) loads on Bun, core and ./http; bin vsock runs on Bun and Node" bash -c "npm run -s build && test -f dist/http.d.ts && ln -sfn ../cli/vsock.sh dist/vsock-link && PATH=\$PWD/node_modules/.bin:\$PATH dist/vsock-link --version | grep -qx 'vsock [0-9.]*' && PATH=\$PWD/node_modules/.bin:\$PATH VSOCK_RUNTIME=node dist/vsock-link --version | grep -qx 'vsock [0-9.]*' && rm dist/vsock-link && $BUN -e 'const m = await import(\"./dist/mod.js\"); const h = await import(\"./dist/http.js\"); if (typeof m.connect !== \"function\" || typeof h.serve !== \"function\") process.exit(1)'"
check "npm build loads on Node, core and ./http" "$NODE" --disable-warning=ExperimentalWarning -e 'Promise.all([import("./dist/mod.js"), import("./dist/http.js")]).then(([m, h]) => { if (typeof m.connect !== "function" || typeof h.serve !== "function") process.exit(1) })'
check "JSR publish dry run" "$DENO" publish --dry-run --allow-dirty

say "unit tests on bun"
"$BUN" test --timeout 60000 ./test/unit 2>&1 | tee "$LOGS/unit-bun"
tally "unit" "$LOGS/unit-bun" 1
say "unit tests on deno"
"$DENO" test --allow-all test/unit 2>&1 | tee "$LOGS/unit-deno"
tally "unit" "$LOGS/unit-deno" 1
say "unit tests on node"
"$NODE" --disable-warning=ExperimentalWarning --test --test-reporter=spec --test-concurrency=1 test/unit/ 2>&1 | tee "$LOGS/unit-node"
tally "unit" "$LOGS/unit-node" 1

start=$SECONDS
if [[ -e /sys/module/vsock_loopback ]]; then
  say "end-to-end suite, natively (this kernel has vsock_loopback)"
  bash test/e2e.sh 2>&1 | tee "$LOGS/e2e"
  where="natively"
else
  say "end-to-end suite in the test VM (this kernel has no vsock_loopback)"
  # The guest is killed in time for this script to print its summary inside CI's 90 minutes
  # (5,400 s): whatever the stages before it took, it gets what is left less 5 minutes.
  budget=$((5100 - SECONDS))
  ((budget < 600)) && budget=600
  PATH="$PWD/node_modules/.bin:$PATH" VM_TIMEOUT=${VM_TIMEOUT:-$budget} bash test/vm/run.sh 'bash test/e2e.sh' 2>&1 | tee "$LOGS/e2e"
  where="in the VM"
fi
tally "e2e" "$LOGS/e2e" 3
summary+=("e2e wall time $where: $((SECONDS - start)) s")

say "summary"
printf '%s\n' "${summary[@]}"
echo "$passed passed, $failed failed, $skipped skipped"
((failed == 0))
