#!/usr/bin/env python3
"""sluice-gateway with TLS on loopback (issue 19), driven by clients and
servers no one here wrote.

Termination: curl over https (the default ECDSA certificate, the RSA one
chosen by SNI, a route chosen by SNI), openssl s_client with TLS 1.2 and
1.3 (and resumption with -sess_out/-sess_in), Python's ssl (with close_notify both ways), on an http listener and on
a tcp listener (TLS-terminated L4 relay to a plaintext upstream). With two
loops (--cores=2, where there are two CPUs), a ticket resumes on either loop
(one ticket key per process); with --tls-ticket-rotate=1s a ticket two
rotations old gets a full handshake.
Origination: the gateway speaks TLS to an `openssl s_server -www` upstream,
verified with a CA file, and resumes the session of its last connection to
that upstream on the next; the wrong CA gives a clean 502 and a counted
verify failure.
A TLS client that does not read holds the upstream back (the gateway's
memory stays bounded), then gets every byte.
Bad input on the TLS port: a plaintext HTTP client, a truncated handshake,
garbage records (in the handshake and after it), a client that stops
mid-handshake (closed by the handshake timeout), a burst of 200 concurrent
handshakes and a flood of 200 handshakes that stop half-way. Each gets a clean close
(no reset) and its reason counted in the admin metrics, and a client on
another connection is served throughout.
--check-config: a missing file, a key that does not match, an expired
certificate and a missing CA file, each one line naming the file.

Certificates are made here with the openssl command (no key is committed).
Skips (77) without curl or openssl. Loopback only; every wait is bounded."""

import concurrent.futures
import hashlib
import os
import re
import select
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import tls_checks
from tls_checks import check, free_port, make_cert, s_client

# The gateway's handshake timeout here: short, so that stalled handshakes end
# soon, yet long enough for a burst of 200 handshakes on a loaded machine
# (sanitizer build, other builds running).
HANDSHAKE_S = 4


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


def make_expired_cert(d):
    """A self-signed certificate valid for one day in 2020 (openssl ca takes explicit dates)."""
    ca = f"{d}/ca"
    os.mkdir(ca)
    open(f"{ca}/index.txt", "w").close()
    with open(f"{ca}/serial", "w") as f:
        f.write("01\n")
    with open(f"{ca}/ca.cnf", "w") as f:
        f.write(f"[ca]\ndefault_ca = d\n[d]\ndatabase = {ca}/index.txt\nnew_certs_dir = {ca}\n"
                f"serial = {ca}/serial\ndefault_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n")
    run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", f"{d}/expired.key", "-out", f"{ca}/expired.csr", "-subj", "/CN=expired.test"])
    run(["openssl", "ca", "-batch", "-config", f"{ca}/ca.cnf", "-selfsign", "-keyfile", f"{d}/expired.key",
         "-in", f"{ca}/expired.csr", "-out", f"{d}/expired.crt", "-startdate", "20200101000000Z",
         "-enddate", "20200102000000Z"])


def wait_port(port, proc, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def metrics(admin_port):
    body = urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=5).read().decode()
    out = {}
    for line in body.splitlines():
        if line.startswith(("sluice_gateway_tls_", "sluice_gateway_connections_total")):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def failure_count(m, side, reason):
    return m.get(f'sluice_gateway_tls_failures_total{{side="{side}",reason="{reason}"}}', 0)


def wait_metric(admin_port, pred, timeout=5.0):
    """Polls the admin endpoint until pred(metrics) holds (the counters are
    written by the loop as it closes the connection)."""
    end = time.monotonic() + timeout
    m = metrics(admin_port)
    while not pred(m) and time.monotonic() < end:
        time.sleep(0.02)
        m = metrics(admin_port)
    return pred(m), m


def closed_cleanly(sock, timeout=10.0):
    """Reads until the peer closes: True on FIN (whatever came before, e.g. an
    alert), False on a reset or when nothing ends within timeout."""
    sock.settimeout(timeout)
    got = b""
    try:
        while True:
            b = sock.recv(65536)
            if not b:
                return True, got
            got += b
    except ConnectionResetError:
        return False, got
    except socket.timeout:
        return False, got


def client_hello(server_name):
    """The bytes of a real TLS ClientHello, from Python's ssl over memory BIOs."""
    ctx = ssl.create_default_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=server_name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def handshake_over(sock, ca, name):
    """A TLS handshake by Python's ssl over memory BIOs on a plain socket, so
    that raw bytes can follow it on the same connection."""
    ctx = ssl.create_default_context(cafile=ca)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=name)
    while True:
        try:
            obj.do_handshake()
            sock.sendall(out.read())
            return obj
        except ssl.SSLWantReadError:
            sock.sendall(out.read())
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("closed during the handshake")
            inc.write(data)


