#!/usr/bin/env python3
"""sluice-echo against a minimal hand-written edge-triggered epoll echo server
(ref_epoll_echo.c), in the same run: server on CPU 0, sluice-bench on CPU 1,
64-byte messages, 1 and 50 connections. Reports msgs/s, p50/p99 latency,
server CPU time per message, syscalls per message (strace -c -f over a fixed
message count) and heap allocations per message in steady state.

  /usr/bin/python3 tests/perf/echo_compare.py [--seconds=5] [--rounds=3]
"""

import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perflib as P  # noqa: E402


def servers():
    ref = P.cc("ref_epoll_echo.c", os.path.join(P.OUT, "ref_epoll_echo"))
    echo = os.path.join(P.BUILD, "apps", "sluice-echo")
    return [
        ("ref epoll", lambda port: [ref, str(port)]),
        ("sluice-echo", lambda port: [echo, f"--listen=127.0.0.1:{port}"]),
    ]


def throughput(argv_for, conns, seconds):
    port = P.free_port()
    s = P.server(argv_for(port), port)
    try:
        cpu0 = s.cpu()
        r = P.bench(["echo", f"--target=127.0.0.1:{port}", f"--connections={conns}", "--size=64",
                     f"--duration={seconds}s", "--warmup=0s"])
        cpu = s.cpu() - cpu0
    finally:
        s.stop()
    return r["msgs_per_s"], r["latency_ns"]["p50"], r["latency_ns"]["p99"], cpu / max(1, r["messages"])


def syscalls_per_msg(argv_for, conns, messages):
    port = P.free_port()
    out = os.path.join(P.OUT, "strace.txt")
    s = P.server(argv_for(port), port, wrapper=["strace", "-c", "-f", "-o", out])
    try:
        P.bench(["echo", f"--target=127.0.0.1:{port}", f"--connections={conns}", "--size=64",
                 f"--messages={messages}"])
    finally:
        s.stop()
    return P.strace_total(out) / messages


def allocs_per_msg(argv_for, conns, shim):
    counts = []
    for messages in (20000, 220000):
        port = P.free_port()
        out = os.path.join(P.OUT, "allocs.txt")
        env = dict(os.environ, LD_PRELOAD=shim, COUNT_ALLOC_OUT=out)
        s = P.server(argv_for(port), port, env=env)
        try:
            P.bench(["echo", f"--target=127.0.0.1:{port}", f"--connections={conns}", "--size=64",
                     f"--messages={messages}"])
        finally:
            s.stop()
        counts.append(int(open(out).read()))
    return (counts[1] - counts[0]) / 200000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--strace-messages", type=int, default=50000)
    a = ap.parse_args()
    P.ensure_build()
    shim = P.cc("count_alloc.c", os.path.join(P.OUT, "count_alloc.so"), "-shared", "-fPIC", "-ldl")
    rows = []
    for conns in (1, 50):
        results = {}
        for _ in range(a.rounds):  # alternate, so drift hits both alike
            for name, argv_for in servers():
                results.setdefault(name, []).append(throughput(argv_for, conns, a.seconds))
        for name, argv_for in servers():
            runs = results[name]
            rows.append({
                "conns": conns, "server": name,
                "rate": P.median([x[0] for x in runs]),
                "p50": P.median([x[1] for x in runs]),
                "p99": P.median([x[2] for x in runs]),
                "cpu_us": P.median([x[3] for x in runs]) * 1e6,
                "sys": syscalls_per_msg(argv_for, conns, a.strace_messages),
                "allocs": allocs_per_msg(argv_for, conns, shim),
            })
    lines = [f"64-byte echo; server on CPU {P.SERVER_CPU}, sluice-bench on CPU {P.LOAD_CPU}; "
             f"median of {a.rounds} alternating runs of {a.seconds:g} s",
             f"{'conns':>5}  {'server':<12} {'msgs/s':>9} {'vs ref':>7} {'p50':>7} {'p99':>7} "
             f"{'CPU/msg':>8} {'sys/msg':>8} {'vs ref':>7} {'allocs/msg':>10}"]
    for r in rows:
        ref = next(x for x in rows if x["conns"] == r["conns"] and x["server"] == "ref epoll")
        lines.append(f"{r['conns']:>5}  {r['server']:<12} {r['rate']:>9.0f} {r['rate'] / ref['rate']:>6.2f}x "
                     f"{P.fmt_us(r['p50']):>7} {P.fmt_us(r['p99']):>7} {r['cpu_us']:>6.2f}us "
                     f"{r['sys']:>8.2f} {r['sys'] / ref['sys']:>6.2f}x {r['allocs']:>10.4f}")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(P.OUT, "echo_compare.txt"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
