#!/usr/bin/env python3
"""Two sluice processes over shared memory (DPDK net_memif) against the same
two programs over the kernel's loopback TCP (epoll), in the same run (issue 21):

  echo 64 B at 1 and at 50 connections (sluice-echo driven by sluice-bench),
  and HTTP GET / at 50 connections (sluice-httpd driven by sluice-bench http);
  msgs/s and p50/p99/p99.9 latency as sluice-bench measures them.

Server on CPU 0, sluice-bench on CPU 1 (--cpuset), one loop each. Over memif
both run on DPDK (server role=server, bench role=client) inside a network
namespace this script creates (memif's abstract socket lives there) and
deletes; nothing leaves the machine. The kernel runs use 127.0.0.1. Rounds
alternate memif / kernel (order flipped every round); the table gives each
side's median over the rounds and memif's ratio to the kernel.

  /usr/bin/python3 tests/perf/memif_compare.py [--seconds=3] [--rounds=3] [--idle-sleep=D] [--busy-poll]

--busy-poll runs the memif side's loops without ever sleeping (the default is
DPDK's adaptive polling: spin 200us after work, then sleeps up to
--idle-sleep). Output also goes to _perf/memif_compare.txt. Needs root.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("SLUICE_BUILD", os.path.join(ROOT, "_build", "release"))
APPS = os.path.join(BUILD, "apps")
OUT = os.path.join(ROOT, "_perf")
EAL = "--no-huge -m 512 --no-pci --no-telemetry"


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(argv, log_path, ready):
    out = open(log_path, "w+")
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        with open(log_path) as f:
            if re.search(ready, f.read()):
                return p, out
        if p.poll() is not None:
            break
        time.sleep(0.05)  # a log file: no event to wait on
    p.kill()
    p.wait()
    with open(log_path) as f:
        sys.exit(f"server did not start: {' '.join(argv)}\n{f.read()[-2000:]}")


def stop(p, out):
    p.terminate()
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    out.close()


def run_bench(argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith("{")), None)
    if r.returncode != 0 or line is None:
        sys.exit(f"sluice-bench failed (rc {r.returncode}): {' '.join(argv)}\n{r.stdout[-1500:]}{r.stderr[-1500:]}")
    return json.loads(line)


def one(side, work, conns, args, tag):
    """One measurement: (msgs/s, p50, p99, p99.9 in ns, server CPU seconds per second)."""
    server = "sluice-httpd" if work == "http" else "sluice-echo"
    srv_args = ["--cores=1", "--cpuset=0", "--shutdown-timeout=1s"]
    bench = [os.path.join(APPS, "sluice-bench"), work, "--cores=1", "--cpuset=1", f"--connections={conns}",
             f"--duration={args.seconds}s", "--warmup=1s", "--json"]
    bench += ["--size=64"] if work == "echo" else ["--expect-body=Hello, World!"]
    log = os.path.join(OUT, f"memif_compare_{tag}.log")
    if side == "memif":
        sock = f"/run/sluice_memif_compare_{os.getpid()}.sock"
        poll = ["--busy-poll"] if args.busy_poll else [f"--idle-sleep={args.idle_sleep}"]
        srv = [os.path.join(APPS, server), "--transport=dpdk", "--ip=10.79.1.1/24",
               f"--dpdk-args={EAL} --vdev=net_memif0,role=server,socket={sock}", "--listen=0.0.0.0:7", *poll]
        bench += ["--transport=dpdk", "--ip=10.79.1.2/24", "--target=10.79.1.1:7",
                  f"--dpdk-args={EAL} --vdev=net_memif0,role=client,socket={sock}", *poll]
    else:
        srv = [os.path.join(APPS, server), "--transport=epoll", "--listen=127.0.0.1:17321"]
        bench += ["--transport=epoll", "--target=127.0.0.1:17321"]
    p, out = start(srv + srv_args, log, r"sluice-[a-z]+: .* on ")
    try:
        c0, t0 = cpu_seconds(p.pid), time.monotonic()
        r = run_bench(bench)
        c1, t1 = cpu_seconds(p.pid), time.monotonic()
    finally:
        stop(p, out)
    lat = r["latency_ns"]
    errors = sum(r["errors"].values())
    if errors:
        sys.exit(f"{side} {work} {conns}: {errors} errors: {r}")
    return r["msgs_per_s"], lat["p50"], lat["p99"], lat["p999"], (c1 - c0) / (t1 - t0)


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def us(ns):
    return f"{ns / 1000:.1f}us"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--idle-sleep", default="1ms")
    ap.add_argument("--busy-poll", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (a network namespace for memif's abstract socket)")
    os.makedirs(OUT, exist_ok=True)
    ns = f"slmcmp{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    import ctypes
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
    lines = []

    def say(s):
        print(s, flush=True)
        lines.append(s)

    try:
        if libc.setns(fd, 0x40000000) != 0:
            sys.exit("setns failed")
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        say(f"memif_compare: server CPU 0, sluice-bench CPU 1, {args.seconds}s per run, {args.rounds} rounds, "
            f"memif polling: {'--busy-poll' if args.busy_poll else 'adaptive, --idle-sleep=' + args.idle_sleep}")
        say(f"host: {os.uname().release}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
        say(f"{'workload':<16}{'side':<8}{'msgs/s':>12}{'p50':>10}{'p99':>10}{'p99.9':>10}{'srv CPU':>9}")
        for work, conns in (("echo", 1), ("echo", 50), ("http", 50)):
            res = {"memif": [], "kernel": []}
            for rnd in range(args.rounds):
                order = ("memif", "kernel") if rnd % 2 == 0 else ("kernel", "memif")
                for side in order:
                    res[side].append(one(side, work, conns, args, f"{side}_{work}_{conns}_{rnd}"))
            med = {s: [median([r[i] for r in res[s]]) for i in range(5)] for s in res}
            for side in ("memif", "kernel"):
                m = med[side]
                say(f"{work + ' x' + str(conns):<16}{side:<8}{m[0]:>12.0f}{us(m[1]):>10}{us(m[2]):>10}{us(m[3]):>10}"
                    f"{m[4]:>8.2f}s")
            k, m = med["kernel"], med["memif"]
            say(f"{'':<16}{'ratio':<8}{m[0] / k[0]:>11.2f}x{m[1] / k[1]:>9.3f}x{m[2] / k[2]:>9.3f}x"
                f"{m[3] / k[3]:>9.3f}x   (memif / kernel; msgs/s: higher is better, latency: lower)")
    finally:
        libc.setns(home, 0x40000000)
        os.close(fd)
        os.close(home)
        subprocess.run(["ip", "netns", "del", ns])
    with open(os.path.join(OUT, "memif_compare.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
