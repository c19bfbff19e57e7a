#!/usr/bin/env bash
# Quick figures over real vsock CID 1 (run where vsock_loopback exists: the
# test VM or a laptop with it): 64-byte ping-pong and a 64 MiB stream, this
# library on Bun and on Deno against the C and python3 clients, all talking to
# the same C servers. Rounds are interleaved; medians are printed, with ratios
# to C. Timing under QEMU TCG is slow in absolute terms: read the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${BENCH_ROUNDS:-5}
PINGS=${BENCH_PINGS:-2000}
STREAM=$((64 * 1024 * 1024))
CHUNK=65536
BUN=node_modules/.bin/bun
DENO=node_modules/.bin/deno
PEER=.cache/vsock_peer
mkdir -p .cache
cc -O2 -o "$PEER" test/peers/vsock_peer.c

pick_port() { echo $((20000 + RANDOM % 30000)); }
ECHO_PORT=$(pick_port); SINK_PORT=$((ECHO_PORT + 1))
"$PEER" echo-server "$ECHO_PORT" >/dev/null & ECHO_PID=$!
"$PEER" sink-server "$SINK_PORT" >/dev/null & SINK_PID=$!
trap 'kill $ECHO_PID $SINK_PID 2>/dev/null || true' EXIT
sleep 0.5

declare -A CLIENT=(
  [c]="$PEER"
  [python3]="python3 test/peers/py_peer.py"
  [bun]="$BUN bench/client.ts"
  [deno]="$DENO run --allow-ffi bench/client.ts"
)
ORDER=(c bun deno python3)
results=$(mktemp)
for ((r = 1; r <= ROUNDS; r++)); do
  for who in "${ORDER[@]}"; do
    echo "pingpong $who $(${CLIENT[$who]} pingpong 1 "$ECHO_PORT" "$PINGS" 64)" >>"$results"
    echo "stream $who $(${CLIENT[$who]} stream 1 "$SINK_PORT" "$STREAM" "$CHUNK")" >>"$results"
  done
done

python3 - "$results" "$ROUNDS" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for kind in ("pingpong", "stream"):
    for who in ("c", "bun", "deno", "python3"):
        med[kind, who] = statistics.median(float(v) for k, w, v in rows if k == kind and w == who)
print(f"quick figures over vsock CID 1, medians of {sys.argv[2]} interleaved rounds")
print(f"{'client':<10}{'ping-pong 64 B (us/round)':>28}{'x C':>7}{'stream 64 MiB (MiB/s)':>24}{'x C':>7}")
for who in ("c", "bun", "deno", "python3"):
    p, s = med["pingpong", who], med["stream", who]
    print(f"{who:<10}{p:>28.1f}{p / med['pingpong', 'c']:>7.2f}{s:>24.1f}{s / med['stream', 'c']:>7.2f}")
PY
