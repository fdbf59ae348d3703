#!/usr/bin/env python3
"""sluice-echo on the DPDK transport against the Linux kernel, end to end.

Everything happens inside a network namespace this script creates and
deletes: the DPDK app runs in it (so its tap interface appears there), the
kernel peer is that namespace's own stack, and the namespace has no default
route, so a mistake fails instead of leaking traffic out of the machine.

  dpdk_netns_test.py tap        net_tap, 2 queues / 2 loops
  dpdk_netns_test.py af_packet  net_af_packet on one end of a veth pair (peer offloads off)
  dpdk_netns_test.py af_xdp     net_af_xdp (copy mode, 1 queue, 1 loop) on one end of a veth pair,
                                with the preflight's plan (mode, queues, peer checksum offload)
  dpdk_netns_test.py preflight  what the app says (exit 2) when DPDK cannot start
  dpdk_netns_test.py tcp_tap | tcp_af_packet | tcp_af_xdp
                                the user-space TCP against the kernel's TCP: 200 echo
                                clients, half-close, RST, a scapy SYN flood, sluice-httpd
                                with curl and wrk, a transfer each way under loss, delay
                                and reordering (tc netem, or the relay below without it)
  dpdk_netns_test.py gateway | gateway_af_xdp
                                sluice-gateway on DPDK (tap, or AF_XDP on a veth), kernel
                                sluice-httpd upstreams
  dpdk_netns_test.py attack     the stack under attack (issue 20), over net_tap: a scapy SYN
                                flood while kernel clients echo 100 kB each through SYN
                                cookies (fast, and the kernel's PAWSEstab does not rise);
                                2000 forged FINs on a live connection (hardly any ACKs);
                                a forged ARP reply that must not redirect a live neighbour;
                                40 junk first fragments, then a fragmented UDP echo; a
                                10 MB echo through a router with a smaller MTU (with and
                                without its ICMP frag-needed)
  dpdk_netns_test.py memif      two sluice processes over one net_memif socket (issue 21):
                                sluice-bench (role=client) drives sluice-echo and then
                                sluice-httpd (role=server); 20 rounds in which the bench exits
                                cleanly or is killed -9 mid-load, the server serving after
                                each and reconnects working; the busy-polling CPU claims
                                (the second process moves to a free CPU, a --cpuset on the
                                first one's CPU is refused naming its pid, kill -9 frees it);
                                then a long-lived role=client sluice-echo and sluice-httpd
                                outlive 6 servers each (sluice-bench role=server, clean exit
                                or kill -9 mid-load) and reconnect to every new one (correct
                                replies, exact drop/reconnect counters, one "no server" line)
  dpdk_netns_test.py ipv6_tap | ipv6_af_packet
                                IPv6 (issue 17): --print-plan shows --ip6; ping -6 to the stack's
                                global and link-local addresses (and a 3000-byte one in
                                fragments over tap); Neighbour Discovery both ways (the kernel
                                resolves us; we resolve a kernel address the kernel knows us for
                                statically); UDP echo over IPv6 from 16 kernel flows, byte-exact
  dpdk_netns_test.py relay KIF AIF   (internal) the user-space netem between two interfaces

Checked: the kernel's ping gets answers (also fragmented ones); ARP resolves
both ways (the kernel learns us, we ask for a kernel address ourselves); UDP
echo from 64 kernel flows is byte-exact and both loops serve; malformed frames
crafted with scapy are counted drops by reason while the app keeps serving.
Exit 77 (skipped, with the reason) only when DPDK cannot run here. Every wait
has a deadline; every load loop is bounded.
"""

import contextlib
import ctypes
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
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

# Ports on one end of a veth pair, the kernel on the other end.
VETH_KINDS = ("af_packet", "af_xdp")


def veth_vdev(kind):
    if kind == "af_xdp":
        # The 22.11 PMD counts combined channels only, and a veth has none:
        # one queue, so one loop.
        return "net_af_xdp0,iface=sv0"
    return "net_af_packet0,iface=sv0,qpairs=2,framecnt=4096"


def kind_loops(kind):
    return 1 if kind == "af_xdp" else 2


def sigterm_and_wait(p):
    """SIGTERM p if it still runs (SIGKILL after 20 s); whether it was running, and its exit code."""
    alive = p.poll() is None
    if alive:
        p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    return alive, rc


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

    def __init__(self, echo, vdev, extra=(), cores=2, out_path=None, ready=" on "):
        self.ready = ready
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
            if re.search(r"sluice-[a-z]+: .*" + re.escape(self.ready), t):
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
        if rc == 0:
            os.unlink(self.out_path)  # kept (and named in the failure) only when the app failed
        self.rc, self.metrics = rc, metrics
        return rc, metrics

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@contextlib.contextmanager
def serving(what, prog, vdev, extra, cores):
    """prog on DPDK over vdev, checked ready (what: the check's words; else
    None, its output logged); stopped on leaving, its exit code and metrics
    then in .rc and .metrics."""
    a = app(prog, vdev, extra=extra, cores=cores)
    try:
        ready = check(a.wait_ready(), what)
        if not ready:
            log(a.text())
        yield a if ready else None
    finally:
        a.stop()
        a.kill()


def total(metrics, suffix):
    return sum(v for k, v in metrics.items() if re.fullmatch(r"loop\d+\." + re.escape(suffix), k))


def udp_echo_round(socks, sizes, rng, timeout_s=3.0, tries=3, dst=APP_IP):
    """Each socket sends one datagram to dst (IPv4 or IPv6) and must get
    exactly it back. Returns (exact, lost, wrong)."""
    want = {s: bytes(rng.getrandbits(8) for _ in range(n)) for s, n in zip(socks, sizes)}
    pending = dict(want)
    wrong = 0
    for _ in range(tries):
        for s, payload in pending.items():
            s.sendto(payload, (dst, PORT))
        end = time.monotonic() + timeout_s
        while pending and time.monotonic() < end:
            ready, _, _ = select.select(list(pending), [], [], max(0.0, end - time.monotonic()))
            for s in ready:
                data, src = s.recvfrom(65535)
                if src[:2] != (dst, PORT) or data != pending.get(s):
                    wrong += 1
                    continue
                del pending[s]
        if not pending:
            break
    return len(want) - len(pending), len(pending), wrong


