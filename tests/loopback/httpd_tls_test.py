#!/usr/bin/env python3
"""sluice-httpd --tls-cert/--tls-key on loopback, driven by clients no one
here wrote: curl (--cacert), openssl s_client (TLS 1.2 and 1.3, SNI,
resumption with -sess_out/-sess_in) and Python's ssl. Bad input: a plaintext
HTTP client on the TLS port, garbage records (before and after the
handshake), a TLS 1.2 renegotiation request and a client that stops before
its hello each get a clean close (no reset) or a refusal, the server goes on
serving, and each is counted (the tls.* lines of --print-metrics at exit).
A flood of concurrent handshakes with clients that stop mid-handshake: the
stalled ones are closed by --header-timeout, the others all complete. wrk
over https keeps connections alive with no errors. Certificates (ECDSA
P-256 default, RSA for SNI) are made here with the openssl command.
sluice-bench --tls (http against sluice-httpd, keep-alive and new
handshakes with and without --tls-resume; echo against a Python TLS echo
server) completes with no errors and counts its handshakes. Pipelined
requests and close_notify in one segment get their answers and
close_notify back at once (not after a timeout).
Skips (77) without curl or openssl; the wrk check skips without wrk."""

import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

import tls_checks
from tls_checks import check, free_port, make_cert, s_client


