#!/usr/bin/env bash
# The benchmark suite (npm run bench): this library on Bun, Deno and Node against
# baselines, over real vsock CID 1 — natively where the kernel has
# vsock_loopback, otherwise inside the test VM. Every round runs every client
# once, interleaved, so drift on a noisy machine hits all alike; medians of
# BENCH_ROUNDS (default 5) rounds are printed as ratios, and written with the
# raw numbers to bench/results.json, with two floors: each runtime's own TCP
# against C over TCP, and one hand-off through Deno's FFI pool (deno_hop.ts).
#   BENCH_QUICK=1  smaller workloads and 3 rounds (the test suite's figures)
#   BENCH_ONLY="c_hybrid pingpong:bun"  run only these clients (in all their workloads) or workload:client rows
# The *_hybrid clients dial through test/peers/vmm_mux.py (a Firecracker-like
# VMM multiplexer in python3) in front of the same C servers: hybrid vsock
# against plain AF_VSOCK, in one run. The mux's own hops are in those figures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ ${1:-} != --inside && ! -e /sys/module/vsock_loopback ]]; then
  source test/setup.sh
  install
  exec bash test/vm/run.sh "ulimit -n 8192; BENCH_QUICK=${BENCH_QUICK:-0} BENCH_ROUNDS=${BENCH_ROUNDS:-} BENCH_ONLY='${BENCH_ONLY:-}' bash bench/run.sh --inside"
fi
ulimit -n 8192 2>/dev/null || true

QUICK=${BENCH_QUICK:-0}
if [[ $QUICK == 1 ]]; then
  ROUNDS=${BENCH_ROUNDS:-3} PINGS=2000 STREAM=$((64 << 20)) CONNECTS=500 MANY=200 MANY_ROUNDS=10
else
  ROUNDS=${BENCH_ROUNDS:-5} PINGS=5000 STREAM=$((256 << 20)) CONNECTS=2000 MANY=1000 MANY_ROUNDS=20
fi
CHUNK=65536
BUN=node_modules/.bin/bun
DENO=node_modules/deno/deno
[[ -x $DENO ]] || DENO=node_modules/.bin/deno
NODE="node_modules/.bin/node --disable-warning=ExperimentalWarning"
PEER=.cache/vsock_peer
mkdir -p .cache
cc -O2 -o "$PEER" test/peers/vsock_peer.c

port() { echo $((20000 + RANDOM % 30000)); }
VECHO=$(port) VSINK=$((VECHO + 1)) TECHO=$((VECHO + 2)) TSINK=$((VECHO + 3))
"$PEER" echo-server "$VECHO" >/dev/null &
"$PEER" sink-server "$VSINK" >/dev/null &
"$PEER" echo-server "$TECHO" tcp >/dev/null &
"$PEER" sink-server "$TSINK" tcp >/dev/null &
MUX_DIR=$(mktemp -d)
MUX=$MUX_DIR/v.sock
python3 test/peers/vmm_mux.py "$MUX" --shutdown ch >/dev/null &
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$MUX_DIR"' EXIT
sleep 0.5
for _ in $(seq 100); do [[ -S $MUX ]] && break; sleep 0.1; done

declare -A CMD=(
  [c]="$PEER"
  [python3]="python3 test/peers/py_peer.py"
  [bun]="$BUN bench/ours.ts"
  [deno]="$DENO run --allow-ffi bench/ours.ts"
  [bun_hybrid]="$BUN bench/ours.ts --uds $MUX"
  [deno_hybrid]="$DENO run --allow-ffi --allow-read bench/ours.ts --uds $MUX"
  [deno_native]="$DENO run --unstable-vsock --allow-net bench/deno_native.ts"
  [bun_tcp]="$BUN bench/tcp.ts"
  [deno_tcp]="$DENO run --allow-net bench/tcp.ts"
  [node]="$NODE bench/ours.ts"
  [node_hybrid]="$NODE bench/ours.ts --uds $MUX"
  [node_tcp]="$NODE bench/tcp.ts"
)
# workload -> clients (vsock clients talk to the vsock servers, *_tcp ones to the TCP servers)
declare -A WHO=(
  [pingpong]="c python3 deno_native bun deno node c_tcp bun_tcp deno_tcp node_tcp c_hybrid bun_hybrid deno_hybrid node_hybrid"
  [stream]="c socat deno_native bun deno node c_tcp bun_tcp deno_tcp node_tcp c_hybrid bun_hybrid deno_hybrid node_hybrid"
  [connects]="c deno_native bun deno node c_tcp bun_tcp deno_tcp node_tcp"
  [many]="deno_native bun deno node"
  [hop]="deno"
)

run_one() { # workload client -> prints the number(s)
  local w=$1 who=$2 echo=$VECHO sink=$VSINK
  [[ $who == *_tcp ]] && echo=$TECHO sink=$TSINK
  case $w:$who in
    pingpong:c) "$PEER" pingpong 1 "$echo" "$PINGS" 64 ;;
    stream:c) "$PEER" stream 1 "$sink" "$STREAM" "$CHUNK" ;;
    connects:c) "$PEER" connects 1 "$echo" "$CONNECTS" ;;
    pingpong:c_tcp) "$PEER" pingpong tcp "$echo" "$PINGS" 64 ;;
    stream:c_tcp) "$PEER" stream tcp "$sink" "$STREAM" "$CHUNK" ;;
    connects:c_tcp) "$PEER" connects tcp "$echo" "$CONNECTS" ;;
    pingpong:c_hybrid) "$PEER" pingpong "unix:$MUX" "$echo" "$PINGS" 64 ;;
    stream:c_hybrid) "$PEER" stream "unix:$MUX" "$sink" "$STREAM" "$CHUNK" ;;
    pingpong:python3) ${CMD[python3]} pingpong 1 "$echo" "$PINGS" 64 ;;
    stream:socat)
      local t0 t1
      t0=$(date +%s.%N)
      head -c "$STREAM" /dev/zero | socat -u -b "$CHUNK" - "VSOCK-CONNECT:1:$sink"
      t1=$(date +%s.%N)
      python3 -c "print(f'{$STREAM / 1048576 / ($t1 - $t0):.1f}')" ;;
    pingpong:*) ${CMD[$who]} pingpong "$echo" "$PINGS" 64 ;;
    stream:*) ${CMD[$who]} stream "$sink" "$STREAM" "$CHUNK" ;;
    connects:*) ${CMD[$who]} connects "$echo" "$CONNECTS" ;;
    many:*) ${CMD[$who]} many "$echo" "$MANY" "$MANY_ROUNDS" ;;
    hop:deno) "$DENO" run --allow-ffi bench/deno_hop.ts ;;
  esac
}

raw=$(mktemp)
for ((r = 1; r <= ROUNDS; r++)); do
  echo "round $r/$ROUNDS" >&2
  for w in pingpong stream connects many hop; do
    for who in ${WHO[$w]}; do
      [[ -z ${BENCH_ONLY:-} || " $BENCH_ONLY " == *" $who "* || " $BENCH_ONLY " == *" $w:$who "* ]] || continue
      if out=$(run_one "$w" "$who" 2>/tmp/bench-err); then
        echo "$w $who $out" >>"$raw"
      else
        echo "bench: $w $who failed: $(tail -3 /tmp/bench-err)" >&2
      fi
    done
  done
done

python3 bench/report.py "$raw" "$ROUNDS" "$QUICK" "$(uname -r)"
