#!/usr/bin/env bash
# The benchmark suite (npm run bench): this library on Bun, Deno and Node against
# baselines, over real vsock CID 1 — natively where the kernel has
# vsock_loopback, otherwise inside the test VM. Every round runs every client
# once, interleaved, so drift on a noisy machine hits all alike; medians of
# BENCH_ROUNDS (default 5) rounds are printed as ratios, and written with the
# raw numbers to bench/results.json, with two floors: each runtime's own TCP
# against C over TCP, and one hand-off through Deno's FFI pool (deno_hop.ts).
#   BENCH_QUICK=1  smaller workloads and 3 rounds (the test suite's figures)
#   BENCH_ONLY="http c_hybrid pingpong:bun"  only these: workload families (pingpong stream
#                  connects connects_seq many curve idle hop http fetch forward), clients (in all their workloads),
#                  workload:client rows
# The curve family is the cost curve: ping-pong at 1, 10, 100 and 1,000 connections at
# once (rows curve_<n>); the idle family, RSS per connection with 10,000 idle connections.
# Two connect families, one per server shape: `connects` against the epoll echo
# server (it closes when the client does), `connects_seq` against a C server that
# accepts one connection at a time with a blocking accept and closes it at once.
# The *_hybrid clients dial through test/peers/vmm_mux.py (a Firecracker-like
# VMM multiplexer in python3) in front of the same C servers: hybrid vsock
# against plain AF_VSOCK, in one run. The mux's own hops are in those figures.
# The http family loads each HTTP server with one C client (test/peers/http_load.c):
# keep-alive POSTs of 64 B and 64 KiB echoed back, 1 and 16 connections.
# The fetch family is the other direction: HTTP clients (bench/http_client.ts: ours, Deno's own vsock
# fetch, each runtime's fetch() over TCP, each runtime's node:http client over TCP (*_nodehttp: the floor of
# createHttpClient()'s design); the C load client for reference) against Deno's own Deno.serve, on vsock for
# the vsock clients and on TCP for the others, the same POSTs.
# The *_busypoll clients are ours with connect()'s busyPoll window at 500 µs (Deno and Node: Bun's streams
# run on Bun's own loop, where the option does nothing), in the pingpong and stream families.
# The bun_fd client (connect, ping-pong and stream families) is Bun's own socket code on a vsock fd with
# none of the library above its FFI calls (bench/tcp.ts --vsock-fd): the floor of ours on Bun.
# The forward family puts `vsock forward` (cli.ts) on each runtime, and socat, between a
# TCP client and the vsock servers; the *_fwd_busypoll forwarders run with --busy-poll 500 (Deno, Node).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ ${1:-} != --inside && ! -e /sys/module/vsock_loopback ]]; then
  source test/setup.sh
  install
  # A full run takes over an hour in the TCG guest (the VM's default limit is 50 min); quick runs stay short.
  [[ ${BENCH_QUICK:-0} == 1 ]] || export VM_TIMEOUT=${VM_TIMEOUT:-10800}
  exec bash test/vm/run.sh "ulimit -n 32768 || ulimit -n 8192; BENCH_QUICK=${BENCH_QUICK:-0} BENCH_ROUNDS=${BENCH_ROUNDS:-} BENCH_ONLY='${BENCH_ONLY:-}' bash bench/run.sh --inside"
fi
# 10,000 idle connections hold 10,000 fds in the client and as many in the echo server.
ulimit -n 32768 2>/dev/null || ulimit -n 8192 2>/dev/null || true

QUICK=${BENCH_QUICK:-0}
# Sizes: each row takes seconds, not minutes, in the TCG guest, so 5 full rounds fit in about an hour and a
# half. The HTTP and forward rows are slow per operation under emulation (tens of ms per request or round
# trip), so their counts are smaller than the socket rows'.
if [[ $QUICK == 1 ]]; then
  ROUNDS=${BENCH_ROUNDS:-3} PINGS=2000 STREAM=$((64 << 20)) CONNECTS=500 MANY=200 MANY_ROUNDS=10 REQUESTS=96
  FWD_STREAM=$((64 << 20)) FWD_PINGS=2000