def kernel_sockets(n, kif, src_ip=KERNEL_IP):
    """n kernel UDP sockets on kif bound to src_ip (IPv4 or IPv6)."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET6 if ":" in src_ip else socket.AF_INET, socket.SOCK_DGRAM)
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
        loops = kind_loops(kind)
        if kind in VETH_KINDS:
            run("ip", "link", "add", "sv0", "type", "veth", "peer", "name", "sv1")
            if kind == "af_xdp":
                # First with the kernel's default offloads: the plan must warn.
                plan = run(echo, "--transport=dpdk", f"--ip={APP_IP}/24", "--udp", "--print-plan",
                           f"--dpdk-args=--no-huge -m 256 --no-pci --vdev={veth_vdev(kind)}").stdout
                check("veth peer sv1: TX checksum offload ON: WARNING" in plan,
                      f"{kind}: --print-plan warns that the veth peer's TX checksum offload is on")
                check("af_xdp: mode: copy (veth has no zero-copy" in plan and
                      "af_xdp: interface sv0 (driver veth, 1 queue): queues 0" in plan and "plan: 1 loop," in plan,
                      f"{kind}: --print-plan shows copy mode and one loop for the one queue")
                for line in plan.splitlines():
                    if "af_xdp:" in line:
                        log("  plan" + line)
            # The kernel peer sends partial checksums and GSO frames unless told not to.
            run("ethtool", "-K", "sv1", "tx", "off", "tso", "off", "gso", "off")
            run("ip", "link", "set", "sv0", "up")
            kif = "sv1"
            run("ip", "addr", "add", f"{KERNEL_IP}/24", "dev", kif)
            run("ip", "link", "set", kif, "up")
            vdev = veth_vdev(kind)
        else:
            kif = "sl0"
            vdev = f"net_tap0,iface={kif}"
        a = app(echo, vdev, extra=["--udp", f"--listen=0.0.0.0:{PORT}"], cores=loops)
        try:
            if not check(a.wait_ready(), f"{kind}: sluice-echo starts on DPDK"):
                log(a.text())
                return
            if kind == "tap":
                run("ip", "addr", "add", f"{KERNEL_IP}/24", "dev", kif)
                run("ip", "link", "set", kif, "up")
            # (/sys shows the namespace it was mounted in, not ours: ask ip.)
            kif_mac = link_mac(kif)
            log(f"app MAC {a.mac}, kernel side {kif} {kif_mac}")

            # --- ICMP echo, small and fragmented.
            r = run("ping", "-c", "3", "-i", "0.2", "-W", "2", "-I", kif, APP_IP, check_rc=False)
            check(r.returncode == 0 and " 0% packet loss" in r.stdout, f"{kind}: the kernel's ping gets answers")
            # net_af_packet joins a fanout group that has the kernel reassemble
            # fragments first (PACKET_FANOUT_FLAG_DEFRAG); the whole datagram
            # then exceeds a 2 KiB mbuf and the PMD drops it. So fragments
            # reach the stack only through tap: they are tested there.
            fragments = kind in ("tap", "af_xdp")
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
        check(all(metrics.get(f"loop{i}.datagrams_in", 0) > 0 for i in range(loops)),
              f"{kind}: every loop served datagrams (loop0 {metrics.get('loop0.datagrams_in')}, "
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
        for name in ("ipackets", "opackets", "imissed", "ierrors", "rx_nombuf", "q0.ipackets",
                     *(["q1.ipackets"] if loops > 1 else [])):
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



# ---- TCP: the user-space TCP against the kernel's ---------------------------------------------

ECHO_PORT = 7
HTTP_PORT = 80


def setup_link(kind, before_app):
    """The namespace's plumbing for one kind of port. Called once before the
    first app starts (before_app=True: veth for af_packet) and after every
    app start (tap: the PMD creates the interface afresh each time).
    Returns (kernel interface, vdev)."""
    if kind in VETH_KINDS:
        if before_app:
            run("ip", "link", "add", "sv0", "type", "veth", "peer", "name", "sv1")
            run("ethtool", "-K", "sv1", "tx", "off", "tso", "off", "gso", "off")
            run("ip", "link", "set", "sv0", "up")
            run("ip", "addr", "add", f"{KERNEL_IP}/24", "dev", "sv1")
            run("ip", "link", "set", "sv1", "up")
        return "sv1", veth_vdev(kind)
    if not before_app:
        run("ip", "addr", "add", f"{KERNEL_IP}/24", "dev", "sl0", check_rc=False)
        run("ip", "link", "set", "sl0", "up")
    return "sl0", "net_tap0,iface=sl0"


def tcp_socket(kif, family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, kif.encode())
    return s


def tcp_echo_clients(n, kif, rng, max_size, deadline_s=30.0, port=ECHO_PORT, dst_ip=APP_IP):
    """n concurrent kernel TCP clients, each sends a random payload and reads
    it back. Returns (exact, wrong, unfinished, errors)."""
    import selectors
    sel = selectors.DefaultSelector()
    clients = []
    for _ in range(n):
        s = tcp_socket(kif, socket.AF_INET6 if ":" in dst_ip else socket.AF_INET)
        s.setblocking(False)
        s.connect_ex((dst_ip, port))
        c = {"sock": s, "out": rng.randbytes(rng.randint(1, max_size)), "sent": 0, "got": bytearray(),
             "state": "open"}
        clients.append(c)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    open_ = n
    end = time.monotonic() + deadline_s

    def finish(c, state):
        nonlocal open_
        c["state"] = state
        sel.unregister(c["sock"])
        c["sock"].close()
        open_ -= 1

    while open_ and time.monotonic() < end:
        for key, ev in sel.select(timeout=max(0.0, min(1.0, end - time.monotonic()))):
            c = key.data
            s = c["sock"]
            try:
                if ev & selectors.EVENT_WRITE and c["sent"] < len(c["out"]):
                    c["sent"] += s.send(c["out"][c["sent"]:c["sent"] + 65536])
                    if c["sent"] == len(c["out"]):
                        sel.modify(s, selectors.EVENT_READ, c)
                if ev & selectors.EVENT_READ:
                    data = s.recv(262144)
                    if not data:
                        finish(c, "eof")
                        continue
                    c["got"] += data
                    if len(c["got"]) >= len(c["out"]):
                        finish(c, "done")
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as e:
                c["error"] = e
                finish(c, "error")
    for c in clients:
        if c["state"] == "open":
            sel.unregister(c["sock"])
            c["sock"].close()
    exact = sum(1 for c in clients if c["state"] == "done" and bytes(c["got"]) == c["out"])
    wrong = sum(1 for c in clients if c["state"] in ("done", "eof") and bytes(c["got"]) != c["out"])
    unfinished = sum(1 for c in clients if c["state"] == "open")
    errors = [str(c["error"]) for c in clients if c["state"] == "error"]
    return exact, wrong, unfinished, errors


def half_close(kif, rng, size=300_000):
    """Send, shutdown(SHUT_WR), read the rest: the echo must answer every
    byte and then close its side."""
    import threading
    s = tcp_socket(kif)
    s.settimeout(20)
    s.connect((APP_IP, ECHO_PORT))
    payload = rng.randbytes(size)

    def sender():
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=sender)
    t.start()
    got = bytearray()
    eof = False
    try:
        while True:
            data = s.recv(262144)
            if not data:
                eof = True
                break
            got += data
    except OSError as e:
        log(f"half-close: {e}")
    t.join(20)
    s.close()
    return bytes(got) == payload, eof, len(got)


def netem_transfer(kif, size, deadline_s, dst=APP_IP):
    """size bytes to the echo at dst (IPv4 or IPv6) and size bytes back on
    one connection, both directions at once, each checked by SHA-256.
    Returns (ok, seconds, detail)."""
    import hashlib
    import threading
    s = tcp_socket(kif, socket.AF_INET6 if ":" in dst else socket.AF_INET)
    s.settimeout(deadline_s)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.connect((dst, ECHO_PORT))
    sent_hash = hashlib.sha256()
    gen = random.Random(4242)
    chunk = 1 << 16
    start = time.monotonic()
    send_error = []

    def sender():
        left = size
        try:
            while left:
                block = gen.randbytes(min(chunk, left))
                sent_hash.update(block)
                s.sendall(block)
                left -= len(block)
        except OSError as e:
            send_error.append(e)

    t = threading.Thread(target=sender)
    t.start()
    got_hash = hashlib.sha256()
    got = 0
    try:
        while got < size:
            data = s.recv(1 << 20)
            if not data:
                break
            got_hash.update(data)
            got += len(data)
    except OSError as e:
        send_error.append(e)
    t.join(deadline_s)
    secs = time.monotonic() - start
    s.close()
    ok = got == size and not send_error and got_hash.digest() == sent_hash.digest()
    return ok, secs, f"{got} of {size} bytes back, errors {send_error}"


def syn_flood_frames(app_mac, kif_mac, count, rng):
    """SYNs from addresses nobody owns (their SYN-ACKs go unanswered), raw
    Ethernet frames built with scapy."""
    from scapy.all import IP, TCP, Ether
    frames = []
    for _ in range(count):
        src = f"10.77.0.{rng.randint(100, 250)}"
        frames.append(bytes(Ether(dst=app_mac, src=kif_mac, type=0x0800) /
                            IP(src=src, dst=APP_IP) /
                            TCP(sport=rng.randint(1024, 65535), dport=ECHO_PORT, flags="S",
                                seq=rng.getrandbits(32), options=[("MSS", 1460)])))
    return frames



def has_netem():
    """Whether this kernel has sch_netem (built in or as a module): try it on
    loopback of a throwaway namespace."""
    with netns(f"slnq{os.getpid()}"):
        r = run("tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms", check_rc=False)
        return r.returncode == 0


def relay_main(kernel_if, app_if, loss, delay_ms, reorder, seed):
    """A user-space netem, for kernels without sch_netem: forwards every frame
    between two interfaces (raw AF_PACKET sockets) and impairs the kernel's
    side as `netem loss L delay D reorder R` on its egress would: a frame from
    the kernel is lost with probability L, else sent at once with probability
    R (overtaking the delayed ones) or after D ms. Frames from the app pass
    as they come. Stops on SIGTERM and prints what it did."""
    import heapq
    eth_p_all = socket.htons(0x0003)
    socks = {}
    for name in (kernel_if, app_if):
        sk = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, eth_p_all)
        sk.bind((name, 0))
        # Root may exceed rmem_max: a relay that falls behind must not add loss.
        sk.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE
        sk.setsockopt(socket.SOL_SOCKET, 32, 16 << 20)  # SO_SNDBUFFORCE
        sk.setblocking(False)
        socks[name] = sk
    k, a = socks[kernel_if], socks[app_if]
    rng = random.Random(seed)
    stats = {"forwarded": 0, "lost": 0, "delayed": 0, "reordered": 0, "send_failed": 0}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    heap = []
    seq = 0
    delay = delay_ms / 1000.0
    outgoing = 4  # PACKET_OUTGOING: our own transmissions, seen again

    trace = open(os.environ["SLUICE_RELAY_TRACE"], "w") if os.environ.get("SLUICE_RELAY_TRACE") else None

    def note(what, data):
        # Diagnosis only: one line per TCP frame (direction, seq, ack, len, flags).
        if trace is None or len(data) < 54 or data[23] != 6:
            return
        ihl = (data[14] & 15) * 4
        t0 = 14 + ihl
        seq, ack = struct.unpack("!II", data[t0 + 4:t0 + 12])
        off = (data[t0 + 12] >> 4) * 4
        tot = struct.unpack("!H", data[16:18])[0]
        trace.write(f"{time.monotonic():.6f} {what} seq={seq} ack={ack} len={tot - ihl - off} "
                    f"flags={data[t0 + 13]:02x}\n")

    def send(sk, data):
        try:
            sk.send(data)
            stats["forwarded"] += 1
        except OSError:
            stats["send_failed"] += 1

    while not stop:
        now = time.monotonic()
        while heap and heap[0][0] <= now:
            _, _, data = heapq.heappop(heap)
            send(a, data)
        timeout = max(0.0, heap[0][0] - now) if heap else 0.5
        try:
            ready, _, _ = select.select([k, a], [], [], timeout)
        except InterruptedError:
            continue
        for sk in ready:
            for _ in range(256):
                try:
                    data, addr = sk.recvfrom(65535)
                except (BlockingIOError, InterruptedError):
                    break
                if addr[2] == outgoing:
                    continue
                if sk is a:
                    note("app", data)
                    send(k, data)
                    continue
                if rng.random() < loss:
                    note("kernel-lost", data)
                    stats["lost"] += 1
                elif rng.random() < reorder:
                    note("kernel", data)
                    stats["reordered"] += 1
                    send(a, data)
                else:
                    note("kernel", data)
                    stats["delayed"] += 1
                    seq += 1
                    heapq.heappush(heap, (time.monotonic() + delay, seq, data))
    for name, sk in (("kernel_side", k), ("app_side", a)):
        # PACKET_STATISTICS: frames the socket itself dropped (rcvbuf full).
        _, drops = struct.unpack("II", sk.getsockopt(263, 6, 8))
        stats[f"{name}_socket_drops"] = drops
    print("relay " + " ".join(f"{n}={v}" for n, v in stats.items()), flush=True)


def netem_exercise(kind, echo, size, deadline_s, ipv6=False):
    """(c) size bytes each way on one connection under 2% loss, 5 ms delay and
    reordering on the kernel side: tc netem where the kernel has it, else the
    user-space relay above between a veth (the kernel's address) and the
    port's kernel end. ipv6: the connection is over IPv6 (issue 17), to a
    dual-stack [::] listener."""
    netem = has_netem()
    family = "IPv6" if ipv6 else "IPv4"
    with netns(f"sn{'6' if ipv6 else ''}{kind[:3]}{os.getpid()}"):
        if netem:
            kif, vdev = setup_link(kind, True)
            if ipv6 and kind in VETH_KINDS:
                # The port's end is DPDK's (the stack's link-local address is
                # built from its MAC): the kernel keeps off IPv6 there.
                run("sysctl", "-qw", "net.ipv6.conf.sv0.disable_ipv6=1")
        else:
            run("ip", "link", "add", "kv0", "type", "veth", "peer", "name", "kv1")
            for i in ("kv0", "kv1"):
                run("ethtool", "-K", i, "tx", "off", "tso", "off", "gso", "off", "gro", "off", check_rc=False)
                run("ip", "link", "set", i, "up")
            run("ip", "addr", "add", f"{KERNEL_IP}/24", "dev", "kv0")
            if kind in VETH_KINDS:
                run("ip", "link", "add", "sv0", "type", "veth", "peer", "name", "sv1")
                run("ethtool", "-K", "sv1", "tx", "off", "tso", "off", "gso", "off", "gro", "off", check_rc=False)
                for i in ("sv0", "sv1"):
                    run("sysctl", "-qw", f"net.ipv6.conf.{i}.disable_ipv6=1")  # the relay's pipe, no host
                run("ip", "link", "set", "sv0", "up")
                run("ip", "link", "set", "sv1", "up")
                vdev = veth_vdev(kind)
            else:
                vdev = "net_tap0,iface=sl0"
            run("sysctl", "-qw", "net.ipv6.conf.kv1.disable_ipv6=1")  # the relay's end
            if ipv6:
                kernel_ipv6_up("kv0", [KERNEL_IP6])
            kif = "kv0"
        listen = [f"--listen=[::]:{ECHO_PORT}", f"--ip6={APP_IP6}/64"] if ipv6 else [f"--listen=0.0.0.0:{ECHO_PORT}"]
        # SLUICE_NETEM_EXTRA: more flags for the app (diagnosis, e.g. --busy-poll).
        a = app(echo, vdev, extra=[*listen, *os.environ.get("SLUICE_NETEM_EXTRA", "").split()],
                cores=int(os.environ.get("SLUICE_NETEM_CORES", str(kind_loops(kind)))))
        relay = None
        try:
            if not check(a.wait_ready(), f"{kind}: sluice-echo (TCP) starts on DPDK for the impaired transfer"):
                log(a.text())
                return
            if netem:
                setup_link(kind, False)
                if ipv6 and not check(kernel_ipv6_up_beside(kind, kif), f"{kind}: the kernel's IPv6 address is up"):
                    return
                run("tc", "qdisc", "add", "dev", kif, "root", "netem", "loss", "2%", "delay", "5ms", "reorder",
                    "25%", "50%", "limit", "10000")
                how = "tc netem on the kernel's interface"
            else:
                app_if = "sv1" if kind in VETH_KINDS else "sl0"
                if kind == "tap":
                    run("ethtool", "-K", "sl0", "gro", "off", check_rc=False)
                    run("sysctl", "-qw", "net.ipv6.conf.sl0.disable_ipv6=1")  # the relay's pipe, no host
                    run("ip", "link", "set", "sl0", "up")
                relay = subprocess.Popen([sys.executable, os.path.abspath(__file__), "relay", "kv1",
                                          app_if], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                how = "this kernel has no sch_netem: the same impairment by a user-space relay on the kernel side"
                # The relay is up once a ping goes through it.
                r = run("ping", *(("-6",) if ipv6 else ()), "-c", "1", "-w", "10", "-I", kif,
                        APP_IP6 if ipv6 else APP_IP, check_rc=False, timeout=15)
                check(r.returncode == 0, f"{kind}: the kernel reaches the stack through the relay ({family})")
            ok, secs, detail = netem_transfer(kif, size, deadline_s, dst=APP_IP6 if ipv6 else APP_IP)
            if os.environ.get("SLUICE_NETEM_VERBOSE"):
                log(run("ip", "-s", "link", "show", check_rc=False).stdout)
                log(open("/proc/net/softnet_stat").read())
                r = run("nstat", "-az", check_rc=False)
                log("kernel: " + " ".join(ln.split()[0] + "=" + ln.split()[1] for ln in r.stdout.splitlines()
                                          if re.search(r"Retrans|Timeout|PAWS|OFO|SACK|Lost|Recover|Spurious|Err|Drop|Csum|Prune|Collapse|Window",
                                                       ln) and ln.split()[1] != "0"))
            check(ok, f"{kind}: {size / 1e6:.0f} MB each way, one {family} connection, under 2% loss, 5 ms delay and "
                  f"reordering ({how}), SHA-256 equal: {secs:.1f}s, {size / secs / 1e6:.2f} MB/s each way ({detail})")
        finally:
            if relay is not None:
                relay.send_signal(signal.SIGTERM)
                try:
                    log(relay.communicate(timeout=10)[0].strip())
                except subprocess.TimeoutExpired:
                    relay.kill()
                    relay.communicate()
            rc, metrics = a.stop()
            a.kill()
        check(rc == 0, f"{kind}: SIGTERM stops sluice-echo cleanly (exit {rc})")
        log(f"  {kind}: stack under impairment: retransmits {total(metrics, 'inet.tcp_retransmits')}, fast "
            f"{total(metrics, 'inet.tcp_fast_retransmits')}, timeouts {total(metrics, 'inet.tcp_timeouts')}, "
            f"SACK recoveries {total(metrics, 'inet.tcp_sack_recoveries')}, out-of-order "
            f"{total(metrics, 'inet.tcp_ooo_segments')}; device: rx_nombuf {metrics.get('dpdk.port0.rx_nombuf')}, "
            f"imissed {metrics.get('dpdk.port0.imissed')}, tx refused {total(metrics, 'dpdk.queue0.tx_refused')}, "
            f"tx_queue_full drops {total(metrics, 'inet.drop.tx_queue_full')}, pool free at the end "
            f"{metrics.get('dpdk.port0.pool_n1.available')}")
    if os.environ.get("SLUICE_NETEM_VERBOSE"):
        for k_, v in sorted(metrics.items()):
            if v and re.search(r"tcp|drop", k_):
                log(f"    {k_} {v}")


def netem_bytes():
    """The impaired transfer's size: 100 MB each way (~40 s in a release
    build); SLUICE_NETEM_BYTES makes it smaller for a quick run."""
    return int(os.environ.get("SLUICE_NETEM_BYTES", str(100 * 1000 * 1000)))


def tcp_exercise(kind, echo, httpd):
    if os.environ.get("SLUICE_ONLY_NETEM"):
        netem_exercise(kind, echo, netem_bytes(), 60)
        return
    ns_name = f"st{kind[:3]}{os.getpid()}"
    rng = random.Random(8080)
    with netns(ns_name):
        kif, vdev = setup_link(kind, True)
        # ---- sluice-echo over TCP.
        a = app(echo, vdev, extra=[f"--listen=0.0.0.0:{ECHO_PORT}"], cores=kind_loops(kind))
        try:
            if not check(a.wait_ready(), f"{kind}: sluice-echo (TCP) starts on DPDK"):
                log(a.text())
                return
            setup_link(kind, False)
            kif_mac = link_mac(kif)

            # (a) 200 concurrent kernel clients, random payloads, byte-exact.
            t0 = time.monotonic()
            exact, wrong, unfinished, errors = tcp_echo_clients(200, kif, rng, 64 * 1024)
            check(exact == 200 and wrong == 0, f"{kind}: TCP echo to 200 concurrent kernel clients is byte-exact "
                  f"({exact} exact, {wrong} wrong, {unfinished} unfinished, errors {errors[:3]}) "
                  f"in {time.monotonic() - t0:.2f}s")

            # (d) half-close and RST from the kernel side, a long-lived
            # connection served across both.
            keeper = tcp_socket(kif)
            keeper.settimeout(10)
            keeper.connect((APP_IP, ECHO_PORT))
            keeper.sendall(b"before")
            check(keeper.recv(100) == b"before", f"{kind}: a long-lived connection echoes")
            ok, eof, n = half_close(kif, rng)
            check(ok and eof, f"{kind}: kernel half-close: every byte after SHUT_WR comes back ({n}), then EOF ({eof})")
            r = tcp_socket(kif)
            r.settimeout(10)
            r.connect((APP_IP, ECHO_PORT))
            r.sendall(rng.randbytes(50_000))
            r.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            r.close()  # RST
            got = echo_back(keeper, b"after the reset")
            check(got == b"after the reset", f"{kind}: the long-lived connection still echoes after a kernel RST")
            exact, wrong, unfinished, errors = tcp_echo_clients(20, kif, rng, 8192)
            check(exact == 20, f"{kind}: new clients are served after the RST ({exact} of 20)")

            # (e) a SYN flood from scapy while normal clients keep being served.
            import threading
            frames = syn_flood_frames(a.mac, kif_mac, 5000, rng)
            raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            raw.bind((kif, 0))
            flood_done = threading.Event()

            def flood():
                for f in frames:
                    try:
                        raw.send(f)
                    except OSError:
                        time.sleep(0.001)  # the interface queue is full: let it drain
                flood_done.set()

            ft = threading.Thread(target=flood)
            t0 = time.monotonic()
            ft.start()
            exact, wrong, unfinished, errors = tcp_echo_clients(50, kif, rng, 4096, deadline_s=20)
            ft.join(30)
            raw.close()
            check(exact == 50, f"{kind}: 50 kernel clients served during a flood of {len(frames)} spoofed SYNs "
                  f"({exact} exact, {unfinished} unfinished, {time.monotonic() - t0:.2f}s)")
            exact, wrong, unfinished, errors = tcp_echo_clients(50, kif, rng, 4096, deadline_s=20)
            check(exact == 50, f"{kind}: and after it ({exact} of 50)")

            keeper.sendall(b"still")
            check(keeper.recv(100) == b"still", f"{kind}: the long-lived connection survived all of it")
            keeper.close()
        finally:
            rc, metrics = a.stop()
            a.kill()
        check(rc == 0, f"{kind}: SIGTERM stops sluice-echo cleanly (exit {rc})")
        for name in ("tcp_passive_opens", "tcp_resets_in", "tcp_syn_cookies_sent", "tcp_syn_cookies_ok",
                     "tcp_retransmits", "tcp_ooo_segments", "tcp_steered_out"):
            log(f"  {name}: {total(metrics, 'inet.' + name)}")
        check(total(metrics, "inet.tcp_resets_in") >= 1, f"{kind}: the stack counted the kernel's RST")
        check(total(metrics, "inet.tcp_syn_cookies_sent") > 0,
              f"{kind}: the flood overflowed the SYN queue and cookies answered "
              f"({total(metrics, 'inet.tcp_syn_cookies_sent')} sent, {total(metrics, 'inet.tcp_syn_cookies_ok')} ok)")
        check(total(metrics, "inet.tcp_passive_opens") > 0 and
              all(metrics.get(f"loop{i}.inet.tcp_passive_opens", 0) > 0 for i in range(kind_loops(kind))),
              f"{kind}: every loop owns connections (loop0 {metrics.get('loop0.inet.tcp_passive_opens')}, "
              f"loop1 {metrics.get('loop1.inet.tcp_passive_opens')})")

        # ---- (b) sluice-httpd: curl and wrk.
        h = app(httpd, vdev, extra=[f"--listen=0.0.0.0:{HTTP_PORT}"], cores=kind_loops(kind))
        try:
            if not check(h.wait_ready(), f"{kind}: sluice-httpd starts on DPDK"):
                log(h.text())
                return
            setup_link(kind, False)
            r = run("curl", "-s", "--max-time", "5", "--interface", kif, f"http://{APP_IP}:{HTTP_PORT}/",
                    check_rc=False)
            check(r.returncode == 0 and r.stdout == "Hello, World!",
                  f"{kind}: curl GET / returns Hello, World! (rc {r.returncode}, {r.stdout[:40]!r})")
            if shutil.which("wrk"):
                r = run("wrk", "-t", "2", "-c", "32", "-d", "2s", "--timeout", "2s",
                        f"http://{APP_IP}:{HTTP_PORT}/", check_rc=False, timeout=30)
                m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
                lat = re.search(r"Latency\s+(\S+)", r.stdout)
                bad = "Non-2xx" in r.stdout or re.search(r"Socket errors: connect [1-9]|read [1-9]|write [1-9]",
                                                         r.stdout)
                check(r.returncode == 0 and m is not None and float(m.group(1)) > 0 and not bad,
                      f"{kind}: wrk 2s, 32 connections: {m.group(1) if m else '?'} requests/s, mean latency "
                      f"{lat.group(1) if lat else '?'}, no errors ({'' if not bad else r.stdout[-300:]})")
        finally:
            rc, metrics = h.stop()
            h.kill()
        check(rc == 0, f"{kind}: SIGTERM stops sluice-httpd cleanly (exit {rc})")
    if os.environ.get("SLUICE_ONLY_NETEM"):
        netem_exercise(kind, echo, netem_bytes(), 60)
        return
    # Over AF_XDP this is also the test of the pool's layout (issue 21): with
    # the default pool the kernel refused every TX descriptor of an mbuf past
    # the PMD's UMEM and the transfer stalled in retransmission timeouts.
    netem_exercise(kind, echo, netem_bytes(), 60)


# ---- issue 20: the stack under attack -----------------------------------------------------------

def kernel_tcp_ext(name):
    """A TcpExt counter of this namespace's kernel (/proc/net follows the
    calling thread's namespace)."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for head, vals in zip(lines[::2], lines[1::2]):
        if head.startswith("TcpExt:"):
            return dict(zip(head.split()[1:], (int(v) for v in vals.split()[1:]))).get(name, 0)
    return 0


