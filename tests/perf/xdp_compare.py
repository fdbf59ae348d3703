#!/usr/bin/env python3
"""sluice-httpd reached over a veth pair by the same kernel client (wrk), three
ways, in the same run (issue 21):

  af_xdp     sluice-httpd on DPDK, net_af_xdp on the veth end (copy mode, 1 queue)
  af_packet  sluice-httpd on DPDK, net_af_packet on the veth end (1 queue pair)
  epoll      sluice-httpd on the kernel's TCP, the veth end in a second namespace

Server on CPU 0 (one loop), wrk on CPU 1 (taskset, -t1 -c32, --latency).
Everything lives in namespaces this script creates and deletes; the kernel
peer's TX checksum offload is off (what AF_XDP needs). Rounds rotate the order;
the table gives each side's median: requests/s, p50 and p99 latency, and the
ratios to af_packet and to epoll.

  /usr/bin/python3 tests/perf/xdp_compare.py [--seconds=3] [--rounds=3]

Output also goes to _perf/xdp_compare.txt. Needs root, wrk, DPDK's AF_XDP PMD.
"""

import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("SLUICE_BUILD", os.path.join(ROOT, "_build", "release"))
HTTPD = os.path.join(BUILD, "apps", "sluice-httpd")
OUT = os.path.join(ROOT, "_perf")
KERNEL_IP, APP_IP = "10.81.0.1", "10.81.0.2"


def sh(*cmd, ns=None, check=True):
    full = (["ip", "netns", "exec", ns] if ns else []) + list(cmd)
    return subprocess.run(full, capture_output=True, text=True, check=check)


def wait_log(path, pattern, proc):
    end = time.monotonic() + 30
    while time.monotonic() < end:
        with open(path) as f:
            if re.search(pattern, f.read()):
                return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)  # a log file: no event to wait on
    return False


def lat_us(text, pct):
    m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 1, "ms": 1000, "s": 1e6}[m.group(2)]


def measure(side, args, ns_a, ns_b):
    log = os.path.join(OUT, f"xdp_compare_{side}.log")
    eal = "--no-huge -m 512 --no-pci --no-telemetry"
    common = ["--cores=1", "--cpuset=0", "--listen=0.0.0.0:80", "--shutdown-timeout=1s"]
    if side == "epoll":
        cmd = ["ip", "netns", "exec", ns_b, HTTPD, "--transport=epoll", *common]
    else:
        vdev = "net_af_xdp0,iface=sv0" if side == "af_xdp" else "net_af_packet0,iface=sv0,qpairs=1,framecnt=4096"
        cmd = ["ip", "netns", "exec", ns_a, HTTPD, "--transport=dpdk", f"--ip={APP_IP}/24",
               f"--dpdk-args={eal} --vdev={vdev}", *common]
    out = open(log, "w+")
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        if not wait_log(log, r"sluice-httpd: .* on ", p):
            sys.exit(f"{side}: sluice-httpd did not start:\n{open(log).read()[-2000:]}")
        sh("ping", "-c", "1", "-W", "2", APP_IP, ns=ns_a, check=False)  # ARP before the clock runs
        r = sh("taskset", "-c", "1", "wrk", "-t1", "-c32", f"-d{args.seconds}s", "--latency",
               f"http://{APP_IP}/", ns=ns_a, check=False)
    finally:
        p.terminate()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        out.close()
    m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    if r.returncode != 0 or not m or "Non-2xx" in r.stdout or "Socket errors" in r.stdout:
        sys.exit(f"{side}: wrk failed:\n{r.stdout}{r.stderr}")
    return float(m.group(1)), lat_us(r.stdout, 50), lat_us(r.stdout, 99)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    ns_a, ns_b = f"slxa{os.getpid()}", f"slxb{os.getpid()}"
    lines = []

    def say(s):
        print(s, flush=True)
        lines.append(s)

    for ns in (ns_a, ns_b):
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)
    try:
        sh("ip", "link", "add", "sv0", "type", "veth", "peer", "name", "sv1", ns=ns_a)
        sh("ethtool", "-K", "sv1", "tx", "off", "tso", "off", "gso", "off", ns=ns_a)
        sh("ip", "addr", "add", f"{KERNEL_IP}/24", "dev", "sv1", ns=ns_a)
        sh("ip", "link", "set", "sv1", "up", ns=ns_a)
        sh("ip", "link", "set", "sv0", "up", ns=ns_a)
        say(f"xdp_compare: sluice-httpd on CPU 0 (1 loop), wrk -t1 -c32 -d{args.seconds}s on CPU 1, "
            f"{args.rounds} rounds; load average {os.getloadavg()[0]:.2f} at start")
        res = {"af_xdp": [], "af_packet": [], "epoll": []}
        for rnd in range(args.rounds):
            order = list(res)[rnd % 3:] + list(res)[:rnd % 3]
            for side in order:
                if side == "epoll":  # the veth end goes to the second namespace, with the app's address
                    sh("ip", "link", "set", "sv0", "netns", ns_b, ns=ns_a)
                    sh("ethtool", "-K", "sv0", "tx", "off", "tso", "off", "gso", "off", ns=ns_b)
                    sh("ip", "addr", "add", f"{APP_IP}/24", "dev", "sv0", ns=ns_b)
                    sh("ip", "link", "set", "sv0", "up", ns=ns_b)
                    try:
                        res[side].append(measure(side, args, ns_a, ns_b))
                    finally:
                        sh("ip", "link", "set", "sv0", "netns", ns_a, ns=ns_b)
                        sh("ip", "addr", "flush", "dev", "sv0", ns=ns_a)
                        sh("ip", "link", "set", "sv0", "up", ns=ns_a)
                        sh("ip", "neigh", "flush", "dev", "sv1", ns=ns_a)
                else:
                    res[side].append(measure(side, args, ns_a, ns_b))
                    sh("ip", "neigh", "flush", "dev", "sv1", ns=ns_a)
        med = {s: [sorted(r[i] for r in v)[len(v) // 2] for i in range(3)] for s, v in res.items()}
        say(f"{'side':<11}{'req/s':>10}{'p50':>10}{'p99':>10}{'vs af_packet':>14}{'vs epoll':>10}")
        for side, (rps, p50, p99) in med.items():
            say(f"{side:<11}{rps:>10.0f}{p50:>8.0f}us{p99:>8.0f}us{rps / med['af_packet'][0]:>13.2f}x"
                f"{rps / med['epoll'][0]:>9.2f}x")
    finally:
        for ns in (ns_a, ns_b):
            sh("ip", "netns", "del", ns, check=False)
    with open(os.path.join(OUT, "xdp_compare.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