def finished_request_close_notify(port, ca, name, request, timeout=5.0, fin=False, server_name=None):
    """A TLS client (memory BIOs) whose Finished, request and close_notify go
    out in one segment, the TCP connection kept open for the answer. Returns
    (plaintext received, whether the server's close_notify came)."""
    ctx = ssl.create_default_context(cafile=ca)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    if server_name is not None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    obj = ctx.wrap_bio(inc, out, server_hostname=server_name or name)
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    got, notified = b"", False
    try:
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                if out.pending:
                    sock.sendall(out.read())
                data = sock.recv(65536)
                if not data:
                    return got, False
                inc.write(data)
        obj.write(request)
        try:
            obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        if fin:  # FIN in the same segment (corked until the shutdown)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        sock.sendall(out.read())  # Finished, request, close_notify together
        if fin:
            sock.shutdown(socket.SHUT_WR)
        while not notified:
            try:
                data = sock.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not data:
                break
            inc.write(data)
            while True:
                try:
                    piece = obj.read(65536)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError:
                    notified = True
                    break
                if not piece:
                    notified = True
                    break
                got += piece
    finally:
        sock.close()
    return got, notified


def curl(args):
    r = subprocess.run(["curl", "-sS", "--max-time", "20", *args], capture_output=True, timeout=30)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def https_get(port, ca, name, path="/"):
    """GET over TLS; ca None: the certificate is not checked (a cheaper client)."""
    if ca is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=name) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
            return data