def timed_echo(kif, payload, timeout_s=5.0, phases=None):
    """One kernel TCP client: connect, send payload, read it back. Returns
    (exact, seconds from connect to the last byte back); `phases`, a list,
    gets (connect seconds, data seconds) appended."""
    import threading
    s = tcp_socket(kif)
    s.settimeout(timeout_s)
    t0 = time.monotonic()
    try:
        s.connect((APP_IP, ECHO_PORT))
        t1 = time.monotonic()
        sender = threading.Thread(target=lambda: s.sendall(payload))
        sender.start()
        got = bytearray()
        while len(got) < len(payload):
            d = s.recv(262144)
            if not d:
                break
            got += d
        sender.join(timeout_s)
        if phases is not None:
            phases.append((t1 - t0, time.monotonic() - t1))
        return bytes(got) == payload, time.monotonic() - t0
    except OSError:
        return False, time.monotonic() - t0
    finally:
        s.close()


def link_mac(ifname):
    """The MAC address of a kernel interface in the current namespace."""
    return re.search(r"link/ether ([0-9a-f:]{17})", run("ip", "link", "show", ifname).stdout).group(1)


def echo_back(conn, payload):
    """Sends payload on an echo connection; what came back (an error noted)."""
    conn.sendall(payload)
    got = b""
    try:
        while len(got) < len(payload):
            d = conn.recv(100)
            if not d:
                break
            got += d
    except OSError as e:
        got += f" ({e})".encode()
    return got


