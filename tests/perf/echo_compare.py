#!/usr/bin/env python3
"""sluice-echo against a minimal hand-written edge-triggered epoll echo server
(ref_epoll_echo.c), in the same run: server on CPU 0, sluice-bench on CPU 1,
64-byte messages at 1 and 50 connections, 1 KiB messages at 50 connections. Reports msgs/s, p50/p99 latency,
server CPU time per message, syscalls per message (strace -c -f over a fixed
message count) and heap allocations per message in steady state, and user-space instructions per message (valgrind
--tool=callgrind: exact where msgs/s moves by 10% between runs on a VM).

Rounds alternate between the servers, each round in another order (every
permutation in turn, so that no server always follows the same one and drift
hits all alike); msgs/s "vs ref" is the median of the per-round ratios, with
their range. Unless --no-control, the reference runs twice per round, as
"ref again": its ratio to itself is what this machine's noise alone gives.

Besides the default (sleeping) servers, a "spin" table runs both servers and
sluice-bench with --busy-poll at 1 connection: nothing sleeps, so the
hypervisor's wake-up latency (which sets the 1-connection rate of sleeping
servers on a VM, and varies by 2x from round to round) drops out, and what is
left is each server's own cost per message.

With --io-uring, sluice-echo --transport=io_uring runs too (issue 18), and
its CPU time and system calls per message are also given as ratios to
sluice-echo on epoll's in the same table ("vs epoll"). valgrind does not
emulate io_uring: no instruction count there.

  /usr/bin/python3 tests/perf/echo_compare.py [--seconds=5] [--rounds=6] [--no-control] [--no-spin]
      [--io-uring] [--no-instr] [--no-allocs]
"""

import argparse
import itertools
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perflib as P  # noqa: E402


def busy(spin):
    """The flag that makes a server (either one) and sluice-bench spin instead of sleeping."""
    return ["--busy-poll"] if spin else []


def servers(control, spin=False, io_uring=False):
    ref = P.cc("ref_epoll_echo.c", os.path.join(P.OUT, "ref_epoll_echo"))
    echo = os.path.join(P.BUILD, "apps", "sluice-echo")
    out = [
        ("ref epoll", lambda port: [ref, str(port), *busy(spin)]),
        ("sluice-echo", lambda port: [echo, f"--listen=127.0.0.1:{port}", *busy(spin)]),
    ]
    if io_uring:  # the same sluice-echo on the completion transport (issue 18)
        out.append(("sluice io_uring", lambda port: [echo, f"--listen=127.0.0.1:{port}", "--transport=io_uring",
                                                     *busy(spin)]))
    if control:
        out.append(("ref again", out[0][1]))
    return out


def throughput(argv_for, conns, seconds, spin=False, size=64):
    port = P.free_port()
    s = P.server(argv_for(port), port)
    try:
        cpu0, ticks0 = s.cpu(), P.cpu_ticks()
        r = P.bench(["echo", f"--target=127.0.0.1:{port}", f"--connections={conns}", f"--size={size}",
                     f"--duration={seconds}s", "--warmup=0s", *busy(spin)])
        cpu, steal = s.cpu() - cpu0, P.steal_fraction(ticks0, P.cpu_ticks())
    finally:
        s.stop()
    return r["msgs_per_s"], r["latency_ns"]["p50"], r["latency_ns"]["p99"], cpu / max(1, r["messages"]), steal


def syscalls_per_msg(argv_for, conns, messages, size=64):
    port = P.free_port()
    out = os.path.join(P.OUT, "strace.txt")
    s = P.server(argv_for(port), port, wrapper=["strace", "-c", "-f", "-o", out])
    try:
        P.bench(["echo", f"--target=127.0.0.1:{port}", f"--connections={conns}", f"--size={size}",
                 f"--messages={messages}"])
    finally:
        s.stop()
    return P.strace_total(out) / messages


def allocs_per_msg(argv_for, conns, shim, size=64):
    counts = []
    for messages in (20000, 220000):
        port = P.free_port()
        out = os.path.join(P.OUT, "allocs.txt")
        env = dict(os.environ, LD_PRELOAD=shim, COUNT_ALLOC_OUT=out)
        s = P.server(argv_for(port), port, env=env)
        try:
            P.bench(["echo", f"--target=127.0.0.1:{port}", f"--connections={conns}", f"--size={size}",
                     f"--messages={messages}"])
        finally:
            s.stop()
        counts.append(int(open(out).read()))
    return (counts[1] - counts[0]) / 200000


