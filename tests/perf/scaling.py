#!/usr/bin/env python3
"""Scaling of sluice-echo with the number of loops: N loops pinned to CPUs
0..N-1, sluice-bench on the remaining CPUs (as many loops as CPUs left),
64-byte messages, 50 connections per server loop. Prints msgs/s per
configuration and the scaling efficiency (rate(N) / (N * rate(1))).

  /usr/bin/python3 tests/perf/scaling.py [--loops=1,2,4,8,14] [--seconds=5]

Configurations that do not fit the machine (N loops need N CPUs for the
server and at least N more for the load) are skipped with a note.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perflib as P  # noqa: E402


def run(loops, cpus, seconds):
    server_cpus = f"0-{loops - 1}"
    load_cpus = f"{loops}-{cpus - 1}"
    port = P.free_port()
    echo = os.path.join(P.BUILD, "apps", "sluice-echo")
    s = P.server([echo, f"--listen=127.0.0.1:{port}", f"--cpuset={server_cpus}", f"--cores={loops}"], port, cpus=server_cpus)
    try:
        r = P.bench_on(load_cpus, ["echo", f"--target=127.0.0.1:{port}", f"--connections={50 * loops}", "--size=64",
                                   f"--duration={seconds}s", "--warmup=1s", f"--cpuset={load_cpus}"])
    finally:
        s.stop()
    return r["msgs_per_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loops", default="1,2,4,8,14")
    ap.add_argument("--seconds", type=float, default=5)
    a = ap.parse_args()
    P.ensure_build()
    cpus = os.cpu_count()
    rows, base = [], None
    for n in [int(x) for x in a.loops.split(",")]:
        if 2 * n > cpus:
            rows.append(f"{n:>5}  skipped: needs {2 * n} CPUs ({n} for the server, {n} for the load), have {cpus}")
            continue
        rate = run(n, cpus, a.seconds)
        base = base or rate
        rows.append(f"{n:>5}  {rate:>12.0f}  {rate / (n * base):>9.2f}")
    text = "\n".join([f"sluice-echo scaling, 64-byte echo, 50 connections per loop, {cpus} CPUs",
                      f"{'loops':>5}  {'msgs/s':>12}  {'efficiency':>9}"] + rows)
    print(text)
    with open(os.path.join(P.OUT, "scaling.txt"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
