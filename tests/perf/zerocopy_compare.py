#!/usr/bin/env python3
"""Where does io_uring's zero-copy send (send_zc) start to pay? sluice-echo
--transport=io_uring with --zerocopy-threshold off and at several sizes,
in the same run (rounds interleaved), server on CPU 0 and sluice-bench on
CPU 1: echo of large messages (16 KiB to 256 KiB) at 4 connections. Reports
msgs/s, MB/s and server CPU time per MB for each threshold, as ratios to
"off" measured in the same round.

On loopback the kernel copies zero-copy pages when it delivers them to the
local receiver (skb_orphan_frags_rx), so send_zc pays the page pinning and
the notification completion on top of the same copy: expect no gain here.
A NIC path (where the copy really goes) is not measured on this machine.
This is what --zerocopy-threshold's default (off) rests on.

  /usr/bin/python3 tests/perf/zerocopy_compare.py [--seconds=3] [--rounds=3]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perflib as P  # noqa: E402

ECHO = os.path.join(P.BUILD, "apps", "sluice-echo")
THRESHOLDS = ["off", "16k", "64k"]
SIZES = [16 * 1024, 64 * 1024, 256 * 1024]


def run(threshold, size, seconds, conns=4):
    port = P.free_port()
    argv = [ECHO, f"--listen=127.0.0.1:{port}", "--transport=io_uring", "--cores=1"]
    if threshold != "off":
        argv.append(f"--zerocopy-threshold={threshold}")
    s = P.server(argv, port)
    try:
        cpu0 = s.cpu()
        r = P.bench(["echo", f"--target=127.0.0.1:{port}", f"--connections={conns}", f"--size={size}",
                     f"--duration={seconds}s", "--warmup=0s"])
        cpu = s.cpu() - cpu0
    finally:
        s.stop()
    mb = r["messages"] * size / 1e6
    return r["msgs_per_s"], r["msgs_per_s"] * size / 1e6, cpu / max(mb, 1e-9)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    P.ensure_build()
    res = {}
    for rnd in range(a.rounds):
        for size in SIZES:
            order = THRESHOLDS[rnd % len(THRESHOLDS):] + THRESHOLDS[:rnd % len(THRESHOLDS)]
            for t in order:
                res.setdefault((size, t), []).append(run(t, size, a.seconds))
    lines = [f"io_uring echo, 4 connections, server on CPU {P.SERVER_CPU}, load on CPU {P.LOAD_CPU}; "
             f"{a.rounds} interleaved rounds of {a.seconds:g} s, medians; ratios to threshold off",
             f"{'size':>8} {'threshold':>9} {'msgs/s':>9} {'MB/s':>8} {'vs off':>7} {'CPU ms/MB':>10} {'vs off':>7}"]
    for size in SIZES:
        base = res[(size, "off")]
        for t in THRESHOLDS:
            runs = res[(size, t)]
            rate = P.median([x[1] for x in runs])
            cpu = P.median([x[2] for x in runs])
            lines.append(f"{size // 1024:>7}k {t:>9} {P.median([x[0] for x in runs]):>9.0f} {rate:>8.0f} "
                         f"{rate / P.median([x[1] for x in base]):>6.2f}x {cpu * 1e3:>10.3f} "
                         f"{cpu / P.median([x[2] for x in base]):>6.2f}x")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(P.OUT, "zerocopy_compare.txt"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
