#!/usr/bin/env python3
"""The DPDK transport and its user-space stack, measured next to their peers
in the same run:

1. Stack cost per packet for UDP echo, no kernel involved: sluice-stack-bench
   (a net_ring-style port made of two rings, one loop, sluice-echo's UDP
   handler), against a bare RX/TX burst forwarder on the same rings; and
   the same over IPv6 (--ipv6), rounds alternating with IPv4's (issue 17's
   target: IPv6 within 1.1x of IPv4).
2. sockperf server vs sluice-echo --protocol=sockperf on the kernel's
   loopback (epoll), UDP and TCP: ping-pong latency and under-load.
3. UDP round trip to a kernel client through tap: sockperf ping-pong against
   sluice-echo --protocol=sockperf on DPDK (net_tap, inside a network
   namespace made for the run), next to the kernel's own UDP loopback round
   trip (sockperf server on 127.0.0.1 in the same namespace).
4. TCP ping-pong of 64-byte messages, one outstanding, entirely in user space:
   two sluice stacks (two loop<dpdk_transport> in one process, one thread,
   joined by a pair of ring ports; sluice-tcp-pingpong) against the kernel's
   TCP loopback ping-pong measured by the same program in the same run (one
   thread serving both sockets, the same shape; also two threads, spinning
   and blocking, for scale). Target: sluice p50 <= 0.3x the kernel's.
5. sluice-httpd over tap vs sluice-httpd on epoll, driven by the same wrk
   command (wrk -t1 -c32 --latency): on DPDK over net_tap with wrk in the
   namespace made for the run, and on epoll over that namespace's loopback.

Servers run on CPU 0, clients on CPU 1; rounds alternate between the peers.

  /usr/bin/python3 tests/perf/dpdk_compare.py [--seconds=5] [--rounds=3]
      [--only=1,2,3,4,5]   (a subset of the sections)

Results go to _perf/dpdk_compare.txt. Needs root, /dev/net/tun, libdpdk.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "dpdk"))
import perflib as P  # noqa: E402
import dpdk_netns_test as N  # noqa: E402  (its namespace helper and app runner)

ECHO = os.path.join(P.BUILD, "apps", "sluice-echo")
STACK_BENCH = os.path.join(P.BUILD, "tests", "perf", "sluice-stack-bench")
TCP_PINGPONG = os.path.join(P.BUILD, "tests", "perf", "sluice-tcp-pingpong")
HTTPD = os.path.join(P.BUILD, "apps", "sluice-httpd")
WRK_CONNECTIONS = 32


def sockperf(mode, ip, port, seconds, tcp=False, extra=()):
    """Runs a sockperf client on the load CPU; returns (avg_us, p50_us, p99_us, observations)."""
    cmd = ["taskset", "-c", P.LOAD_CPU, "sockperf", mode, "-i", ip, "-p", str(port), "-t", str(seconds), "-m", "64",
           *(["--tcp"] if tcp else []), *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    out = r.stdout + r.stderr
    avg = re.search(r"Summary: Latency is ([\d.]+) usec", out)
    p50 = re.search(r"percentile 50\.000 =\s+([\d.]+)", out)
    p99 = re.search(r"percentile 99\.000 =\s+([\d.]+)", out)
    obs = re.search(r"Total (\d+) observations", out)
    if not avg:
        raise RuntimeError(f"sockperf {mode} gave no summary:\n{out[-1500:]}")
    return float(avg.group(1)), float(p50.group(1)), float(p99.group(1)), int(obs.group(1)) if obs else 0


def wait_sockperf_server(proc, out_path, deadline_s=10):
    end = time.time() + deadline_s
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("sockperf server exited: " + open(out_path).read())
        if "using" in open(out_path).read():
            return
        time.sleep(0.05)  # a log file: no event to wait on
    raise RuntimeError("sockperf server did not start")


def start_sockperf_server(ip, port, tcp):
    out = os.path.join(P.OUT, f"sockperf_server_{port}.log")
    f = open(out, "w")
    proc = subprocess.Popen(["taskset", "-c", P.SERVER_CPU, "sockperf", "server", "-i", ip, "-p", str(port),
                             *(["--tcp"] if tcp else [])], stdout=f, stderr=subprocess.STDOUT)
    wait_sockperf_server(proc, out)
    return proc, f


def start_sluice_kernel(port, tcp):
    argv = [ECHO, "--protocol=sockperf", f"--listen=127.0.0.1:{port}", "--cores=1", "--cpuset=" + P.SERVER_CPU,
            *([] if tcp else ["--udp"])]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    if "echo on" not in line:
        raise RuntimeError("sluice-echo did not start: " + line)
    return proc


def stop(proc, f=None):
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if f is not None:
        f.close()


def stack_cost(rounds):
    """(IPv4 stack, bare forwarder, tsc Hz, IPv6 stack) cycles/packet, medians;
    the IPv4 and IPv6 runs alternate."""
    runs = {False: [], True: []}
    for _ in range(rounds):
        for ipv6 in (False, True):
            r = subprocess.run(["taskset", "-c", P.LOAD_CPU, STACK_BENCH, "--json", *(["--ipv6"] if ipv6 else [])],
                               capture_output=True, text=True, timeout=120)
            if r.returncode != 0:
                raise RuntimeError("sluice-stack-bench failed: " + r.stdout + r.stderr)
            runs[ipv6].append(json.loads(r.stdout.strip().splitlines()[-1]))
    stack = P.median([x["stack_cycles_per_packet"] for x in runs[False]])
    raw = P.median([x["raw_cycles_per_packet"] for x in runs[False]])
    stack6 = P.median([x["stack_cycles_per_packet"] for x in runs[True]])
    hz = runs[False][0]["tsc_hz"]
    return stack, raw, hz, stack6


def kernel_loopback_compare(seconds, rounds):
    rows = []
    for tcp in (False, True):
        name = "TCP" if tcp else "UDP"
        res = {"sockperf server": {"pp": [], "ul": []}, "sluice-echo": {"pp": [], "ul": []}}
        for _ in range(rounds):
            for peer in res:
                port = P.free_port()
                if peer == "sockperf server":
                    proc, f = start_sockperf_server("127.0.0.1", port, tcp)
                else:
                    proc, f = start_sluice_kernel(port, tcp), None
                try:
                    res[peer]["pp"].append(sockperf("ping-pong", "127.0.0.1", port, seconds, tcp))
                    res[peer]["ul"].append(sockperf("under-load", "127.0.0.1", port, seconds, tcp,
                                                    ["--mps=20000", "--reply-every=20"]))
                finally:
                    stop(proc, f)
        for mode, label in (("pp", "ping-pong"), ("ul", "under-load 20k msg/s")):
            k = [P.median([r[i] for r in res["sockperf server"][mode]]) for i in range(3)]
            s = [P.median([r[i] for r in res["sluice-echo"][mode]]) for i in range(3)]
            rows.append((f"{name} {label}, kernel loopback (epoll)", k, s))
    return rows


def tap_compare(seconds, rounds):
    """UDP RTT to a kernel client through tap vs the kernel's UDP loopback."""
    results = {"tap": [], "loopback": []}
    with N.netns(f"slperf{os.getpid()}"):
        vdev = "net_tap0,iface=sl0"
        a = N.app(ECHO, vdev, extra=["--udp", "--protocol=sockperf", f"--listen=0.0.0.0:{N.PORT}",
                                     "--cpuset=" + P.SERVER_CPU], cores=1)
        try:
            if not a.wait_ready():
                raise RuntimeError("sluice-echo on DPDK did not start:\n" + a.text())
            N.run("ip", "addr", "add", f"{N.KERNEL_IP}/24", "dev", "sl0")
            N.run("ip", "link", "set", "sl0", "up")
            port = 11111
            ks, kf = start_sockperf_server("127.0.0.1", port, False)
            try:
                for _ in range(rounds):
                    results["tap"].append(sockperf("ping-pong", N.APP_IP, N.PORT, seconds))
                    results["loopback"].append(sockperf("ping-pong", "127.0.0.1", port, seconds))
            finally:
                stop(ks, kf)
        finally:
            rc, metrics = a.stop()
            a.kill()
    med = {k: [P.median([r[i] for r in v]) for i in range(3)] for k, v in results.items()}
    return med, metrics


