#!/usr/bin/env bash
# The end-to-end suite over real AF_VSOCK CID 1, on Bun, Deno and Node, then the
# quick figures. Needs the vsock_loopback transport: test/run.sh runs this
# natively where the machine has it, otherwise inside the test VM.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export NO_COLOR=1
if [[ ! -e /sys/module/vsock_loopback ]]; then
  echo "e2e: this kernel has no vsock_loopback transport (CID 1); run it through test/run.sh" >&2
  exit 2
fi
# 1,000 connections hold 2,000 fds in one process.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
rc=0
echo "== e2e on bun (at $SECONDS s in the guest)"
node_modules/.bin/bun test --timeout 300000 ./test/e2e 2>&1 || rc=1
echo "== e2e on deno (at $SECONDS s in the guest)"
# --no-check: test/run.sh type-checked every test file before the VM started (minutes in the guest).
node_modules/.bin/deno test --allow-all --no-check test/e2e 2>&1 || rc=1
echo "== e2e on node (at $SECONDS s in the guest)"
node_modules/.bin/node --disable-warning=ExperimentalWarning --liftoff-only --test --test-reporter=spec --test-concurrency=1 \
  --test-timeout=300000 test/e2e/ 2>&1 || rc=1
echo "== soak, ${SOAK_SECONDS:-60} s: bun, deno and node load each other (test/soak.sh; at $SECONDS s in the guest)"
# Counted as one node-style test by test/run.sh's tally.
if SOAK_SECONDS=${SOAK_SECONDS:-60} bash test/soak.sh 2>&1; then echo "# pass 1"; else echo "# fail 1" && rc=1; fi
if [[ ${VSOCK_FIGURES:-1} == 1 ]]; then
  echo "== figures (measurements, not assertions; at $SECONDS s in the guest)"
  # One round: the figures prove every bench row still runs; `npm run bench` is the measurement.
  BENCH_QUICK=1 BENCH_ROUNDS=${BENCH_ROUNDS:-1} bash bench/run.sh --inside || rc=1
fi
exit $rc