def resumption_across_loops(gateway, d, web_port):
    """A gateway with two loops shares one session-ticket key: a ticket one
    loop issued resumes on the other. -sess_in connections are made until
    both loops have taken several (the kernel spreads them by port)."""
    if (os.cpu_count() or 1) < 2:
        print("note: one CPU, the two-loop resumption check is skipped")
        return
    port, admin = free_port(), free_port()
    gw = subprocess.Popen([gateway, "--cores=2", f"--listen=127.0.0.1:{port}", f"--upstream=127.0.0.1:{web_port}",
                           "--mode=http", f"--admin=127.0.0.1:{admin}", f"--tls-cert={d}/ec.crt",
                           f"--tls-key={d}/ec.key", "--tls-ticket-rotate=1h"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        if not (wait_port(port, gw) and wait_port(admin, gw)):
            check(False, "the two-loop gateway is up")
            return
        for v in ("1_2", "1_3"):
            sess = f"{d}/two-loops{v}"
            first = s_client(port, [f"-tls{v}", "-sess_out", sess])
            check("HTTP/1.1 200" in first, f"two loops, TLS {v}: the first connection is served", first[-600:])
            reused, tries, per_loop = 0, 0, [0, 0]
            while tries < 40 and min(per_loop) < 3:
                before = metrics(admin)
                out = s_client(port, [f"-tls{v}", "-sess_in", sess])
                tries += 1
                reused += "Reused, TLSv" in out and "HTTP/1.1 200" in out
                after = metrics(admin)
                for i in (0, 1):
                    key = f'sluice_gateway_connections_total{{loop="{i}"}}'
                    per_loop[i] += after.get(key, 0) > before.get(key, 0)
            check(min(per_loop) >= 3 and reused == tries,
                  f"two loops, TLS {v}: every -sess_in connection resumed ({reused}/{tries}; "
                  f"loop 0 took {per_loop[0]}, loop 1 took {per_loop[1]})")
    finally:
        gw.terminate()
        try:
            gw.wait(timeout=30)
        except subprocess.TimeoutExpired:
            gw.kill()
            gw.wait()
    check(gw.returncode == 0, f"the two-loop gateway stops cleanly (rc {gw.returncode})")


def ticket_key_rotation(gateway, d, web_port):
    """--tls-ticket-rotate=1s: a ticket is opened for one to two periods
    only; one presented after three seconds (two rotations, whatever the
    timer's phase) finds its key gone and gets a full handshake, and is
    still served."""
    port = free_port()
    gw = subprocess.Popen([gateway, "--cores=1", f"--listen=127.0.0.1:{port}", f"--upstream=127.0.0.1:{web_port}",
                           "--mode=http", f"--tls-cert={d}/ec.crt", f"--tls-key={d}/ec.key",
                           "--tls-ticket-rotate=1s"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        if not wait_port(port, gw):
            check(False, "the rotating gateway is up")
            return
        sess = f"{d}/rotated"
        first = s_client(port, ["-tls1_3", "-sess_out", sess])
        time.sleep(3.2)  # the event waited for is the passing of two rotation periods
        again = s_client(port, ["-tls1_3", "-sess_in", sess])
        check("HTTP/1.1 200" in first and "HTTP/1.1 200" in again and "New, TLSv" in again
              and "Reused" not in again,
              "--tls-ticket-rotate=1s: a ticket two rotations old is refused (full handshake, still served)",
              again[-600:])
    finally:
        gw.terminate()
        try:
            gw.wait(timeout=30)
        except subprocess.TimeoutExpired:
            gw.kill()
            gw.wait()


def upstream_tickets_renewed(gateway, httpd, d):
    """The gateway originating to sluice-httpd with --tls-ticket-rotate=2s
    (a ticket opens for 2 to 4 s) and no idle upstream connections kept:
    one request every 0.3 s for over 5 s. Every upstream handshake after
    the first resumes only if each resumed connection saves the fresh
    ticket the upstream sent after it (the first ticket is refused after
    4 s at most)."""
    up, port, admin = free_port(), free_port(), free_port()
    web = subprocess.Popen([httpd, "--cores=1", f"--listen=127.0.0.1:{up}", f"--tls-cert={d}/up.crt",
                            f"--tls-key={d}/up.key", "--tls-ticket-rotate=2s"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    gw = subprocess.Popen([gateway, "--cores=1", f"--listen=127.0.0.1:{port}", f"--upstream=127.0.0.1:{up}",
                           "--mode=http", f"--admin=127.0.0.1:{admin}", "--upstream-tls", f"--upstream-ca={d}/up.crt",
                           "--upstream-sni=up.test", "--upstream-keepalive=0", "--health-check=none"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        if not (wait_port(up, web) and wait_port(port, gw) and wait_port(admin, gw)):
            check(False, "the gateway and its TLS upstream (sluice-httpd) are up")
            return
        key = ('sluice_gateway_tls_handshakes_total{side="upstream"}', 'sluice_gateway_tls_resumed_total{side="upstream"}')
        served, start = 0, time.monotonic()
        while time.monotonic() - start < 5.5:
            rc, out, err = curl(["-i", f"http://127.0.0.1:{port}/"])
            served += rc == 0 and out.startswith("HTTP/1.1 200")
            time.sleep(0.3)  # spaced requests: the tickets must outlive two rotations
        ok, m = wait_metric(admin, lambda m: m.get(key[0], 0) >= served)
        hs, resumed = m.get(key[0], 0), m.get(key[1], 0)
        check(ok and served >= 5 and resumed == hs - 1,
              f"origination to sluice-httpd rotating its ticket key every 2s: {resumed:.0f} of {hs:.0f} upstream "
              f"handshakes resumed over 5.5 s ({served} requests; each saves the upstream's fresh ticket)")
    finally:
        for p in (gw, web):
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def check_config_tests(gateway, d):
    def one(args, want_file, want_what, label):
        r = subprocess.run([gateway, "--listen=127.0.0.1:0", "--upstream=127.0.0.1:1", *args, "--check-config"],
                           capture_output=True, text=True, timeout=10)
        err = r.stderr.strip()
        check(r.returncode == 2 and len(err.splitlines()) == 1 and want_file in err and want_what in err,
              f"--check-config: {label}", f"rc={r.returncode} {err}")

    one([f"--tls-cert={d}/missing.crt", f"--tls-key={d}/ec.key"], "missing.crt", "No such file", "a missing certificate")
    one([f"--tls-cert={d}/ec.crt", f"--tls-key={d}/rsa.key"], "rsa.key", "does not match", "a key that does not match")
    one([f"--tls-cert={d}/expired.crt", f"--tls-key={d}/expired.key"], "expired.crt", "expired", "an expired certificate")
    one([f"--tls-cert={d}/ec.crt", f"--tls-key={d}/ec.crt"], "ec.crt", "no PEM private key", "a key file holding no key")
    one(["--upstream-tls", f"--upstream-ca={d}/missing-ca.crt"], "missing-ca.crt", "No such file", "a missing CA file")
    one(["--upstream-tls", f"--upstream-ca={d}/ec.key"], "ec.key", "no PEM certificate", "a CA file holding no certificate")
    if os.geteuid() != 0:  # root reads any file
        os.chmod(f"{d}/rsa.key", 0)
        one([f"--tls-cert={d}/rsa.crt", f"--tls-key={d}/rsa.key"], "rsa.key", "Permission denied", "an unreadable key")
        os.chmod(f"{d}/rsa.key", 0o600)
    r = subprocess.run([gateway, "--listen=127.0.0.1:0", "--upstream=127.0.0.1:1", "--tls-handshake-timeout=0"],
                       capture_output=True, text=True, timeout=10)
    check(r.returncode == 2 and "--tls-handshake-timeout" in r.stderr and "out of range" in r.stderr,
          "--tls-handshake-timeout is range-checked", r.stderr)
    r = subprocess.run([gateway, "--listen=127.0.0.1:0", "--upstream=127.0.0.1:1", f"--tls-cert={d}/ec.crt",
                        f"--tls-key={d}/ec.key", "--check-config"], capture_output=True, text=True, timeout=10)
    check(r.returncode == 0 and "tls " in r.stdout, "--check-config: good files pass", r.stdout + r.stderr)


def cipher_choices(gateway, httpd, d):
    """--tls-ciphersuites on the listener decides what clients get;
    --upstream-tls-ciphersuites what the gateway offers its upstream (a
    sluice-httpd that accepts one suite): the same suite gives 200, another
    a failed upstream handshake and 502."""
    up, admin = free_port(), free_port()
    web = subprocess.Popen([httpd, "--cores=1", f"--listen=127.0.0.1:{up}", f"--tls-cert={d}/up.crt",
                            f"--tls-key={d}/up.key", "--tls-ciphersuites=TLS_AES_256_GCM_SHA384"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    procs = [web]
    try:
        ports = []
        for suite in ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"):
            port = free_port()
            ports.append(port)
            procs.append(subprocess.Popen(
                [gateway, "--cores=1", f"--listen=127.0.0.1:{port}", f"--upstream=127.0.0.1:{up}", "--mode=http",
                 f"--tls-cert={d}/ec.crt", f"--tls-key={d}/ec.key", "--tls-ciphersuites=TLS_CHACHA20_POLY1305_SHA256",
                 "--upstream-tls", f"--upstream-ca={d}/up.crt", "--upstream-sni=up.test",
                 f"--upstream-tls-ciphersuites={suite}", "--health-check=none"]
                + ([f"--admin=127.0.0.1:{admin}"] if suite != "TLS_AES_256_GCM_SHA384" else []),
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        if not (wait_port(up, web) and all(wait_port(p, g) for p, g in zip(ports, procs[1:]))):
            check(False, "the gateways and their TLS upstream (sluice-httpd, one suite) are up")
            return
        out = s_client(ports[0], ["-tls1_3"])
        check("Cipher is TLS_CHACHA20_POLY1305_SHA256" in out,
              "gateway --tls-ciphersuites: clients get the listener's suite", out)
        rc, got, err = curl(["-sk", "-o", "/dev/null", "-w", "%{http_code}", f"https://127.0.0.1:{ports[0]}/"])
        check(got == "200", f"gateway --upstream-tls-ciphersuites matching the upstream's suite: 200 ({got} {err})")
        rc, got, err = curl(["-sk", "-o", "/dev/null", "-w", "%{http_code}", f"https://127.0.0.1:{ports[1]}/"])
        check(got == "502", f"gateway --upstream-tls-ciphersuites the upstream refuses: 502 ({got} {err})")
        ok, m = wait_metric(admin, lambda m: sum(v for k, v in m.items() if k.startswith(
            "sluice_gateway_tls_failures_total") and 'side="upstream"' in k) >= 1)
        check(ok, "the refused upstream handshake is counted as an upstream TLS failure")
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def main():
    gateway = os.environ.get("SLUICE_GATEWAY", "")
    httpd = os.environ.get("SLUICE_HTTPD", "")
    for tool in ("curl", "openssl"):
        if shutil.which(tool) is None:
            print(f"skipped: {tool} is not installed")
            sys.exit(77)
    d = tempfile.mkdtemp(prefix="sluice-gwtls-")
    procs = []
    try:
        make_cert(d, "ec", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"], "DNS:ec.test,DNS:localhost,IP:127.0.0.1")
        make_cert(d, "rsa", ["rsa:2048"], "DNS:rsa.test")
        make_cert(d, "up", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"], "DNS:up.test")
        make_expired_cert(d)
        check_config_tests(gateway, d)

        web_port, up_port = free_port(), free_port()
        http_tls, tcp_tls, http_plain, admin = free_port(), free_port(), free_port(), free_port()
        sink_tls, tcp_wrong_ca, tcp_originate = free_port(), free_port(), free_port()
        sink = socket.socket()
        sink.bind(("127.0.0.1", 0))
        sink.listen(4)
        # An upstream that resets each connection once it got the hello.
        resetter = socket.socket()
        resetter.bind(("127.0.0.1", 0))
        resetter.listen(4)

        def reset_each():
            while True:
                try:
                    conn, _ = resetter.accept()
                except OSError:
                    return
                conn.settimeout(10)
                try:
                    conn.recv(65536)
                except OSError:
                    pass
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()

        threading.Thread(target=reset_each, daemon=True).start()
        web = subprocess.Popen([httpd, "--cores=1", f"--listen=127.0.0.1:{web_port}"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT)
        procs.append(web)
        up = subprocess.Popen(["openssl", "s_server", "-accept", str(up_port), "-cert", f"{d}/up.crt", "-key",
                               f"{d}/up.key", "-www", "-quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(up)
        cfg = f"""
admin = "127.0.0.1:{admin}"
[timeouts]
handshake = "{HANDSHAKE_S}s"

[[pool]]
name = "web"
upstreams = ["127.0.0.1:{web_port}"]

[[pool]]
name = "tlsup"
upstreams = ["127.0.0.1:{up_port}"]
tls = true
ca = "{d}/up.crt"
sni = "up.test"

[[pool]]
name = "wrongca"
upstreams = ["127.0.0.1:{up_port}"]
tls = true
ca = "{d}/rsa.crt"
health_check = {{ type = "none" }}

[[listener]]
address = "127.0.0.1:{http_tls}"
mode = "http"
pool = "web"
tls = [{{ cert = "{d}/ec.crt", key = "{d}/ec.key" }}, {{ cert = "{d}/rsa.crt", key = "{d}/rsa.key" }}]
  [[listener.route]]
  sni = "rsa.test"
  pool = "tlsup"

[[listener]]
address = "127.0.0.1:{tcp_tls}"
mode = "tcp"
pool = "web"
  [[listener.tls]]
  cert = "{d}/ec.crt"
  key = "{d}/ec.key"
  [[listener.route]]
  sni = "up.test"
  pool = "tlsup"

[[pool]]
name = "byname"
upstreams = ["localhost:{up_port}"]
tls = true
ca = "{d}/up.crt"
health_check = {{ type = "none" }}

[[pool]]
name = "resetter"
upstreams = ["127.0.0.1:{resetter.getsockname()[1]}"]
tls = true
verify = false
retries = 0
health_check = {{ type = "none" }}

[[pool]]
name = "sink"
upstreams = ["127.0.0.1:{sink.getsockname()[1]}"]
health_check = {{ type = "none" }}

[[listener]]
address = "127.0.0.1:{sink_tls}"
mode = "tcp"
pool = "sink"
tls = [{{ cert = "{d}/ec.crt", key = "{d}/ec.key" }}]

[[listener]]
address = "127.0.0.1:{tcp_wrong_ca}"
mode = "tcp"
pool = "wrongca"

[[listener]]
address = "127.0.0.1:{tcp_originate}"
mode = "tcp"
pool = "tlsup"

[[listener]]
address = "127.0.0.1:{http_plain}"
mode = "http"
pool = "tlsup"
  [[listener.route]]
  path_prefix = "/wrong-ca"
  pool = "wrongca"
  [[listener.route]]
  path_prefix = "/by-name"
  pool = "byname"
  [[listener.route]]
  path_prefix = "/reset"
  pool = "resetter"
"""
        with open(f"{d}/gw.toml", "w") as f:
            f.write(cfg)
        r = subprocess.run([gateway, f"--config={d}/gw.toml", "--check-config"], capture_output=True, text=True,
                           timeout=10)
        check(r.returncode == 0 and "route sni rsa.test" in r.stdout and "tls verify ca" in r.stdout,
              "--check-config: the TOML file with TLS passes and is described", r.stdout + r.stderr)
        gw = subprocess.Popen([gateway, "--cores=1", f"--config={d}/gw.toml"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        procs.append(gw)
        for p, proc in ((web_port, web), (up_port, up), (http_tls, gw), (tcp_tls, gw), (sink_tls, gw), (admin, gw)):
            if not wait_port(p, proc):
                check(False, f"port {p} is up")
                return
        m0 = metrics(admin)

        # A client on its own connection, served before, during and after the bad input.
        bystander_ctx = ssl.create_default_context(cafile=f"{d}/ec.crt")
        bystander = bystander_ctx.wrap_socket(socket.create_connection(("127.0.0.1", http_tls), timeout=10),
                                              server_hostname="localhost")

        def bystander_get():
            bystander.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            data = b""
            while b"Hello, World!" not in data:
                b = bystander.recv(65536)
                if not b:
                    break
                data += b
            return data

        check(b"200" in bystander_get(), "a keep-alive TLS client is served")

        # ---- termination, interop ------------------------------------------------
        rc, out, err = curl(["--cacert", f"{d}/ec.crt", f"https://localhost:{http_tls}/"])
        check(rc == 0 and "Hello, World!" in out, "curl https (ECDSA certificate, verified) through the http listener",
              out + err)
        rc, out, err = curl(["--cacert", f"{d}/rsa.crt", "--resolve", f"rsa.test:{http_tls}:127.0.0.1",
                             f"https://rsa.test:{http_tls}/"])
        check(rc == 0 and "s_server" in out, "curl: SNI rsa.test picks the RSA certificate and the route to "
                                             "the TLS upstream", out + err)
        # SNI and Host disagree (policy, as nginx without client certificates:
        # no 421): a route with sni matches the connection's SNI whatever the
        # Host; the others go by Host as on a plaintext listener.
        rc, out, err = curl(["--cacert", f"{d}/rsa.crt", "--resolve", f"rsa.test:{http_tls}:127.0.0.1",
                             "-H", "Host: localhost", f"https://rsa.test:{http_tls}/"])
        check(rc == 0 and "s_server" in out, "SNI rsa.test, Host localhost: the sni route is taken", out + err)
        rc, out, err = curl(["--cacert", f"{d}/ec.crt", "-H", "Host: rsa.test", f"https://localhost:{http_tls}/"])
        check(rc == 0 and "Hello, World!" in out, "SNI localhost, Host rsa.test: not the sni route (no 421)",
              out + err)
        body = os.urandom(200_000)
        with open(f"{d}/body.bin", "wb") as f:
            f.write(body)
        rc, out, err = curl(["--cacert", f"{d}/ec.crt", "-o", f"{d}/echo.bin", "--data-binary", f"@{d}/body.bin",
                             f"https://localhost:{http_tls}/echo"])
        with open(f"{d}/echo.bin", "rb") as f:
            check(rc == 0 and f.read() == body, "curl: a 200 KB POST comes back whole through TLS", err)
        # Pipelined requests past the input limits (256 KiB of plaintext and 256 KiB
        # of records): the records held
        # back are opened as the plaintext is consumed; every request is answered.
        n = 8000
        req = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + b"p" * 60 + b"\r\n\r\n"
        ctx = ssl.create_default_context(cafile=f"{d}/ec.crt")
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", http_tls), timeout=20),
                             server_hostname="localhost") as s:
            s.sendall(req * n)
            answered, tail = 0, b""
            while answered < n:
                b = s.recv(1 << 20)
                if not b:
                    break
                chunk = tail + b
                answered += chunk.count(b"HTTP/1.1 200")
                tail = chunk[-16:]
                answered -= tail.count(b"HTTP/1.1 200")
            answered += tail.count(b"HTTP/1.1 200")
        check(answered == n, f"{n} pipelined requests ({n * len(req) // 1024} KiB) over TLS: {answered} answered")
        for version, flag in (("TLSv1.2", "-tls1_2"), ("TLSv1.3", "-tls1_3")):
            out = s_client(http_tls, [flag, "-CAfile", f"{d}/ec.crt", "-verify_return_error",
                                      "-servername", "localhost"])
            check(re.search(r"Protocol\s*:\s*" + re.escape(version), out) is not None and "HTTP/1.1 200" in out
                  and "Verify return code: 0" in out, f"openssl s_client {flag}: verified, served", out)
        resumed_before = metrics(admin).get('sluice_gateway_tls_resumed_total{side="client"}', 0)
        for v in ("1_2", "1_3"):
            sess = f"{d}/sess{v}"
            first = s_client(http_tls, [f"-tls{v}", "-sess_out", sess])
            again = s_client(http_tls, [f"-tls{v}", "-sess_in", sess])
            check("HTTP/1.1 200" in again and "Reused, TLSv" in again,
                  f"openssl s_client: resumption with -sess_out/-sess_in (TLS {v.replace('_', '.')})",
                  first[-600:] + again)
        ok, _ = wait_metric(admin, lambda m: m.get('sluice_gateway_tls_resumed_total{side="client"}', 0)
                            >= resumed_before + 2)
        check(ok, "resumed handshakes are counted")
        resumption_across_loops(gateway, d, web_port)
        ticket_key_rotation(gateway, d, web_port)
        out = s_client(http_tls, ["-tls1_3", "-servername", "rsa.test"])
        check("CN = rsa.test" in out or "CN=rsa.test" in out, "openssl s_client -servername rsa.test gets the RSA "
                                                                "certificate", out)

        # Two pipelined requests and close_notify in one segment, the TCP
        # connection left open: both are answered, then the gateway ends the
        # connection at once (close_notify), as it would after a FIN, rather
        # than waiting for a third request until the idle timeout.
        got, notified = finished_request_close_notify(
            http_tls, f"{d}/ec.crt", "localhost", b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n" * 2)
        check(got.count(b"Hello, World!") == 2 and notified,
              "http listener: pipelined requests then close_notify: both answered, then close_notify",
              (got[:300], notified))

        # tcp mode: TLS terminated, plaintext to the upstream.
        rc, out, err = curl(["--cacert", f"{d}/ec.crt", f"https://localhost:{tcp_tls}/"])
        check(rc == 0 and "Hello, World!" in out, "curl https through the tcp listener (TLS-terminated relay)", out + err)
        rc, out, err = curl(["-k", "--resolve", f"up.test:{tcp_tls}:127.0.0.1", f"https://up.test:{tcp_tls}/"])
        check(rc == 0 and "s_server" in out, "tcp listener: SNI up.test routes to the TLS pool (terminated, then "
                                             "originated to s_server)", out + err)
        ctx = ssl.create_default_context(cafile=f"{d}/ec.crt")
        with socket.create_connection(("127.0.0.1", tcp_tls), timeout=10) as raw:
            s = ctx.wrap_socket(raw, server_hostname="localhost")
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            data = b""
            while not data.endswith(body):
                b = s.recv(65536)
                if not b:
                    break
                data += b
            check(data.startswith(b"HTTP/1.1 200") and data.endswith(body),
                  "Python ssl: 200 KB echoed through the tcp listener", data[:200])
            raw_after = s.unwrap()  # close_notify both ways
            check(raw_after is not None, "Python ssl: close_notify answered (unwrap)")

        # close_notify in the same segment as the client's Finished and its
        # request, the TCP connection left open: the upstream is connected
        # after the handshake, and must still get the end of the stream (FIN)
        # once the request went to it, so that it answers and closes, and the
        # client gets the response and then close_notify.
        got, notified = finished_request_close_notify(
            tcp_tls, f"{d}/ec.crt", "localhost", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        check(b"Hello, World!" in got and notified,
              "tcp listener: close_notify sent with the handshake's end reaches the upstream as FIN "
              "(response, then close_notify)", got[:200])

        # The same with FIN after it, through the sni route whose pool gets TLS
        # from the gateway: the client's end waits for the upstream's
        # handshake (a FIN in the middle of it would cut it off).
        got, notified = finished_request_close_notify(
            tcp_tls, f"{d}/ec.crt", "localhost", b"GET / HTTP/1.0\r\n\r\n", fin=True, server_name="up.test")
        check(b"s_server" in got, "tcp listener, TLS both sides: Finished, request, close_notify and FIN at once: "
                                  "answered", (got[:200], notified))

        # A client that does not read: the upstream is made to wait (backpressure
        # on the records), the gateway's memory stays bounded, and every byte
        # arrives in order once the client reads.
        with socket.create_connection(("127.0.0.1", sink_tls), timeout=10) as raw:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            c = ctx.wrap_socket(raw, server_hostname="localhost")
            sink.settimeout(10)
            upc, _ = sink.accept()  # once the handshake is done
            upc.setblocking(False)
            before = rss_kib(gw.pid)
            sent, digest = 0, hashlib.sha256()
            chunk = os.urandom(65536)
            while sent < (512 << 20):
                if not select.select([], [upc], [], 0.5)[1]:
                    break  # stalled
                try:
                    n = upc.send(chunk)
                except BlockingIOError:
                    continue
                digest.update(chunk[:n])
                sent += n
            after = rss_kib(gw.pid)
            check(1 << 20 < sent < (512 << 20), f"a TLS client that does not read stalls the upstream ({sent} bytes)")
            check(after - before < 8 * 1024, f"gateway memory stays bounded (RSS grew {after - before} KiB)")
            upc.setblocking(True)
            upc.shutdown(socket.SHUT_WR)
            got, rdigest = 0, hashlib.sha256()
            c.settimeout(20)
            while True:
                b = c.recv(1 << 20)
                if not b:
                    break
                rdigest.update(b)
                got += len(b)
            check(got == sent and rdigest.digest() == digest.digest(),
                  f"then every byte arrives, in order ({got} of {sent})")
            upc.close()

        # ---- origination ---------------------------------------------------------
        rc, out, err = curl(["-i", f"http://127.0.0.1:{http_plain}/"])
        check(rc == 0 and " 200 " in out.splitlines()[0] and "s_server" in out,
              "origination: the gateway speaks verified TLS (CA file, sni) to openssl s_server", out + err)
        # s_server -www ends each connection after its answer: every request
        # is a new upstream handshake, and the session saved from the last
        # one is offered (and resumed) on the next.
        up_key = ('sluice_gateway_tls_handshakes_total{side="upstream"}', 'sluice_gateway_tls_resumed_total{side="upstream"}')
        m0u = metrics(admin)
        served = 0
        for _ in range(3):
            rc, out, err = curl(["-i", f"http://127.0.0.1:{http_plain}/"])
            served += rc == 0 and out.startswith("HTTP/1.1 200")
        ok, m1u = wait_metric(admin, lambda m: m.get(up_key[1], 0) - m0u.get(up_key[1], 0) >= 3)
        check(served == 3 and ok and m1u.get(up_key[0], 0) - m0u.get(up_key[0], 0) >= 3,
              "origination: later upstream handshakes resume the saved session "
              f"({m1u.get(up_key[1], 0) - m0u.get(up_key[1], 0):.0f} of "
              f"{m1u.get(up_key[0], 0) - m0u.get(up_key[0], 0):.0f} resumed)")
        upstream_tickets_renewed(gateway, httpd, d)
        cipher_choices(gateway, httpd, d)
        m1 = metrics(admin)
        rc, out, err = curl(["-i", f"http://127.0.0.1:{http_plain}/wrong-ca"])
        check(rc == 0 and " 502 " in out.splitlines()[0], "origination with the wrong CA: 502", out + err)
        ok, m2 = wait_metric(admin, lambda m: failure_count(m, "upstream", "verify") > failure_count(m1, "upstream",
                                                                                                        "verify"))
        check(ok, "origination with the wrong CA: counted as an upstream verify failure")
        # An upstream written as a name is verified against that name: the
        # certificate is for up.test, not localhost.
        before = failure_count(metrics(admin), "upstream", "verify")
        rc, out, err = curl(["-i", f"http://127.0.0.1:{http_plain}/by-name"])
        check(rc == 0 and " 502 " in out.splitlines()[0], "origination to 'localhost:PORT' whose certificate is for "
                                                           "up.test: 502", out + err)
        ok, _ = wait_metric(admin, lambda m: failure_count(m, "upstream", "verify") > before)
        check(ok, "... counted as an upstream verify failure (the host name as written is checked)")
        before = failure_count(metrics(admin), "upstream", "verify")
        with socket.create_connection(("127.0.0.1", tcp_wrong_ca), timeout=10) as c:
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            c.settimeout(10)
            try:
                got = c.recv(65536)
                ended = got == b""
            except ConnectionResetError:
                got, ended = b"", True
            except socket.timeout:
                got, ended = b"", False
        check(ended and got == b"", "origination with the wrong CA in tcp mode: the client is closed, nothing relayed",
              got[:100])
        ok, m2 = wait_metric(admin, lambda m: failure_count(m, "upstream", "verify") > before)
        check(ok, "origination with the wrong CA in tcp mode: counted as an upstream verify failure")
        ok = m2.get('sluice_gateway_tls_handshakes_total{side="upstream"}', 0) >= 2 and \
            m2.get('sluice_gateway_tls_versions_total{side="upstream",version="TLSv1.3"}', 0) >= 2
        check(ok, "upstream handshakes and versions are counted", m2)

        # An upstream that resets the connection during the handshake: 502,
        # counted as a truncated handshake (not as "other").
        before = failure_count(metrics(admin), "upstream", "truncated")
        rc, out, err = curl(["-i", f"http://127.0.0.1:{http_plain}/reset"])
        check(rc == 0 and " 502 " in out.splitlines()[0], "origination: an upstream reset during the handshake: 502",
              out + err)
        ok, m2 = wait_metric(admin, lambda m: failure_count(m, "upstream", "truncated") > before)
        check(ok, "origination: an upstream reset during the handshake is counted as truncated",
              {k: v for k, v in m2.items() if "failures" in k and 'side="upstream"' in k})

        # A plaintext client that sends its request and FIN at once, while the
        # gateway's handshake with the TLS upstream is still under way: the
        # FIN must wait for the handshake (a FIN in the middle of it would end
        # it), then go after the request, sealed.
        with socket.create_connection(("127.0.0.1", tcp_originate), timeout=10) as c:
            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
            c.shutdown(socket.SHUT_WR)
            got = b""
            c.settimeout(10)
            try:
                while True:
                    b = c.recv(65536)
                    if not b:
                        break
                    got += b
            except (socket.timeout, ConnectionResetError):
                pass
        check(b"s_server" in got, "origination in tcp mode: request and FIN sent during the upstream handshake: "
                                  "answered", got[:200])

        # ---- bad input -------------------------------------------------------------
        def bad(label, reason, send, fin=False, port=http_tls):
            before = failure_count(metrics(admin), "client", reason)
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            start = time.monotonic()
            sock.sendall(send)
            if fin:
                sock.shutdown(socket.SHUT_WR)
            clean, got = closed_cleanly(sock)
            sock.close()
            check(clean and b"HTTP/" not in got, f"bad input: {label}: a clean close", got[:100])
            ok, _ = wait_metric(admin, lambda m: failure_count(m, "client", reason) > before)
            check(ok, f"bad input: {label}: counted as {reason}")
            return time.monotonic() - start

        bad("a plaintext HTTP client on the TLS port", "not_tls", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        bad("a plaintext client on the tcp TLS port", "not_tls", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", port=tcp_tls)
        hello = client_hello("localhost")
        bad("a truncated handshake (half a ClientHello, then FIN)", "truncated", hello[: len(hello) // 2], fin=True)
        garbage = b"\x16\x03\x01\x01\x00" + os.urandom(256)
        bad("a garbage handshake record", "handshake", garbage)
        # A garbage application-data record after a completed handshake.
        before = failure_count(metrics(admin), "client", "record")
        with socket.create_connection(("127.0.0.1", http_tls), timeout=10) as sock:
            handshake_over(sock, f"{d}/ec.crt", "localhost")
            sock.sendall(b"\x17\x03\x03\x00\x40" + os.urandom(64))
            clean, got = closed_cleanly(sock)
        check(clean and b"HTTP/" not in got, "bad input: a garbage record after the handshake: a clean close", got[:100])
        ok, _ = wait_metric(admin, lambda m: failure_count(m, "client", "record") > before)
        check(ok, "bad input: a garbage record after the handshake: counted as record")
        took = bad("a client that stops mid-handshake", "timeout", hello[: len(hello) // 2])
        check(took < HANDSHAKE_S + 8,
              f"the stalled handshake was closed by the {HANDSHAKE_S}s handshake timeout ({took:.1f}s)")
        check(b"200" in bystander_get(), "the bystander is still served after the bad input")

        # A burst of 200 concurrent handshakes.
        before = metrics(admin).get('sluice_gateway_tls_handshakes_total{side="client"}', 0)

        def one(_):
            try:
                return b"Hello, World!" in https_get(http_tls, None, "localhost")
            except OSError:
                return False

        with concurrent.futures.ThreadPoolExecutor(max_workers=200) as pool:
            results = list(pool.map(one, range(200)))
        check(all(results), f"a burst of 200 concurrent handshakes: {sum(results)}/200 served")
        ok, m = wait_metric(admin, lambda m: m.get('sluice_gateway_tls_handshakes_total{side="client"}', 0)
                            >= before + 200)
        check(ok, "the burst's handshakes are counted")
        check(b"200" in bystander_get(), "the bystander is still served after the burst")

        # A flood of 200 handshakes that stop half-way: the bystander is served
        # while they hang, then each is closed cleanly by the handshake timeout.
        before = failure_count(metrics(admin), "client", "timeout")
        flood = []
        for _ in range(200):
            c = socket.create_connection(("127.0.0.1", http_tls), timeout=10)
            c.sendall(hello[: len(hello) // 2])
            flood.append(c)
        check(b"200" in bystander_get(), "the bystander is served while 200 handshakes hang")
        clean = sum(1 for c in flood if closed_cleanly(c)[0])
        for c in flood:
            c.close()
        check(clean == 200, f"a flood of 200 stalled handshakes: {clean}/200 closed cleanly")
        ok, m = wait_metric(admin, lambda m: failure_count(m, "client", "timeout") >= before + 200)
        check(ok, "the flood's 200 handshake timeouts are counted",
              failure_count(m, "client", "timeout") - before)
        bystander.close()

        m = metrics(admin)
        check(m.get('sluice_gateway_tls_versions_total{side="client",version="TLSv1.2"}', 0) >= 1 and
              m.get('sluice_gateway_tls_versions_total{side="client",version="TLSv1.3"}', 0) >= 200,
              "client handshakes are counted by version")
        check(gw.poll() is None, "the gateway is still running")
        gw.terminate()
        out, _ = gw.communicate(timeout=30)
        check(gw.returncode == 0, f"the gateway stops cleanly (rc {gw.returncode})", out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(d, ignore_errors=True)
    print("gateway_tls: " + ("all checks passed" if tls_checks.failures == 0 else f"{tls_checks.failures} check(s) failed"))
    sys.exit(1 if tls_checks.failures else 0)


if __name__ == "__main__":
    main()
