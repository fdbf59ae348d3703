#!/usr/bin/env python3
"""sluice-httpd --tls-cert/--tls-key on loopback, driven by clients no one
here wrote: curl (--cacert), openssl s_client (TLS 1.2 and 1.3, SNI,
resumption with -sess_out/-sess_in) and Python's ssl. Bad input: a plaintext
HTTP client on the TLS port and a client that stops before its hello each
get a clean close (no reset), and the server goes on serving. Certificates
(ECDSA P-256 default, RSA for SNI) are made here with the openssl command.
Skips (77) without curl or openssl."""

import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

failures = 0


def check(ok, what, detail=""):
    global failures
    print(("ok:   " if ok else "FAIL: ") + what)
    if not ok:
        failures += 1
        if detail:
            print(detail[-2000:])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_cert(d, name, keyopts, sans):
    subprocess.run(["openssl", "req", "-x509", "-newkey", *keyopts, "-nodes", "-keyout", f"{d}/{name}.key",
                    "-out", f"{d}/{name}.crt", "-days", "2", "-subj", f"/CN={name}.test",
                    "-addext", "subjectAltName=" + sans], check=True, capture_output=True)


def start(httpd, args):
    app = subprocess.Popen([httpd, "--cores=1", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = app.stdout.readline()
    return app, line


def s_client(port, extra, request=b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"):
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-ign_eof", *extra],
                       input=request, capture_output=True, timeout=30)
    return r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


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
        app, line = start(httpd, [f"--listen=127.0.0.1:{port}", "--header-timeout=1s",
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

            # A client that never sends its hello: closed by the header timeout.
            t0 = time.monotonic()
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                try:
                    ended = raw.recv(1) == b""
                except (ConnectionResetError, socket.timeout):
                    ended = False
            took = time.monotonic() - t0
            check(ended and took < 5, f"a silent client is closed by the header timeout ({took:.1f}s)")

            r = subprocess.run(["curl", "-sS", "--cacert", f"{d}/ec.crt", url + "/"], capture_output=True, text=True,
                               timeout=30)
            check(r.stdout == "Hello, World!", "after the bad clients, others are still served", r.stderr)
            check(app.poll() is None, "sluice-httpd is still running")
        finally:
            app.terminate()
            try:
                app.wait(timeout=10)
            except subprocess.TimeoutExpired:
                app.kill()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