else
  ROUNDS=${BENCH_ROUNDS:-5} PINGS=5000 STREAM=$((256 << 20)) CONNECTS=2000 MANY=1000 MANY_ROUNDS=20 REQUESTS=400
  FWD_STREAM=$((64 << 20)) FWD_PINGS=1000
fi
ALL_FAMILIES="pingpong stream connects connects_seq many curve idle hop http fetch forward"
FAMILIES="" PICK=""
for word in ${BENCH_ONLY:-}; do
  if [[ " $ALL_FAMILIES " == *" $word "* ]]; then FAMILIES+=" $word"; else PICK+=" $word"; fi
done
FAMILIES=${FAMILIES:-$ALL_FAMILIES}
CHUNK=65536
BUN=node_modules/.bin/bun
DENO=node_modules/deno/deno
[[ -x $DENO ]] || DENO=node_modules/.bin/deno
NODE="node_modules/.bin/node --disable-warning=ExperimentalWarning --liftoff-only"
PEER=.cache/vsock_peer LOAD=.cache/http_load
mkdir -p .cache
cc -O2 -o "$PEER" test/peers/vsock_peer.c
cc -O2 -pthread -o "$LOAD" test/peers/http_load.c

port() { echo $((20000 + RANDOM % 30000)); }
VECHO=$(port) VSINK=$((VECHO + 1)) TECHO=$((VECHO + 2)) TSINK=$((VECHO + 3)) VACL=$((VECHO + 4)) TACL=$((VECHO + 5))
"$PEER" echo-server "$VECHO" >/dev/null &
VECHO_PID=$!
"$PEER" sink-server "$VSINK" >/dev/null &
"$PEER" echo-server "$TECHO" tcp >/dev/null &
"$PEER" sink-server "$TSINK" tcp >/dev/null &
"$PEER" accept-close-server "$VACL" >/dev/null &
"$PEER" accept-close-server "$TACL" tcp >/dev/null &
MUX_DIR=$(mktemp -d)
MUX=$MUX_DIR/v.sock
python3 test/peers/vmm_mux.py "$MUX" --shutdown ch >/dev/null &
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$MUX_DIR"' EXIT
sleep 0.5
for _ in $(seq 100); do [[ -S $MUX ]] && break; sleep 0.1; done

# After a client with 10,000 connections exits, the guest kernel takes seconds to tear them down, and a connect
# made meanwhile can hit the kernel's 2 s connect timeout (measured: C's own connects then fail with ETIMEDOUT
# for ~3 s). So each row starts once the vsock echo server holds no connections from the rows before it.
ECHO_FDS=$(ls "/proc/$VECHO_PID/fd" | wc -l)
settle() {
  for ((i = 0; i < 600; i++)); do
    (($(ls "/proc/$VECHO_PID/fd" 2>/dev/null | wc -l) <= ECHO_FDS)) && return
    sleep 0.1
  done
  echo "bench: the echo server still holds $(ls "/proc/$VECHO_PID/fd" | wc -l) fds after 60 s" >&2
}