def attack_exercise(echo):
    from scapy.all import ARP, IP, Ether, Raw
    import threading
    rng = random.Random(2020)
    with netns(f"sla{os.getpid()}"):
        kif, vdev = setup_link("tap", True)
        # ---- (1) SYN cookies under a flood, (3) a forged ARP reply.
        a = app(echo, vdev, extra=[f"--listen=0.0.0.0:{ECHO_PORT}"])
        try:
            if not check(a.wait_ready(), "attack: sluice-echo (TCP) starts on DPDK"):
                log(a.text())
                return
            setup_link("tap", False)
            kif_mac = link_mac(kif)
            keeper = tcp_socket(kif)
            keeper.settimeout(5)
            keeper.connect((APP_IP, ECHO_PORT))
            keeper.sendall(b"hello")
            check(keeper.recv(100) == b"hello", "attack: a long-lived connection echoes")

            # The flood fills both loops' SYN queues (1024 each) from sources
            # on the link that never answer ARP, and goes on while the
            # clients come: they get SYN cookies.
            frames = syn_flood_frames(a.mac, kif_mac, 8000, rng)
            raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            raw.bind((kif, 0))
            queue_full = threading.Event()

            def flood():
                for i, f in enumerate(frames):
                    try:
                        raw.send(f)
                    except OSError:
                        time.sleep(0.001)  # the interface queue is full: let it drain
                    if i % 200 == 199:
                        # Paced (about 40k SYNs/s), so that the kernel's own
                        # queue to the tap does not overflow and drop the
                        # clients' SYNs (that would cost them the kernel's
                        # 1 s SYN timeout: the flood's bandwidth, not the stack).
                        time.sleep(0.005)
                    if i == 4000:
                        queue_full.set()
                queue_full.set()

            paws_before = kernel_tcp_ext("PAWSEstab")
            ft = threading.Thread(target=flood)
            ft.start()
            queue_full.wait(60)
            times, phases, exact = [], [], 0
            for _ in range(20):
                ok, secs = timed_echo(kif, rng.randbytes(100_000), phases=phases)
                exact += ok
                times.append(secs)
            log("  clients (connect ms, data ms): " +
                " ".join(f"({c * 1000:.0f},{d * 1000:.0f})" for c, d in phases))
            ft.join(60)
            raw.close()
            paws = kernel_tcp_ext("PAWSEstab") - paws_before
            # The PAWS bug cost the data phase (our first segments dropped by
            # the kernel until our RTO, ~1 s); a lost SYN (the kernel's queue,
            # despite the pacing) would cost the connect phase: both are
            # shown, the data phase is what must be fast for every client.
            slow_data = [d for _, d in phases if d >= 0.1]
            check(exact == 20 and not slow_data and max(times) < 2.0,
                  f"attack: 20 kernel clients echo 100 kB each during a flood of {len(frames)} spoofed SYNs, "
                  f"each within 0.1 s once connected ({exact} exact; slowest {max(times) * 1000:.1f} ms in all, "
                  f"median {sorted(times)[10] * 1000:.1f} ms; {len(slow_data)} slow data phases)")
            check(paws == 0, f"attack: the kernel's PAWSEstab did not rise ({paws})")

            # (7) 2000 forged FINs at random sequence numbers on the live
            # connection: out of window, so dropped, and answered at most
            # once per 500 ms (they drew an ACK each before).
            from scapy.all import TCP
            kport = keeper.getsockname()[1]
            fins = [bytes(Ether(dst=a.mac, src=kif_mac) / IP(src=KERNEL_IP, dst=APP_IP) /
                          TCP(sport=kport, dport=ECHO_PORT, flags="FA", seq=rng.getrandbits(32),
                              ack=rng.getrandbits(32)))
                    for _ in range(2000)]
            raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            raw.bind((kif, 0))
            for i, f in enumerate(fins):
                try:
                    raw.send(f)
                except OSError:
                    time.sleep(0.001)
                if i % 200 == 199:
                    time.sleep(0.005)
            raw.close()
            got = echo_back(keeper, b"after the FINs")
            check(got == b"after the FINs", f"attack: the connection survives 2000 forged FINs ({got!r})")

            # A forged reply claims the kernel's address for another MAC.
            forged = "02:00:00:00:66:66"
            arp = bytes(Ether(dst=a.mac, src=forged) /
                        ARP(op=2, hwsrc=forged, psrc=KERNEL_IP, hwdst=a.mac, pdst=APP_IP))
            raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            raw.bind((kif, 0))
            for _ in range(3):
                raw.send(arp)
            raw.close()
            got = echo_back(keeper, b"after the forgery")
            check(got == b"after the forgery", f"attack: a forged ARP reply does not redirect a live neighbour "
                  f"({got!r})")
            ok, secs = timed_echo(kif, rng.randbytes(10_000))
            check(ok, f"attack: new clients are still served after the forgery ({secs * 1000:.1f} ms)")
            keeper.close()
        finally:
            rc, metrics = a.stop()
            a.kill()
        check(rc == 0, f"attack: SIGTERM stops sluice-echo cleanly (exit {rc})")
        for name in ("tcp_syn_cookies_sent", "tcp_syn_cookies_ok", "tcp_invalid_acks_limited", "arp_conflicts",
                     "arp_confirmed", "arp_reassigned", "arp_pending_evicted", "drop.arp_pending_full",
                     "drop.arp_table_full", "drop.tcp_paws", "drop.tx_queue_full", "drop.no_buffer",
                     "drop.tcp_syn_queue_full", "tcp_retransmits", "tcp_timeouts"):
            log(f"  {name}: {total(metrics, 'inet.' + name)}")
        for name in ("imissed", "ierrors", "oerrors", "rx_nombuf"):
            log(f"  dpdk.port0.{name}: {metrics.get('dpdk.port0.' + name)}")
        limited = total(metrics, "inet.tcp_invalid_acks_limited")
        check(limited >= 1900, f"attack: the forged FINs drew at most a few ACKs (tcp_invalid_acks_limited {limited}, "
              f"tcp_out_of_window {total(metrics, 'inet.drop.tcp_out_of_window')})")
        check(total(metrics, "inet.tcp_syn_cookies_ok") >= 20,
              f"attack: the clients came in through SYN cookies ({total(metrics, 'inet.tcp_syn_cookies_ok')})")
        check(total(metrics, "inet.arp_conflicts") >= 1 and total(metrics, "inet.arp_confirmed") >= 1
              and total(metrics, "inet.arp_reassigned") == 0,
              f"attack: the claim was counted ({total(metrics, 'inet.arp_conflicts')}) and the kernel confirmed "
              f"its MAC ({total(metrics, 'inet.arp_confirmed')})")

        # ---- (2) junk first fragments, then a fragmented UDP echo. One loop,
        # so that the junk and the echo share a reassembly table.
        u = app(echo, vdev, extra=["--udp", f"--listen=0.0.0.0:{PORT}"], cores=1)
        try:
            if not check(u.wait_ready(), "attack: sluice-echo (UDP, 1 loop) starts on DPDK"):
                log(u.text())
                return
            setup_link("tap", False)
            kif_mac = link_mac(kif)
            junk = [bytes(Ether(dst=u.mac, src=kif_mac) /
                          IP(src="10.77.0.9", dst=APP_IP, id=1000 + i, flags="MF", proto=17) / Raw(b"j" * 1480))
                    for i in range(40)]
            raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            raw.bind((kif, 0))
            for f in junk:
                raw.send(f)
            raw.close()
            socks = kernel_sockets(1, kif)
            e, lost, wrong = udp_echo_round(socks, [3000], rng, timeout_s=2.0, tries=1)
            check(e == 1 and wrong == 0, f"attack: a fragmented UDP echo succeeds after 40 junk first fragments "
                  f"({e} exact, {lost} lost)")
            socks[0].close()
        finally:
            rc, metrics = u.stop()
            u.kill()
        check(rc == 0, f"attack: SIGTERM stops the UDP sluice-echo cleanly (exit {rc})")
        check(total(metrics, "inet.frag_evictions") >= 9 and total(metrics, "inet.drop.frag_table_full") == 0,
              f"attack: the junk was evicted (frag_evictions {total(metrics, 'inet.frag_evictions')}, "
              f"frag_table_full {total(metrics, 'inet.drop.frag_table_full')})")

        pmtu_exercise(echo, vdev)


def echo_from_namespace(ns_name, size, deadline_s):
    """A kernel TCP client made inside namespace ns_name (a socket keeps the
    namespace it was made in) echoes `size` bytes through the app. Returns
    (byte-exact, bytes back, seconds)."""
    import hashlib
    import threading
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        enter_netns(f"/var/run/netns/{ns_name}")
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    finally:
        libc.setns(home, CLONE_NEWNET)
        os.close(home)
    s.settimeout(10)
    payload = random.Random(size).randbytes(size)
    h = hashlib.sha256()
    got = 0
    t0 = time.monotonic()
    try:
        s.connect((APP_IP, ECHO_PORT))
        sender = threading.Thread(target=lambda: s.sendall(payload), daemon=True)
        sender.start()
        end = time.monotonic() + deadline_s
        while got < size and time.monotonic() < end:
            d = s.recv(1 << 20)
            if not d:
                break
            h.update(d)
            got += len(d)
    except OSError as e:
        log(f"  client in {ns_name}: {e}")
    finally:
        s.close()
    return got == size and h.digest() == hashlib.sha256(payload).digest(), got, time.monotonic() - t0