def instructions_per_msg(argv_for, conns, size=64):
    """User-space instructions per message: callgrind's total over two runs
    of different lengths, differenced (start-up and exit cancel out)."""
    counts = []
    for messages in (2000, 12000):
        port = P.free_port()
        out = os.path.join(P.OUT, "callgrind.out")
        s = P.server(argv_for(port), port, wrapper=["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"],
                     start_timeout=60)
        try:
            P.bench(["echo", f"--target=127.0.0.1:{port}", f"--connections={conns}", f"--size={size}",
                     f"--messages={messages}"])
        finally:
            s.stop()
        counts.append(P.callgrind_total(out))
    return (counts[1] - counts[0]) / 10000


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--strace-messages", type=int, default=50000)
    ap.add_argument("--no-control", action="store_true", help="do not run the reference a second time per round")
    ap.add_argument("--no-spin", action="store_true", help="leave out the busy-polling table")
    ap.add_argument("--io-uring", action="store_true", help="also run sluice-echo --transport=io_uring")
    ap.add_argument("--no-instr", action="store_true", help="leave out the instruction counts (valgrind: slow)")
    ap.add_argument("--no-allocs", action="store_true", help="leave out the allocation counts")
    a = ap.parse_args()
    P.ensure_build()
    shim = P.cc("count_alloc.c", os.path.join(P.OUT, "count_alloc.so"), "-shared", "-fPIC", "-ldl")
    have_valgrind = shutil.which("valgrind") is not None and not a.no_instr
    rows = []
    steals = []
    tables = [("sleep", 1, 64), ("sleep", 50, 64), ("sleep", 50, 1024)] + ([] if a.no_spin else [("spin", 1, 64)])
    for mode, conns, size in tables:
        spin = mode == "spin"
        cands = servers(not a.no_control, spin, a.io_uring)
        orders = list(itertools.permutations(cands))
        results = {}
        for r in range(a.rounds):
            for name, argv_for in orders[r % len(orders)]:
                results.setdefault(name, []).append(throughput(argv_for, conns, a.seconds, spin, size))
        steals += [x[4] for runs in results.values() for x in runs]
        ref_runs = results["ref epoll"]
        for name, argv_for in cands:
            runs = results[name]
            ratios = [x[0] / y[0] for x, y in zip(runs, ref_runs)]
            # The control measures only noise; a spinning server's syscalls,
            # allocations and instructions per message count its empty polls.
            measured = name != "ref again" and not spin
            rows.append({
                "mode": mode, "conns": conns, "size": size, "server": name,
                "rate": P.median([x[0] for x in runs]),
                "ratio": P.median(ratios), "lo": min(ratios), "hi": max(ratios),
                "p50": P.median([x[1] for x in runs]),
                "p99": P.median([x[2] for x in runs]),
                "cpu_us": None if spin else P.median([x[3] for x in runs]) * 1e6,
                "sys": syscalls_per_msg(argv_for, conns, a.strace_messages, size) if measured else None,
                "allocs": allocs_per_msg(argv_for, conns, shim, size) if measured and not a.no_allocs else None,
                # valgrind does not emulate io_uring: no instruction count there
                "instr": instructions_per_msg(argv_for, conns, size)
                if measured and have_valgrind and "io_uring" not in name else None,
            })
    lines = [f"echo; server on CPU {P.SERVER_CPU}, sluice-bench on CPU {P.LOAD_CPU}; "
             f"{a.rounds} rounds of {a.seconds:g} s, each in another order: medians, and msgs/s vs ref as the median "
             f"(range) of the per-round ratios; CPU time stolen by the hypervisor during the runs: "
             f"median {P.median(steals) * 100:.0f}%, max {max(steals) * 100:.0f}%; "
             f"mode sleep: the servers block in epoll_wait; spin: servers and load --busy-poll",
             f"{'mode':<5} {'conns':>5} {'size':>5}  {'server':<15} {'msgs/s':>9} {'vs ref':>7} {'range':>11} "
             f"{'p50':>7} {'p99':>7} {'CPU/msg':>8} {'vs epoll':>8} {'sys/msg':>8} {'vs ref':>7} {'vs epoll':>8} "
             f"{'allocs/msg':>10} {'instr/msg':>9} {'vs ref':>7}"]

    def cell(value, fmt, width):
        return f"{'-':>{width}}" if value is None else f"{value:>{width}{fmt}}"

    def ratio(value, ref_value, fmt):
        return f"{'-':>7}" if value is None else f"{value / ref_value:>6{fmt}}x"

    def ratio8(value, base):
        return f"{'-':>8}" if value is None or base is None else f"{value / base:>7.2f}x"

    for r in rows:
        key = (r["mode"], r["conns"], r["size"])
        ref = next(x for x in rows if (x["mode"], x["conns"], x["size"], x["server"]) == (*key, "ref epoll"))
        sl = next(x for x in rows if (x["mode"], x["conns"], x["size"], x["server"]) == (*key, "sluice-echo"))
        cpu = "-" if r["cpu_us"] is None else f"{r['cpu_us']:.2f}us"
        lines.append(f"{r['mode']:<5} {r['conns']:>5} {r['size']:>5}  {r['server']:<15} {r['rate']:>9.0f} "
                     f"{r['ratio']:>6.2f}x {r['lo']:>5.2f}-{r['hi']:<5.2f} "
                     f"{P.fmt_us(r['p50']):>7} {P.fmt_us(r['p99']):>7} {cpu:>8} {ratio8(r['cpu_us'], sl['cpu_us'])} "
                     f"{cell(r['sys'], '.2f', 8)} {ratio(r['sys'], ref['sys'], '.2f')} {ratio8(r['sys'], sl['sys'])} "
                     f"{cell(r['allocs'], '.4f', 10)} {cell(r['instr'], '.0f', 9)} {ratio(r['instr'], ref['instr'], '.1f')}")
    if a.no_instr:
        lines.append("instr/msg: left out (--no-instr)")
    elif not have_valgrind:
        lines.append("instr/msg: valgrind is not installed (bash build/install-deps.sh installs it)")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(P.OUT, "echo_compare.txt"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