def tcp_pingpong(rounds, count):
    """Medians over rounds of sluice-tcp-pingpong (each round measures every mode)."""
    runs = []
    for _ in range(rounds):
        # The program pins itself: main thread CPU 1, the kernel echo thread CPU 0.
        r = subprocess.run([TCP_PINGPONG, f"--count={count}", f"--cpu={P.LOAD_CPU}", f"--server-cpu={P.SERVER_CPU}",
                            "--json"], capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError("sluice-tcp-pingpong failed: " + r.stdout + r.stderr)
        runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
    keys = ("p50_us", "p99_us", "mean_us", "per_s", "n")
    return {mode: {k: P.median([x[mode][k] for x in runs]) for k in keys}
            for mode in ("sluice", "sluice_v6", "kernel", "kernel_spin", "kernel_block")}, \
        [x["ratio_p50"] for x in runs], [x["ipv6_ratio_p50"] for x in runs]


def wrk_latency(url, seconds):
    """wrk --latency on the load CPU; returns (req/s, p50_us, p99_us)."""
    r = subprocess.run(["taskset", "-c", P.LOAD_CPU, "wrk", "-t1", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s",
                        "--timeout", "2s", "--latency", url], capture_output=True, text=True, timeout=seconds + 60)
    out = r.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = "Non-2xx" in out or re.search(r"Socket errors: connect [1-9]|read [1-9]|write [1-9]|timeout [1-9]", out)
    if r.returncode != 0 or rate is None or bad:
        raise RuntimeError(f"wrk against {url} failed or saw errors:\n{out}{r.stderr}")

    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m is None:
            raise RuntimeError(f"no {p}% line in wrk --latency output:\n{out}")
        return float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]

    return float(rate.group(1)), pct(50), pct(99)