def pmtu_exercise(echo, vdev, size=10_000_000, deadline_s=90):
    """(5) Path MTU discovery: the client sits in a second namespace behind
    this one's kernel, which forwards to it over a route locked to MTU 1000
    and answers our larger DF segments with ICMP frag-needed; then again
    with the router's ICMP routed into a black hole (RFC 4821's case). Both ends
    have 1500-byte links, so the client's MSS says nothing about the path."""
    client_ns = f"slc{os.getpid()}"
    client_ip, router_ip = "10.78.0.2", "10.78.0.1"
    run("ip", "netns", "add", client_ns)
    try:
        run("ip", "link", "add", "sr0", "type", "veth", "peer", "name", "sr1")
        run("ip", "link", "set", "sr1", "netns", client_ns)
        run("ip", "addr", "add", f"{router_ip}/24", "dev", "sr0")
        run("ip", "link", "set", "sr0", "up")
        ns = ("ip", "netns", "exec", client_ns)
        run(*ns, "ip", "link", "set", "lo", "up")
        run(*ns, "ip", "addr", "add", f"{client_ip}/24", "dev", "sr1")
        run(*ns, "ip", "link", "set", "sr1", "up")
        run(*ns, "ip", "route", "add", "10.77.0.0/24", "via", router_ip)
        run("sysctl", "-qw", "net.ipv4.ip_forward=1")
        run("ip", "route", "replace", "10.78.0.0/24", "dev", "sr0", "mtu", "lock", "1000")
        for icmp in (True, False):
            how = "frag-needed from the router" if icmp else "the router's ICMP dropped (a black hole)"
            if not icmp:
                # The kernel never rate-limits frag-needed: its ICMP is routed
                # into a black hole instead (policy routing by protocol).
                run("ip", "rule", "add", "ipproto", "icmp", "table", "77")
                run("ip", "route", "add", "blackhole", "default", "table", "77")
            a = app(echo, vdev, extra=[f"--listen=0.0.0.0:{ECHO_PORT}", f"--gateway={KERNEL_IP}"])
            try:
                if not check(a.wait_ready(), f"attack: sluice-echo (TCP, with a gateway) starts on DPDK, {how}"):
                    log(a.text())
                    return
                setup_link("tap", False)
                ok, got, secs = echo_from_namespace(client_ns, size, deadline_s)
                check(ok, f"attack: a {size // 1_000_000} MB echo over a path with a 1000-byte MTU completes, "
                      f"{how} ({got} bytes back in {secs:.1f}s)")
            finally:
                rc, metrics = a.stop()
                a.kill()
            check(rc == 0, f"attack: SIGTERM stops sluice-echo (gateway) cleanly (exit {rc})")
            updates, blackholes = total(metrics, "inet.tcp_pmtu_updates"), total(metrics, "inet.tcp_pmtu_blackholes")
            detail = (f"tcp_pmtu_updates {updates}, tcp_pmtu_blackholes {blackholes}, icmp_unverified "
                      f"{total(metrics, 'inet.drop.icmp_unverified')}, timeouts {total(metrics, 'inet.tcp_timeouts')}")
            if icmp:
                check(updates >= 1 and blackholes == 0, f"attack: frag-needed lowered the path MSS ({detail})")
            else:
                check(updates == 0 and blackholes >= 1, f"attack: timeouts stepped the path MSS down ({detail})")
    finally:
        run("ip", "netns", "del", client_ns, check_rc=False)


def gateway_exercise(gateway, httpd, kind="tap"):
    """sluice-gateway on DPDK (tap, or AF_XDP on a veth): clients and upstreams
    both behind the one port, the upstreams kernel sluice-httpd processes on
    the namespace side."""
    with netns(f"sgw{os.getpid()}"):
        ups = []
        for port in (8081, 8082):
            p = subprocess.Popen([httpd, f"--listen=0.0.0.0:{port}", "--cores=1", "--print-metrics"],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            ups.append(p)
        kif, vdev = setup_link(kind, True)
        g = app(gateway, vdev, extra=["--listen=0.0.0.0:8080", f"--upstream={KERNEL_IP}:8081,{KERNEL_IP}:8082",
                                      "--health-interval=200ms"], ready=" -> ", cores=kind_loops(kind))
        try:
            if not check(g.wait_ready(), "gateway: sluice-gateway starts on DPDK"):
                log(g.text())
                return
            setup_link(kind, False)
            url = f"http://{APP_IP}:8080/"
            end = time.monotonic() + 15
            r = None
            while time.monotonic() < end:
                r = run("curl", "-s", "--max-time", "2", "--interface", kif, url, check_rc=False)
                if r.stdout == "Hello, World!":
                    break
                time.sleep(0.1)  # the upstreams are checked healthy on their own clock
            check(r is not None and r.stdout == "Hello, World!", f"gateway: curl through the gateway ({r.stdout[:60]!r})")
            good = 0
            for _ in range(20):
                r = run("curl", "-s", "--max-time", "2", "--interface", kif, url, check_rc=False)
                good += r.stdout == "Hello, World!"
            check(good == 20, f"gateway: 20 of 20 sequential requests answered ({good})")
            if shutil.which("wrk"):
                r = run("wrk", "-t", "2", "-c", "16", "-d", "2s", "--timeout", "2s", url, check_rc=False, timeout=30)
                m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
                bad = "Non-2xx" in r.stdout
                check(r.returncode == 0 and m is not None and float(m.group(1)) > 0 and not bad,
                      f"gateway: wrk 2s through the gateway: {m.group(1) if m else '?'} requests/s, all 2xx")
        finally:
            rc, metrics = g.stop()
            g.kill()
            outs = []
            for p in ups:
                p.send_signal(signal.SIGTERM)
                try:
                    outs.append(p.communicate(timeout=10)[0])
                except subprocess.TimeoutExpired:
                    p.kill()
                    outs.append(p.communicate()[0])
        check(rc == 0, f"gateway: SIGTERM stops the gateway cleanly (exit {rc})")
        served = [sum(int(v) for v in re.findall(r"loop\d+\.accepted (\d+)", o)) for o in outs]
        check(all(n > 0 for n in served), f"gateway: both kernel upstreams accepted the gateway's connections {served}")
        check(total(metrics, "inet.tcp_active_opens") > 0,
              f"gateway: the gateway's stack opened connections to the upstreams "
              f"({total(metrics, 'inet.tcp_active_opens')} active opens)")


MEMIF_SERVER_IP = "10.78.0.1"
MEMIF_CLIENT_IP = "10.78.0.2"
MEMIF_ROUNDS = 20


def memif_app(prog, args, sock, role, ip, out_path, env, cores=1):
    """A sluice program on DPDK over net_memif (one loop), output to a file."""
    eal = f"--no-huge -m 256 --no-pci --no-telemetry --vdev=net_memif0,role={role},socket={sock}"
    cmd = [prog, *args, "--transport=dpdk", f"--dpdk-args={eal}", f"--ip={ip}/24", f"--cores={cores}",
           "--shutdown-timeout=1s", "--print-metrics"]
    out = open(out_path, "w+")
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env), out


def wait_for_text(path, pattern, proc, deadline_s=30):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        with open(path) as f:
            t = f.read()
        m = re.search(pattern, t)
        if m:
            return m
        if proc.poll() is not None:
            return None
        time.sleep(0.05)  # polling a log file: there is no event to wait on
    return None


def memif_exercise(echo, httpd, bench):
    """sluice-bench on DPDK driving sluice-echo and sluice-httpd on DPDK over
    net_memif; the survivor must outlive every exit and kill -9 of its peer."""
    work = f"/tmp/sluice_memif_{os.getpid()}"
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, SLUICE_CLAIM_DIR=f"{work}/claims")  # this test's own claims
    ncpu = len(os.sched_getaffinity(0))
    with netns(f"slmif{os.getpid()}"):
        for name, prog, server_args, mode, bench_args in (
                ("echo", echo, ["--listen=0.0.0.0:7"], "echo", ["--size=64"]),
                ("httpd", httpd, ["--listen=0.0.0.0:80"], "http", ["--expect-body=Hello, World!"])):
            sock = f"{work}/{name}.sock"
            srv_log = f"{work}/{name}.log"
            srv, srv_out = memif_app(prog, server_args, sock, "server", MEMIF_SERVER_IP, srv_log, env)
            port = server_args[0].rsplit(":", 1)[1]
            try:
                m = wait_for_text(srv_log, r"sluice: cores: claimed in \S+: CPU (\d+)", srv)
                ready = m and wait_for_text(srv_log, r"sluice-[a-z]+: .* on ", srv)
                if not check(bool(ready), f"memif/{name}: sluice-{name} starts on net_memif (role=server)"):
                    log(open(srv_log).read())
                    continue
                srv_cpu = m.group(1)
                base = [mode, f"--target={MEMIF_SERVER_IP}:{port}", *bench_args]

                def bench_run(extra, tag, kill_after=None):
                    path = f"{work}/bench_{name}_{tag}.log"
                    p, out = memif_app(bench, base + extra, sock, "client", MEMIF_CLIENT_IP, path, env)
                    if kill_after is not None:
                        # Kill it mid-load: once its port is up, give it a moment of traffic
                        # (no event tells an outsider that segments flow).
                        wait_for_text(path, r"sluice: dpdk port", p, 20)
                        time.sleep(kill_after)
                        p.kill()
                    try:
                        rc = p.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        rc = p.wait()
                    out.close()
                    with open(path) as f:
                        return rc, f.read()

                if name == "echo":
                    # CPU claims: the bench, left to its defaults, keeps off the server's CPU.
                    if ncpu >= 2:
                        rc, text = bench_run(["--connections=1", "--duration=50ms", "--warmup=0s"], "claims")
                        check(re.search(rf"left out, claimed by others: CPU {srv_cpu} \(pid {srv.pid}", text) is not None,
                              f"memif/claims: the second busy-polling process picks another CPU than the "
                              f"server's CPU {srv_cpu}")
                    rc, text = bench_run([f"--cpuset={srv_cpu}", "--connections=1", "--duration=50ms"], "cpuset")
                    check(rc == 2 and f"pid {srv.pid}" in text and "--share-cores" in text,
                          f"memif/claims: --cpuset={srv_cpu} is refused naming the server's pid {srv.pid} (rc {rc})")
                killed = clean = 0
                for i in range(MEMIF_ROUNDS):
                    if i % 2 == 1:
                        rc, text = bench_run(["--connections=20", "--duration=10s", "--warmup=0s"], f"k{i}",
                                             kill_after=0.3)
                        killed += rc == -signal.SIGKILL
                    else:
                        rc, text = bench_run(["--connections=20", "--duration=200ms", "--warmup=0s"], f"c{i}")
                        ok = rc == 0 and re.search(r"errors\s+0 ", text) and not re.search(r"throughput\s+0 msgs", text)
                        clean += bool(ok)
                        if not ok:
                            log(f"memif/{name}: round {i}: rc {rc}\n{text[-1500:]}")
                    if not check(srv.poll() is None, f"memif/{name}: round {i}: the server survives its peer's "
                                 f"{'kill -9' if i % 2 else 'exit'}"):
                        log(open(srv_log).read()[-3000:])
                        break
                check(clean == MEMIF_ROUNDS // 2,
                      f"memif/{name}: {clean} of {MEMIF_ROUNDS // 2} fresh bench processes reconnected and got "
                      f"every reply right")
                check(killed == MEMIF_ROUNDS // 2, f"memif/{name}: {killed} of {MEMIF_ROUNDS // 2} benches killed -9 mid-load")
            finally:
                alive, rc = sigterm_and_wait(srv)
                srv_out.close()
            check(alive and rc == 0, f"memif/{name}: SIGTERM stops the server cleanly (exit {rc})")
            faults = sum(int(v) for v in re.findall(r"memif_faults (\d+)", open(srv_log).read()))
            log(f"memif/{name}: bursts ended by the disconnect guard: {faults}")
        # kill -9 frees a claim: a busy-polling holder killed, its CPU is free again.
        hog, hog_out = memif_app(echo, ["--listen=0.0.0.0:7"], f"{work}/hog.sock", "server", MEMIF_SERVER_IP,
                                 f"{work}/hog.log", env)
        m = wait_for_text(f"{work}/hog.log", r"sluice: cores: claimed in \S+: CPU (\d+)", hog)
        if check(m is not None, "memif/claims: a holder claims its CPU"):
            cpu = m.group(1)
            hog.kill()
            hog.wait()
            r = subprocess.run([echo, "--transport=dpdk", "--dpdk-args=--no-huge --no-pci --vdev=net_null0",
                                f"--ip={MEMIF_SERVER_IP}/24", f"--cpuset={cpu}", "--print-plan"],
                               capture_output=True, text=True, env=env, timeout=30)
            check(r.returncode == 0 and f"free to claim in {work}/claims: CPU {cpu} " in r.stdout,
                  f"memif/claims: after kill -9 of its holder, CPU {cpu} is free to claim")
        hog.kill()
        hog.wait()
        hog_out.close()
    if not failures:
        shutil.rmtree(work, ignore_errors=True)


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
        # Memory: hugepages where reserved, else ordinary pages as the fallback (issue 21).
        r = run(*base, "--dpdk-args=--no-pci --vdev=net_tap0,iface=sl0", "--print-plan", check_rc=False)
        m = re.search(r"EAL memory: (.*)", r.stdout)
        want = "no hugepages are reserved: ordinary pages, the fallback" if hugepages == 0 else "hugepages: "
        check(r.returncode == 0 and m is not None and m.group(1).startswith(want),
              f"preflight: --print-plan says which memory the EAL gets ({m.group(1) if m else r.stdout[-200:]})")
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
               "not this interface's address", "an IPv6 address the stack does not have (issue 17: IPv6 is served)")
        expect(base + ["--accept-ra", f"--ip6={APP_IP6}/64", "--gateway6=fe80::1",
                       "--dpdk-args=--no-huge -m 256 --no-pci --no-telemetry --vdev=net_tap0,iface=sl0"],
               "--accept-ra and --gateway6", "two sources of the IPv6 default router")
        expect([echo, "--udp", "--listen=0.0.0.0:7", "--accept-ra"], "--accept-ra needs --transport=dpdk",
               "--accept-ra on a kernel transport")


