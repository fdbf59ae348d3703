#!/usr/bin/env python3
"""Drives the examples over loopback with plain sockets (issue 16.6).

    examples_test.py NAME     NAME: line_server, tcp_proxy, udp_echo,
                              http_hello or timer_client

Each example is started on port 0 and found by the address it prints on
stdout. Every wait is bounded (TIMEOUT) and waits on an event (a line of
output, a socket); the one exception is the proxy's backpressure check, which
has to see the client's sends stop for a while. EXAMPLES_DIR (set by meson)
holds the programs. Exit status: 0 when every check passed, 1 otherwise.
"""

import hashlib
import os
import queue
import random
import re
import select
import socket
import subprocess
import sys
import threading
import time
import traceback

TIMEOUT = 10.0
EXAMPLES = os.environ.get("EXAMPLES_DIR", os.path.dirname(os.path.abspath(__file__)))
failures = []


def check(ok, what):
    print(("ok:   " if ok else "FAIL: ") + what, flush=True)
    if not ok:
        failures.append(what)


class example:
    """One running example; its stdout lines arrive in a queue."""

    def __init__(self, name, *args):
        self.name = name
        self.proc = subprocess.Popen([os.path.join(EXAMPLES, name), *args], stdout=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def line(self):
        try:
            line = self.lines.get(timeout=TIMEOUT)
        except queue.Empty:
            line = None
        if line is None:
            raise RuntimeError(f"{self.name}: no output line (exit status {self.proc.poll()})")
        return line

    def port(self):
        """The port of the 'NAME listening on HOST:PORT' line."""
        m = re.fullmatch(rf"{self.name} listening on .*:(\d+)", self.line())
        if m is None:
            raise RuntimeError(f"{self.name}: no address printed")
        return int(m.group(1))

    def stop(self):
        self.proc.terminate()  # SIGTERM: a graceful stop
        try:
            return self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        # Our connections first: a graceful stop waits for open ones.
        while open_sockets:
            open_sockets.pop().close()
        code = self.stop()
        check(code == 0, f"{self.name} exits 0 on SIGTERM (got {code})")


open_sockets = []


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    open_sockets.append(s)
    return s


def recv_exact(s, n):
    """n bytes, or fewer if the peer ends or nothing comes for TIMEOUT."""
    data = b""
    try:
        while len(data) < n:
            chunk = s.recv(n - len(data))
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def recv_all(s):
    """Everything up to the peer's FIN; a reset ends it too."""
    data = bytearray()
    try:
        while chunk := s.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return bytes(data)


def connect_ended(port):
    """Connects and tells whether the server ends the connection at once (a
    reset may come even before connect() returns)."""
    try:
        s = connect(port)
    except ConnectionResetError:
        return True
    with s:
        return ended(s)


def ended(s):
    """True when the peer closes (FIN or RST) before sending anything more."""
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def help_works(name, flag):
    r = subprocess.run([os.path.join(EXAMPLES, name), "--help"], capture_output=True, text=True, timeout=TIMEOUT)
    check(r.returncode == 0 and flag in r.stdout, f"{name} --help lists {flag}")


# ---- line_server -------------------------------------------------------------

def test_line_server():
    help_works("line_server", "--listen")
    with example("line_server", "--listen=127.0.0.1:0", "--cores=1", "--max-line=64") as srv:
        port = srv.port()
        a, b, c = connect(port), connect(port), connect(port)
        # A's line is incomplete; B's complete line must be answered anyway:
        # the decoders (and counters) are per connection, all on one loop.
        a.sendall(b"abcdefghij")
        b.sendall(b"hi\n")
        check(recv_exact(b, 5) == b"1 hi\n", "a complete line is answered while another connection holds half a line")
        c.sendall(b"one\r\ntw")
        check(recv_exact(c, 6) == b"1 one\n", "CRLF line answered, the rest kept")
        a.sendall(b"klm\nxy")
        check(recv_exact(a, 16) == b"1 abcdefghijklm\n", "the half line is completed on its own connection")
        c.sendall(b"o\n")
        a.sendall(b"z\n")
        b.sendall(b"bye\n")
        check(recv_exact(c, 6) == b"2 two\n" and recv_exact(a, 6) == b"2 xyz\n" and recv_exact(b, 6) == b"2 bye\n",
              "each connection counts its own lines")
        # Many connections, each with a partial line, completed in reverse order.
        many = [connect(port) for _ in range(20)]
        for i, s in enumerate(many):
            s.sendall(b"conn%d-" % i)
        answers = []
        for i, s in reversed(list(enumerate(many))):
            for byte in b"part%d\n" % i:  # byte by byte
                s.sendall(bytes([byte]))
            want = b"1 conn%d-part%d\n" % (i, i)
            answers.append(recv_exact(s, len(want)) == want)
        check(all(answers), "20 interleaved partial lines, sent byte by byte, answered each on its own connection")
        # A line over --max-line closes only its own connection.
        long = connect(port)
        long.sendall(b"x" * 100)
        check(ended(long), "a line over --max-line closes its connection")
        b.sendall(b"still\n")
        check(recv_exact(b, 8) == b"3 still\n", "the other connections go on")
        # Nothing extra was sent: after our FIN the server closes with no more bytes.
        for s in [a, b, c] + many:
            s.shutdown(socket.SHUT_WR)
        check(all(recv_all(s) == b"" for s in [a, b, c] + many), "no stray bytes, and FIN closes")


# ---- tcp_proxy ------------------------------------------------------------------

class upstream:
    """A Python server for the proxy: serve(conn) runs per connection in a thread."""

    def __init__(self, serve, rcvbuf=None):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # inherited by accepted sockets
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.serve = serve
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(TIMEOUT)
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()


def peak_rss(pid):
    """The process's peak resident memory in bytes (Linux's VmHWM), 0 elsewhere."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(l.split()[1]) << 10 for l in f if l.startswith("VmHWM:"))
    except OSError:
        return 0


def echo_serve(conn):
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def test_tcp_proxy():
    help_works("tcp_proxy", "--upstream")
    with example("line_server", "--listen=127.0.0.1:0", "--cores=1") as lines:
        with example("tcp_proxy", "--listen=127.0.0.1:0", "--cores=1",
                     f"--upstream=127.0.0.1:{lines.port()}") as proxy:
            s = connect(proxy.port())
            s.sendall(b"hel")
            s.sendall(b"lo\nworld\n")
            check(recv_exact(s, 16) == b"1 hello\n2 world\n", "line_server answers through the proxy")
            s.shutdown(socket.SHUT_WR)
            check(recv_all(s) == b"", "the client's FIN reaches line_server, whose close comes back")

    # Large transfer both ways at once through a Python echo upstream.
    up = upstream(echo_serve)
    with example("tcp_proxy", "--listen=127.0.0.1:0", "--cores=1", f"--upstream=127.0.0.1:{up.port}") as proxy:
        port = proxy.port()
        s = connect(port)
        payload = random.Random(16).randbytes(8 << 20)
        sender = threading.Thread(target=lambda: (s.sendall(payload), s.shutdown(socket.SHUT_WR)))
        sender.start()
        got = recv_all(s)
        sender.join()
        check(got == payload, f"8 MiB of random bytes echoed byte-exact through the proxy (got {len(got)})")

        # Half-close, client first: the upstream sees EOF, then still answers.
        def reply_after_eof(conn):
            with conn:
                data = recv_all(conn)
                conn.sendall(b"got %d bytes %s" % (len(data), hashlib.sha256(data).hexdigest().encode()))

        up.serve = reply_after_eof
        s = connect(port)
        s.sendall(b"request")
        s.shutdown(socket.SHUT_WR)
        want = b"got 7 bytes " + hashlib.sha256(b"request").hexdigest().encode()
        check(recv_all(s) == want, "client half-close passed on; the answer sent after it arrives, then EOF")

        # Half-close, upstream first: the client sees EOF and can still send.
        heard = queue.Queue()

        def shut_first(conn):
            with conn:
                conn.sendall(b"hello")
                conn.shutdown(socket.SHUT_WR)
                heard.put(recv_all(conn))

        up.serve = shut_first
        s = connect(port)
        check(recv_all(s) == b"hello", "upstream half-close passed on to the client")
        s.sendall(b"after")
        s.shutdown(socket.SHUT_WR)
        check(heard.get(timeout=TIMEOUT) == b"after", "the client still sends after the upstream's FIN")
        check(ended(s), "both directions done: the proxy closes")

    # Backpressure: while the upstream does not read, the proxy must stop
    # reading the client instead of buffering: its memory stays flat, and
    # without it the proxy would hit its 16 MiB output limit and reset both.
    # Once the upstream reads, every byte arrives.
    go = threading.Event()
    received = queue.Queue()

    def slow_reader(conn):
        with conn:
            go.wait(TIMEOUT * 3)
            received.put(hashlib.sha256(recv_all(conn)).hexdigest())

    up = upstream(slow_reader, rcvbuf=64 << 10)
    with example("tcp_proxy", "--listen=127.0.0.1:0", "--cores=1", f"--upstream=127.0.0.1:{up.port}") as proxy:
        s = connect(proxy.port())
        before = peak_rss(proxy.proc.pid)
        total = 32 << 20
        payload = random.Random(7).randbytes(total)
        sent = 0
        s.setblocking(False)
        deadline = time.monotonic() + TIMEOUT * 3
        reset = False
        while sent < total and time.monotonic() < deadline:
            # The client's sends stop once every buffer on the way is full:
            # the proxy's input and output (up to its watermarks) and the
            # kernel's socket buffers. A second without room: let it read.
            if not select.select([], [s], [], 1.0)[1]:
                break
            try:
                sent += s.send(payload[sent:sent + (1 << 20)])
            except BlockingIOError:
                pass
            except ConnectionError:  # what a proxy without backpressure does at its output limit
                reset = True
                break
        check(not reset, f"the proxy does not reset the client while the upstream does not read ({sent >> 10} KiB sent)")
        if reset:
            return
        held = peak_rss(proxy.proc.pid) - before
        check(held < (8 << 20), f"a stalled upstream holds the client back: the proxy grew by {held >> 10} KiB "
              f"while {sent >> 10} KiB were sent")
        go.set()
        s.setblocking(True)
        s.sendall(payload[sent:])
        s.shutdown(socket.SHUT_WR)
        digest = received.get(timeout=TIMEOUT * 3)
        check(digest == hashlib.sha256(payload).hexdigest(), "then all 32 MiB arrive upstream byte-exact")

    # A refused upstream connect ends the client's connection.
    with example("tcp_proxy", "--listen=127.0.0.1:0", "--cores=1", f"--upstream=127.0.0.1:{closed_port()}") as proxy:
        check(connect_ended(proxy.port()), "the client's connection ends when the upstream refuses")


# ---- udp_echo -------------------------------------------------------------------

def test_udp_echo():
    help_works("udp_echo", "--listen")
    with example("udp_echo", "--listen=127.0.0.1:0", "--cores=1") as srv:
        server = ("127.0.0.1", srv.port())
        rng = random.Random(3)
        socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
        sent = {0: [], 1: []}
        for size in (1, 100, 1400, 8000, 60000):
            for i, u in enumerate(socks):
                data = rng.randbytes(size)
                u.sendto(data, server)
                sent[i].append(data)
        ok = True
        for i, u in enumerate(socks):
            u.settimeout(TIMEOUT)
            for want in sent[i]:
                data, frm = u.recvfrom(65536)
                ok = ok and data == want and frm == server
        check(ok, "every datagram comes back byte-exact, to its own sender, from the server's address")


# ---- http_hello -----------------------------------------------------------------

def read_response(s):
    """(status, headers, body) of one response framed by Content-Length."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = s.recv(1)
        if not byte:
            return None
        head += byte
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if l)}
    body = recv_exact(s, int(headers.get("content-length", "0")))
    return int(lines[0].split()[1]), headers, body


