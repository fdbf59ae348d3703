#!/usr/bin/env python3
"""sockperf (the Debian package) against sluice-echo --protocol=sockperf on
loopback, TCP and UDP: every ping-pong message comes back and none is
dropped, duplicated or out of order. Skips (77) if sockperf is missing.
Each run is bounded (sockperf -t 1, and a timeout around it)."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, udp, proc, deadline_s=10):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        # The app prints its address once every loop serves.
        if proc.stdout is not None:
            line = proc.stdout.readline()
            if "echo on" in line:
                return True
    return False


def main():
    echo = os.environ.get("SLUICE_ECHO", "")
    if shutil.which("sockperf") is None:
        print("skipped: sockperf is not installed (Debian package sockperf)")
        sys.exit(77)
    failures = 0
    for proto in ("udp", "tcp"):
        port = free_port()
        cmd = [echo, "--protocol=sockperf", f"--listen=127.0.0.1:{port}", "--cores=1"] + (["--udp"] if proto == "udp" else [])
        app = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            if not wait_port(port, proto == "udp", app):
                print(f"FAIL: {proto}: sluice-echo did not start")
                failures += 1
                continue
            r = subprocess.run(["sockperf", "ping-pong", "-i", "127.0.0.1", "-p", str(port), "-t", "1", "-m", "64"]
                               + (["--tcp"] if proto == "tcp" else []),
                               capture_output=True, text=True, timeout=30)
            out = r.stdout + r.stderr
            m = re.search(r"\[Valid Duration\].*SentMessages=(\d+); ReceivedMessages=(\d+)", out)
            clean = "# dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0" in out
            ok = r.returncode == 0 and m is not None and int(m.group(2)) > 0 and m.group(1) == m.group(2) and clean
            print(("ok:   " if ok else "FAIL: ") + f"{proto}: sockperf ping-pong against sluice-echo "
                  f"({m.group(0) if m else 'no summary'})")
            if not ok:
                print(out[-2000:])
                failures += 1
        finally:
            app.terminate()
            try:
                app.wait(timeout=10)
            except subprocess.TimeoutExpired:
                app.kill()
                app.wait()
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