declare -A CMD=(
  [c]="$PEER"
  [python3]="python3 test/peers/py_peer.py"
  [bun]="$BUN bench/ours.ts"
  [deno]="$DENO run --allow-ffi bench/ours.ts"
  [bun_hybrid]="$BUN bench/ours.ts --uds $MUX"
  [deno_hybrid]="$DENO run --allow-ffi --allow-read bench/ours.ts --uds $MUX"
  [deno_native]="$DENO run --unstable-vsock --allow-net bench/deno_native.ts"
  [bun_tcp]="$BUN bench/tcp.ts"
  [bun_fd]="$BUN bench/tcp.ts --vsock-fd"
  [deno_tcp]="$DENO run --allow-net bench/tcp.ts"
  [node]="$NODE bench/ours.ts"
  [node_hybrid]="$NODE bench/ours.ts --uds $MUX"
  [node_tcp]="$NODE bench/tcp.ts"
  [deno_busypoll]="$DENO run --allow-ffi bench/ours.ts --busy-poll 500"
  [node_busypoll]="$NODE bench/ours.ts --busy-poll 500"
)
# workload -> clients (vsock clients talk to the vsock servers, *_tcp ones to the TCP servers)
declare -A WHO=(
  [pingpong]="c python3 deno_native bun deno node c_tcp bun_tcp deno_tcp node_tcp c_hybrid bun_hybrid deno_hybrid node_hybrid deno_busypoll node_busypoll bun_fd"
  [stream]="c socat deno_native bun deno node c_tcp bun_tcp deno_tcp node_tcp c_hybrid bun_hybrid deno_hybrid node_hybrid deno_busypoll node_busypoll bun_fd"
  [connects]="c deno_native bun deno node c_tcp bun_tcp deno_tcp node_tcp bun_fd"
  [connects_seq]="c deno_native bun deno node c_tcp bun_tcp deno_tcp node_tcp bun_fd"
  [many]="deno_native bun deno node"
  [hop]="deno"
)
# curve: rows curve_<connections>, ping-pong on that many connections at once; idle: rows idle_<connections>
CURVE_ROWS="curve_1 curve_10 curve_100 curve_1000" IDLE_ROWS="idle_10000"
[[ $QUICK == 1 ]] && CURVE_ROWS="curve_1 curve_100" IDLE_ROWS="idle_1000"
for row in $CURVE_ROWS $IDLE_ROWS; do WHO[$row]="deno_native bun deno node"; done
# http: rows http_<body>_c<connections>, each against every server below
HTTP_ROWS="http_64_c1 http_64_c16 http_64k_c1 http_64k_c16"
[[ $QUICK == 1 ]] && HTTP_ROWS="http_64_c16 http_64k_c1" # the test suite's budget: two rows
HTTP_WHO="bun deno node deno_native bun_tcp deno_tcp bun_nodehttp deno_nodehttp node_nodehttp"
for row in $HTTP_ROWS; do WHO[$row]=$HTTP_WHO; done
declare -A HTTP_CMD=(
  [bun]="$BUN bench/http_server.ts vsock"
  [deno]="$DENO run --allow-ffi --allow-env bench/http_server.ts vsock"
  [node]="$NODE bench/http_server.ts vsock"
  [deno_native]="$DENO run --unstable-vsock --allow-net bench/http_server.ts deno-vsock"
  [bun_tcp]="$BUN bench/http_server.ts tcp"
  [deno_tcp]="$DENO run --allow-net bench/http_server.ts tcp"
  [bun_nodehttp]="$BUN bench/http_server.ts node-http-tcp"
  [deno_nodehttp]="$DENO run --allow-net --allow-env --allow-read bench/http_server.ts node-http-tcp"
  [node_nodehttp]="$NODE bench/http_server.ts node-http-tcp"
)
# fetch: rows fetch_<body>_c<connections>, each client against Deno.serve (vsock, or TCP for *_tcp)
FETCH_ROWS="fetch_64_c1 fetch_64_c16 fetch_64k_c1"
[[ $QUICK == 1 ]] && FETCH_ROWS="fetch_64_c16" # the test suite's budget: one row
FETCH_WHO="c deno_native bun deno node c_tcp bun_tcp deno_tcp node_tcp bun_nodehttp deno_nodehttp node_nodehttp"
for row in $FETCH_ROWS; do WHO[$row]=$FETCH_WHO; done
declare -A FETCH_CMD=(
  [bun]="$BUN bench/http_client.ts ours"
  [deno]="$DENO run --allow-ffi --allow-env bench/http_client.ts ours"
  [node]="$NODE bench/http_client.ts ours"
  [deno_native]="$DENO run --allow-net bench/http_client.ts deno-vsock"
  [bun_tcp]="$BUN bench/http_client.ts tcp"
  [deno_tcp]="$DENO run --allow-net bench/http_client.ts tcp"
  [node_tcp]="$NODE bench/http_client.ts tcp"
  [bun_nodehttp]="$BUN bench/http_client.ts nodehttp-tcp"
  [deno_nodehttp]="$DENO run --allow-net --allow-env bench/http_client.ts nodehttp-tcp"
  [node_nodehttp]="$NODE bench/http_client.ts nodehttp-tcp"
)
declare -A HTTP_PORT=()
start_http() { # server -> HTTP_PORT[server] once it prints "ready PORT"
  local who=$1 out=.cache/http-$who.out
  ${HTTP_CMD[$who]} >"$out" 2>"$out.err" &
  local pid=$!
  for ((i = 0; i < 600; i++)); do
    if grep -q '^ready ' "$out"; then
      HTTP_PORT[$who]=$(awk '/^ready/ { print $2; exit }' "$out")
      return
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "bench: http server $who did not start: $(tail -3 "$out.err")" >&2
}
if [[ " $FAMILIES " == *" http "* ]]; then
  for who in $HTTP_WHO; do start_http "$who"; done
