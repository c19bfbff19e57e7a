"""Medians, ratios, the table on stdout and bench/results.json, from bench/run.sh's raw lines."""
import datetime
import json
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
    "deno_native_connect_vs_c": vs("connects", "deno_native", "c"),
    "deno_native_pingpong_vs_c": vs("pingpong", "deno_native", "c"),
}
# Deno: what ours pays over Deno's own vsock per ping-pong round, next to one
# hand-off through Deno's FFI pool (bench/deno_hop.ts): a parked read costs one.
gap = med("pingpong", "deno"), med("pingpong", "deno_native")
deno_hop = {
    "deno_pingpong_gap_us": round(gap[0] - gap[1], 1) if None not in gap else None,
    "deno_ffi_offthread_call_us": med("hop", "deno"),
}
# `vsock forward` (tcp -> vsock) against socat's TCP-LISTEN,fork VSOCK-CONNECT: throughput, then latency.
forward = {
    "bun_fwd_stream_vs_socat": vs("forward", "bun_fwd", "socat_fwd"),
    "deno_fwd_stream_vs_socat": vs("forward", "deno_fwd", "socat_fwd"),
    "bun_fwd_pingpong_vs_socat": ratio(med("forward", "bun_fwd", 1), med("forward", "socat_fwd", 1)),
    "deno_fwd_pingpong_vs_socat": ratio(med("forward", "deno_fwd", 1), med("forward", "socat_fwd", 1)),
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
}

units = {
    "pingpong": "us/round (lower is better)",
    "stream": "MiB/s",
    "connects": "connects+closes/s",
    "many": "round trips/s, KiB RSS/conn",
    "hop": "us per Deno nonblocking FFI call round trip",
    "forward": "TCP client through a tcp->vsock forwarder: MiB/s, us/round",
}
print(f"vsock benchmarks, CID 1, kernel {kernel}, medians of {rounds} interleaved rounds{' (quick)' if quick else ''}")
for workload, unit in units.items():
    print(f"\n{workload} — {unit}")
    for who in raw.get(workload, {}):
        values = " ".join(f"{statistics.median(r[i] for r in raw[workload][who]):.1f}" for i in range(len(raw[workload][who][0])))
        print(f"  {who:<12} {values}")
print("\nratios (latency: ours/baseline, lower is better; throughput and rate: ours/baseline, higher is better)")
for name, value in ratios.items():
    target = targets.get(name)
    verdict = ""
    if target and value is not None:
        op, bound = target
        met = value <= bound if op == "<=" else value >= bound if op == ">=" else value < bound
        verdict = f"  target {op} {bound}: {'met' if met else 'MISSED'}"
    print(f"  {name:<30} {value}{verdict}")

print("\nfloors: the runtimes' own sockets against C (same workloads)")
for name, value in floors.items():
    print(f"  {name:<30} {value}")
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
    "deno_hop": deno_hop,
    "forward": forward,
    "raw": raw,
}
if not quick:
    with open("bench/results.json", "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