def test_http_hello():
    help_works("http_hello", "--listen")
    with example("http_hello", "--listen=127.0.0.1:0", "--cores=1") as srv:
        port = srv.port()
        s = connect(port)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        r1 = read_response(s)
        s.sendall(b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n")
        r2 = read_response(s)
        check(r1 is not None and r1[0] == 200 and r1[2] == b"Hello from sluice\n"
              and r1[1].get("connection") == "keep-alive", f"GET / is 200 with the body, keep-alive ({r1})")
        check(r2 is not None and r2[0] == 404, f"a second request on the same connection is answered ({r2})")
        # Half a request on one connection does not hold up another's.
        half = connect(port)
        half.sendall(b"GET / HTTP/1.1\r\nHo")
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")  # pipelined
        r3, r4 = read_response(s), read_response(s)
        check(r3 is not None and r4 is not None and r3[0] == r4[0] == 200, "two pipelined requests, two responses")
        half.sendall(b"st: x\r\nConnection: close\r\n\r\n")
        r5 = read_response(half)
        check(r5 is not None and r5[0] == 200 and r5[1].get("connection") == "close" and ended(half),
              "a request in two pieces is answered; Connection: close closes after the response")
        bad = connect(port)
        bad.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        r6 = read_response(bad)
        check(r6 is not None and r6[0] == 400 and ended(bad), "a malformed request gets 400 and a close")


# ---- timer_client -----------------------------------------------------------------

def test_timer_client():
    help_works("timer_client", "--connect")
    with example("line_server", "--listen=127.0.0.1:0", "--cores=1") as srv:
        port = srv.port()
        start = time.monotonic()
        r = subprocess.run([os.path.join(EXAMPLES, "timer_client"), f"--connect=127.0.0.1:{port}",
                            "--interval=50ms", "--count=5"], capture_output=True, text=True, timeout=TIMEOUT)
        elapsed = time.monotonic() - start
        want = [f"{i} tick {i}" for i in range(1, 6)]
        check(r.returncode == 0 and r.stdout.splitlines() == want,
              f"timer_client exits 0 after 5 replies from line_server (rc {r.returncode}, {r.stdout!r})")
        # Lines go out one per interval: the fifth no earlier than 4 x 50 ms after the first.
        check(elapsed >= 0.2, f"the lines are paced by the timer ({elapsed:.3f} s for 5 at 50 ms)")
    r = subprocess.run([os.path.join(EXAMPLES, "timer_client"), f"--connect=127.0.0.1:{closed_port()}", "--count=1"],
                       capture_output=True, text=True, timeout=TIMEOUT)
    check(r.returncode != 0, f"a refused connect exits non-zero (rc {r.returncode})")


def main():
    name = sys.argv[1]
    try:
        globals()["test_" + name]()
    except Exception as e:  # a hang or a crash is a failure (with its trace)
        traceback.print_exc()
        check(False, f"{name}: {type(e).__name__}: {e}")
    print(f"{name}: {len(failures)} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