elif [[ " $FAMILIES " == *" fetch "* ]]; then
  for who in deno_native deno_tcp; do start_http "$who"; done # the fetch family's servers
fi

http_row() { # an http_* or fetch_* row, e.g. http_64k_c16 -> "BODY CONNECTIONS REQUESTS"
  local body=${1#*_} conns=${1##*_c}
  body=${body%_c*} body=$((${body/k/*1024}))
  # 64 KiB rows: fewer requests, so each row takes similar time
  echo "$body $conns $((body > 1024 ? REQUESTS / 4 : REQUESTS))"
}

run_one() { # workload client -> prints the number(s)
  local w=$1 who=$2 echo=$VECHO sink=$VSINK acl=$VACL
  [[ $who == *_tcp ]] && echo=$TECHO sink=$TSINK acl=$TACL
  case $w:$who in
    pingpong:c) "$PEER" pingpong 1 "$echo" "$PINGS" 64 ;;
    stream:c) "$PEER" stream 1 "$sink" "$STREAM" "$CHUNK" ;;
    connects:c) "$PEER" connects 1 "$echo" "$CONNECTS" ;;
    pingpong:c_tcp) "$PEER" pingpong tcp "$echo" "$PINGS" 64 ;;
    stream:c_tcp) "$PEER" stream tcp "$sink" "$STREAM" "$CHUNK" ;;
    connects:c_tcp) "$PEER" connects tcp "$echo" "$CONNECTS" ;;
    connects_seq:c) "$PEER" connects 1 "$acl" "$CONNECTS" ;;
    connects_seq:c_tcp) "$PEER" connects tcp "$acl" "$CONNECTS" ;;
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
    connects_seq:*) ${CMD[$who]} connects "$acl" "$CONNECTS" ;;
    many:*) ${CMD[$who]} many "$echo" "$MANY" "$MANY_ROUNDS" ;;
    curve_*) # the same number of round trips at every width (at least 20 per connection)
      local n=${w#curve_} total=$((QUICK == 1 ? 2000 : 4000))
      ${CMD[$who]} many "$echo" "$n" $((total / n > 20 ? total / n : 20)) ;;
    idle_*) ${CMD[$who]} idle "$echo" "${w#idle_}" ;;
    hop:deno) "$DENO" run --allow-ffi bench/deno_hop.ts ;;
    http_*)
      local body conns requests target=1
      read -r body conns requests <<<"$(http_row "$w")"
      [[ $who == *_tcp || $who == *_nodehttp ]] && target=tcp
      [[ -n ${HTTP_PORT[$who]:-} ]] && "$LOAD" "$target" "${HTTP_PORT[$who]}" "$conns" "$requests" "$body" ;;
    fetch_*)
      local body conns requests server=deno_native p
      read -r body conns requests <<<"$(http_row "$w")"
      [[ $who == *_tcp || $who == *_nodehttp ]] && server=deno_tcp
      p=${HTTP_PORT[$server]:-}
      [[ -n $p ]] || return 1
      case $who in
        c) "$LOAD" 1 "$p" "$conns" "$requests" "$body" ;;
        c_tcp) "$LOAD" tcp "$p" "$conns" "$requests" "$body" ;;
        *) ${FETCH_CMD[$who]} "$p" "$conns" "$requests" "$body" ;;
      esac ;;
    forward:*) fwd_run "$who" ;;
  esac
}

# The `vsock forward` row: a TCP client (the C peer) through a forwarder on
# 127.0.0.1 to the vsock servers, ours on each runtime against
# `socat TCP-LISTEN,fork VSOCK-CONNECT`; prints "MiB/s µs/round" (stream to the
# sink, then 64 B ping-pong to the echo server, each on a new connection).
declare -A FWD_PORT=()
fwd_start() { # name command-prefix...: one forwarder to the sink, one to the echo server
  local name=$1 p
  shift
  p=$(port)
  FWD_PORT[$name]=$p
  if [[ $name == socat_fwd ]]; then
    socat "TCP-LISTEN:$p,bind=127.0.0.1,reuseaddr,fork" "VSOCK-CONNECT:1:$VSINK" &
    socat "TCP-LISTEN:$((p + 1)),bind=127.0.0.1,reuseaddr,fork" "VSOCK-CONNECT:1:$VECHO" &
  else
    local extra=()
    [[ $name == *_busypoll ]] && extra=(--busy-poll 500)
    "$@" cli.ts forward -q ${extra[@]+"${extra[@]}"} "tcp:127.0.0.1:$p" "vsock:1:$VSINK" &
    "$@" cli.ts forward -q ${extra[@]+"${extra[@]}"} "tcp:127.0.0.1:$((p + 1))" "vsock:1:$VECHO" &
  fi
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$((p + 1))") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && return
    sleep 0.2
  done
  echo "bench: forwarder $name did not start" >&2
}
WHO[forward]="socat_fwd bun_fwd deno_fwd node_fwd deno_fwd_busypoll node_fwd_busypoll"
if [[ " $FAMILIES " == *" forward "* ]]; then
  fwd_start socat_fwd
  fwd_start bun_fwd "$BUN"
  fwd_start deno_fwd "$DENO" run --allow-ffi --allow-net
  fwd_start node_fwd $NODE
  fwd_start deno_fwd_busypoll "$DENO" run --allow-ffi --allow-net
  fwd_start node_fwd_busypoll $NODE
fi
fwd_run() { # name -> "MiB/s µs/round"
  local p=${FWD_PORT[$1]}
  echo "$("$PEER" stream tcp "$p" "$FWD_STREAM" "$CHUNK") $("$PEER" pingpong tcp $((p + 1)) "$FWD_PINGS" 64)"
}

# A row that hangs must not hang the run (the test suite's figures run inside CI's time limit): each
# row gets ROW_TIMEOUT seconds, then it and the processes it started are killed and it counts as failed.
ROW_TIMEOUT=${BENCH_ROW_TIMEOUT:-$((QUICK == 1 ? 240 : 900))}
bounded() { # command... -> its stdout; fails after ROW_TIMEOUT s
  local out pid t
  out=$(mktemp)
  "$@" >"$out" &
  pid=$!
  for ((t = 0; t < ROW_TIMEOUT * 5; t++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    pkill -KILL -P "$pid" 2>/dev/null
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    echo "timed out after ${ROW_TIMEOUT} s" >&2
    rm -f "$out"
    return 124
  fi
  wait "$pid"
  local rc=$?
  cat "$out"
  rm -f "$out"
  return $rc
}

raw=$(mktemp)
for ((r = 1; r <= ROUNDS; r++)); do
  echo "round $r/$ROUNDS (at $SECONDS s)" >&2
  rows=${FAMILIES//http/$HTTP_ROWS} rows=${rows//fetch/$FETCH_ROWS} rows=${rows//curve/$CURVE_ROWS} rows=${rows//idle/$IDLE_ROWS}
  for w in $rows; do
    for who in ${WHO[$w]}; do
      [[ -z $PICK || " $PICK " == *" $who "* || " $PICK " == *" $w:$who "* ]] || continue
      settle
      if out=$(bounded run_one "$w" "$who" 2>/tmp/bench-err); then
        echo "$w $who $out" >>"$raw"
      else
        # The error's own line ("VsockError: ...", Deno's "error: ..."; not a quoted source line that says
        # "error"), then the last lines.
        echo "bench: $w $who failed: $(grep -m1 -E 'Error: |^error: ' /tmp/bench-err) / $(tail -3 /tmp/bench-err)" >&2
      fi
    done
  done
done

echo "bench: $ROUNDS rounds in $SECONDS s" >&2
python3 bench/report.py "$raw" "$ROUNDS" "$QUICK" "$(uname -r)"