def httpd_compare(seconds, rounds):
    """sluice-httpd on DPDK over tap vs on epoll (loopback), same wrk command,
    both inside one namespace made for the run; both servers stay up and the
    rounds alternate (the idle one sleeps: epoll blocks, the DPDK loop's
    adaptive polling backs off to 1 ms sleeps)."""
    results = {"tap": [], "epoll": []}
    with N.netns(f"slhttp{os.getpid()}"):
        a = N.app(HTTPD, "net_tap0,iface=sl0", extra=[f"--listen=0.0.0.0:{N.HTTP_PORT}", "--cpuset=" + P.SERVER_CPU],
                  cores=1)
        k = None
        try:
            if not a.wait_ready():
                raise RuntimeError("sluice-httpd on DPDK did not start:\n" + a.text())
            N.run("ip", "addr", "add", f"{N.KERNEL_IP}/24", "dev", "sl0")
            N.run("ip", "link", "set", "sl0", "up")
            port = P.free_port()
            k = P.server([HTTPD, f"--listen=127.0.0.1:{port}", "--cores=1", "--cpuset=" + P.SERVER_CPU], port)
            # One short warm-up each (ARP, the tap queue, caches), not counted.
            wrk_latency(f"http://{N.APP_IP}:{N.HTTP_PORT}/", 1)
            wrk_latency(f"http://127.0.0.1:{port}/", 1)
            for _ in range(rounds):
                results["tap"].append(wrk_latency(f"http://{N.APP_IP}:{N.HTTP_PORT}/", seconds))
                results["epoll"].append(wrk_latency(f"http://127.0.0.1:{port}/", seconds))
        finally:
            if k is not None:
                k.stop()
            rc, _ = a.stop()
            a.kill()
    if rc != 0:
        raise RuntimeError(f"sluice-httpd on DPDK exited with {rc}")
    return {name: [P.median([r[i] for r in v]) for i in range(3)] for name, v in results.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default="1,2,3,4,5", help="comma-separated section numbers to run")
    ap.add_argument("--pingpong-count", type=int, default=200_000, help="round trips per mode and round (section 4)")
    args = ap.parse_args()
    only = {int(x) for x in args.only.split(",") if x}
    if os.geteuid() != 0:
        sys.exit("dpdk_compare.py needs root (network namespaces, tap)")
    P.ensure_build()
    for prog in (STACK_BENCH, TCP_PINGPONG):
        if not os.path.exists(prog):
            sys.exit(f"{os.path.basename(prog)} is not built (libdpdk or the ring PMD missing?)")
    lines = []

    def say(s=""):
        print(s, flush=True)
        lines.append(s)

    say(f"dpdk_compare: {args.rounds} rounds of {args.seconds}s, servers on CPU {P.SERVER_CPU}, "
        f"clients on CPU {P.LOAD_CPU}; medians")
    say(f"command: /usr/bin/python3 tests/perf/dpdk_compare.py --seconds={args.seconds} --rounds={args.rounds}"
        + ("" if only == {1, 2, 3, 4, 5} else f" --only={args.only}")
        + ("" if args.pingpong_count == 200_000 else f" --pingpong-count={args.pingpong_count}"))
    if 1 in only:
        section_stack(args, say)
    if 2 in only:
        section_kernel(args, say)
    if 3 in only:
        section_tap(args, say)
    if 4 in only:
        section_pingpong(args, say)
    if 5 in only:
        section_httpd(args, say)
    os.makedirs(P.OUT, exist_ok=True)
    with open(os.path.join(P.OUT, "dpdk_compare.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def section_stack(args, say):
    stack, raw, hz, stack6 = stack_cost(args.rounds)
    say("")
    say("1. Stack cost, UDP echo of 64-byte datagrams, bursts of 32, ring port, no kernel (sluice-stack-bench)")
    say(f"   user-space stack + echo handler: {stack:7.1f} cycles/packet ({stack / hz * 1e9:.0f} ns at {hz / 1e9:.2f} GHz)")
    say(f"   bare RX+TX burst forwarder:      {raw:7.1f} cycles/packet")
    say(f"   ratio stack / bare:              {stack / raw:7.1f}x   (the stack adds {stack - raw:.0f} cycles/packet)")
    say(f"   the same over IPv6:              {stack6:7.1f} cycles/packet, {stack6 / stack:.2f}x IPv4 (target <= 1.1x)")


def section_kernel(args, say):
    say("")
    say("2. sockperf server vs sluice-echo --protocol=sockperf (latency in usec: avg / p50 / p99)")
    for label, k, s in kernel_loopback_compare(args.seconds, args.rounds):
        say(f"   {label}")
        say(f"      sockperf server: {k[0]:7.2f} / {k[1]:7.2f} / {k[2]:7.2f}")
        say(f"      sluice-echo:     {s[0]:7.2f} / {s[1]:7.2f} / {s[2]:7.2f}   ratio avg {s[0] / k[0]:.2f}x")


def section_tap(args, say):
    say("")
    med, metrics = tap_compare(args.seconds, args.rounds)
    t, lo = med["tap"], med["loopback"]
    say("3. UDP round trip, sockperf ping-pong, 64 bytes (usec: avg / p50 / p99)")
    say(f"   kernel client -> tap -> DPDK stack (sluice-echo): {t[0]:7.2f} / {t[1]:7.2f} / {t[2]:7.2f}")
    say(f"   kernel UDP loopback (sockperf server):             {lo[0]:7.2f} / {lo[1]:7.2f} / {lo[2]:7.2f}")
    say(f"   ratio tap / loopback: {t[0] / lo[0]:.2f}x (avg), {t[1] / lo[1]:.2f}x (p50)")
    work = sum(v for k, v in metrics.items() if k.endswith("inet.work_ns"))
    idle = sum(v for k, v in metrics.items() if k.endswith("inet.idle_poll_ns"))
    sleep = sum(v for k, v in metrics.items() if k.endswith("inet.sleep_ns"))
    total = max(1, work + idle + sleep)
    say(f"   the DPDK loop's time: work {100 * work / total:.1f}%, idle polling {100 * idle / total:.1f}%, "
        f"sleeping {100 * sleep / total:.1f}%")


def section_pingpong(args, say):
    med, ratios, v6_ratios = tcp_pingpong(args.rounds, args.pingpong_count)
    say("")
    say(f"4. TCP ping-pong, 64-byte messages, one outstanding, {args.pingpong_count} round trips per mode and round "
        "(sluice-tcp-pingpong; usec: p50 / p99 / mean, round trips/s)")
    labels = {"sluice": "sluice <-> sluice, ring ports, one thread:  ",
              "sluice_v6": "the same over IPv6:                          ",
              "kernel": "kernel loopback, one thread, non-blocking:  ",
              "kernel_spin": "kernel loopback, two threads, spinning:     ",
              "kernel_block": "kernel loopback, two threads, blocking:     "}
    for mode, label in labels.items():
        m = med[mode]
        say(f"   {label} {m['p50_us']:7.2f} / {m['p99_us']:7.2f} / {m['mean_us']:7.2f}   {m['per_s']:9.0f}/s"
            + ("" if m["n"] >= args.pingpong_count else f"   (stopped at the 30 s bound: {m['n']:.0f} counted)"))
    ratio = med["sluice"]["p50_us"] / med["kernel"]["p50_us"]
    say(f"   ratio sluice / kernel (one thread each), p50: {ratio:.2f}x (per round: "
        + ", ".join(f"{r:.2f}x" for r in ratios) + f"); target <= 0.30x: {'met' if ratio <= 0.3 else 'MISSED'}")
    v6 = med["sluice_v6"]["p50_us"] / med["sluice"]["p50_us"]
    say(f"   sluice IPv6 / IPv4 (same run), p50: {v6:.3f}x (per round: " + ", ".join(f"{r:.3f}x" for r in v6_ratios)
        + f"); mean {med['sluice_v6']['mean_us'] / med['sluice']['mean_us']:.3f}x; "
        f"target <= 1.1x: {'met' if v6 <= 1.1 else 'MISSED'}")
    say(f"   p99: {med['sluice']['p99_us'] / med['kernel']['p99_us']:.2f}x; "
        f"sluice p50 / kernel two-thread spinning p50: {med['sluice']['p50_us'] / med['kernel_spin']['p50_us']:.2f}x")


def section_httpd(args, say):
    med = httpd_compare(args.seconds, args.rounds)
    t, e = med["tap"], med["epoll"]
    say("")
    say(f"5. sluice-httpd, GET / (13-byte body), wrk -t1 -c{WRK_CONNECTIONS} --latency, {args.seconds}s rounds "
        "(req/s, latency p50 / p99 in usec)")
    say(f"   DPDK over net_tap, wrk in the namespace: {t[0]:10.0f}   {t[1]:8.1f} / {t[2]:8.1f}")
    say(f"   epoll on loopback (same namespace):      {e[0]:10.0f}   {e[1]:8.1f} / {e[2]:8.1f}")
    say(f"   ratio tap / epoll: req/s {t[0] / e[0]:.2f}x, p50 {t[1] / e[1]:.2f}x, p99 {t[2] / e[2]:.2f}x")


if __name__ == "__main__":
    main()