MEMIF_RECONNECT_ROUNDS = 6


def memif_reconnect_exercise(echo, httpd, bench):
    """A long-lived role=client sluice-echo, then sluice-httpd, whose memif
    servers come and go: each round a fresh sluice-bench (role=server, the
    TCP client) drives it over the same socket and then exits cleanly or is
    killed -9 mid-load; the client must reconnect to every new server and
    answer correctly, say each drop and return once, and count them."""
    work = f"/tmp/sluice_memif_rc_{os.getpid()}"
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, SLUICE_CLAIM_DIR=f"{work}/claims")
    rounds = MEMIF_RECONNECT_ROUNDS
    with netns(f"slmrc{os.getpid()}"):
        for name, prog, app_args, mode, bench_args in (
                ("echo", echo, ["--listen=0.0.0.0:7"], "echo", ["--size=64"]),
                ("httpd", httpd, ["--listen=0.0.0.0:80"], "http", ["--expect-body=Hello, World!"])):
            sock = f"{work}/{name}.sock"
            cli_log = f"{work}/{name}_client.log"
            port = app_args[0].rsplit(":", 1)[1]
            base = [mode, f"--target={MEMIF_CLIENT_IP}:{port}", "--connections=20", *bench_args]
            cli = None
            clean = killed = 0
            absent_cpu = None

            def count(pattern):
                with open(cli_log) as f:
                    return len(re.findall(pattern, f.read()))

            def wait_count(pattern, n, deadline_s=20):
                end = time.monotonic() + deadline_s
                while time.monotonic() < end:
                    if count(pattern) >= n:
                        return True
                    if cli.poll() is not None:
                        return False
                    time.sleep(0.05)  # polling a log file: there is no event to wait on
                return False

            try:
                for i in range(rounds):
                    kill = i % 2 == 1
                    no_server_said = count(r"no server listens on") if cli is not None else 0
                    path = f"{work}/bench_{name}_{i}.log"
                    extra = ["--duration=10s", "--warmup=0s"] if kill else ["--messages=3000"]
                    srv, out = memif_app(bench, base + extra, sock, "server", MEMIF_SERVER_IP, path, env)
                    if cli is None:
                        # The client refuses to start without a server: the first bench is up first.
                        if not check(wait_for_text(path, r"sluice: dpdk port", srv) is not None,
                                     f"memif_reconnect/{name}: the first server (sluice-bench) starts"):
                            log(open(path).read()[-2000:])
                            srv.kill()
                            srv.wait()
                            out.close()
                            break
                        cli, cli_out = memif_app(prog, app_args, sock, "client", MEMIF_CLIENT_IP, cli_log, env)
                        if not check(wait_for_text(cli_log, r"sluice-[a-z]+: .* on ", cli) is not None,
                                     f"memif_reconnect/{name}: sluice-{name} starts on net_memif (role=client)"):
                            log(open(cli_log).read()[-2000:])
                            srv.kill()
                            srv.wait()
                            out.close()
                            break
                    if kill:
                        # Mid-load: once the client is back on the link, a moment of traffic
                        # (no event tells an outsider that segments flow).
                        wait_count(r"reconnected to the server", i)
                        time.sleep(0.3)
                        srv.kill()
                    try:
                        rc = srv.wait(timeout=60)
                    except subprocess.TimeoutExpired:
                        srv.kill()
                        rc = srv.wait()
                    out.close()
                    text = open(path).read()
                    if kill:
                        killed += rc == -signal.SIGKILL
                    else:
                        ok = rc == 0 and re.search(r"errors\s+0 ", text) and not re.search(r"throughput\s+0 ", text)
                        clean += bool(ok)
                        if not ok:
                            log(f"memif_reconnect/{name}: round {i}: rc {rc}\n{text[-1500:]}")
                    # The client sees the link go down (its watchdog looks every 100 ms).
                    down = wait_count(r"the link to the server on \S+ is down", i + 1)
                    if not check(down and cli.poll() is None,
                                 f"memif_reconnect/{name}: round {i}: the client says its link is down and keeps "
                                 f"running after its server's {'kill -9' if kill else 'exit'}"):
                        log(open(cli_log).read()[-3000:])
                        break
                    if name == "echo" and i == rounds - 2:
                        # No server for a while: the client keeps looking, says so once, and
                        # sleeps meanwhile (its loops poll as idle loops do).
                        before = cpu_seconds(cli.pid)
                        time.sleep(2.5)
                        absent_cpu = (cpu_seconds(cli.pid) - before) / 2.5
                        said = count(r"no server listens on") - no_server_said
                        check(said == 1 and cli.poll() is None,
                              f"memif_reconnect/{name}: 2.5 s without a server: the client keeps trying and says "
                              f"so once ({said} times)")
                check(clean == (rounds + 1) // 2,
                      f"memif_reconnect/{name}: {clean} of {(rounds + 1) // 2} fresh servers that exited cleanly got "
                      f"every reply right from the reconnected client")
                check(killed == rounds // 2,
                      f"memif_reconnect/{name}: {killed} of {rounds // 2} servers killed -9 mid-load")
                if absent_cpu is not None:
                    log(f"memif_reconnect/{name}: client CPU while no server listened: {absent_cpu:.2f} s/s")
            finally:
                if cli is not None:
                    alive, rc = sigterm_and_wait(cli)
                    cli_out.close()
                    text = open(cli_log).read()
                    check(alive and rc == 0, f"memif_reconnect/{name}: SIGTERM stops the client cleanly (exit {rc})")
                    downs = re.search(r"dpdk\.port0\.memif_link_downs (\d+)", text)
                    recs = re.search(r"dpdk\.port0\.memif_reconnects (\d+)", text)
                    check(downs is not None and int(downs.group(1)) == rounds and recs is not None and
                          int(recs.group(1)) == rounds - 1 and count(r"reconnected to the server") == rounds - 1,
                          f"memif_reconnect/{name}: the client counted {rounds} link drops and {rounds - 1} reconnects "
                          f"(metrics: {downs and downs.group(1)} and {recs and recs.group(1)})")
                    if not (alive and rc == 0):
                        log(text[-3000:])
    if not failures:
        shutil.rmtree(work, ignore_errors=True)


def cpu_seconds(pid):
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- IPv6 (issue 17): ND, ICMPv6 and UDP over IPv6 against the kernel ----------------------

KERNEL_IP6 = "fd77::1"
APP_IP6 = "fd77::2"
SECOND_KERNEL_IP6 = "fd77::4"
FLOWS6 = 16
ROUNDS6 = 4


def link_local_of(mac):
    """fe80:: and the modified EUI-64 of mac (RFC 4291 appendix A)."""
    b = [int(x, 16) for x in mac.split(":")]
    b[0] ^= 2
    words = [(b[0] << 8) | b[1], (b[2] << 8) | 0xff, 0xfe00 | b[3], (b[4] << 8) | b[5]]
    return "fe80::" + ":".join(f"{w:x}" for w in words)


def kernel_ipv6_up(kif, addrs):
    """The kernel's addresses on kif, usable: duplicate address detection off
    for them (the namespace is ours alone), and waited for until no address
    is tentative (the event: `ip -6 addr` polled, with a deadline)."""
    run("sysctl", "-qw", f"net.ipv6.conf.{kif}.accept_dad=0")
    for a in addrs:
        run("ip", "-6", "addr", "add", f"{a}/64", "dev", kif, "nodad", check_rc=False)
    run("ip", "link", "set", kif, "up")
    end = time.monotonic() + 10
    while time.monotonic() < end:
        out = run("ip", "-6", "addr", "show", "dev", kif).stdout
        if "tentative" not in out and all(a in out for a in addrs):
            return True
        time.sleep(0.05)  # no event for the end of DAD short of a netlink monitor
    log(run("ip", "-6", "addr", "show", "dev", kif).stdout)
    return False


def kernel_ipv6_up_beside(kind, kif):
    """The kernel's IPv6 address (and IPv4 one) on kif, the other end of the
    stack's link, after the app started. net_tap gives its kernel end the
    port's own MAC, hence the stack's link-local address (which the stack
    defends, so the kernel's DAD fails): that end takes another MAC first."""
    if kind == "tap":
        run("ip", "link", "set", kif, "down")
        run("ip", "-6", "addr", "flush", "dev", kif)
        run("ip", "link", "set", kif, "address", "02:77:00:00:00:01")
        run("ip", "addr", "add", f"{KERNEL_IP}/24", "dev", kif, check_rc=False)
    return kernel_ipv6_up(kif, [KERNEL_IP6])


def udp6_echo_from(kif, src_ip, size, seed, **kw):
    """One datagram of size random bytes from the kernel's src_ip to the
    stack's address, echoed (udp_echo_round): (exact, lost, wrong)."""
    socks = kernel_sockets(1, kif, src_ip)
    try:
        return udp_echo_round(socks, [size], random.Random(seed), dst=APP_IP6, **kw)
    finally:
        for s_ in socks:
            s_.close()


