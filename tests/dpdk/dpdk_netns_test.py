#!/usr/bin/env python3
"""sluice-echo on the DPDK transport against the Linux kernel, end to end.

Everything happens inside a network namespace this script creates and
deletes: the DPDK app runs in it (so its tap interface appears there), the
kernel peer is that namespace's own stack, and the namespace has no default
route, so a mistake fails instead of leaking traffic out of the machine.

  dpdk_netns_test.py tap        net_tap, 2 queues / 2 loops
  dpdk_netns_test.py af_packet  net_af_packet on one end of a veth pair (peer offloads off)
  dpdk_netns_test.py preflight  what the app says (exit 2) when DPDK cannot start

Checked: the kernel's ping gets answers (also fragmented ones); ARP resolves
both ways (the kernel learns us, we ask for a kernel address ourselves); UDP
echo from 64 kernel flows is byte-exact and both loops serve; malformed frames
crafted with scapy are counted drops by reason while the app keeps serving.
Exit 77 (skipped, with the reason) only when DPDK cannot run here. Every wait
has a deadline; every load loop is bounded.
"""

import ctypes
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time

SKIP = 77
KERNEL_IP = "10.77.0.1"
APP_IP = "10.77.0.2"
SECOND_KERNEL_IP = "10.77.0.4"
PORT = 7
FLOWS = 64
ROUNDS = 12

failures = []


def log(msg):
    print(msg, flush=True)


def check(cond, what):
    log(("ok:   " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)
    return cond


def skip(why):
    log(f"skipped: {why}")
    sys.exit(SKIP)


def run(*cmd, check_rc=True, timeout=20):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check_rc and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: rc {r.returncode}: {r.stderr.strip()}")
    return r


libc = ctypes.CDLL("libc.so.6", use_errno=True)
CLONE_NEWNET = 0x40000000


def enter_netns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + path)
    finally:
        os.close(fd)


class netns:
    """A fresh namespace; this process enters it and leaves it at the end."""

    def __init__(self, name):
        self.name = name
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY)

    def __enter__(self):
        run("ip", "netns", "add", self.name)
        enter_netns(f"/var/run/netns/{self.name}")
        run("ip", "link", "set", "lo", "up")
        return self

    def __exit__(self, *exc):
        if libc.setns(self.home, CLONE_NEWNET) != 0:
            log("warning: could not return to the original network namespace")
        os.close(self.home)
        run("ip", "netns", "del", self.name, check_rc=False)
        return False


def can_run_dpdk(echo):
    if os.geteuid() != 0:
        skip("needs root (network namespaces, tap devices, raw sockets)")
    if not os.path.exists(echo):
        skip(f"{echo} is not built")
    r = run(echo, "--transport=dpdk", "--dpdk-args=--no-huge --no-pci --vdev=net_null0", "--ip=10.0.0.2/24",
            "--print-plan", check_rc=False)
    if "is not built into this binary" in r.stdout + r.stderr:
        skip("this build has no DPDK transport (libdpdk not found at configure time)")
    probe = run("ip", "netns", "add", f"slprobe{os.getpid()}", check_rc=False)
    if probe.returncode != 0:
        skip(f"cannot create a network namespace: {probe.stderr.strip()}")
    run("ip", "netns", "del", f"slprobe{os.getpid()}", check_rc=False)


