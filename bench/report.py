"""Medians, ratios, the table on stdout and bench/results.json, from bench/run.sh's raw lines."""
import datetime
import json
import os
import statistics
import sys

raw_path, rounds, quick, kernel = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
raw: dict = {}
for line in open(raw_path):
    workload, who, *values = line.split()
    raw.setdefault(workload, {}).setdefault(who, []).append([float(v) for v in values])


def med(workload: str, who: str, i: int = 0):
    runs = raw.get(workload, {}).get(who)
    return statistics.median(r[i] for r in runs) if runs else None


def ratio(a, b):
    return round(a / b, 2) if a is not None and b else None


def vs(workload: str, ours: str, baseline: str):
    return ratio(med(workload, ours), med(workload, baseline))


ratios = {
    "bun_pingpong_vs_c": vs("pingpong", "bun", "c"),
    "bun_stream_vs_c": vs("stream", "bun", "c"),
    "deno_pingpong_vs_deno_native": vs("pingpong", "deno", "deno_native"),
    "deno_stream_vs_deno_native": vs("stream", "deno", "deno_native"),
    "bun_connect_vs_c": vs("connects", "bun", "c"),
    "deno_connect_vs_c": vs("connects", "deno", "c"),
    "bun_rss_kib_per_conn": med("many", "bun", 1),
    "deno_rss_kib_per_conn": med("many", "deno", 1),
    "deno_native_rss_kib_per_conn": med("many", "deno_native", 1),
    "bun_many_vs_deno_native": vs("many", "bun", "deno_native"),
    "deno_many_vs_deno_native": vs("many", "deno", "deno_native"),
    "deno_pingpong_vs_c": vs("pingpong", "deno", "c"),
    "deno_stream_vs_c": vs("stream", "deno", "c"),
    "node_pingpong_vs_c": vs("pingpong", "node", "c"),
    "node_stream_vs_c": vs("stream", "node", "c"),
    "node_connect_vs_c": vs("connects", "node", "c"),
    "bun_connect_seq_vs_c": vs("connects_seq", "bun", "c"),
    "deno_connect_seq_vs_c": vs("connects_seq", "deno", "c"),
    "node_connect_seq_vs_c": vs("connects_seq", "node", "c"),
    "node_rss_kib_per_conn": med("many", "node", 1),
    "node_pingpong_vs_node_tcp": vs("pingpong", "node", "node_tcp"),
    "node_stream_vs_node_tcp": vs("stream", "node", "node_tcp"),
    "node_many_vs_deno_native": vs("many", "node", "deno_native"),
    "deno_busypoll_pingpong_vs_deno_native": vs("pingpong", "deno_busypoll", "deno_native"),
    "deno_busypoll_pingpong_vs_deno": vs("pingpong", "deno_busypoll", "deno"),
    "node_busypoll_pingpong_vs_c": vs("pingpong", "node_busypoll", "c"),
    "node_busypoll_pingpong_vs_node": vs("pingpong", "node_busypoll", "node"),
    "deno_busypoll_stream_vs_deno_native": vs("stream", "deno_busypoll", "deno_native"),
    "deno_busypoll_stream_vs_deno": vs("stream", "deno_busypoll", "deno"),
    "node_busypoll_stream_vs_c": vs("stream", "node_busypoll", "c"),
    "node_busypoll_stream_vs_node": vs("stream", "node_busypoll", "node"),
}

# Hybrid vsock (through test/peers/vmm_mux.py, a python3 VMM muxer) against the
# same client over plain AF_VSOCK, and against C through the same muxer.
hybrid = {
    "bun_hybrid_pingpong_vs_bun": vs("pingpong", "bun_hybrid", "bun"),
    "bun_hybrid_stream_vs_bun": vs("stream", "bun_hybrid", "bun"),
    "deno_hybrid_pingpong_vs_deno": vs("pingpong", "deno_hybrid", "deno"),
    "deno_hybrid_stream_vs_deno": vs("stream", "deno_hybrid", "deno"),
    "node_hybrid_pingpong_vs_node": vs("pingpong", "node_hybrid", "node"),
    "node_hybrid_stream_vs_node": vs("stream", "node_hybrid", "node"),
    "c_hybrid_pingpong_vs_c": vs("pingpong", "c_hybrid", "c"),
    "c_hybrid_stream_vs_c": vs("stream", "c_hybrid", "c"),
    "bun_hybrid_pingpong_vs_c_hybrid": vs("pingpong", "bun_hybrid", "c_hybrid"),
    "bun_hybrid_stream_vs_c_hybrid": vs("stream", "bun_hybrid", "c_hybrid"),
    "deno_hybrid_pingpong_vs_c_hybrid": vs("pingpong", "deno_hybrid", "c_hybrid"),
    "deno_hybrid_stream_vs_c_hybrid": vs("stream", "deno_hybrid", "c_hybrid"),
}

