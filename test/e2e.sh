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
# The runtimes run one after another, output streaming. VSOCK_E2E_PARALLEL=1
# runs the three at once (each test file only uses its own processes,
# kernel-assigned ports and temporary directories), each into its own log,
# printed whole in a fixed order when all are done: for a machine with cores
# to spare; in the 2-vCPU TCG guest on 2 host cores it was slower, not faster.
declare -A RUN=(
  [bun]="node_modules/.bin/bun test --timeout 300000 ./test/e2e"
  [deno]="node_modules/.bin/deno test --allow-all test/e2e"
  [node]="node_modules/.bin/node --disable-warning=ExperimentalWarning --test --test-reporter=spec --test-concurrency=1 --test-timeout=300000 test/e2e/"
)
RUNTIMES=(bun deno node)
if [[ ${VSOCK_E2E_PARALLEL:-0} != 1 ]]; then
  for r in "${RUNTIMES[@]}"; do
    echo "== e2e on $r"
    ${RUN[$r]} 2>&1 || rc=1
  done
else
  logs=$(mktemp -d)
  declare -A PID=()
  for r in "${RUNTIMES[@]}"; do
    (
      start=$SECONDS
      ${RUN[$r]} >"$logs/$r" 2>&1
      code=$?
      echo "== e2e on $r: exit $code after $((SECONDS - start)) s" >>"$logs/$r"
      exit $code
    ) &
    PID[$r]=$!
  done
  echo "== e2e: bun, deno and node running at once; each log follows when all are done"
  for r in "${RUNTIMES[@]}"; do wait "${PID[$r]}" || rc=1; done
  for r in "${RUNTIMES[@]}"; do
    echo "== e2e on $r"
    cat "$logs/$r"
  done
  rm -rf "$logs"
fi
if [[ ${VSOCK_FIGURES:-1} == 1 ]]; then
  echo "== figures (measurements, not assertions)"
  BENCH_QUICK=1 bash bench/run.sh --inside || rc=1
fi
exit $rc