def start(httpd, args):
    cores = [] if any(a.startswith("--cores=") for a in args) else ["--cores=1"]
    app = subprocess.Popen([httpd, *cores, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = app.stdout.readline()
    return app, line


def metrics_of(text):
    """The 'name value' lines of --print-metrics as a dict."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def handshake_flood(port, cafile, good, stalled, header_timeout):
    """`good` clients handshake and GET / at once while `stalled` clients send
    half a ClientHello and stop. Returns (good clients served, stalled ones
    closed by the server, seconds the last stalled one waited)."""
    ctx = ssl.create_default_context(cafile=cafile)
    served = []
    closed = []
    waits = []
    lock = threading.Lock()
    start = threading.Barrier(good + stalled)

    def good_client():
        try:
            start.wait(timeout=30)
            with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
                s = ctx.wrap_socket(raw, server_hostname="localhost")
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                got = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
                ok = got.startswith(b"HTTP/1.1 200 OK") and got.endswith(b"Hello, World!")
        except (OSError, ssl.SSLError, threading.BrokenBarrierError):
            ok = False
        with lock:
            served.append(ok)

    def stalled_client():
        # A real ClientHello, cut in half: the server waits for the rest.
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = outgoing.read()
        try:
            start.wait(timeout=30)
            with socket.create_connection(("127.0.0.1", port), timeout=header_timeout + 10) as raw:
                raw.sendall(hello[:len(hello) // 2])
                t0 = time.monotonic()
                ended = raw.recv(1) == b""
                took = time.monotonic() - t0
        except (OSError, threading.BrokenBarrierError):
            ended, took = False, 0.0
        with lock:
            closed.append(ended)
            waits.append(took)

    threads = [threading.Thread(target=good_client) for _ in range(good)]
    threads += [threading.Thread(target=stalled_client) for _ in range(stalled)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return sum(served), sum(closed), max(waits) if waits else 0.0


def bench(args):
    """sluice-bench ... --json: its result as a dict (empty if none)."""
    import json
    r = subprocess.run([os.environ["SLUICE_BENCH"], *args, "--json", "--cores=1"], capture_output=True, text=True,
                       timeout=60)
    try:
        return json.loads(r.stdout), r.stdout + r.stderr
    except ValueError:
        return {}, r.stdout + r.stderr


def tls_echo_server(d):
    """A TLS echo server (Python's ssl, a thread per connection) on a free
    port; returns the port. Threads are daemons: they end with the test."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{d}/ec.crt", f"{d}/ec.key")
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)

    def serve(conn):
        try:
            with ctx.wrap_socket(conn, server_side=True) as s:
                while True:
                    data = s.recv(65536)
                    if not data:
                        break
                    s.sendall(data)
        except (OSError, ssl.SSLError):
            pass

    def accept():
        while True:
            conn, _ = lsock.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return lsock.getsockname()[1]


def pipelined_close_notify(httpd, d, n=3):
    """Three pipelined GETs and close_notify, all in one segment, to a server
    whose header timeout is far away: the three answers come, then the
    server's close_notify (no wait for a timeout). Returns (answers, closed
    by close_notify, what came)."""
    port = free_port()
    app, line = start(httpd, [f"--listen=127.0.0.1:{port}", "--header-timeout=60s", "--idle-timeout=60s",
                              f"--tls-cert={d}/ec.crt", f"--tls-key={d}/ec.key"])
    got = b""
    notified = False
    try:
        ctx = ssl.create_default_context(cafile=f"{d}/ec.crt")
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            while True:
                try:
                    obj.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    raw.sendall(outgoing.read())
                    chunk = raw.recv(65536)
                    if not chunk:
                        return 0, False, b"EOF in the handshake"
                    incoming.write(chunk)
            raw.sendall(outgoing.read())  # the client's Finished, alone
            for _ in range(n):
                obj.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                obj.unwrap()
            except ssl.SSLWantReadError:
                pass
            raw.sendall(outgoing.read())  # the requests and close_notify together
            try:
                while not notified:
                    try:
                        got += obj.read(65536)
                        continue
                    except ssl.SSLWantReadError:
                        pass
                    except ssl.SSLZeroReturnError:
                        notified = True
                        break
                    chunk = raw.recv(65536)  # the socket's timeout (10 s) stands for "no answer"
                    if not chunk:
                        break
                    incoming.write(chunk)
            except (OSError, ssl.SSLError) as e:
                got += f" [{e!r}]".encode()
    finally:
        app.terminate()
        app.communicate(timeout=15)
    return got.count(b"HTTP/1.1 200 OK"), notified, got


def main():
    httpd = os.environ.get("SLUICE_HTTPD", "")
    for tool in ("curl", "openssl"):
        if shutil.which(tool) is None:
            print(f"skipped: {tool} is not installed")
            sys.exit(77)
    d = tempfile.mkdtemp(prefix="sluice-httpd-tls-")
    try:
        make_cert(d, "ec", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"], "DNS:ec.test,DNS:localhost,IP:127.0.0.1")
        make_cert(d, "rsa", ["rsa:2048"], "DNS:rsa.test")

        # Configuration errors: one clear line, no server.
        r = subprocess.run([httpd, "--listen=127.0.0.1:0", f"--tls-cert={d}/ec.crt", f"--tls-key={d}/rsa.key"],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode != 0 and "does not match" in r.stderr, "a key that does not match its certificate is refused",
              r.stderr)
        r = subprocess.run([httpd, "--listen=127.0.0.1:0", f"--tls-cert={d}/none.crt", f"--tls-key={d}/ec.key"],
                           capture_output=True, text=True, timeout=30)
        check(r.returncode != 0 and "none.crt: cannot read the certificate" in r.stderr, "a missing certificate is refused",
              r.stderr)

        port = free_port()
        r = subprocess.run([httpd, "--listen=127.0.0.1:0", f"--tls-cert={d}/ec.crt", f"--tls-key={d}/ec.key",
                            "--tls-ticket-rotate=0s"], capture_output=True, text=True, timeout=30)
        check(r.returncode != 0 and "--tls-ticket-rotate" in r.stderr, "--tls-ticket-rotate out of range is refused",
              r.stderr)

        # --tls-ciphers / --tls-ciphersuites: what clients may use, checked at start.
        r = subprocess.run([httpd, "--listen=127.0.0.1:0", f"--tls-cert={d}/ec.crt", f"--tls-key={d}/ec.key",
                            "--tls-ciphersuites=TLS_NO_SUCH_SUITE"], capture_output=True, text=True, timeout=30)
        check(r.returncode != 0 and "TLS_NO_SUCH_SUITE" in r.stderr and r.stderr.count("\n") == 1,
              "a cipher suite OpenSSL does not know is refused at start in one line", r.stderr)
        cport = free_port()
        capp, _ = start(httpd, [f"--listen=127.0.0.1:{cport}", "--cores=1", f"--tls-cert={d}/ec.crt",
                                f"--tls-key={d}/ec.key", "--tls-ciphersuites=TLS_CHACHA20_POLY1305_SHA256",
                                "--tls-ciphers=ECDHE-ECDSA-AES256-GCM-SHA384"])
        try:
            out = s_client(cport, ["-tls1_3"])
            check("Cipher is TLS_CHACHA20_POLY1305_SHA256" in out, "--tls-ciphersuites: TLS 1.3 uses the one suite given",
                  out)
            out = s_client(cport, ["-tls1_2"])
            check("Cipher is ECDHE-ECDSA-AES256-GCM-SHA384" in out, "--tls-ciphers: TLS 1.2 uses the one cipher given",
                  out)
            out = s_client(cport, ["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"])
            check("Cipher is (NONE)" in out or "handshake failure" in out,
                  "a client offering only a suite left out gets no session", out)
        finally:
            capp.terminate()
            capp.wait(timeout=15)

        answers, notified, got = pipelined_close_notify(httpd, d)
        check(answers == 3 and notified,
              "three pipelined requests and close_notify in one segment: three answers, then close_notify back",
              repr(got[-600:]))

        app, line = start(httpd, [f"--listen=127.0.0.1:{port}", "--header-timeout=1s", "--print-metrics",
                                  # Two loops where there are two CPUs: a ticket from one loop
                                  # resumes on the other (one key set per process).
                                  f"--cores={min(2, os.cpu_count() or 1)}",
                                  f"--tls-cert={d}/ec.crt", f"--tls-key={d}/ec.key",
                                  f"--tls-cert={d}/rsa.crt", f"--tls-key={d}/rsa.key"])
        try:
            check("HTTPS on" in line, "sluice-httpd serves HTTPS", line)
            url = f"https://localhost:{port}"
            r = subprocess.run(["curl", "-sS", "--cacert", f"{d}/ec.crt", "-w", " %{http_code} %{http_version}", url + "/"],
                               capture_output=True, text=True, timeout=30)
            check(r.stdout == "Hello, World! 200 1.1", "curl --cacert GET / (certificate verified)", r.stdout + r.stderr)
            body = os.urandom(200_000)
            with open(f"{d}/body", "wb") as f:
                f.write(body)
            r = subprocess.run(["curl", "-sS", "--cacert", f"{d}/ec.crt", "--data-binary", f"@{d}/body", url + "/echo"],
                               capture_output=True, timeout=30)
            check(r.stdout == body, "curl POST /echo 200 KB comes back whole", r.stderr.decode())
            r = subprocess.run(["curl", "-sS", "--cacert", f"{d}/ec.crt", url + "/", url + "/", url + "/"],
                               capture_output=True, text=True, timeout=30)
            check(r.stdout == "Hello, World!" * 3, "curl: three requests on one keep-alive connection", r.stderr)

            for v in ("1_2", "1_3"):
                out = s_client(port, [f"-tls{v}", "-CAfile", f"{d}/ec.crt", "-servername", "ec.test"])
                check("HTTP/1.1 200 OK" in out and f"Protocol  : TLSv{v.replace('_', '.')}" in out
                      and "Verify return code: 0 (ok)" in out, f"openssl s_client -tls{v}", out)
            out = s_client(port, ["-tls1_3", "-CAfile", f"{d}/rsa.crt", "-servername", "rsa.test"])
            check("HTTP/1.1 200 OK" in out and "CN = rsa.test" in out and "Verify return code: 0 (ok)" in out,
                  "openssl s_client -servername rsa.test gets the RSA certificate (SNI)", out)
            out = s_client(port, ["-tls1_3", "-servername", "other.test"])
            check("HTTP/1.1 200 OK" in out and "CN = ec.test" in out, "an unknown SNI name gets the default certificate", out)
            out = s_client(port, ["-tls1_2", "-alpn", "http/1.1"])
            check("ALPN protocol: http/1.1" in out, "ALPN http/1.1 negotiated", out)
            for v in ("1_2", "1_3"):
                sess = f"{d}/sess{v}"
                first = s_client(port, [f"-tls{v}", "-sess_out", sess])
                again = s_client(port, [f"-tls{v}", "-sess_in", sess])
                check("HTTP/1.1 200 OK" in again and "Reused, TLSv" in again,
                      f"session resumption with -sess_out/-sess_in (TLS {v.replace('_', '.')})", first[-600:] + again)

            ctx = ssl.create_default_context(cafile=f"{d}/ec.crt")
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                s = ctx.wrap_socket(raw, server_hostname="localhost")
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                got = b""
                while not got.endswith(b"Hello, World!"):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
                version = s.version()
                s.unwrap()  # close_notify out, and the server's back
            check(got.startswith(b"HTTP/1.1 200 OK") and version == "TLSv1.3",
                  "Python ssl: GET /, then close_notify both ways (unwrap)", repr(got))

            # A plaintext HTTP client on the TLS port: a clean close (FIN), no reset.
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                try:
                    data = b""
                    while True:
                        chunk = raw.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    clean = not data.startswith(b"HTTP")
                except ConnectionResetError:
                    clean = False
            check(clean, "a plaintext client on the TLS port gets a clean close")

            # A TLS record header with garbage inside, instead of a hello:
            # an alert or a close, never a reset or an answer.
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                raw.sendall(b"\x16\x03\x01\x00\x40" + os.urandom(64))
                try:
                    data = raw.recv(4096)
                    while data and raw.recv(4096):
                        pass
                    clean = True
                except ConnectionResetError:
                    clean = False
            check(clean, "a garbage handshake record gets an alert and a clean close")

            # A good handshake, then garbage where a record should be: the
            # server closes (record error), others go on.
            ctx = ssl.create_default_context(cafile=f"{d}/ec.crt")
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                done = False
                for _ in range(10):
                    try:
                        obj.do_handshake()
                        done = True
                    except ssl.SSLWantReadError:
                        pass
                    raw.sendall(outgoing.read())
                    if done:
                        break
                    incoming.write(raw.recv(65536))
                raw.sendall(b"\x17\x03\x03\x00\x30" + os.urandom(48))
                try:
                    while raw.recv(4096):
                        pass
                    clean = True
                except ConnectionResetError:
                    clean = False
            check(done and clean, "garbage records after the handshake: the connection is closed cleanly")

            # TLS 1.2 renegotiation asked by the client ('R' on s_client's
            # input, without -ign_eof): refused (and counted, below).
            sc = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            seen = b""
            try:
                while b"---\n" not in seen.split(b"Verify return code", 1)[-1] or b"Verify return code" not in seen:
                    chunk = sc.stdout.read1(4096)
                    if not chunk:
                        break
                    seen += chunk
                sc.stdin.write(b"R\n")
                sc.stdin.flush()
                while b"RENEGOTIATING" not in seen:
                    chunk = sc.stdout.read1(4096)
                    if not chunk:
                        break
                    seen += chunk
                sc.stdin.close()
                seen += sc.stdout.read()
            finally:
                sc.wait(timeout=30)
            check(b"RENEGOTIATING" in seen, "openssl s_client -tls1_2 asks to renegotiate", seen.decode(errors="replace"))

            # A client that never sends its hello: closed by the header timeout.
            t0 = time.monotonic()
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                try:
                    ended = raw.recv(1) == b""
                except (ConnectionResetError, socket.timeout):
                    ended = False
            took = time.monotonic() - t0
            check(ended and took < 5, f"a silent client is closed by the header timeout ({took:.1f}s)")

            served, closed, waited = handshake_flood(port, f"{d}/ec.crt", good=150, stalled=50, header_timeout=1)
            check(served == 150, f"handshake flood: 150 concurrent clients all served ({served})")
            check(closed == 50 and waited < 6,
                  f"handshake flood: 50 clients stalled mid-hello all closed by the header timeout ({closed}, "
                  f"longest {waited:.1f}s)")

            target = [f"--target=127.0.0.1:{port}", "--tls", f"--tls-ca={d}/ec.crt", "--tls-sni=ec.test"]
            res, out = bench(["http", *target, "--connections=4", "--messages=400"])
            check(res.get("messages") == 400 and res.get("errors", {}).get("closed_early") == 0
                  and res.get("handshake_failures") == 0 and res.get("tls") is True,
                  "sluice-bench http --tls: 400 requests on 4 verified connections", out)
            res, out = bench(["http", *target, "--connections=4", "--duration=1s", "--warmup=100ms",
                              "--conn-messages=1"])
            check(res.get("handshakes", 0) > 10 and res.get("resumed") == 0 and res.get("handshake_failures") == 0
                  and res.get("errors", {}).get("closed_early") == 0,
                  f"sluice-bench --conn-messages=1: new full handshakes ({res.get('handshakes_per_s')}/s)", out)
            res, out = bench(["http", *target, "--connections=4", "--duration=1s", "--warmup=100ms",
                              "--conn-messages=1", "--tls-resume"])
            # Every connection after the warm-up offers a ticket, four at a
            # time (the same saved session resumes on all of them).
            check(res.get("resumed", 0) > 10 and res.get("resumed") == res.get("handshakes")
                  and res.get("handshake_failures") == 0,
                  f"sluice-bench --tls-resume: resumed handshakes ({res.get('resumed')} of {res.get('handshakes')})",
                  out)
            res, out = bench(["http", f"--target=127.0.0.1:{port}", "--tls", f"--tls-ca={d}/rsa.crt",
                              "--tls-sni=ec.test", "--connections=1", "--messages=1"])
            check(res.get("handshake_failures", 0) >= 1 and res.get("messages") == 0,
                  "sluice-bench --tls-ca with the wrong CA: a counted handshake failure", out)
            echo_port = tls_echo_server(d)
            res, out = bench(["echo", f"--target=127.0.0.1:{echo_port}", "--tls", f"--tls-ca={d}/ec.crt",
                              "--tls-sni=ec.test", "--connections=2", "--size=3000", "--messages=200"])
            check(res.get("messages") == 200 and res.get("errors", {}).get("mismatches") == 0,
                  "sluice-bench echo --tls against Python's ssl: 200 messages of 3000 B, bytes checked", out)

            if shutil.which("wrk"):
                r = subprocess.run(["wrk", "-t1", "-c10", "-d1s", url + "/"], capture_output=True, text=True, timeout=60)
                check(r.returncode == 0 and "Requests/sec" in r.stdout and "Socket errors" not in r.stdout
                      and "Non-2xx" not in r.stdout, "wrk over https: keep-alive requests, no errors", r.stdout + r.stderr)
            else:
                print("skip: wrk over https (wrk is not installed)")

            r = subprocess.run(["curl", "-sS", "--cacert", f"{d}/ec.crt", url + "/"], capture_output=True, text=True,
                               timeout=30)
            check(r.stdout == "Hello, World!", "after the bad clients, others are still served", r.stderr)
            check(app.poll() is None, "sluice-httpd is still running")
        finally:
            app.terminate()
            try:
                rest, _ = app.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                app.kill()
                rest, _ = app.communicate()
        m = metrics_of(rest)
        check(m.get("tls.handshakes", 0) >= 160, f"tls.handshakes counted ({m.get('tls.handshakes')})", rest[-3000:])
        check(m.get("tls.resumed", 0) >= 2, f"tls.resumed: the s_client resumptions ({m.get('tls.resumed')})")
        check(m.get("tls.tls12", 0) >= 3 and m.get("tls.tls13", 0) >= 150, "tls.tls12 / tls.tls13 counted")
        check(m.get("tls.handshake_failures", 0) >= 2,
              f"tls.handshake_failures: the plaintext client and the garbage hello ({m.get('tls.handshake_failures')})")
        check(m.get("tls.record_errors", 0) >= 1, f"tls.record_errors: garbage after the handshake ({m.get('tls.record_errors')})")
        check(m.get("tls.renegotiations_refused", 0) >= 1,
              f"tls.renegotiations_refused: the s_client 'R' ({m.get('tls.renegotiations_refused')})")
        check(m.get("tls.handshake_timeouts", 0) >= 51,
              f"tls.handshake_timeouts: the silent and the stalled clients ({m.get('tls.handshake_timeouts')})")
        check(m.get("tls.close_notify_received", 0) >= 1, "tls.close_notify_received: Python's unwrap")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    sys.exit(1 if tls_checks.failures else 0)


if __name__ == "__main__":
    main()