# The runtimes' own sockets against C on the same kernel and transport: the
# floor under the targets that compare ours with C. (No runtime has a C-speed
# event loop; where its own TCP sits far from C's TCP, so does any vsock code on it.)
floors = {
    "bun_tcp_pingpong_vs_c_tcp": vs("pingpong", "bun_tcp", "c_tcp"),
    "bun_tcp_stream_vs_c_tcp": vs("stream", "bun_tcp", "c_tcp"),
    "bun_tcp_connect_vs_c_tcp": vs("connects", "bun_tcp", "c_tcp"),
    "deno_tcp_pingpong_vs_c_tcp": vs("pingpong", "deno_tcp", "c_tcp"),
    "deno_tcp_stream_vs_c_tcp": vs("stream", "deno_tcp", "c_tcp"),
    "deno_tcp_connect_vs_c_tcp": vs("connects", "deno_tcp", "c_tcp"),
    "node_tcp_pingpong_vs_c_tcp": vs("pingpong", "node_tcp", "c_tcp"),
    "node_tcp_stream_vs_c_tcp": vs("stream", "node_tcp", "c_tcp"),
    "node_tcp_connect_vs_c_tcp": vs("connects", "node_tcp", "c_tcp"),
    "bun_tcp_connect_seq_vs_c_tcp": vs("connects_seq", "bun_tcp", "c_tcp"),
    "deno_tcp_connect_seq_vs_c_tcp": vs("connects_seq", "deno_tcp", "c_tcp"),
    "node_tcp_connect_seq_vs_c_tcp": vs("connects_seq", "node_tcp", "c_tcp"),
    "deno_native_connect_seq_vs_c": vs("connects_seq", "deno_native", "c"),
    "deno_native_connect_vs_c": vs("connects", "deno_native", "c"),
    "deno_native_pingpong_vs_c": vs("pingpong", "deno_native", "c"),
    # Bun's own socket code on a vsock fd (socket + connect by FFI, then Bun.connect({ fd })): ours on Bun's floor.
    "bun_fd_pingpong_vs_c": vs("pingpong", "bun_fd", "c"),
    "bun_fd_stream_vs_c": vs("stream", "bun_fd", "c"),
    "bun_pingpong_vs_bun_fd": vs("pingpong", "bun", "bun_fd"),
    "bun_stream_vs_bun_fd": vs("stream", "bun", "bun_fd"),
    "bun_fd_connect_vs_c": vs("connects", "bun_fd", "c"),
    "bun_fd_connect_seq_vs_c": vs("connects_seq", "bun_fd", "c"),
    "bun_connect_vs_bun_fd": vs("connects", "bun", "bun_fd"),
    "bun_connect_seq_vs_bun_fd": vs("connects_seq", "bun", "bun_fd"),
}
# The connect rows' profile: each client's own CPU µs per connect (user + system, all its threads), and the
# share of wall time it was on a CPU (CPU per connect × connects/s). A share near 1 means the client process is
# the bottleneck, so its rate is what its own per-connect work costs, not the kernel or the server.
connect_cpu = {}
for workload in ["connects", "connects_seq"]:
    for who, runs in raw.get(workload, {}).items():
        if len(runs[0]) < 2:
            continue
        cpu = med(workload, who, 1)
        connect_cpu[f"{who}_{workload}_cpu_us"] = cpu
        connect_cpu[f"{who}_{workload}_cpu_share"] = round(cpu * med(workload, who) / 1e6, 2)
# Deno: what ours pays over Deno's own vsock per ping-pong round, next to one
# hand-off through Deno's FFI pool (bench/deno_hop.ts): a parked read costs one.
gap = med("pingpong", "deno"), med("pingpong", "deno_native")
deno_hop = {
    "deno_pingpong_gap_us": round(gap[0] - gap[1], 1) if None not in gap else None,
    "deno_ffi_offthread_call_us": med("hop", "deno"),
}
# HTTP (keep-alive, one C load client): requests/s ratios per row (higher is
# better) and p99 latency ratios (lower is better); rows http_<body>_c<connections>.
HTTP_ROWS = ["http_64_c1", "http_64_c16", "http_64k_c1", "http_64k_c16"]
http = {}
for row in HTTP_ROWS:
    name = row.removeprefix("http_")
    http[f"deno_http_{name}_vs_deno_native"] = vs(row, "deno", "deno_native")
    http[f"bun_http_{name}_vs_bun_tcp"] = vs(row, "bun", "bun_tcp")
    http[f"deno_http_{name}_p99_vs_deno_native"] = ratio(med(row, "deno", 2), med(row, "deno_native", 2))
    http[f"bun_http_{name}_p99_vs_bun_tcp"] = ratio(med(row, "bun", 2), med(row, "bun_tcp", 2))
    http[f"deno_native_http_{name}_vs_deno_tcp"] = vs(row, "deno_native", "deno_tcp")
    # The design's floor: each runtime's own node:http on TCP with serve()'s conversion (no vsock, no bridge),
    # and that floor against the runtime's native server.
    for rt in ["bun", "deno", "node"]:
        http[f"{rt}_http_{name}_vs_{rt}_nodehttp"] = vs(row, rt, f"{rt}_nodehttp")
    http[f"bun_nodehttp_http_{name}_vs_bun_tcp"] = vs(row, "bun_nodehttp", "bun_tcp")
    http[f"deno_nodehttp_http_{name}_vs_deno_tcp"] = vs(row, "deno_nodehttp", "deno_tcp")

