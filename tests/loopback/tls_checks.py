"""What the loopback TLS tests (httpd_tls, gateway_tls) share: counted checks,
free ports, test certificates made with the openssl command, s_client runs."""
import socket
import subprocess

failures = 0


def check(ok, what, detail=""):
    """Prints ok/FAIL for one check; a failure is counted (see `failures`)."""
    global failures
    print(("ok:   " if ok else "FAIL: ") + what)
    if not ok:
        failures += 1
        if detail:
            print(str(detail)[-2000:])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_cert(d, name, keyopts, sans):
    """A self-signed certificate d/name.crt with key d/name.key for name.test and sans."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", *keyopts, "-nodes", "-keyout", f"{d}/{name}.key",
                    "-out", f"{d}/{name}.crt", "-days", "2", "-subj", f"/CN={name}.test",
                    "-addext", "subjectAltName=" + sans], check=True, capture_output=True)


def s_client(port, extra, request=b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"):
    """openssl s_client to 127.0.0.1:port with extra flags; its stdout and stderr."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-ign_eof", *extra],
                       input=request, capture_output=True, timeout=30)
    return r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