def ipv6_exercise(kind, echo):
    ns_name = f"sl6{kind[:3]}{os.getpid()}"
    with netns(ns_name):
        loops = kind_loops(kind)
        if kind in VETH_KINDS:
            run("ip", "link", "add", "sv0", "type", "veth", "peer", "name", "sv1")
            run("ethtool", "-K", "sv1", "tx", "off", "tso", "off", "gso", "off")
            run("sysctl", "-qw", "net.ipv6.conf.sv0.disable_ipv6=1")  # the port is DPDK's, not the kernel's
            run("ip", "link", "set", "sv0", "up")
            kif = "sv1"
            kernel_ipv6_up(kif, [KERNEL_IP6])
            vdev = veth_vdev(kind)
        else:
            kif = "sl0"
            vdev = f"net_tap0,iface={kif}"
        plan = run(echo, "--transport=dpdk", f"--ip={APP_IP}/24", f"--ip6={APP_IP6}/64", "--udp", "--print-plan",
                   f"--dpdk-args=--no-huge -m 256 --no-pci --vdev=net_null0", check_rc=False).stdout
        check(f"{APP_IP6}/64" in plan, f"{kind}: --print-plan shows the --ip6 address")
        a = app(echo, vdev, extra=["--udp", f"--listen=[::]:{PORT}", f"--ip6={APP_IP6}/64"], cores=loops)
        try:
            if not check(a.wait_ready(), f"{kind}: sluice-echo starts on DPDK with --ip6"):
                log(a.text())
                return
            if kind == "tap":
                check(kernel_ipv6_up_beside(kind, kif), f"{kind}: the kernel's IPv6 address is up")
            app_ll = link_local_of(a.mac)
            log(f"app MAC {a.mac}, link-local {app_ll}")

            # --- ping -6: global, link-local, fragmented (tap: see exercise() on af_packet's defrag).
            r = run("ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "-I", kif, APP_IP6, check_rc=False)
            check(r.returncode == 0 and " 0% packet loss" in r.stdout, f"{kind}: ping -6 {APP_IP6} gets answers")
            r = run("ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", f"{app_ll}%{kif}", check_rc=False)
            check(r.returncode == 0 and " 0% packet loss" in r.stdout,
                  f"{kind}: ping -6 to the link-local {app_ll} gets answers")
            # To all nodes (RFC 4443 4.2): the stack answers from its link-local address.
            r = run("ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", f"ff02::1%{kif}", check_rc=False)
            check(f"from {app_ll}" in r.stdout, f"{kind}: ping -6 ff02::1 is answered by the stack's link-local "
                  f"address ({r.stdout.strip().splitlines()[1:3] if r.stdout else r.stderr.strip()})")
            fragments = kind == "tap"
            if fragments:
                r = run("ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "-s", "3000", "-I", kif, APP_IP6,
                        check_rc=False)
                check(r.returncode == 0 and " 0% packet loss" in r.stdout,
                      f"{kind}: a 3000-byte ping -6 is reassembled and answered in fragments")

            # --- ND both ways.
            neigh = run("ip", "-6", "neigh", "show", APP_IP6, "dev", kif).stdout
            check(a.mac is not None and a.mac in neigh, f"{kind}: the kernel resolved the stack by ND ({neigh.strip()})")
            # A kernel address the stack has never heard from; the kernel is
            # told our MAC statically, so only the stack asks.
            check(kernel_ipv6_up(kif, [KERNEL_IP6, SECOND_KERNEL_IP6]), f"{kind}: a second kernel address is up")
            run("ip", "-6", "neigh", "replace", APP_IP6, "lladdr", a.mac, "dev", kif, "nud", "permanent")
            ok, lost, wrong = udp6_echo_from(kif, SECOND_KERNEL_IP6, 100, 1)
            check(ok == 1 and wrong == 0, f"{kind}: the stack resolved {SECOND_KERNEL_IP6} by its own solicitation")

            # --- UDP echo over IPv6, byte-exact.
            rng = random.Random(20261207)
            socks = kernel_sockets(FLOWS6, kif, KERNEL_IP6)
            exact = lost = wrong = 0
            for rnd in range(ROUNDS6):
                sizes = [rng.randint(1, 1452) if (rnd + i) % 8 or not fragments else 3000 for i in range(FLOWS6)]
                e, l_, w = udp_echo_round(socks, sizes, rng, dst=APP_IP6)
                exact += e
                lost += l_
                wrong += w
            check(lost == 0 and wrong == 0 and exact == FLOWS6 * ROUNDS6,
                  f"{kind}: UDP echo over IPv6 of {FLOWS6} flows x {ROUNDS6} rounds is byte-exact "
                  f"({exact} exact, {lost} lost, {wrong} wrong)")
            for s in socks:
                s.close()
        finally:
            output = a.text()
            rc, metrics = a.stop()
            a.kill()
        check(rc == 0, f"{kind}: SIGTERM stops the app cleanly (exit {rc})")
        check("duplicate address" not in output, f"{kind}: no duplicate address reported")
        check(total(metrics, "inet.nd_dad_probes") >= 2, f"{kind}: duplicate address detection probed "
              f"({total(metrics, 'inet.nd_dad_probes')})")
        check(total(metrics, "inet.icmp6_echo_replies") >= 6, f"{kind}: ICMPv6 echo replies "
              f"({total(metrics, 'inet.icmp6_echo_replies')})")
        check(total(metrics, "inet.nd_advertisements_out") >= 1 and total(metrics, "inet.nd_solicitations_out") >= 3 and
              total(metrics, "inet.nd_learned") + total(metrics, "inet.nd_learned_from_peers") >= 1,
              f"{kind}: ND both ways (advertisements out {total(metrics, 'inet.nd_advertisements_out')}, "
              f"solicitations out {total(metrics, 'inet.nd_solicitations_out')}, "
              f"learned {total(metrics, 'inet.nd_learned')})")
        if fragments:
            check(total(metrics, "inet.reassembled") >= 2 and total(metrics, "inet.fragments_out") >= 4,
                  f"{kind}: IPv6 fragments reassembled ({total(metrics, 'inet.reassembled')}) and sent "
                  f"({total(metrics, 'inet.fragments_out')})")
        check(total(metrics, "inet.drop.udp6_zero_checksum") == 0 and total(metrics, "inet.drop.icmpv6_bad_checksum") == 0,
              f"{kind}: no checksum the kernel made was refused")
        if kind in VETH_KINDS:
            dad_conflict_exercise(kind, echo, vdev, kif, loops)
            accept_ra_exercise(kind, echo, vdev, kif, loops)
    if kind in VETH_KINDS:
        mld_exercise(echo)


FAR_KERNEL_IP6 = "2001:db8:77::1"


def mld_exercise(echo):
    """MLD against a Linux bridge that snoops it (RFC 4541), in a namespace
    of its own. The bridge is the querier (MLDv2; its address without
    duplicate address detection, so that it queries at once): the stack
    answers its startup queries, the bridge's table lists the stack's
    solicited-node group on the stack's port (Linux read the reports), and
    ping -6 works through it. (This kernel's bridge floods solicited-node
    groups whatever its table says: with mcast_flood off on the port even a
    kernel host there is not reached, so the table is what is checked.)"""
    with netns(f"sm6{os.getpid()}"):
        run("ip", "link", "add", "br0", "type", "bridge", "mcast_snooping", "1", "mcast_querier", "1",
            "mcast_mld_version", "2", "mcast_startup_query_interval", "100", "mcast_query_response_interval", "100")
        run("sysctl", "-qw", "net.ipv6.conf.br0.accept_dad=0")
        for a, b in (("sv0", "sv1"), ("kv0", "kv1")):
            run("ip", "link", "add", a, "type", "veth", "peer", "name", b)
            run("ethtool", "-K", a, "tx", "off", "tso", "off", "gso", "off", check_rc=False)
            run("ethtool", "-K", b, "tx", "off", "tso", "off", "gso", "off", check_rc=False)
            run("ip", "link", "set", b, "master", "br0")
            run("ip", "link", "set", b, "up")
        run("sysctl", "-qw", "net.ipv6.conf.sv0.disable_ipv6=1")  # the port's end is DPDK's
        run("ip", "link", "set", "sv0", "up")
        if not check(kernel_ipv6_up("kv0", [KERNEL_IP6]), "mld: the kernel's IPv6 address is up"):
            return
        with serving("mld: sluice-echo starts behind the bridge", echo,
                     veth_vdev("af_packet").replace("qpairs=2", "qpairs=1"),
                     ["--udp", f"--listen=[::]:{PORT}", f"--ip6={APP_IP6}/64"], 1) as a:
            if a is None:
                return
            run("ip", "link", "set", "br0", "up")  # the bridge queries now
            group = "ff02::1:ff00:2"  # the solicited-node group of fd77::2
            end = time.monotonic() + 10
            mdb = ""
            while time.monotonic() < end:
                mdb = run("bridge", "mdb", "show", "dev", "br0").stdout
                if any("port sv1" in ln and group in ln for ln in mdb.splitlines()):
                    break
                time.sleep(0.05)  # the bridge's table has no event to wait on here
            check(any("port sv1" in ln and group in ln for ln in mdb.splitlines()),
                  f"mld: the snooping bridge lists the stack's solicited-node group on its port ({mdb.strip()!r})")
            r = run("ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "-I", "kv0", APP_IP6, check_rc=False)
            check(r.returncode == 0 and " 0% packet loss" in r.stdout,
                  "mld: ping -6 through the snooping bridge")
        rc, metrics = a.rc, a.metrics
        check(rc == 0 and total(metrics, "inet.mld_reports_out") >= 2 and total(metrics, "inet.mld_queries_in") >= 1,
              f"mld: the stack reported its groups ({total(metrics, 'inet.mld_reports_out')} reports) and answered "
              f"the bridge's queries ({total(metrics, 'inet.mld_queries_in')}); exit {rc}")


def accept_ra_exercise(kind, echo, vdev, kif, loops):
    """--accept-ra against Linux: the kernel holds an off-link address (on
    lo) and advertises itself as a router (scapy: Linux sends router
    advertisements only as a router daemon's host); before the
    advertisement an echo from the off-link address has no way back, after
    it the reply goes through the router."""
    from scapy.all import Ether, IPv6, ICMPv6ND_RA, ICMPv6NDOptSrcLLAddr, sendp
    run("ip", "-6", "addr", "add", f"{FAR_KERNEL_IP6}/128", "dev", "lo", check_rc=False)
    with serving(f"{kind}: sluice-echo starts with --accept-ra", echo, vdev,
                 ["--udp", f"--listen=[::]:{PORT}", f"--ip6={APP_IP6}/64", "--accept-ra"], loops) as a:
        if a is None:
            return
        ok, _, _ = udp6_echo_from(kif, FAR_KERNEL_IP6, 100, 3, timeout_s=0.5, tries=1)
        check(ok == 0, f"{kind}: before any router advertisement, an off-link peer gets no answer")
        kernel_mac = link_mac(kif)
        sendp(Ether(src=kernel_mac, dst="33:33:00:00:00:01") /
              IPv6(src=link_local_of(kernel_mac), dst="ff02::1", hlim=255) /
              ICMPv6ND_RA(routerlifetime=1800) / ICMPv6NDOptSrcLLAddr(lladdr=kernel_mac), iface=kif, verbose=False)
        ok, lost, wrong = udp6_echo_from(kif, FAR_KERNEL_IP6, 100, 4)
        check(ok == 1 and wrong == 0, f"{kind}: after the kernel's router advertisement, the off-link peer "
              f"{FAR_KERNEL_IP6} is answered through the router ({ok} exact, {lost} lost)")
    rc, metrics = a.rc, a.metrics
    check(rc == 0 and total(metrics, "inet.nd_router_adverts_used") >= 1 and total(metrics, "inet.drop.no_route") >= 1,
          f"{kind}: the advertisement was used ({total(metrics, 'inet.nd_router_adverts_used')}) after a counted "
          f"no-route drop ({total(metrics, 'inet.drop.no_route')}), exit {rc}")


def dad_conflict_exercise(kind, echo, vdev, kif, loops):
    """Duplicate address detection against Linux: the app is also given the
    kernel's address; the kernel defends it, the stack withdraws it and says
    so, and its own address goes on serving."""
    with serving(f"{kind}: sluice-echo starts with a second --ip6 that the kernel holds", echo, vdev,
                 ["--udp", f"--listen=[::]:{PORT}", f"--ip6={APP_IP6}/64", f"--ip6={KERNEL_IP6}/64"], loops) as a:
        if a is None:
            return
        kernel_mac = link_mac(kif)
        end = time.monotonic() + 10
        while "duplicate address" not in a.text() and time.monotonic() < end and a.proc.poll() is None:
            time.sleep(0.05)  # polling a log file: there is no event to wait on
        line = next((ln for ln in a.text().splitlines() if "duplicate address" in ln), "")
        check(f"{KERNEL_IP6} is in use by {kernel_mac}" in line and "withdrawn" in line,
              f"{kind}: the stack says the kernel's address is a duplicate and withdraws it ({line.strip()!r})")
        ok, lost, wrong = udp6_echo_from(kif, KERNEL_IP6, 200, 2)
        check(ok == 1 and wrong == 0, f"{kind}: its own address still serves, and answers the kernel's "
              f"(no longer its own) address")
    rc, metrics = a.rc, a.metrics
    check(rc == 0 and total(metrics, "inet.drop.nd_dad_conflict") >= 1,
          f"{kind}: the conflict is counted (nd_dad_conflict {total(metrics, 'inet.drop.nd_dad_conflict')}, exit {rc})")


def tcp6_exercise(kind, echo, httpd, gateway):
    """TCP over IPv6 against Linux over net_tap or net_af_packet (issue 17):
    sluice-echo on [::]:7 (dual-stack) to 200 concurrent kernel clients over
    IPv6 and 50 over IPv4, byte-exact (on af_packet with two loops, so
    IPv6 flows are steered between them); sluice-httpd on [fd77::2]:8080 to
    curl -6 and wrk over IPv6; sluice-gateway on DPDK proxying IPv4
    clients to an IPv6 kernel upstream and IPv6 clients to an IPv4 one;
    then the impaired 100 MB transfer over IPv6."""
    if os.environ.get("SLUICE_ONLY_NETEM"):
        netem_exercise(kind, echo, netem_bytes(), 60, ipv6=True)
        return
    ns_name = f"st6{kind[:3]}{os.getpid()}"
    rng = random.Random(17)
    veth = kind in VETH_KINDS
    loops = kind_loops(kind) if veth else 1

    def kernel_side_up():
        # The tap's kernel end is made afresh by every app start; a veth stays.
        return kernel_ipv6_up_beside(kind, kif) if not veth else True

    with netns(ns_name):
        kif, vdev = setup_link(kind, True)
        if veth:
            run("sysctl", "-qw", "net.ipv6.conf.sv0.disable_ipv6=1")  # the port's end is DPDK's
            if not check(kernel_ipv6_up(kif, [KERNEL_IP6]), f"{kind}: tcp6: the kernel's IPv6 address is up"):
                return
        a = app(echo, vdev, extra=[f"--listen=[::]:{ECHO_PORT}", f"--ip6={APP_IP6}/64"], cores=loops)
        try:
            if not check(a.wait_ready(), f"{kind}: tcp6: sluice-echo (TCP, [::]) starts on DPDK with --ip6"):
                log(a.text())
                return
            check(kernel_side_up(), f"{kind}: tcp6: the kernel's IPv6 address is up")
            t0 = time.monotonic()
            exact, wrong, unfinished, errors = tcp_echo_clients(200, kif, rng, 64 * 1024, dst_ip=APP_IP6)
            check(exact == 200 and wrong == 0, f"{kind}: tcp6: TCP echo over IPv6 to 200 concurrent kernel clients is "
                  f"byte-exact ({exact} exact, {wrong} wrong, {unfinished} unfinished, errors {errors[:3]}) "
                  f"in {time.monotonic() - t0:.2f}s")
            exact, wrong, unfinished, errors = tcp_echo_clients(50, kif, rng, 64 * 1024, dst_ip=APP_IP)
            check(exact == 50 and wrong == 0, f"{kind}: tcp6: the same [::] listener serves 50 IPv4 clients byte-exact "
                  f"({exact} exact, {wrong} wrong, {unfinished} unfinished, errors {errors[:3]})")
        finally:
            rc, metrics = a.stop()
            a.kill()
        check(rc == 0, f"{kind}: tcp6: SIGTERM stops sluice-echo cleanly (exit {rc})")
        check(total(metrics, "inet.drop.tcp_bad_checksum") == 0, f"{kind}: tcp6: no TCP checksum the kernel made was refused")
        if loops > 1:
            check(all(metrics.get(f"loop{i}.inet.tcp_passive_opens", 0) > 0 for i in range(loops)) and
                  total(metrics, "inet.tcp_steered_out") > 0,
                  f"{kind}: tcp6: every loop owns connections (loop0 {metrics.get('loop0.inet.tcp_passive_opens')}, loop1 "
                  f"{metrics.get('loop1.inet.tcp_passive_opens')}; segments steered {total(metrics, 'inet.tcp_steered_out')})")

        if not os.path.exists(httpd):
            return
        h = app(httpd, vdev, extra=[f"--listen=[{APP_IP6}]:8080", f"--ip6={APP_IP6}/64"], cores=loops)
        try:
            if not check(h.wait_ready(), f"{kind}: tcp6: sluice-httpd starts on DPDK on an IPv6 address"):
                log(h.text())
                return
            check(kernel_side_up(), f"{kind}: tcp6: the kernel's IPv6 address is up (httpd)")
            url = f"http://[{APP_IP6}]:8080/"
            r = run("curl", "-6", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", url,
                    check_rc=False)
            check(r.returncode == 0 and r.stdout.strip() == "200", f"{kind}: tcp6: curl -6 {url} answers 200 ({r.stdout!r})")
            r = run("wrk", "-t1", "-c20", "-d2s", "--timeout", "2s", url, check_rc=False, timeout=30)
            m = re.search(r"([0-9]+) requests in", r.stdout)
            errs = re.search(r"Socket errors: (.*)", r.stdout)
            check(r.returncode == 0 and m is not None and int(m.group(1)) > 100 and errs is None,
                  f"{kind}: tcp6: wrk over IPv6 completes requests without socket errors "
                  f"({m.group(1) if m else '?'} requests, {errs.group(1) if errs else 'no errors'})")
        finally:
            rc, _ = h.stop()
            h.kill()
        check(rc == 0, f"{kind}: tcp6: SIGTERM stops sluice-httpd cleanly (exit {rc})")

        if not os.path.exists(gateway):
            return
        # Kernel upstreams (sluice-httpd on epoll, in the namespace): one on
        # IPv6, one on IPv4.
        ups = [subprocess.Popen([httpd, f"--listen={where}", "--cores=1"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for where in ("[::]:8081", "0.0.0.0:8082")]
        try:
            for listen, upstream, url, family in (
                    ("0.0.0.0:8080", f"[{KERNEL_IP6}]:8081", f"http://{APP_IP}:8080/", "-4"),
                    (f"[{APP_IP6}]:8080", f"{KERNEL_IP}:8082", f"http://[{APP_IP6}]:8080/", "-6")):
                what = f"gateway {family[1]}->{'6' if family == '-4' else '4'}"
                g = app(gateway, vdev, extra=[f"--listen={listen}", f"--upstream={upstream}", f"--ip6={APP_IP6}/64",
                                              "--health-interval=200ms"], ready=" -> ", cores=loops)
                try:
                    if not check(g.wait_ready(), f"{kind}: tcp6: {what}: sluice-gateway starts on DPDK"):
                        log(g.text())
                        continue
                    check(kernel_side_up(), f"{kind}: tcp6: {what}: the kernel's IPv6 address is up")
                    end = time.monotonic() + 15
                    r = None
                    while time.monotonic() < end:
                        r = run("curl", family, "-s", "--max-time", "2", url, check_rc=False)
                        if r.stdout == "Hello, World!":
                            break
                        time.sleep(0.1)  # the upstream is checked healthy on the gateway's own clock
                    check(r is not None and r.stdout == "Hello, World!",
                          f"{kind}: tcp6: {what}: curl {family} through the gateway ({r.stdout[:60] if r else ''!r})")
                    good = sum(run("curl", family, "-s", "--max-time", "2", url, check_rc=False).stdout ==
                               "Hello, World!" for _ in range(20))
                    check(good == 20, f"{kind}: tcp6: {what}: 20 of 20 sequential requests answered ({good})")
                finally:
                    rc, metrics = g.stop()
                    g.kill()
                check(rc == 0 and total(metrics, "inet.tcp_active_opens") > 0,
                      f"{kind}: tcp6: {what}: the gateway stopped cleanly (exit {rc}) after opening upstream connections "
                      f"({total(metrics, 'inet.tcp_active_opens')})")
        finally:
            for p in ups:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
    netem_exercise(kind, echo, netem_bytes(), 60, ipv6=True)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "relay":
        # SLUICE_RELAY=LOSS,DELAY_MS,REORDER changes the impairment (diagnosis).
        loss, delay_ms, reorder = (float(x) for x in os.environ.get("SLUICE_RELAY", "0.02,5,0.25").split(","))
        relay_main(sys.argv[2], sys.argv[3], loss=loss, delay_ms=delay_ms, reorder=reorder, seed=77)
        return
    modes = ("tap", "af_packet", "af_xdp", "preflight", "tcp_tap", "tcp_af_packet", "tcp_af_xdp", "gateway",
             "gateway_af_xdp", "attack", "memif", "ipv6_tap", "ipv6_af_packet", "tcp6_tap", "tcp6_af_packet")
    if len(sys.argv) != 2 or sys.argv[1] not in modes:
        sys.exit("usage: dpdk_netns_test.py " + "|".join(modes))
    kind = sys.argv[1]
    echo = os.environ.get("SLUICE_ECHO", "")
    httpd = os.environ.get("SLUICE_HTTPD", "")
    gateway = os.environ.get("SLUICE_GATEWAY", "")
    can_run_dpdk(echo)
    for need, path in (("tcp_", httpd), ("gateway", httpd), ("gateway", gateway)):
        if kind.startswith(need) and not os.path.exists(path):
            skip(f"{path or 'the app'} is not built (SLUICE_HTTPD / SLUICE_GATEWAY)")
    if kind in ("tap", "tcp_tap", "gateway", "attack", "ipv6_tap", "tcp6_tap") and not os.path.exists("/dev/net/tun"):
        skip("no /dev/net/tun: net_tap cannot run here")
    if "af_xdp" in kind:
        import glob
        if not glob.glob("/usr/lib/*/dpdk/pmds-*/librte_net_af_xdp.so*"):
            skip("DPDK's AF_XDP PMD (librte-net-af-xdp23) is not installed; build/install-deps.sh installs it")
    started = time.monotonic()
    if kind == "preflight":
        preflight(echo)
    elif kind.startswith("tcp6_"):
        tcp6_exercise(kind[5:], echo, httpd, gateway)
    elif kind.startswith("tcp_"):
        tcp_exercise(kind[4:], echo, httpd)
    elif kind.startswith("gateway"):
        gateway_exercise(gateway, httpd, "af_xdp" if kind == "gateway_af_xdp" else "tap")
    elif kind == "attack":
        attack_exercise(echo)
    elif kind.startswith("ipv6_"):
        ipv6_exercise(kind[5:], echo)
    elif kind == "memif":
        bench = os.environ.get("SLUICE_BENCH", "")
        if not os.path.exists(bench) or not os.path.exists(httpd):
            skip("sluice-bench or sluice-httpd is not built (SLUICE_BENCH / SLUICE_HTTPD)")
        # SLUICE_MEMIF_PART=survive|reconnect runs one half (diagnosis).
        part = os.environ.get("SLUICE_MEMIF_PART", "")
        if part != "reconnect":
            memif_exercise(echo, httpd, bench)
        if part != "survive":
            memif_reconnect_exercise(echo, httpd, bench)
    else:
        exercise(kind, echo)
    log(f"{kind}: {len(failures)} failure(s) in {time.monotonic() - started:.1f}s")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