# fetch (the client side: each client against Deno.serve, on vsock or on TCP): requests/s ratios per row, ours
# against the runtime's own fetch() over TCP, its own node:http client over TCP (the design's floor), and Deno's
# own vsock fetch; the runtimes' own fetch() against C's load client.
FETCH_ROWS = ["fetch_64_c1", "fetch_64_c16", "fetch_64k_c1"]
fetch = {}
for row in FETCH_ROWS:
    name = row.removeprefix("fetch_")
    for rt in ["bun", "deno", "node"]:
        fetch[f"{rt}_fetch_{name}_vs_{rt}_tcp"] = vs(row, rt, f"{rt}_tcp")
        fetch[f"{rt}_fetch_{name}_vs_{rt}_nodehttp"] = vs(row, rt, f"{rt}_nodehttp")
    fetch[f"deno_fetch_{name}_vs_deno_native"] = vs(row, "deno", "deno_native")
    fetch[f"deno_native_fetch_{name}_vs_c"] = vs(row, "deno_native", "c")
    for rt in ["bun", "deno", "node"]:
        fetch[f"{rt}_tcp_fetch_{name}_vs_c_tcp"] = vs(row, f"{rt}_tcp", "c_tcp")

# The cost curve: ping-pong on 1, 10, 100 and 1,000 connections at once. Per row and client:
# round trips/s, and µs per round seen by one connection (connections / rate); ratios are
# ours / Deno native (throughput: higher is better). Then RSS per idle connection.
CURVE = [1, 10, 100, 1000]
curve = {}
for n in CURVE:
    for who in ["bun", "deno", "node"]:
        curve[f"{who}_curve_{n}_vs_deno_native"] = vs(f"curve_{n}", who, "deno_native")
idle_rows = sorted(k for k in raw if k.startswith("idle_"))
idle = {f"{who}_{row}_rss_kib_per_conn": med(row, who) for row in idle_rows for who in ["deno_native", "bun", "deno", "node"]}

# `vsock forward` (tcp -> vsock) against socat's TCP-LISTEN,fork VSOCK-CONNECT: throughput, then latency.
forward = {
    "bun_fwd_stream_vs_socat": vs("forward", "bun_fwd", "socat_fwd"),
    "deno_fwd_stream_vs_socat": vs("forward", "deno_fwd", "socat_fwd"),
    "bun_fwd_pingpong_vs_socat": ratio(med("forward", "bun_fwd", 1), med("forward", "socat_fwd", 1)),
    "deno_fwd_pingpong_vs_socat": ratio(med("forward", "deno_fwd", 1), med("forward", "socat_fwd", 1)),
    "node_fwd_stream_vs_socat": vs("forward", "node_fwd", "socat_fwd"),
    "node_fwd_pingpong_vs_socat": ratio(med("forward", "node_fwd", 1), med("forward", "socat_fwd", 1)),
    "deno_fwd_busypoll_stream_vs_socat": vs("forward", "deno_fwd_busypoll", "socat_fwd"),
    "deno_fwd_busypoll_pingpong_vs_socat": ratio(med("forward", "deno_fwd_busypoll", 1), med("forward", "socat_fwd", 1)),
    "node_fwd_busypoll_stream_vs_socat": vs("forward", "node_fwd_busypoll", "socat_fwd"),
    "node_fwd_busypoll_pingpong_vs_socat": ratio(med("forward", "node_fwd_busypoll", 1), med("forward", "socat_fwd", 1)),
}
targets = {
    "bun_pingpong_vs_c": ("<=", 1.3),
    "bun_stream_vs_c": (">=", 0.9),
    "deno_pingpong_vs_deno_native": ("<=", 1.0),
    "deno_stream_vs_deno_native": (">=", 1.0),
    "bun_connect_vs_c": (">=", 0.8),
    "deno_connect_vs_c": (">=", 0.8),
    "bun_rss_kib_per_conn": ("<", 64),
    "deno_rss_kib_per_conn": ("<", 64),
    "node_pingpong_vs_c": ("<=", 1.2),
    "node_stream_vs_c": (">=", 0.9),
    "node_connect_vs_c": (">=", 0.8),
    "node_rss_kib_per_conn": ("<=", 32),
}
for row in HTTP_ROWS:
    name = row.removeprefix("http_")
    targets[f"deno_http_{name}_vs_deno_native"] = (">=", 1.0)
    targets[f"bun_http_{name}_vs_bun_tcp"] = (">=", 0.7)

