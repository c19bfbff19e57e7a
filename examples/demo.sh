#!/usr/bin/env bash
# The demo: real vsock traffic between the three runtimes — a Bun echo server
# with a Deno client, a Deno server with a Node client, a Node server with a
# Bun client (so each runtime serves once and calls once) — then HTTP: the
# example guest agent on Bun called by its host-side client on Deno —
# over CID 1 (vsock_loopback): natively where this kernel has it, otherwise
# inside the project's throwaway QEMU guest (test/vm/run.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source test/setup.sh
install

if [[ ${1:-} != --inside && ! -e /sys/module/vsock_loopback ]]; then
  say "this kernel has no vsock_loopback: running the demo in the test VM"
  exec bash test/vm/run.sh 'bash examples/demo.sh --inside'
fi

# run_pair SERVER_RUNTIME CLIENT_RUNTIME
run_pair() {
  local server client log port
  case $1 in
    bun) server=("$BUN" examples/echo_server.ts --once) ;;
    deno) server=("$DENO" run --allow-ffi examples/echo_server.ts --once) ;;
    node) server=("$NODE" --disable-warning=ExperimentalWarning --liftoff-only examples/echo_server.ts --once) ;;
  esac
  case $2 in
    bun) client=("$BUN" examples/echo_client.ts) ;;
    deno) client=("$DENO" run --allow-ffi examples/echo_client.ts) ;;
    node) client=("$NODE" --disable-warning=ExperimentalWarning --liftoff-only examples/echo_client.ts) ;;
  esac
  say "$1 server, $2 client"
  log=$(mktemp)
  "${server[@]}" >"$log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do
    port=$(grep -oE 'listening vsock://\*:[0-9]+' "$log" | grep -oE '[0-9]+$' || true)
    [[ -n $port ]] && break
    sleep 0.1
  done
  [[ -n $port ]] || { cat "$log"; echo "the $1 server did not start" >&2; exit 1; }
  echo "server: $(head -1 "$log")"
  echo "client: $("${client[@]}" "vsock://1:$port" "hello from $2 to $1")"
  wait "$pid"
  echo "server: $(tail -1 "$log")"
  rm -f "$log"
}

run_pair bun deno
run_pair deno node
run_pair node bun

say "HTTP: the guest agent (examples/http_agent.ts) on bun, its host-side client on deno"
log=$(mktemp)
"$BUN" examples/http_agent.ts >"$log" 2>&1 &
agent=$!
for _ in $(seq 100); do
  port=$(grep -oE 'agent listening on vsock://\*:[0-9]+' "$log" | grep -oE '[0-9]+$' || true)
  [[ -n $port ]] && break
  sleep 0.1
done
[[ -n $port ]] || { cat "$log"; echo "the agent did not start" >&2; exit 1; }
"$DENO" run --allow-ffi --allow-env examples/http_agent_client.ts 1 "$port"
kill -TERM "$agent"
wait "$agent"
cat "$log"
rm -f "$log"