class app:
    """sluice-echo inside the current namespace, output to a file."""

    def __init__(self, echo, vdev, extra=(), cores=2, out_path=None):
        self.out_path = out_path or f"/tmp/sluice_dpdk_{os.getpid()}_{random.randrange(1 << 30)}.log"
        eal = f"--no-huge -m 256 --no-pci --no-telemetry --vdev={vdev}"
        self.cmd = [echo, "--transport=dpdk", f"--dpdk-args={eal}", f"--ip={APP_IP}/24", f"--cores={cores}",
                    "--print-metrics", "--shutdown-timeout=1s", *extra]
        self.out = open(self.out_path, "w+")
        self.proc = subprocess.Popen(self.cmd, stdout=self.out, stderr=subprocess.STDOUT)
        self.mac = None

    def text(self):
        with open(self.out_path) as f:
            return f.read()

    def wait_ready(self, deadline_s=30):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            t = self.text()
            if "echo on" in t:
                m = re.search(r"sluice: dpdk port \d+ \([a-z_]+, ([0-9a-f:]{17})", t)
                self.mac = m.group(1) if m else None
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)  # polling a log file: there is no event to wait on
        return False

    def stop(self):
        """SIGTERM, wait; returns (exit code, metrics dict)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        metrics = {}
        for line in self.text().splitlines():
            m = re.fullmatch(r"([a-z0-9_.]+) (\d+)", line)
            if m:
                metrics[m.group(1)] = int(m.group(2))
        self.out.close()
        return rc, metrics

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def total(metrics, suffix):
    return sum(v for k, v in metrics.items() if re.fullmatch(r"loop\d+\." + re.escape(suffix), k))


def udp_echo_round(socks, sizes, rng, timeout_s=3.0, tries=3):
    """Each socket sends one datagram and must get exactly it back. Returns
    (exact, lost, wrong)."""
    want = {}
    for s, n in zip(socks, sizes):
        want[s] = bytes(rng.getrandbits(8) for _ in range(n))
    pending = dict(want)
    wrong = 0
    for _ in range(tries):
        for s, payload in pending.items():
            s.sendto(payload, (APP_IP, PORT))
        end = time.monotonic() + timeout_s
        while pending and time.monotonic() < end:
            ready, _, _ = select.select(list(pending), [], [], max(0.0, end - time.monotonic()))
            for s in ready:
                data, src = s.recvfrom(65535)
                if src != (APP_IP, PORT) or data != pending.get(s):
                    wrong += 1
                    continue
                del pending[s]
        if not pending:
            break
    return len(want) - len(pending), len(pending), wrong


def kernel_sockets(n, kif, src_ip=KERNEL_IP):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, kif.encode())
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind((src_ip, 0))
        socks.append(s)
    return socks


def malformed_frames(app_mac, kif_mac, fragments=True):
    """Frames a correct stack must drop, each with the reason it counts."""
    from scapy.all import ARP, IP, UDP, Ether, Raw  # noqa: imported late: only this test needs scapy

    # The type is given: over a Raw payload scapy would put 0x9000 there.
    eth = Ether(dst=app_mac, src=kif_mac, type=0x0800)
    ip = dict(src=KERNEL_IP, dst=APP_IP)
    good = bytes(IP(**ip) / UDP(sport=4000, dport=PORT) / Raw(b"x" * 16))
    cases = [
        ("ipv4_truncated", eth / Raw(good[:10])),
        ("ipv4_truncated", eth / Raw(bytes(IP(**ip, len=900) / UDP(dport=PORT) / Raw(b"y" * 8)))),
        ("ipv4_bad_total_length", eth / IP(**ip, len=12) / UDP(dport=PORT)),
        ("ipv4_bad_header_length", eth / Raw(bytes([0x44]) + good[1:])),
        ("ipv4_bad_version", eth / Raw(bytes([0x65]) + good[1:])),
        ("ipv4_bad_checksum", eth / IP(**ip, chksum=0x1234) / UDP(dport=PORT) / Raw(b"z")),
        ("ipv4_ttl_zero", eth / IP(**ip, ttl=0) / UDP(dport=PORT) / Raw(b"z")),
        ("udp_bad_checksum", eth / IP(**ip) / UDP(sport=4000, dport=PORT, chksum=0x4321) / Raw(b"checksum")),
        ("udp_bad_length", eth / IP(**ip) / UDP(sport=4000, dport=PORT, len=400) / Raw(b"short")),
        ("udp_truncated", eth / IP(**ip, proto=17) / Raw(b"abc")),
        ("icmp_bad_checksum", eth / Raw(bytes(IP(**ip, proto=1) / Raw(b"\x08\x00\x12\x34\x00\x01\x00\x01data")))),
        # Overlapping fragments: [0, 24) and [16, 40).
        ("frag_overlap", eth / IP(**ip, id=7001, flags="MF", frag=0, proto=17) / Raw(b"a" * 24)),
        ("frag_overlap", eth / IP(**ip, id=7001, flags="MF", frag=2, proto=17) / Raw(b"b" * 24)),
        ("frag_bad_length", eth / IP(**ip, id=7002, flags="MF", frag=0, proto=17) / Raw(b"c" * 13)),
        # ARP garbage.
        ("arp_truncated", Ether(dst=app_mac, src=kif_mac, type=0x0806) / Raw(b"\x00\x01\x08\x00\x06")),
        ("arp_bad_format", Ether(dst=app_mac, src=kif_mac, type=0x0806) /
         Raw(b"\x00\x06" + bytes(ARP(op=1, hwsrc=kif_mac, psrc=KERNEL_IP, pdst=APP_IP))[2:])),
        ("arp_bad_op", Ether(dst=app_mac, src=kif_mac) / ARP(op=9, hwsrc=kif_mac, psrc=KERNEL_IP, pdst=APP_IP)),
        ("arp_bad_sender", Ether(dst=app_mac, src=kif_mac) / ARP(op=1, hwsrc="ff:ff:ff:ff:ff:ff", psrc=KERNEL_IP,
                                                                 pdst=APP_IP)),
    ]
    if not fragments:
        return [c for c in cases if not c[0].startswith("frag_")]
    # Endless fragments of one datagram: never a last one; bounded by the
    # per-datagram fragment limit (64).
    for i in range(70):
        cases.append(("frag_too_many", eth / IP(**ip, id=7003, flags="MF", frag=i, proto=17) / Raw(b"e" * 8)))
    return cases


def exercise(kind, echo):
    ns_name = f"sl{kind[:3]}{os.getpid()}"
    with netns(ns_name):
        if kind == "af_packet":
            run("ip", "link", "add", "sv0", "type", "veth", "peer", "name", "sv1")
            # The kernel peer sends partial checksums and GSO frames unless told not to.
            run("ethtool", "-K", "sv1", "tx", "off", "tso", "off", "gso", "off")
            run("ip", "link", "set", "sv0", "up")
            kif = "sv1"
            run("ip", "addr", "add", f"{KERNEL_IP}/24", "dev", kif)
            run("ip", "link", "set", kif, "up")
            vdev = "net_af_packet0,iface=sv0,qpairs=2,framecnt=4096"
        else:
            kif = "sl0"
            vdev = f"net_tap0,iface={kif}"
        a = app(echo, vdev, extra=["--udp", f"--listen=0.0.0.0:{PORT}"])
        try:
            if not check(a.wait_ready(), f"{kind}: sluice-echo starts on DPDK"):
                log(a.text())
                return
            if kind == "tap":
                run("ip", "addr", "add", f"{KERNEL_IP}/24", "dev", kif)
                run("ip", "link", "set", kif, "up")
            # (/sys shows the namespace it was mounted in, not ours: ask ip.)
            kif_mac = re.search(r"link/ether ([0-9a-f:]{17})", run("ip", "link", "show", kif).stdout).group(1)
            log(f"app MAC {a.mac}, kernel side {kif} {kif_mac}")

            # --- ICMP echo, small and fragmented.
            r = run("ping", "-c", "3", "-i", "0.2", "-W", "2", "-I", kif, APP_IP, check_rc=False)
            check(r.returncode == 0 and " 0% packet loss" in r.stdout, f"{kind}: the kernel's ping gets answers")
            # net_af_packet joins a fanout group that has the kernel reassemble
            # fragments first (PACKET_FANOUT_FLAG_DEFRAG); the whole datagram
            # then exceeds a 2 KiB mbuf and the PMD drops it. So fragments
            # reach the stack only through tap: they are tested there.
            fragments = kind == "tap"
            if fragments:
                r = run("ping", "-c", "2", "-i", "0.2", "-W", "2", "-s", "3000", "-I", kif, APP_IP, check_rc=False)
                check(r.returncode == 0 and " 0% packet loss" in r.stdout,
                      f"{kind}: a 3000-byte ping is reassembled and answered in fragments")

            # --- ARP both ways.
            neigh = run("ip", "neigh", "show", APP_IP, "dev", kif).stdout
            check(a.mac is not None and a.mac in neigh, f"{kind}: the kernel resolved the stack's MAC ({neigh.strip()})")
            # A second kernel address the stack has never heard from; the
            # kernel is told our MAC statically, so only the stack asks.
            run("ip", "addr", "add", f"{SECOND_KERNEL_IP}/24", "dev", kif)
            run("ip", "neigh", "replace", APP_IP, "lladdr", a.mac, "dev", kif, "nud", "permanent")
            s2 = kernel_sockets(1, kif, SECOND_KERNEL_IP)
            ok, lost, wrong = udp_echo_round(s2, [100], random.Random(1))
            check(ok == 1 and wrong == 0, f"{kind}: the stack resolved {SECOND_KERNEL_IP} by its own ARP request")
            for s in s2:
                s.close()

            # --- UDP echo, many flows over two queues, byte-exact.
            rng = random.Random(20240607)
            socks = kernel_sockets(FLOWS, kif)
            exact = lost = wrong = 0
            for rnd in range(ROUNDS):
                sizes = [rng.randint(1, 1472) if (rnd + i) % 16 or not fragments else 3000 for i in range(FLOWS)]
                e, l_, w = udp_echo_round(socks, sizes, rng)
                exact += e
                lost += l_
                wrong += w
            check(lost == 0 and wrong == 0 and exact == FLOWS * ROUNDS,
                  f"{kind}: UDP echo of {FLOWS} flows x {ROUNDS} rounds is byte-exact "
                  f"({exact} exact, {lost} lost, {wrong} wrong)")

            # --- Malformed frames: counted drops, and the app keeps serving.
            from scapy.all import sendp
            cases = malformed_frames(a.mac, kif_mac, fragments)
            sendp([f for _, f in cases], iface=kif, verbose=False)
            e, l_, w = udp_echo_round(socks[:8], [64] * 8, rng)
            check(e == 8 and w == 0, f"{kind}: still echoing after {len(cases)} malformed frames")
            r = run("ping", "-c", "1", "-W", "2", "-I", kif, APP_IP, check_rc=False)
            check(r.returncode == 0, f"{kind}: still answering pings after the malformed frames")
            for s in socks:
                s.close()
        finally:
            rc, metrics = a.stop()
            a.kill()
        check(rc == 0, f"{kind}: SIGTERM stops the app cleanly (exit {rc})")
        check(metrics.get("loop0.datagrams_in", 0) > 0 and metrics.get("loop1.datagrams_in", 0) > 0,
              f"{kind}: both loops served datagrams (loop0 {metrics.get('loop0.datagrams_in')}, "
              f"loop1 {metrics.get('loop1.datagrams_in')})")
        check(total(metrics, "inet.arp_requests_out") >= 2 and total(metrics, "inet.arp_replies_in") >= 1,
              f"{kind}: the stack announced itself and asked the kernel (requests out "
              f"{total(metrics, 'inet.arp_requests_out')}, replies in {total(metrics, 'inet.arp_replies_in')})")
        if fragments:
            check(total(metrics, "inet.reassembled") >= 2 and total(metrics, "inet.fragments_out") >= 4,
                  f"{kind}: fragments reassembled ({total(metrics, 'inet.reassembled')}) and sent "
                  f"({total(metrics, 'inet.fragments_out')})")
        for reason in sorted({r for r, _ in malformed_frames("00:00:00:00:00:01", "00:00:00:00:00:02", fragments)}):
            n = total(metrics, "inet.drop." + reason)
            check(n > 0, f"{kind}: malformed frames counted as {reason} ({n})")
        for name in ("ipackets", "opackets", "imissed", "ierrors", "rx_nombuf", "q0.ipackets", "q1.ipackets"):
            check(f"dpdk.port0.{name}" in metrics, f"{kind}: device statistic dpdk.port0.{name} is exported "
                  f"({metrics.get('dpdk.port0.' + name)})")
        check(total(metrics, "inet.polls_useful") > 0 and total(metrics, "inet.sleeps") > 0,
              f"{kind}: adaptive polling worked and slept (useful polls {total(metrics, 'inet.polls_useful')}, "
              f"sleeps {total(metrics, 'inet.sleeps')})")

        # sockperf, the standard latency tool, against the stack (UDP).
        if shutil.which("sockperf") and kind == "tap":
            sp = app(echo, vdev, extra=["--udp", "--protocol=sockperf", f"--listen=0.0.0.0:{PORT}"], cores=1)
            try:
                if check(sp.wait_ready(), f"{kind}: sluice-echo --protocol=sockperf starts on DPDK"):
                    run("ip", "addr", "add", f"{KERNEL_IP}/24", "dev", kif, check_rc=False)
                    run("ip", "link", "set", kif, "up")
                    r = run("sockperf", "ping-pong", "-i", APP_IP, "-p", str(PORT), "-t", "1", "-m", "64",
                            check_rc=False, timeout=30)
                    out = r.stdout + r.stderr
                    m = re.search(r"\[Valid Duration\].*SentMessages=(\d+); ReceivedMessages=(\d+)", out)
                    check(r.returncode == 0 and m is not None and int(m.group(2)) > 0 and
                          int(m.group(2)) >= int(m.group(1)) - 1,
                          f"{kind}: sockperf ping-pong over the stack ({m.group(0) if m else out[-300:]})")
            finally:
                sp.stop()
                sp.kill()


def preflight(echo):
    """Plain words and exit 2, never a crash, when DPDK cannot start."""
    with netns(f"slpre{os.getpid()}"):
        base = [echo, "--udp", "--transport=dpdk", f"--ip={APP_IP}/24", "--listen=0.0.0.0:7"]

        def expect(args, text, what):
            r = run(*args, check_rc=False, timeout=60)
            err = r.stderr.strip().splitlines()
            last = err[-1] if err else ""
            check(r.returncode == 2 and text in last, f"preflight: {what} (exit {r.returncode}: {last})")

        hugepages = int(re.search(r"HugePages_Total:\s+(\d+)", open("/proc/meminfo").read()).group(1))
        if hugepages == 0:
            expect(base + ["--dpdk-args=--no-pci --vdev=net_tap0,iface=sl0"], "no hugepages are reserved",
                   "no hugepages and no --no-huge")
        expect(base + ["--dpdk-args=--no-huge -m 256 --no-pci"], "no port", "no port at all")
        expect(base + ["--dpdk-args=--no-huge -m 256 --vdev=net_tap0,iface=sl0"], "neither --no-pci nor -a",
               "a vdev while PCI probing is on")
        # A NIC the kernel drives (this machine's own), if there is one.
        nics = [d for d in os.listdir("/sys/bus/pci/devices")
                if open(f"/sys/bus/pci/devices/{d}/class").read().startswith("0x02")
                and os.path.exists(f"/sys/bus/pci/devices/{d}/driver")]
        kernel_nics = [d for d in nics if os.path.basename(os.readlink(f"/sys/bus/pci/devices/{d}/driver"))
                       not in ("vfio-pci", "uio_pci_generic", "igb_uio")]
        if kernel_nics:
            expect(base + [f"--dpdk-args=--no-huge -m 256 -a {kernel_nics[0]}"], "kernel driver",
                   "a NIC bound to a kernel driver")
        expect(base + ["--dpdk-args=--no-huge -m 256 --no-pci --vdev=net_tap0,iface=sl0 --bogus-eal-flag"],
               "DPDK EAL initialisation failed", "arguments the EAL refuses")
        expect(base + ["--dpdk-args=-l 0-1 --no-huge --no-pci --vdev=net_tap0,iface=sl0"], "-l is not accepted",
               "an lcore list from the user")
        expect(base + ["--dpdk-args=--no-huge -m 256 --no-pci --vdev=net_af_packet0,iface=nosuch0"],
               "no interface nosuch0", "an af_packet vdev on a missing interface")
        expect([echo, "--udp", "--transport=dpdk", "--dpdk-args=--no-huge -m 256 --no-pci --vdev=net_tap0,iface=sl0"],
               "--ip=ADDR/PREFIX is needed", "no --ip")
        expect(base + ["--dpdk-args=--no-huge -m 256 --no-pci --no-telemetry --vdev=net_ring0,nodeaction=bad"],
               "did not attach", "a vdev that fails to attach (rte_eal_init succeeds; the port count says)")
        expect([echo, "--transport=dpdk", f"--ip={APP_IP}/24", "--listen=[::1]:7",
                "--dpdk-args=--no-huge -m 256 --no-pci --no-telemetry --vdev=net_tap0,iface=sl0"],
               "the user-space stack speaks IPv4 only", "TCP on IPv6 over dpdk")


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("tap", "af_packet", "preflight"):
        sys.exit("usage: dpdk_netns_test.py tap|af_packet|preflight")
    kind = sys.argv[1]
    echo = os.environ.get("SLUICE_ECHO", "")
    can_run_dpdk(echo)
    if kind == "tap" and not os.path.exists("/dev/net/tun"):
        skip("no /dev/net/tun: net_tap cannot run here")
    started = time.monotonic()
    if kind == "preflight":
        preflight(echo)
    else:
        exercise(kind, echo)
    log(f"{kind}: {len(failures)} failure(s) in {time.monotonic() - started:.1f}s")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