units = {
    "pingpong": "us/round (lower is better)",
    "stream": "MiB/s",
    "connects": "connects+closes/s, client CPU us per connect (epoll echo server: closes when the client does)",
    "connects_seq": "connects+closes/s, client CPU us per connect (accept-close server: one blocking accept at a time, closes at once)",
    "many": "round trips/s, KiB RSS/conn",
    **{f"curve_{n}": f"{n} connection{'s' if n > 1 else ''} at once: round trips/s, KiB RSS/conn" for n in CURVE},
    **{row: f"{row.removeprefix('idle_')} idle connections: KiB RSS/conn" for row in idle_rows},
    "hop": "us per Deno nonblocking FFI call round trip",
    **{row: "requests/s, p50 us, p99 us" for row in HTTP_ROWS},
    **{row: "HTTP client: requests/s, p50 us, p99 us" for row in FETCH_ROWS},
    "forward": "TCP client through a tcp->vsock forwarder: MiB/s, us/round",
}
print(f"vsock benchmarks, CID 1, kernel {kernel}, medians of {rounds} interleaved rounds{' (quick)' if quick else ''}")
for workload, unit in units.items():
    print(f"\n{workload} — {unit}")
    for who in raw.get(workload, {}):
        values = " ".join(f"{statistics.median(r[i] for r in raw[workload][who]):.1f}" for i in range(len(raw[workload][who][0])))
        print(f"  {who:<12} {values}")


def verdict(name, value):
    target = targets.get(name)
    if not target or value is None:
        return ""
    op, bound = target
    met = value <= bound if op == "<=" else value >= bound if op == ">=" else value < bound
    return f"  target {op} {bound}: {'met' if met else 'MISSED'}"


print("\nratios (latency: ours/baseline, lower is better; throughput and rate: ours/baseline, higher is better)")
for name, value in ratios.items():
    print(f"  {name:<30} {value}{verdict(name, value)}")
print("\nhttp (requests/s: ours/baseline, higher is better; p99: ours/baseline, lower is better)")
for name, value in http.items():
    print(f"  {name:<38} {value}{verdict(name, value)}")

print("\nfetch: HTTP clients against Deno.serve (requests/s: ours/baseline, higher is better)")
for name, value in fetch.items():
    print(f"  {name:<38} {value}")

print("\ncost curve: µs per round for one connection (connections / round trips/s), and ours/Deno native throughput")
for n in CURVE:
    cells = []
    for who in ["deno_native", "bun", "deno", "node"]:
        rate = med(f"curve_{n}", who)
        if rate:
            cells.append(f"{who} {n * 1e6 / rate:.0f}" + ("" if who == "deno_native" else f" ({vs(f'curve_{n}', who, 'deno_native')}x)"))
    if cells:
        print(f"  {n:>5}: " + ", ".join(cells))
for name, value in idle.items():
    print(f"  {name:<36} {value}")

print("\nfloors: the runtimes' own sockets against C (same workloads)")
for name, value in floors.items():
    print(f"  {name:<30} {value}")
print("\nconnect profile: the client's CPU µs per connect, and the share of wall time it was on a CPU")
for name, value in connect_cpu.items():
    print(f"  {name:<34} {value}")
print("\nhybrid vsock through a python3 VMM muxer (ratios as above)")
for name, value in hybrid.items():
    print(f"  {name:<34} {value}")
print("\nvsock forward vs socat (stream: higher is better, target >= 1.0; ping-pong: lower is better)")
for name, value in forward.items():
    print(f"  {name:<30} {value}")
print("\nDeno's extra cost per parked read")
for name, value in deno_hop.items():
    print(f"  {name:<30} {value}")

result = {
    "date": datetime.date.today().isoformat(),
    "environment": f"QEMU TCG guest (-cpu max, 2 vCPU) unless run natively; kernel {kernel}; vsock_loopback CID 1",
    "rounds": rounds,
    "quick": quick,
    "ratios": ratios,
    "floors": floors,
    "connect_cpu": connect_cpu,
    "deno_hop": deno_hop,
    "hybrid": hybrid,
    "http": http,
    "fetch": fetch,
    "forward": forward,
    "curve": curve,
    "idle": idle,
    "raw": raw,
}
# Only a full run of every family is the record: a BENCH_ONLY run would leave most rows empty.
if not quick and not os.environ.get("BENCH_ONLY", "").strip():
    with open("bench/results.json", "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
