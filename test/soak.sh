#!/usr/bin/env bash
# The soak (`npm run soak`): Bun, Deno and Node load each other and python3 and
# socat peers over real AF_VSOCK CID 1 for SOAK_SECONDS (default 60); see
# test/soak/run.ts for what it checks. Runs natively where this kernel has
# vsock_loopback, otherwise in the test VM (test/vm/run.sh).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export NO_COLOR=1
if [[ ! -e /sys/module/vsock_loopback ]]; then
  # Only VSOCK_* variables reach the guest: pass the SOAK_* settings under that prefix.
  for name in SOAK_SECONDS SOAK_WARMUP_SECONDS SOAK_SAMPLE_MS SOAK_RSS_MB; do
    [[ -v $name ]] && export "VSOCK_$name=${!name}"
  done
  export VM_TIMEOUT=${VM_TIMEOUT:-$((${SOAK_SECONDS:-60} * 3 + 900))}
  exec bash test/vm/run.sh 'for v in $(env | grep -o "^VSOCK_SOAK_[A-Z_]*"); do export "${v#VSOCK_}=$(printenv "$v")"; done; bash test/soak.sh'
fi
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec node_modules/.bin/node --disable-warning=ExperimentalWarning --liftoff-only test/soak/run.ts
