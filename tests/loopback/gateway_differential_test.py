#!/usr/bin/env python3
"""Differential test of sluice-gateway --mode=http (issue 15): odd but
plausible requests and responses, generated from the framing cases that
smuggle (Content-Length and Transfer-Encoding spellings, chunk framing,
Connection naming framing fields, versions, Host and target forms), go
through the gateway to an upstream that this script plays and that logs the
exact bytes it receives. Both ends read those bytes with a strict RFC 9112
reader written here, which shares no code with sluice.

For every case one of two things must hold:
  - the gateway refused it: a 4xx/5xx of its own (or a close), and the
    upstream never got a complete message from it; or
  - the gateway forwarded it, and the next hop reads exactly one message,
    with the body the strict reader finds in the original, nothing left
    over, and a follow-up request on the same connection is its own message.
A case that a strict reader refuses but the gateway forwards is a finding
(two parsers disagree), and so is any disagreement on where a message ends.

Loopback only; every wait is bounded. Prints one line per finding and
'N cases, N findings'; exit 1 if any finding."""

import os
import select
import socket
import subprocess
import sys
import time

WAIT_S = 1.0
outcomes = {"refused": 0, "forwarded": 0}


class Invalid(Exception):
    pass


TCHAR = set(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
HEX = set(b"0123456789abcdefABCDEF")
REG_NAME = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=%")


# ---- a strict RFC 9112 reader ---------------------------------------------------

def read_line(buf, pos, allow_bare_lf):
    """(line without its end, next position), or None when incomplete."""
    lf = buf.find(b"\n", pos)
    if lf < 0:
        return None
    line = buf[pos:lf]
    if line.endswith(b"\r"):
        line = line[:-1]
    elif not allow_bare_lf:
        raise Invalid("bare LF")
    if b"\r" in line:
        raise Invalid("bare CR")
    return line, lf + 1


def read_fields(buf, pos):
    fields = []
    while True:
        r = read_line(buf, pos, True)  # RFC 9112 2.2: a recipient MAY take a lone LF
        if r is None:
            return None
        line, pos = r
        if line == b"":
            return fields, pos
        if line[:1] in (b" ", b"\t"):
            raise Invalid("obs-fold")
        name, sep, value = line.partition(b":")
        if not sep or not name or any(c not in TCHAR for c in name):
            raise Invalid("field name")
        value = value.strip(b" \t")
        if any((c < 0x20 and c != 9) or c == 0x7F for c in value):
            raise Invalid("control byte in a value")
        fields.append((name.lower(), value))


def read_chunked(buf, pos):
    body = b""
    while True:
        r = read_line(buf, pos, False)
        if r is None:
            return None
        line, pos = r
        size, _, ext = line.partition(b";")
        size = size.rstrip(b" \t")
        if not size or any(c not in HEX for c in size) or len(size) > 15:
            raise Invalid("chunk size")
        if any((c < 0x20 and c != 9) or c == 0x7F for c in ext):
            raise Invalid("chunk extension")
        n = int(size, 16)
        if n == 0:
            while True:
                r = read_line(buf, pos, False)
                if r is None:
                    return None
                line, pos = r
                if line == b"":
                    return body, pos
        if len(buf) < pos + n + 2:
            return None
        body += buf[pos:pos + n]
        if buf[pos + n:pos + n + 2] != b"\r\n":
            raise Invalid("no CRLF after chunk data")
        pos += n + 2


def valid_host(h):
    if not h:
        return False
    if h.startswith(b"["):
        end = h.find(b"]")
        if end < 2 or any(c not in HEX and c not in b":." for c in h[1:end]):
            return False
        rest = h[end + 1:]
        return rest == b"" or (rest[:1] == b":" and rest[1:].isdigit() and len(rest) <= 6)
    name, sep, port = h.partition(b":")
    if not name or any(c not in REG_NAME for c in name):
        return False
    return not sep or (port == b"" or (port.isdigit() and len(port) <= 5))


def valid_version(v):
    # RFC 9112 2.5: a higher minor version is read as the highest one known.
    return len(v) == 8 and v[:7] == b"HTTP/1." and v[7:].isdigit()


def framing(fields, version, response_status=None, head_request=False):
    te = [v for k, v in fields if k == b"transfer-encoding"]
    cl = [v for k, v in fields if k == b"content-length"]
    if response_status is not None and (head_request or 100 <= response_status < 200 or response_status in (204, 304)):
        return ("none", 0)
    if te:
        if cl:
            raise Invalid("both Transfer-Encoding and Content-Length")
        if len(te) != 1 or te[0].lower() != b"chunked":
            raise Invalid("a transfer coding other than chunked")
        if version == b"HTTP/1.0":
            raise Invalid("Transfer-Encoding in HTTP/1.0")
        return ("chunked", 0)
    if cl:
        if len(cl) != 1 or not cl[0].isdigit() or len(cl[0]) > 15:
            raise Invalid("Content-Length")
        return ("length", int(cl[0]))
    return ("close", 0) if response_status is not None else ("length", 0)


def read_body(buf, pos, fr, until_eof):
    kind, n = fr
    if kind == "none":
        return b"", pos
    if kind == "chunked":
        return read_chunked(buf, pos)
    if kind == "length":
        return (buf[pos:pos + n], pos + n) if len(buf) >= pos + n else None
    return (buf[pos:], len(buf)) if until_eof else None


def read_request(buf):
    """(method, target, fields, body, rest), or None when incomplete."""
    r = read_line(buf, 0, True)
    if r is None:
        return None
    line, pos = r
    parts = line.split(b" ")
    if len(parts) != 3:
        raise Invalid("request line")
    method, target, version = parts
    if not valid_version(version):
        raise Invalid("version")
    if not method or any(c not in TCHAR for c in method):
        raise Invalid("method")
    if not target or any(c <= 0x20 or c >= 0x7F for c in target):
        raise Invalid("target")
    f = read_fields(buf, pos)
    if f is None:
        return None
    fields, pos = f
    hosts = [v for k, v in fields if k == b"host"]
    if (version == b"HTTP/1.1" and len(hosts) != 1) or len(hosts) > 1:
        raise Invalid("Host fields")
    if any(not valid_host(h) for h in hosts):
        raise Invalid("Host value")
    b = read_body(buf, pos, framing(fields, version), False)
    if b is None:
        return None
    body, pos = b
    return method, target, fields, body, buf[pos:]


def read_response(buf, head_request=False, eof=False):
    """(status, fields, body, rest, closes), or None when incomplete."""
    r = read_line(buf, 0, True)
    if r is None:
        return None
    line, pos = r
    version, _, rest = line.partition(b" ")
    code, _, _reason = rest.partition(b" ")
    if not valid_version(version) or len(code) != 3 or not code.isdigit():
        raise Invalid("status line")
    if any((c < 0x20 and c != 9) or c == 0x7F for c in _reason):
        raise Invalid("status line")
    status = int(code)
    f = read_fields(buf, pos)
    if f is None:
        return None
    fields, pos = f
    fr = framing(fields, version, status, head_request)
    b = read_body(buf, pos, fr, eof)
    if b is None:
        return None
    body, pos = b
    conn = b",".join(v.lower() for k, v in fields if k == b"connection")
    closes = fr[0] == "close" or b"close" in conn or (version == b"HTTP/1.0" and b"keep-alive" not in conn)
    return status, fields, body, buf[pos:], closes


def strict(reader, *args):
    """('ok', value), ('incomplete', None) or ('invalid', reason)."""
    try:
        v = reader(*args)
    except Invalid as e:
        return ("invalid", str(e))
    return ("incomplete", None) if v is None else ("ok", v)


# ---- the upstream this script plays ---------------------------------------------------

class upstream:
    def __init__(self):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.bufs = {}  # connection -> bytes received and not yet read as a request

    def port(self):
        return self.ls.getsockname()[1]

    def sockets(self):
        return [self.ls] + list(self.bufs)

    def on_readable(self, s):
        if s is self.ls:
            c, _ = self.ls.accept()
            self.bufs[c] = b""
            return
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        if not data:
            del self.bufs[s]
            s.close()
        else:
            self.bufs[s] += data


def pump(up, client, until, limit=WAIT_S):
    """Reads from everything until until() or the time is up; returns the
    client's bytes and whether it closed."""
    got, closed = b"", False
    end = time.monotonic() + limit
    while time.monotonic() < end and not until(got, closed):
        socks = up.sockets() + ([] if closed else [client])
        r, _, _ = select.select(socks, [], [], 0.02)
        for s in r:
            if s is client:
                try:
                    data = client.recv(65536)
                except OSError:
                    data = b""
                if data:
                    got += data
                else:
                    closed = True
            else:
                up.on_readable(s)
    return got, closed


def take_requests(up, findings, name):
    """Every complete request the upstream holds, read strictly; answers each."""
    served = []
    for c, buf in list(up.bufs.items()):
        while buf:
            verdict, v = strict(read_request, buf)
            if verdict == "incomplete":
                break
            if verdict == "invalid":
                findings.append(f"{name}: the upstream got a message a strict reader refuses ({v}): {buf[:120]!r}")
                buf = b""
                break
            method, target, fields, body, buf = v
            served.append((c, method, target, fields, body))
        up.bufs[c] = buf
    return served


def answer(c, body=b"ok"):
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


# ---- the cases ---------------------------------------------------------------------

def request(headers, body=b"", version=b"HTTP/1.1", method=b"POST", target=b"/d", host=b"Host: a"):
    lines = ([host] if host else []) + headers
    return method + b" " + target + b" " + version + b"\r\n" + b"".join(h + b"\r\n" for h in lines) + b"\r\n" + body


CHUNKED = [b"5\r\nhello\r\n0\r\n\r\n", b"5;a=b\r\nhello\r\n0\r\n\r\n", b"5 ;a\r\nhello\r\n0\r\n\r\n",
           b"005\r\nhello\r\n0\r\n\r\n", b"5\r\nhello\r\n0\r\nX: y\r\n\r\n", b"5\nhello\n0\n\n",
           b"5\r\nhello\n0\r\n\r\n", b"5\r\nhelloXX0\r\n\r\n", b"5;a\nb\r\nhello\r\n0\r\n\r\n",
           b"0x5\r\nhello\r\n0\r\n\r\n", b"+5\r\nhello\r\n0\r\n\r\n", b" 5\r\nhello\r\n0\r\n\r\n",
           b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n", b"5\r\nhello\r\n0\r\nX: y\nZ\r\n\r\n",
           b"5\r\nhello\r\n0\r\n\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\n", b"5\r\nhel\rlo\r\n0\r\n\r\n",
           b"5\r\r\nhello\r\n0\r\n\r\n", b"5;a=\"x\ty\"\r\nhello\r\n0\r\n\r\n"]
TE = [b"Transfer-Encoding: chunked", b"transfer-encoding: CHUNKED", b"Transfer-Encoding:chunked",
      b"Transfer-Encoding:  chunked  ", b"Transfer-Encoding: chunked, identity", b"Transfer-Encoding: identity, chunked",
      b"Transfer-Encoding: xchunked", b"Transfer-Encoding : chunked", b"Transfer-Encoding:\tchunked",
      b"Transfer-Encoding: \x0bchunked", b"Transfer_Encoding: chunked", b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
      b"X: a\r\n Transfer-Encoding: chunked", b"Transfer-Encoding:\r\n chunked", b"Transfer-Encoding: chunked\x00",
      b"Transfer-Encoding: gzip, chunked"]
CL = [b"Content-Length: 5", b"content-length:5", b"Content-Length:  5 ", b"Content-Length: 05", b"Content-Length: +5",
      b"Content-Length: 5, 5", b"Content-Length: 5\r\nContent-Length: 5", b"Content-Length: 5\r\nContent-Length: 6",
      b"Content-Length : 5", b"Content-Length: -5", b"Content-Length: 5 5", b"Content-Length: 0x5",
      b"Content-Length: 99999999999999999999", b"Content-Length:\t5", b"Content_Length: 5", b"Content-Length: 3"]
CONNECTION = [b"Connection: Content-Length", b"Connection: Transfer-Encoding", b"Connection: Host",
              b"Connection: close, Content-Length", b"Connection: keep-alive\r\nConnection: Transfer-Encoding"]


def request_cases():
    cases = []
    for te in TE:
        cases.append((b"te " + te[:40], request([te], CHUNKED[0])))
    for body in CHUNKED:
        cases.append((b"chunked " + body[:40], request([TE[0]], body)))
    for cl in CL:
        cases.append((b"cl " + cl[:40], request([cl], b"hello")))
    for conn in CONNECTION:
        cases.append((b"conn+cl " + conn, request([conn, CL[0]], b"hello" + b"GET /smuggled HTTP/1.1\r\nX: ")))
        cases.append((b"conn+te " + conn, request([conn, TE[0]], CHUNKED[0])))
    for te in TE[:3]:
        for cl in CL[:3]:
            cases.append((b"te+cl " + te + b" " + cl, request([cl, te], CHUNKED[0])))
            cases.append((b"cl+te " + cl + b" " + te, request([te, cl], CHUNKED[0])))
    cases.append((b"http10 te", request([TE[0]], CHUNKED[0], version=b"HTTP/1.0", host=None)))
    cases.append((b"http10 cl", request([CL[0]], b"hello", version=b"HTTP/1.0", host=None)))
    cases.append((b"http10 keep-alive cl", request([b"Connection: keep-alive", CL[0]], b"hello", version=b"HTTP/1.0")))
    for host in [b"Host:", b"Host: a b", b"Host: a/b", b"Host: a:80x", b"Host: [::1", b"Host: a\r\nHost: b", b"Host: a@b",
                 b"Host: [::1]:80", b"Host: a.example:8080", b"HOST: a", b"Host:a"]:
        cases.append((b"host " + host, request([], method=b"GET", host=host)))
    for target in [b"/a\tb", b"/a\x0cb", b"/\xff", b"http://x.example/p", b"http://x.example", b"http://x.example?q",
                   b"http://u@x.example:81/p", b"http:///p", b"*", b"//double", b"/a#frag"]:
        cases.append((b"target " + target, request([], method=b"GET", target=target)))
    cases.append((b"bare LF head", b"GET /lf HTTP/1.1\nHost: a\n\n"))
    cases.append((b"bare CR head", b"GET /cr HTTP/1.1\rHost: a\r\n\r\n"))
    cases.append((b"space in version", b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n"))
    cases.append((b"lowercase version", b"GET / http/1.1\r\nHost: a\r\n\r\n"))
    cases.append((b"underscore xff", request([b"X_Forwarded_For: 6.6.6.6"], method=b"GET")))
    return cases


def response_cases():
    R = []
    for te in TE:
        R.append((b"te " + te[:40], b"HTTP/1.1 200 OK\r\n" + te + b"\r\n\r\n" + CHUNKED[0]))
    for body in CHUNKED:
        R.append((b"chunked " + body[:40], b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body))
    for cl in CL:
        R.append((b"cl " + cl[:40], b"HTTP/1.1 200 OK\r\n" + cl + b"\r\n\r\nhello"))
    for conn in CONNECTION:
        R.append((b"conn+cl " + conn, b"HTTP/1.1 200 OK\r\n" + conn + b"\r\nContent-Length: 5\r\n\r\nhello"))
        R.append((b"conn+te " + conn, b"HTTP/1.1 200 OK\r\n" + conn + b"\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED[0]))
    for status in [b"HTTP/1.1 200 O\rK", b"HTTP/1.1  200 OK", b"HTTP/1.1 200", b"HTTP/1.1 2000 OK", b"HTTP/1.2 200 OK",
                   b"HTTP/1.0 200 OK", b"HTTP/1.1 204 No Content", b"HTTP/1.1 304 Not Modified", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK"]:
        R.append((b"status " + status[:40], status + b"\r\nContent-Length: 5\r\n\r\nhello"))
    for field in [b"X: a\r\n folded", b"X(Y): a", b"X: a\rb", b"X: \x01", b" X: a", b"X:a", b"X: a \t"]:
        R.append((b"field " + field, b"HTTP/1.1 200 OK\r\n" + field + b"\r\nContent-Length: 5\r\n\r\nhello"))
    R.append((b"until close", b"HTTP/1.1 200 OK\r\n\r\nhello"))
    R.append((b"te+cl", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED[0]))
    R.append((b"injected second response", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ninjected"))
    return R


# ---- running them ------------------------------------------------------------------

def run_request_case(gw_port, up, name, raw, findings):
    expected = strict(read_request, raw)
    client = socket.create_connection(("127.0.0.1", gw_port))
    client.sendall(raw)
    served, answered = [], 0
    got, closed = b"", False
    end = time.monotonic() + WAIT_S
    # Serve what arrives, answering each complete request, until the client
    # has a whole response or is closed.
    while time.monotonic() < end:
        more, closed = pump(up, client, lambda g, c: c or strict(read_response, got + g)[0] != "incomplete" or any(
            strict(read_request, b)[0] != "incomplete" for b in up.bufs.values()), end - time.monotonic())
        got += more
        served += take_requests(up, findings, name)
        while answered < len(served):
            answer(served[answered][0], b"ok")
            answered += 1
        if closed or strict(read_response, got)[0] != "incomplete":
            break
    reply = strict(read_response, got, False, closed)
    status = reply[1][0] if reply[0] == "ok" else None
    for c, method, target, fields, body in served:
        if target == b"/smuggled":
            findings.append(f"{name!r}: the upstream read a smuggled request")
        framing_fields = [k for k, v in fields if k in (b"transfer-encoding", b"content-length")]
        if len(framing_fields) > 1:
            findings.append(f"{name!r}: more than one framing field upstream")
    outcomes["refused" if status != 200 else "forwarded"] += 1
    if status is not None and status != 200:
        if not 400 <= status < 600:
            findings.append(f"{name!r}: the gateway answered {status}")
        elif served:
            findings.append(f"{name!r}: refused with {status}, yet the upstream got a complete request")
    elif status == 200:
        if expected[0] == "invalid":
            findings.append(f"{name!r}: a strict reader refuses it ({expected[1]}), the gateway forwarded it")
        elif not served:
            findings.append(f"{name!r}: a 200 without an upstream request")
        elif expected[0] == "ok" and served[0][4] != expected[1][3]:
            findings.append(f"{name!r}: body {served[0][4]!r} upstream, {expected[1][3]!r} in the original")
    elif reply[0] == "invalid":
        findings.append(f"{name!r}: the client got a response a strict reader refuses ({reply[1]})")
    else:
        # No answer: acceptable only where a strict reader waits for more too,
        # or the gateway closed.
        if not closed and expected[0] == "ok":
            findings.append(f"{name!r}: no answer to a complete request")
        if served:
            findings.append(f"{name!r}: the upstream got a request, the client no answer")
    for c, buf in up.bufs.items():
        if buf and any(c is s[0] for s in served) and status == 200:
            findings.append(f"{name!r}: bytes after the message upstream: {buf[:80]!r}")
    client.close()
    for c in list(up.bufs):  # anything half-read belongs to this case
        up.bufs[c] = b""


def run_response_case(gw_port, up, name, raw, findings, client_version=b"HTTP/1.1"):
    expected = strict(read_response, raw, False, True)
    client = socket.create_connection(("127.0.0.1", gw_port))
    client.sendall(b"GET /r " + client_version + b"\r\nHost: a\r\n\r\n")
    served = []
    end = time.monotonic() + WAIT_S
    while not served and time.monotonic() < end:
        pump(up, client, lambda g, c: any(strict(read_request, b)[0] == "ok" for b in up.bufs.values()), end - time.monotonic())
        served = take_requests(up, findings, name)
    if not served:
        findings.append(f"{name!r}: the request never reached the upstream")
        client.close()
        return
    conn = served[0][0]
    conn.sendall(raw)
    closes = expected[0] != "ok" or expected[1][4]
    if closes:  # its end is the connection's end (or it is broken: then the upstream gives up)
        conn.close()
        del up.bufs[conn]
    got, closed = pump(up, client, lambda g, c: c or strict(read_response, g, False, c)[0] != "incomplete")
    reply = strict(read_response, got, False, closed)
    want = expected[1] if expected[0] == "ok" else None
    while reply[0] == "ok" and 100 <= reply[1][0] < 200:
        # An interim response goes on to an HTTP/1.1 client; the final one follows.
        if client_version == b"HTTP/1.0":
            findings.append(f"{name!r}: a 1xx went to an HTTP/1.0 client")
        if want is not None and 100 <= want[0] < 200:
            want = strict(read_response, want[3], False, True)[1]
        got = reply[1][3]
        reply = strict(read_response, got, False, closed)
    while want is not None and 100 <= want[0] < 200:
        want = strict(read_response, want[3], False, True)[1]
    if reply[0] != "ok":
        if reply[0] == "invalid":
            findings.append(f"{name!r}: the client got a response a strict reader refuses ({reply[1]}): {got[:100]!r}")
        elif expected[0] == "ok" and not closed:
            findings.append(f"{name!r}: no whole response reached the client")
        client.close()
        return
    status, fields, body, rest, client_closes = reply[1]
    if status == 502:
        outcomes["refused"] += 1
    elif expected[0] != "ok":
        findings.append(f"{name!r}: a strict reader refuses it ({expected[1]}), the gateway forwarded {status}")
    else:
        outcomes["forwarded"] += 1
        if status != want[0] or body != want[2]:
            findings.append(f"{name!r}: the client read {status} {body!r}, the upstream sent {want[0]} {want[2]!r}")
        if rest:
            findings.append(f"{name!r}: bytes after the response: {rest[:80]!r}")
        if not client_closes and not closed:
            # The next request on this connection gets its own response.
            client.sendall(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n")
            nxt = []
            end = time.monotonic() + WAIT_S
            while not nxt and time.monotonic() < end:
                pump(up, client, lambda g, c: any(strict(read_request, b)[0] == "ok" for b in up.bufs.values()),
                     end - time.monotonic())
                nxt = take_requests(up, findings, name)
            if not nxt or nxt[0][2] != b"/next":
                findings.append(f"{name!r}: the next request did not reach the upstream as itself")
            else:
                answer(nxt[0][0], b"next")
                got2, _ = pump(up, client, lambda g, c: c or strict(read_response, g)[0] != "incomplete")
                r2 = strict(read_response, got2)
                if r2[0] != "ok" or r2[1][2] != b"next":
                    findings.append(f"{name!r}: the next response was not its own: {got2[:100]!r}")
    client.close()
    for c in list(up.bufs):
        up.bufs[c] = b""


def main():
    gw_bin = os.environ.get("SLUICE_GATEWAY", "")
    up = upstream()
    gw = subprocess.Popen([gw_bin, "--listen=127.0.0.1:0", f"--upstream=127.0.0.1:{up.port()}", "--mode=http",
                           "--health-check=none", "--cores=1", "--max-fails=1000", "--response-timeout=2s"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    findings = []
    cases = 0
    try:
        line = gw.stdout.readline()
        if ":" not in line:
            gw.wait(5)
            print(f"FINDING: the gateway did not start: {line!r} {gw.stderr.read()[-500:]}")
            print("0 cases, 1 findings")
            sys.exit(1)
        port = int(line.rsplit(":", 1)[1].split()[0])
        for name, raw in request_cases():
            cases += 1
            run_request_case(port, up, name, raw, findings)
        for name, raw in response_cases():
            for version in (b"HTTP/1.1", b"HTTP/1.0"):
                cases += 1
                run_response_case(port, up, name + b" to " + version, raw, findings, version)
    finally:
        gw.terminate()
        try:
            gw.wait(20)
        except subprocess.TimeoutExpired:
            gw.kill()
            findings.append("the gateway did not stop on SIGTERM")
    if gw.returncode not in (0, None):
        findings.append(f"the gateway exited {gw.returncode}: {gw.stderr.read()[-500:]}")
    for f in findings:
        print("FINDING:", f)
    print(f"{cases} cases ({outcomes['refused']} refused, {outcomes['forwarded']} forwarded), {len(findings)} findings")
    sys.exit(1 if findings else 0)


if __name__ == "__main__":
    main()
