"""Shared helpers for the comparison scripts in tests/perf: start servers
pinned to a CPU, run sluice-bench pinned to another, read server CPU time,
count syscalls (strace -c) and heap allocations (LD_PRELOAD shim)."""

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "_build", "release")
OUT = os.path.join(ROOT, "_perf")
BENCH = os.path.join(BUILD, "apps", "sluice-bench")
SERVER_CPU = "0"
LOAD_CPU = "1"


def ensure_build():
    """Builds the release tree if needed (the README's first command does it too)."""
    if not os.path.exists(os.path.join(BUILD, "build.ninja")):
        subprocess.run(["meson", "setup", BUILD, "--buildtype=release"], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
    subprocess.run(["meson", "compile", "-C", BUILD], check=True, stdout=subprocess.DEVNULL)
    os.makedirs(OUT, exist_ok=True)


def cc(source, output, *flags):
    subprocess.run(["gcc", "-O2", "-o", output, os.path.join(ROOT, "tests", "perf", source), *flags], check=True)
    return output


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_ticks(cpus=(SERVER_CPU, LOAD_CPU)):
    """{cpu: (steal, total)} jiffies from /proc/stat, for steal_fraction()."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *vals = line.split()
            if name[3:] in cpus and name.startswith("cpu") and name != "cpu":
                v = [int(x) for x in vals[:8]]
                out[name[3:]] = (v[7], sum(v))
    return out


def steal_fraction(before, after):
    """Share of the CPUs' time the hypervisor gave to other guests between two
    cpu_ticks() readings: where it is high, ratios of one run move a lot."""
    steal = sum(after[c][0] - before[c][0] for c in before)
    total = sum(after[c][1] - before[c][1] for c in before)
    return steal / total if total > 0 else 0.0


class server:
    """A server process pinned to SERVER_CPU, optionally under a wrapper."""

    def __init__(self, argv, port, wrapper=(), env=None, cpus=SERVER_CPU, start_timeout=10):
        self.proc = subprocess.Popen(["taskset", "-c", cpus, *wrapper, *argv], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env)
        wait_listening(port, start_timeout)
        # Under valgrind the process keeps valgrind's name: it is taskset's pid.
        self.pid = self.proc.pid if wrapper[:1] == ["valgrind"] else self.find_pid(argv[0])

    def find_pid(self, exe):
        # Under taskset (and strace), the server is a descendant: find it by name.
        name = os.path.basename(exe)[:15]
        deadline = time.time() + 5
        while time.time() < deadline:
            out = subprocess.run(["pgrep", "-n", "-x", name], capture_output=True, text=True).stdout.strip()
            if out:
                return int(out)
            time.sleep(0.05)
        return self.proc.pid

    def cpu(self):
        return cpu_seconds(self.pid)

    def stop(self):
        os.kill(self.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def bench(args):
    """Runs sluice-bench pinned to LOAD_CPU; returns its JSON result."""
    return bench_on(LOAD_CPU, args)


def bench_on(cpus, args):
    """Runs sluice-bench pinned to the CPU list `cpus`; returns its JSON result."""
    r = subprocess.run(["taskset", "-c", cpus, BENCH, *args, "--json"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"sluice-bench failed ({r.returncode}): {r.stdout} {r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def strace_total(path):
    """Total syscalls from an `strace -c` summary file."""
    with open(path) as f:
        for line in f:
            if line.strip().endswith("total"):
                return int(line.split()[3])
    raise RuntimeError("no total in " + path)


def callgrind_total(path):
    """Instructions executed, from a callgrind output file."""
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("no summary in " + path)


def median(xs):
    return statistics.median(xs)


def fmt_us(ns):
    return f"{ns / 1000:.0f}us"
