#!/usr/bin/env python3
"""Egret's soak and fault test (docs/performance.md): the driver behind bench/soak.sh.

Python 3 standard library only. Three sub-commands, all started by bench/soak.sh:

  soak.py upstream PARAMS.json   the HTTPS upstreams (asyncio, one process): a trusted one on
                                 127.0.0.1 (certificate from the run's CA, SAN 127.0.0.1 and
                                 localhost) and an untrusted one on 127.0.0.3 (another CA)
  soak.py config PARAMS.json N   print version N of the Egret config (the soak rewrites it)
  soak.py drive PARAMS.json      the traffic, the reloads, the quiesced snapshots and the report

The drive phase: SOAK_WARMUP seconds of the full traffic mix (with reloads), then a quiesced
baseline snapshot, then SOAK_DURATION seconds of the same, then a quiesced end snapshot. A
snapshot pauses the traffic, waits until Egret's egret_client_connections and
egret_tunnels_active gauges read 0 and its upstream pools have timed out, forces two full GCs
(jcmd GC.run) and reads open file descriptors, heap after GC, RSS and threads. Every
scenario's outcome is checked against what its fault must produce; any other outcome is a
failure the faults did not cause, and the exit code is 1.
"""
import asyncio
import collections
import hashlib
import json
import os
import random
import re
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import traceback
import urllib.request

# ---- shared by the upstream and the driver ----------------------------------------------------

SMALL = b"egret soak: small body, exact bytes checked by the client\n"
# 256 KiB, deterministic, not compressible; the slow readers and the resets use it.
BIG = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(8192))
BIG_SHA = hashlib.sha256(BIG).hexdigest()
RESET_AFTER = 64 * 1024  # bytes of BIG the upstream sends before it resets the connection
# The traffic mix: scenario (a Worker method) and its weight, in operations per 100.
SCENARIOS = [
    ("upgrade", 30),
    ("tunnel", 14),
    ("denial", 12),
    ("tls_failure", 8),
    ("dns_failure", 5),
    ("client_reset", 11),
    ("slow_reader", 8),
    ("upstream_reset", 12),
]


def load_params(path):
    with open(path) as f:
        return json.load(f)


# ---- upstream ------------------------------------------------------------------------------------

async def serve_client(reader, writer):
    """One upstream connection: HTTP/1.1 keep-alive until the peer closes or 30 s of silence."""

    def head(status, fields):
        lines = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not Found'}"]
        lines += [f"{k}: {v}" for k, v in fields]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def reset():
        # SO_LINGER 0: close() sends a TCP RST and drops what is still queued.
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    try:
        while True:
            raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            lines = raw.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            fields = {}
            for line in lines[1:]:
                if line:
                    k, v = line.split(":", 1)
                    fields[k.strip().lower()] = v.strip()
            n = int(fields.get("content-length", "0"))
            body = await asyncio.wait_for(reader.readexactly(n), 30) if n else b""
            path = target.split("?", 1)[0]
            if path == "/small":
                writer.write(head(200, [("Content-Length", len(SMALL))]) + SMALL)
            elif path == "/echo":
                answer = f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()
                writer.write(head(200, [("Content-Length", len(answer))]) + answer)
            elif path == "/big":
                writer.write(head(200, [("Content-Length", len(BIG))]))
                for i in range(0, len(BIG), 16384):
                    writer.write(BIG[i:i + 16384])
                    await writer.drain()
            elif path == "/big-chunked":
                writer.write(head(200, [("Transfer-Encoding", "chunked")]))
                for i in range(0, len(BIG), 16384):
                    writer.write(b"%x\r\n%s\r\n" % (16384, BIG[i:i + 16384]))
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
            elif path in ("/reset-cl", "/reset-chunked"):
                # Headers, a quarter of the body, then a TCP reset: "upstream reset mid-body".
                chunked = path == "/reset-chunked"
                writer.write(head(200, [("Transfer-Encoding", "chunked")] if chunked
                                  else [("Content-Length", len(BIG))]))
                await writer.drain()
                for i in range(0, RESET_AFTER, 16384):
                    part = BIG[i:i + 16384]
                    writer.write(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
                    await writer.drain()
                await asyncio.sleep(0.05)  # let the bytes leave before the reset drops the queue
                reset()
                return
            else:
                writer.write(head(404, [("Content-Length", 0)]))
            await writer.drain()
            if fields.get("connection", "").lower() == "close":
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
            ConnectionError, ssl.SSLError, OSError, ValueError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


def upstream_main(params):
    async def main():
        loop = asyncio.get_running_loop()
        # Handshakes that Egret refuses (the untrusted upstream) and clients that reset are the
        # point of the exercise; asyncio would log each one.
        loop.set_exception_handler(lambda loop, ctx: None)
        servers, ports = [], {}
        for name, host, cert, key in (("good", "127.0.0.1", params["good_cert"], params["good_key"]),
                                      ("bad", "127.0.0.3", params["bad_cert"], params["bad_key"])):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(cert, key)
            srv = await asyncio.start_server(serve_client, host, 0, ssl=ctx, backlog=512,
                                             ssl_handshake_timeout=10)
            servers.append(srv)
            ports[name] = srv.sockets[0].getsockname()[1]
        tmp = params["upstream_ports"] + ".tmp"
        with open(tmp, "w") as f:
            json.dump(ports, f)
        os.replace(tmp, params["upstream_ports"])
        await asyncio.gather(*(s.serve_forever() for s in servers))

    import logging
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    asyncio.run(main())


# ---- config ----------------------------------------------------------------------------------------

def render_config(p, n):
    """Version n of the config. Consecutive versions differ in policy, never in what the traffic
    gets: even versions deny blocked.soak.test by rule (odd ones by default) and odd ones add an
    allow rule for a host nobody calls."""
    extra = f"  - host: reload-{n}.soak.test          # odd versions only\n" if n % 2 else ""
    deny = ("deny:\n  - host: blocked.soak.test           # even versions only; odd ones deny it by default\n"
            if n % 2 == 0 else "deny: []\n")
    return f"""# Egret soak config, version {n}: bench/soak.py rewrites this file every few seconds.
version: 1
listen:
  proxy: 127.0.0.1:{p['proxy_port']}
  admin: 127.0.0.1:{p['admin_port']}
tls:
  trust: [{p['ca']}]
addresses:
  allow: [127.0.0.1/32, 127.0.0.3/32]   # the two local upstreams; 127.0.0.2 stays denied
# response and idle shorter than the defaults (30s, 60s) so that old pools retire and idle
# upstream connections close within seconds of a pause: the quiesced snapshots wait for that.
timeouts: {{connect: 5s, handshake: 5s, response: {p['response_timeout']}s, idle: {p['idle_timeout']}s, requestHead: 10s}}
allow:
  - host: 127.0.0.1
    ports: [{p['good_port']}]
  - host: localhost                       # /etc/hosts: 127.0.0.1; tunnels with an SNI
    ports: [{p['good_port']}]
  - host: 127.0.0.3                       # the upstream whose certificate no trusted CA signed
    ports: [{p['bad_port']}]
  - host: 127.0.0.2                       # allowed by rule, refused by the address guard
    ports: [{p['good_port']}]
  - host: "**.soak.invalid"               # names that never resolve
{extra}{deny}"""


def write_config(p, n):
    tmp = p["config"] + ".tmp"
    with open(tmp, "w") as f:
        f.write(render_config(p, n))
    os.replace(tmp, p["config"])  # atomic: Egret never reads half a file


# ---- a small strict HTTP/1.1 client -------------------------------------------------------------

class Closed(Exception):
    """The peer closed (or reset) before the message was complete."""


class Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def fill(self, n=65536):
        try:
            data = self.sock.recv(n)
        except ssl.SSLZeroReturnError:
            data = b""
        if not data:
            raise Closed("connection closed")
        self.buf += data

    def until(self, sep, limit=65536):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out = bytes(self.buf[:i + len(sep)])
                del self.buf[:i + len(sep)]
                return out
            if len(self.buf) > limit:
                raise ValueError("line or head too long")
            self.fill()

    def into(self, out, n, step=65536, pause=0.0, deadline=None):
        """Appends exactly n bytes to out (a partial read stays in out when it fails)."""
        want = len(out) + n
        while len(out) < want:
            if not self.buf:
                self.fill(min(step, want - len(out)))
            take = min(len(self.buf), want - len(out), step)
            out += self.buf[:take]
            del self.buf[:take]
            if pause:
                time.sleep(pause)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError("body not read within the deadline")

    def to_eof(self, out, step=65536):
        out += self.buf
        self.buf.clear()
        while True:
            try:
                self.fill(step)
            except Closed:
                return
            out += self.buf
            self.buf.clear()


class Response:
    def __init__(self, status, headers):
        self.status = status
        self.headers = headers
        self.body = b""
        self.complete = False  # the framing said the body ended, and it did
        self.error = None      # why the body broke off: closed, reset, timeout, tls
        self.framing = None

    def keep_alive(self):
        return self.complete and "close" not in self.headers.get("connection", "").lower()

    def proxy_error(self):
        m = re.search(r"\berror=([a-z_]+)", self.headers.get("proxy-status", ""))
        return m.group(1) if m else None

    def describe(self):
        return (f"{self.status} framing={self.framing} body={len(self.body)}B "
                f"complete={self.complete} error={self.error} proxy-status={self.headers.get('proxy-status')!r}")


def error_name(e):
    if isinstance(e, TimeoutError):
        return "timeout"
    if isinstance(e, Closed):
        return "closed"
    if isinstance(e, ConnectionResetError):
        return "reset"
    if isinstance(e, ssl.SSLError):
        return "tls:" + (e.reason or type(e).__name__)
    return type(e).__name__


def read_response(rd, method="GET", step=65536, pause=0.0, deadline=None):
    """Reads one response (interim 1xx skipped). A failure before the head is complete raises;
    a failure in the body returns the partial response with .error set."""
    while True:
        head = rd.until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ValueError(f"bad status line {lines[0]!r}")
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            if line:
                k, v = line.split(":", 1)
                k, v = k.strip().lower(), v.strip()
                headers[k] = headers[k] + ", " + v if k in headers else v
        if 100 <= status < 200 and status != 101:
            continue
        break
    resp = Response(status, headers)
    body = bytearray()
    try:
        if method == "HEAD" or status in (204, 304):
            resp.framing = "none"
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            resp.framing = "chunked"
            while True:
                size = int(rd.until(b"\r\n").split(b";")[0].strip(), 16)
                if size == 0:
                    while rd.until(b"\r\n") != b"\r\n":  # trailers
                        pass
                    break
                rd.into(body, size, step, pause, deadline)
                if rd.until(b"\r\n") != b"\r\n":
                    raise ValueError("chunk not followed by CRLF")
        elif "content-length" in headers:
            resp.framing = "length"
            rd.into(body, int(headers["content-length"]), step, pause, deadline)
        else:
            resp.framing = "close"
            rd.to_eof(body, step)
        resp.complete = True
    except (Closed, OSError, ssl.SSLError, ValueError) as e:
        resp.error = error_name(e)
    resp.body = bytes(body)
    return resp


def request_bytes(method, target, host, body=b"", close=False, extra=()):
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "User-Agent: egret-soak"]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    lines += list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def rst_close(sock):
    """Close with SO_LINGER 0: the peer sees a TCP RST, not a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def quiet_close(sock):
    try:
        sock.close()
    except OSError:
        pass


# ---- the traffic ---------------------------------------------------------------------------------

class Traffic:
    """Everything the workers share: addresses, TLS context and the per-scenario tallies."""

    def __init__(self, p):
        self.p = p
        self.proxy = ("127.0.0.1", p["proxy_port"])
        self.timeout = p["socket_timeout"]
        self.good = p["good_port"]
        self.bad = p["bad_port"]
        self.ctx = ssl.create_default_context(cafile=p["ca"])
        self.lock = threading.Lock()
        self.phase = "warmup"
        self.stats = {}  # (phase, scenario) -> tally
        self.dns_slots = threading.BoundedSemaphore(2)  # DNS failures may be slow elsewhere

    def record(self, scenario, outcome, ok, detail, seconds):
        with self.lock:
            t = self.stats.setdefault((self.phase, scenario), {
                "sent": 0, "expected": 0, "unexpected": 0,
                "outcomes": collections.Counter(), "examples": [], "seconds": []})
            t["sent"] += 1
            t["expected" if ok else "unexpected"] += 1
            t["outcomes"][outcome] += 1
            t["seconds"].append(seconds)
            if not ok and len(t["examples"]) < 5:
                t["examples"].append(f"{time.strftime('%H:%M:%S')} {outcome}: {detail}")

    def open(self, rcvbuf=None):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(self.timeout)
        s.connect(self.proxy)
        return s

    def connect(self, authority, rcvbuf=None):
        """CONNECT through Egret; returns (socket, reader, response)."""
        s = self.open(rcvbuf)
        s.sendall(request_bytes("CONNECT", authority, authority))
        rd = Reader(s)
        head = rd.until(b"\r\n\r\n").decode("latin-1")
        status = int(head.split(" ", 2)[1])
        if status != 200:
            # A refusal has a body; read it with the normal reader from the start.
            rd.buf[:0] = head.encode("latin-1")
            resp = read_response(rd, "GET")
            return s, rd, resp
        return s, rd, Response(200, {})

    def tls(self, s, rd, host):
        """TLS to the upstream through an open tunnel (the client verifies with the run's CA)."""
        if rd.buf:
            raise ValueError(f"{len(rd.buf)} unexpected bytes after 200 Connection Established")
        ts = self.ctx.wrap_socket(s, server_hostname=host)
        return ts, Reader(ts)


class Worker(threading.Thread):
    def __init__(self, traffic, gate, index, seed):
        super().__init__(name=f"soak-worker-{index}", daemon=True)
        self.t = traffic
        self.gate = gate
        self.index = index
        self.rng = random.Random(seed * 1000 + index)
        self.seq = 0
        self.kept = None  # (socket, reader, last used): one kept-alive proxy connection
        self.scenarios = [(name, weight, getattr(self, name)) for name, weight in SCENARIOS]

    # -- connections

    def kept_conn(self):
        """The worker's kept-alive connection, or a new one. A connection idle for more than
        half of Egret's idle timeout is dropped first, so Egret never closes one under us."""
        if self.kept and time.monotonic() - self.kept[2] > self.t.p["idle_timeout"] / 2:
            self.drop()
        if not self.kept:
            s = self.t.open()
            self.kept = (s, Reader(s), time.monotonic())
        return self.kept

    def drop(self):
        if self.kept:
            quiet_close(self.kept[0])
            self.kept = None

    def exchange(self, method, url, host, body=b"", **kw):
        """One request on the kept-alive connection; returns the response."""
        s, rd, _ = self.kept_conn()
        try:
            s.sendall(request_bytes(method, url, host, body))
            resp = read_response(rd, method, **kw)
        except BaseException:
            self.drop()
            raise
        if resp.keep_alive():
            self.kept = (s, rd, time.monotonic())
        else:
            self.drop()
        return resp

    # -- expectations

    @staticmethod
    def expect_body(resp, body):
        if resp.status == 200 and resp.complete and resp.body == body:
            return "200", True, ""
        return f"status {resp.status}", False, resp.describe()

    @staticmethod
    def expect_refusal(resp, status, error):
        """A refusal as Egret writes it: the status, Proxy-Status naming egret and the error type,
        and the JSON body with the same error."""
        try:
            doc = json.loads(resp.body.decode()) if resp.body else {}
        except ValueError:
            doc = {}
        ok = (resp.status == status and resp.complete
              and resp.headers.get("proxy-status", "").startswith("egret;")
              and resp.proxy_error() == error and doc.get("error") == error)
        return (f"{resp.status} {resp.proxy_error()}", ok, "" if ok else
                f"want {status} {error}; got {resp.describe()} body={resp.body[:200]!r}")

    def host(self):
        return self.rng.choice(("127.0.0.1", "localhost"))

    # -- scenarios: each returns (outcome, expected?, detail)

    def upgrade(self):
        h = self.host()
        url = f"http://{h}:{self.t.good}"
        v = self.rng.random()
        if v < 0.45:
            return self.expect_body(self.exchange("GET", url + "/small", f"{h}:{self.t.good}"), SMALL)
        if v < 0.65:
            body = os.urandom(self.rng.choice((1, 4096, 65536)))
            want = f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()
            return self.expect_body(self.exchange("POST", url + "/echo", f"{h}:{self.t.good}", body), want)
        if v < 0.75:
            r = self.exchange("GET", url + "/big", f"{h}:{self.t.good}")
            return self.expect_body(r, BIG)
        if v < 0.87:  # a new client connection per request
            s = self.t.open()
            try:
                s.sendall(request_bytes("GET", url + "/small", f"{h}:{self.t.good}", close=True))
                return self.expect_body(read_response(Reader(s)), SMALL)
            finally:
                quiet_close(s)
        # plain HTTP inside a CONNECT (undici, curl --proxytunnel): upgraded like http://
        s, rd, resp = self.t.connect(f"{h}:{self.t.good}")
        try:
            if resp.status != 200:
                return f"CONNECT {resp.status}", False, resp.describe()
            for _ in range(2):
                s.sendall(request_bytes("GET", "/small", f"{h}:{self.t.good}"))
                out = self.expect_body(read_response(rd), SMALL)
                if not out[1]:
                    return out
            return out
        finally:
            quiet_close(s)

    def tunnel(self):
        h = self.host()
        s, rd, resp = self.t.connect(f"{h}:{self.t.good}")
        try:
            if resp.status != 200:
                return f"CONNECT {resp.status}", False, resp.describe()
            ts, trd = self.t.tls(s, rd, h)
            s = ts
            paths = [("/small", SMALL)] * self.rng.randint(1, 3)
            if self.rng.random() < 0.2:
                paths.append(("/big", BIG))
            for path, want in paths:
                ts.sendall(request_bytes("GET", path, f"{h}:{self.t.good}"))
                out = self.expect_body(read_response(trd), want)
                if not out[1]:
                    return out
            return out
        finally:
            quiet_close(s)

    def denial(self):
        v = self.rng.randrange(4)
        if v == 0:  # no rule names it
            return self.expect_refusal(self.exchange("GET", "http://denied.soak.test/x", "denied.soak.test"),
                                       403, "http_request_denied")
        if v == 1:  # a deny rule in even config versions, the default deny in odd ones
            return self.expect_refusal(self.exchange("GET", "http://blocked.soak.test/x", "blocked.soak.test"),
                                       403, "http_request_denied")
        if v == 2:  # allowed by rule, refused by the address guard (127.0.0.2 is not exempted)
            return self.expect_refusal(
                self.exchange("GET", f"http://127.0.0.2:{self.t.good}/small", f"127.0.0.2:{self.t.good}"),
                403, "destination_ip_prohibited")
        # CONNECT to a port no rule allows for that host
        s, rd, resp = self.t.connect(f"127.0.0.1:{self.t.bad}")
        try:
            return self.expect_refusal(resp, 403, "http_request_denied")
        finally:
            quiet_close(s)

    def tls_failure(self):
        if self.rng.random() < 0.7:  # Egret's own upstream TLS refuses the certificate
            return self.expect_refusal(
                self.exchange("GET", f"http://127.0.0.3:{self.t.bad}/small", f"127.0.0.3:{self.t.bad}"),
                502, "tls_certificate_error")
        # Through a tunnel the certificate is the client's to check: its handshake fails.
        s, rd, resp = self.t.connect(f"127.0.0.3:{self.t.bad}")
        try:
            if resp.status != 200:
                return f"CONNECT {resp.status}", False, resp.describe()
            try:
                ts, _ = self.t.tls(s, rd, "127.0.0.3")
            except ssl.SSLCertVerificationError:
                return "client refused the certificate", True, ""
            s = ts
            return "handshake succeeded", False, "the untrusted upstream's certificate verified"
        finally:
            quiet_close(s)

    def dns_failure(self):
        self.seq += 1
        name = f"nx-{self.index}-{self.seq}.soak.invalid"  # a new name each time: no cache helps
        with self.t.dns_slots:
            if self.rng.random() < 0.7:
                return self.expect_refusal(self.exchange("GET", f"http://{name}/x", name), 502, "dns_error")
            s, rd, resp = self.t.connect(f"{name}:443")
            try:
                return self.expect_refusal(resp, 502, "dns_error")
            finally:
                quiet_close(s)

    def client_reset(self):
        """The client resets its socket mid-way. Nothing to check on the client's side beyond the
        steps before the reset; Egret must stay healthy (the snapshots check its gauges)."""
        h = self.host()
        auth = f"{h}:{self.t.good}"
        v = self.rng.randrange(5)
        s = self.t.open()
        try:
            if v == 0:  # half a request head
                s.sendall(request_bytes("GET", f"http://{auth}/small", auth)[:30])
                return "reset mid-head", True, ""
            if v == 1:  # half a request body (Egret must reset the upstream request, not end it)
                body = os.urandom(65536)
                s.sendall(request_bytes("POST", f"http://{auth}/echo", auth, body)[:20000])
                time.sleep(0.02)
                return "reset mid-request-body", True, ""
            if v == 2:  # mid-response on the upgrade path
                s.sendall(request_bytes("GET", f"http://{auth}/big", auth))
                rd = Reader(s)
                head = rd.until(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    return "status before reset", False, head[:200].decode("latin-1")
                rd.fill(8192)
                return "reset mid-response", True, ""
            quiet_close(s)
            s, rd, resp = self.t.connect(auth)
            if resp.status != 200:
                return f"CONNECT {resp.status}", False, resp.describe()
            if v == 3:  # inside a tunnel, mid-ClientHello
                hello = client_hello(self.t.ctx, h)
                s.sendall(hello[:len(hello) // 2])
                return "reset mid-ClientHello", True, ""
            ts, trd = self.t.tls(s, rd, h)  # inside a tunnel, mid-response
            s = ts
            ts.sendall(request_bytes("GET", "/big", auth))
            head = trd.until(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                return "status before reset", False, head[:200].decode("latin-1")
            return "reset mid-tunnel", True, ""
        finally:
            rst_close(s)

    def slow_reader(self):
        """256 KiB read 4 KiB at a time with a pause, through a small receive buffer, so Egret's
        back-pressure (not its memory) holds the rest."""
        h = self.host()
        auth = f"{h}:{self.t.good}"
        deadline = time.monotonic() + 30
        kw = dict(step=4096, pause=0.01, deadline=deadline)
        v = self.rng.randrange(3)
        if v < 2:
            s = self.t.open(rcvbuf=8192)
            try:
                path = "/big" if v == 0 else "/big-chunked"
                s.sendall(request_bytes("GET", f"http://{auth}{path}", auth, close=True))
                return self.expect_body(read_response(Reader(s), **kw), BIG)
            finally:
                quiet_close(s)
        s, rd, resp = self.t.connect(auth, rcvbuf=8192)
        try:
            if resp.status != 200:
                return f"CONNECT {resp.status}", False, resp.describe()
            ts, trd = self.t.tls(s, rd, h)
            s = ts
            ts.sendall(request_bytes("GET", "/big", auth))
            return self.expect_body(read_response(trd, **kw), BIG)
        finally:
            quiet_close(s)

    def upstream_reset(self):
        """The upstream sends headers and 64 KiB of a 256 KiB body, then a TCP RST. The client must
        see the break (a short body and a closed connection), never a response that looks whole;
        a 502 is acceptable when the reset overtook the headers."""
        h = self.host()
        auth = f"{h}:{self.t.good}"
        v = self.rng.randrange(3)
        if v < 2:
            path = "/reset-cl" if v == 0 else "/reset-chunked"
            s = self.t.open()
            try:
                s.sendall(request_bytes("GET", f"http://{auth}{path}", auth))
                resp = read_response(Reader(s))
            finally:
                quiet_close(s)
        else:
            s, rd, resp = self.t.connect(auth)
            try:
                if resp.status != 200:
                    return f"CONNECT {resp.status}", False, resp.describe()
                ts, trd = self.t.tls(s, rd, h)
                s = ts
                ts.sendall(request_bytes("GET", "/reset-cl", auth))
                resp = read_response(trd)
            finally:
                quiet_close(s)
        kind = ("upgrade CL", "upgrade chunked", "tunnel")[v]
        if resp.status == 200:
            if resp.complete:
                return f"{kind}: complete-looking 200", False, resp.describe()
            if resp.error == "timeout":
                return f"{kind}: hung", False, "no close after the short body: " + resp.describe()
            if len(resp.body) > RESET_AFTER or resp.body != BIG[:len(resp.body)]:
                return f"{kind}: wrong bytes", False, resp.describe()
            return f"{kind}: truncated ({resp.error})", True, ""
        if v < 2 and resp.status == 502 and resp.proxy_error() in (
                "destination_unavailable", "http_response_incomplete"):
            return f"{kind}: 502 {resp.proxy_error()}", True, ""
        return f"{kind}: {resp.status}", False, resp.describe()

    # -- the loop

    def run(self):
        names = [s[0] for s in self.scenarios]
        weights = [s[1] for s in self.scenarios]
        fns = {s[0]: s[2] for s in self.scenarios}
        interval = self.gate.interval
        while True:
            if not self.gate.proceed(self):
                return
            name = self.rng.choices(names, weights)[0]
            started = time.monotonic()
            try:
                outcome, ok, detail = fns[name]()
            except Exception as e:  # a failure before any response: timeouts, resets, refusals
                self.drop()
                outcome, ok = f"{error_name(e)} before a response", False
                detail = f"{e!r} at {traceback.extract_tb(e.__traceback__)[-1].lineno}"
            took = time.monotonic() - started
            self.t.record(name, outcome, ok, detail, took)
            # Pacing: each worker aims at one operation per interval (jittered), so the load is
            # the same whatever the machine and the CPU stays modest.
            rest = interval * self.rng.uniform(0.5, 1.5) - took
            if rest > 0:
                time.sleep(rest)


def client_hello(ctx, host):
    """The bytes of a real ClientHello (made with a memory BIO, never sent anywhere)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=host)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


class Gate:
    """Pauses and resumes the workers; a paused worker holds no connection."""

    def __init__(self, workers, rate):
        self.cond = threading.Condition()
        self.running = False
        self.stopped = False
        self.parked = 0
        self.workers = workers
        self.interval = workers / rate

    def proceed(self, worker):
        with self.cond:
            if self.running and not self.stopped:
                return True
        worker.drop()
        with self.cond:
            self.parked += 1
            self.cond.notify_all()
            while not self.running and not self.stopped:
                self.cond.wait()
            self.parked -= 1
            return not self.stopped

    def resume(self):
        with self.cond:
            self.running = True
            self.cond.notify_all()

    def pause(self, timeout):
        """Stops the workers after their current operation; True when all are parked in time."""
        deadline = time.monotonic() + timeout
        with self.cond:
            self.running = False
            while self.parked < self.workers:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def stop(self):
        with self.cond:
            self.stopped = True
            self.cond.notify_all()


# ---- Egret's side: metrics and process figures -------------------------------------------------

METRIC = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(p):
    with urllib.request.urlopen(f"http://127.0.0.1:{p['admin_port']}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC.match(line)
        if m:
            out.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return out


def metric_sum(samples, name, **labels):
    return sum(v for n, l, v in samples if n == name and all(l.get(k) == w for k, w in labels.items()))


def metric_has(samples, name):
    return any(n == name for n, _, _ in samples)


def requests_by(samples):
    """egret_requests_total summed over destination, by (kind, outcome, error)."""
    c = collections.Counter()
    for n, l, v in samples:
        if n == "egret_requests_total":
            c[(l.get("kind"), l.get("outcome"), l.get("error"))] += v
    return c


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def fd_kinds(pid):
    kinds = collections.Counter()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            kinds["socket"] += 1
        elif target.startswith("pipe:"):
            kinds["pipe"] += 1
        elif target.startswith("anon_inode:"):
            kinds[target[len("anon_inode:"):].strip("[]")] += 1
        elif target.endswith(".jar"):
            kinds["jar"] += 1
        else:
            kinds["file"] += 1
    return kinds


def thread_names(jcmd, pid):
    """Java threads by name, digits folded (vert.x-eventloop-thread-#), from jcmd Thread.print."""
    r = subprocess.run([jcmd, str(pid), "Thread.print"], capture_output=True, text=True, timeout=60)
    names = collections.Counter()
    for m in re.finditer(r'^"(.*?)" ', r.stdout, re.M):
        names[re.sub(r"\d+", "#", m.group(1))] += 1
    return names


def native_memory(jcmd, pid):
    """Committed KiB per Native Memory Tracking category, or {} when NMT is off (it is unless
    SOAK_JVM_EXTRA=-XX:NativeMemoryTracking=summary: a diagnosis aid for an RSS that grows)."""
    r = subprocess.run([jcmd, str(pid), "VM.native_memory", "summary"], capture_output=True,
                       text=True, timeout=60)
    out = {}
    for m in re.finditer(r"^-\s+(.+?) \(reserved=\d+KB, committed=(\d+)KB\)", r.stdout, re.M):
        out[m.group(1).strip()] = int(m.group(2))
    m = re.search(r"^Total: reserved=\d+KB, committed=(\d+)KB", r.stdout, re.M)
    if m:
        out["Total"] = int(m.group(1))
    return out


def class_histogram(jcmd, pid):
    """Live heap by class, {name: (instances, bytes)}, from jcmd GC.class_histogram (a full GC
    first): what a live heap that grew is made of."""
    r = subprocess.run([jcmd, str(pid), "GC.class_histogram"], capture_output=True, text=True,
                       timeout=120)
    out = {}
    for m in re.finditer(r"^\s*\d+:\s+(\d+)\s+(\d+)\s+(\S+)", r.stdout, re.M):
        out[m.group(3)] = (int(m.group(1)), int(m.group(2)))
    return out


def histogram_growth(start, end, most=8):
    """The classes whose live bytes grew most between two histograms, as report text."""
    grew = sorted(((end.get(c, (0, 0))[1] - start.get(c, (0, 0))[1], c) for c in set(start) | set(end)),
                  reverse=True)
    return ", ".join(f"{c} {start.get(c, (0, 0))[1] // 1024}→{end.get(c, (0, 0))[1] // 1024} "
                     f"({start.get(c, (0, 0))[0]}→{end.get(c, (0, 0))[0]} instances)"
                     for d, c in grew[:most] if d > 0) or "none"


def smaps(pid):
    """Resident KiB by region, from /proc/PID/smaps: a file mapping by its path, [heap] and
    [stack] by name, an anonymous mapping by the 64 MiB-aligned block it starts in (glibc's
    malloc arenas are 64 MiB-aligned and change shape as they grow, so exact ranges do not
    compare between two snapshots)."""
    out, key = {}, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                name = head[5] if len(head) > 5 else ""
                if name and not name.startswith("[anon"):
                    key = name
                else:
                    key = f"anon@{int(head[0].split('-')[0], 16) & ~(2**26 - 1):#x}"
            elif head and head[0] == "Rss:" and key:
                out[key] = out.get(key, 0) + int(head[1])
    return out


def mapping_growth(start, end, heap_info, n=6):
    """The regions whose resident size moved most, as text; the Java heap's blocks (from
    GC.heap_info's addresses) are marked."""
    addrs = [int(a, 16) for a in re.findall(r"0x[0-9a-f]{8,16}", " ".join(heap_info))]
    if addrs:
        lo, hi = min(addrs) & ~(2**26 - 1), max(addrs)
        for snap in (start, end):
            for k in list(snap):
                if k.startswith("anon@") and lo <= int(k[5:], 16) < hi:
                    snap[k + " (Java heap)"] = snap.pop(k)
    moved = sorted(((end.get(k, 0) - start.get(k, 0), k) for k in set(start) | set(end)),
                   key=lambda dk: -abs(dk[0]))
    return ", ".join(f"{k} {start.get(k, 0)}→{end.get(k, 0)} ({d:+d})" for d, k in moved[:n] if d) or "none"


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid):
    stat = open(f"/proc/{pid}/stat").read()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def alive(pid):
    try:
        os.kill(pid, 0)
        # a zombie has exited too
        return proc_status(pid).get("State", "").split()[0:1] != ["Z"]
    except OSError:
        return False


class Soak:
    def __init__(self, p):
        self.p = p
        self.pid = p["egret_pid"]
        self.version = 0         # config version last written (soak.sh wrote version 0)
        self.last_write = time.monotonic()
        self.rewrites = collections.Counter()  # phase -> config rewrites
        self.problems = []       # failures of the run itself (not of a scenario)
        self.hard_deadline = time.monotonic() + p["warmup"] + p["duration"] + p["margin"]
        self.log = open(os.path.join(p["out"], "soak.log"), "w")
        self.timeline = open(os.path.join(p["out"], "timeline.jsonl"), "w")
        self.t0 = time.monotonic()

    def say(self, msg):
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print("== " + msg, file=sys.stderr, flush=True)
        self.log.write(line + "\n")
        self.log.flush()

    def deadline(self, seconds):
        return min(time.monotonic() + seconds, self.hard_deadline)

    def run_phase(self, traffic, gate, phase, seconds, reload_every):
        """The traffic for `seconds`, with a config rewrite every reload_every seconds and a
        /metrics scrape every scrape_every seconds (as Prometheus would, under load), each scrape
        a line of target/soak/timeline.jsonl."""
        traffic.phase = phase
        self.say(f"{phase}: {seconds} s of mixed traffic, config rewritten every {reload_every} s")
        gate.resume()
        now = time.monotonic()
        end = min(now + seconds, self.hard_deadline)
        next_reload = now + reload_every
        next_scrape = now + self.p["scrape_every"]
        last_note = now
        while time.monotonic() < end:
            time.sleep(max(0.0, min(next_reload, next_scrape, end) - time.monotonic()))
            now = time.monotonic()
            if not alive(self.pid):
                self.problems.append(f"Egret (pid {self.pid}) exited during {phase}")
                return False
            if now >= next_reload and now < end:
                self.version += 1
                write_config(self.p, self.version)
                self.last_write = now
                self.rewrites[phase] += 1
                next_reload += reload_every
            if now >= next_scrape:
                next_scrape += self.p["scrape_every"]
                self.sample(phase)
            if now - last_note >= 60:
                last_note = now
                with traffic.lock:
                    sent = sum(t["sent"] for (ph, _), t in traffic.stats.items() if ph == phase)
                    bad = sum(t["unexpected"] for (ph, _), t in traffic.stats.items() if ph == phase)
                st = proc_status(self.pid)
                self.say(f"{phase}: {sent} operations so far, {bad} unexpected; {fd_count(self.pid)} fds, "
                         f"{st['Threads']} threads, RSS {int(st['VmRSS'].split()[0]) // 1024} MiB (under load)")
        return True

    def sample(self, phase):
        try:
            s = scrape(self.p)
        except OSError as e:
            self.problems.append(f"{phase}: /metrics scrape failed: {e!r}")
            return
        st = proc_status(self.pid)
        self.timeline.write(json.dumps({
            "t": round(time.monotonic() - self.t0, 1), "phase": phase, "fds": fd_count(self.pid),
            "threads": int(st["Threads"]), "rss_kb": int(st["VmRSS"].split()[0]),
            "heap_used_bytes": metric_sum(s, "jvm_memory_used_bytes", area="heap"),
            "client_connections": metric_sum(s, "egret_client_connections"),
            "tunnels_active": metric_sum(s, "egret_tunnels_active"),
            "requests": sum(requests_by(s).values()),
            "reloads_success": metric_sum(s, "egret_config_reloads_total", result="success"),
            "reloads_failure": metric_sum(s, "egret_config_reloads_total", result="failure"),
        }) + "\n")
        self.timeline.flush()

    def quiesce(self, gate, label):
        """Pause the traffic and wait, with deadlines, until Egret holds no client connection,
        no tunnel, no old pool and no idle upstream connection."""
        self.say(f"{label}: pausing traffic")
        if not gate.pause(60):
            self.problems.append(f"{label}: workers did not stop within 60 s")
        paused = time.monotonic()
        deadline = self.deadline(60)
        conns = tunnels = None
        while time.monotonic() < deadline:
            s = scrape(self.p)
            conns = metric_sum(s, "egret_client_connections")
            tunnels = metric_sum(s, "egret_tunnels_active")
            if conns <= self.p["conn_floor"] and tunnels <= self.p["conn_floor"]:
                break
            time.sleep(0.2)
        else:
            self.problems.append(f"{label}: egret_client_connections={conns:g}, egret_tunnels_active="
                                 f"{tunnels:g} 60 s after the traffic stopped (want <= {self.p['conn_floor']})")
        drained = time.monotonic() - paused
        # An old upstream client starts closing timeouts.response after the swap (which comes up
        # to 2 s after the write); idle pooled connections close after timeouts.idle.
        settle = max(self.last_write + 2 + self.p["response_timeout"] + self.p["idle_timeout"] + 2,
                     paused + self.p["idle_timeout"] + 2)
        while time.monotonic() < min(settle, self.hard_deadline):
            time.sleep(0.2)
        # Then until the descriptor count holds still for 3 s (at most 30 s more).
        deadline = self.deadline(30)
        history = []
        while time.monotonic() < deadline:
            history.append(fd_count(self.pid))
            if len(history) >= 4 and len(set(history[-4:])) == 1:
                break
            time.sleep(1)
        self.say(f"{label}: connections at {conns:g} after {drained:.1f} s; fds {history[-1]}")
        return conns, tunnels

    def snapshot(self, gate, label):
        conns, tunnels = self.quiesce(gate, label)
        jcmd = self.p["jcmd"]
        for _ in range(2):
            r = subprocess.run([jcmd, str(self.pid), "GC.run"], capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                self.problems.append(f"{label}: jcmd GC.run failed: {r.stdout.strip()} {r.stderr.strip()}")
            time.sleep(0.5)
        heap_info = subprocess.run([jcmd, str(self.pid), "GC.heap_info"], capture_output=True,
                                   text=True, timeout=60).stdout
        s = scrape(self.p)
        time.sleep(0.3)  # the scrape's own admin connection closes
        st = proc_status(self.pid)
        snap = {
            "label": label,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "fds": fd_count(self.pid),
            "fd_kinds": dict(fd_kinds(self.pid)),
            "threads": int(st["Threads"]),
            "thread_names": dict(thread_names(jcmd, self.pid)),
            "native_kb": native_memory(jcmd, self.pid),
            "classes": class_histogram(jcmd, self.pid),
            "smaps_kb": smaps(self.pid),
            "rss_kb": int(st["VmRSS"].split()[0]),
            "hwm_kb": int(st["VmHWM"].split()[0]),
            # Old generation after the forced full GC (Micrometer's GC listener): the live heap.
            "heap_live_bytes": metric_sum(s, "jvm_gc_live_data_size_bytes"),
            # Every heap pool as the scrape saw it, a moment after the GC.
            "heap_used_bytes": metric_sum(s, "jvm_memory_used_bytes", area="heap"),
            "heap_committed_bytes": metric_sum(s, "jvm_memory_committed_bytes", area="heap"),
            "nonheap_used_bytes": metric_sum(s, "jvm_memory_used_bytes", area="nonheap"),
            "direct_bytes": metric_sum(s, "jvm_buffer_memory_used_bytes", id="direct"),
            "client_connections": conns,
            "tunnels_active": tunnels,
            "reloads_success": metric_sum(s, "egret_config_reloads_total", result="success"),
            "reloads_failure": metric_sum(s, "egret_config_reloads_total", result="failure"),
            "access_log_dropped": metric_sum(s, "egret_access_log_dropped_total"),
            "cpu_s": cpu_seconds(self.pid),
            "upstream_cpu_s": cpu_seconds(self.p["upstream_pid"]),
            "driver_cpu_s": sum(os.times()[:2]),
            "requests": requests_by(s),
            "heap_info": heap_info.strip().splitlines(),
            "monotonic": time.monotonic(),
        }
        if not metric_has(s, "jvm_gc_live_data_size_bytes"):
            self.problems.append("/metrics has no jvm_gc_live_data_size_bytes")
        self.say(f"{label}: fds {snap['fds']} threads {snap['threads']} RSS {snap['rss_kb'] // 1024} MiB "
                 f"heap after GC {snap['heap_live_bytes'] / 2**20:.1f} MiB")
        return snap


# ---- report --------------------------------------------------------------------------------------

def stderr_summary(path):
    """java.util.logging records on Egret's stderr ("SEVERE: message"), counted by level and the
    message's first line (digits and hex ids folded, so one cause is one entry)."""
    c = collections.Counter()
    try:
        with open(path, errors="replace") as f:
            for line in f:
                m = re.match(r"^(SEVERE|WARNING|ERROR|WARN): (.*)", line)
                if m:
                    msg = re.sub(r"@[0-9a-f]+|\b\d+\b", "#", m.group(2).strip())[:160]
                    c[f"{m.group(1)}: {msg}"] += 1
    except OSError:
        pass
    return c


def pct(xs, q):
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def report(p, soak, traffic, start, end, wall):
    md, jl, failures = [], [], list(soak.problems)
    phases = ("warmup", "soak")
    scen_names = [name for name, _ in SCENARIOS]

    md.append(f"## Egret soak: {p['duration']} s (after {p['warmup']} s warm-up), {p['workers']} workers, "
              f"config rewritten every {p['reload_every']} s (warm-up: every {p['warmup_reload_every']} s)\n")
    md.append("| scenario | sent | expected | unexpected | p50 / p99 / max s | outcomes |")
    md.append("| --- | ---: | ---: | ---: | --- | --- |")
    total = collections.Counter()
    for name in scen_names:
        t = traffic.stats.get(("soak", name))
        w = traffic.stats.get(("warmup", name))
        if t is None:
            failures.append(f"scenario {name} never ran in the measured phase")
            continue
        total["sent"] += t["sent"]
        total["expected"] += t["expected"]
        total["unexpected"] += t["unexpected"]
        outcomes = ", ".join(f"{k} {v}" for k, v in t["outcomes"].most_common())
        secs = t["seconds"]
        md.append(f"| {name} | {t['sent']} | {t['expected']} | {t['unexpected']} | "
                  f"{pct(secs, .5):.3f} / {pct(secs, .99):.3f} / {max(secs):.3f} | {outcomes} |")
        for phase, tt in (("soak", t), ("warmup", w)):
            if tt is None:
                continue
            jl.append({"name": "scenario", "phase": phase, "scenario": name, "sent": tt["sent"],
                       "expected": tt["expected"], "unexpected": tt["unexpected"],
                       "outcomes": dict(tt["outcomes"]), "examples": tt["examples"],
                       "p50_s": pct(tt["seconds"], .5), "p99_s": pct(tt["seconds"], .99),
                       "max_s": max(tt["seconds"])})
            if tt["unexpected"]:
                failures.append(f"{phase} {name}: {tt['unexpected']} unexpected outcomes of {tt['sent']}; "
                                + " | ".join(tt["examples"]))
    secs = end["monotonic"] - start["monotonic"]
    md.append(f"| **all** | {total['sent']} | {total['expected']} | {total['unexpected']} | | "
              f"{total['sent'] / p['duration']:.1f} operations/s over the {p['duration']} s |")
    warm = sum(traffic.stats[k]["sent"] for k in traffic.stats if k[0] == "warmup")
    warm_bad = sum(traffic.stats[k]["unexpected"] for k in traffic.stats if k[0] == "warmup")
    md.append(f"\nWarm-up: {warm} operations, {warm_bad} unexpected.\n")

    # Resources, quiesced: start (after the warm-up) against end.
    md.append("| figure (quiesced, after 2 forced GCs) | start | end | end / start | limit | verdict |")
    md.append("| --- | ---: | ---: | ---: | --- | --- |")
    checks = (("open file descriptors", "fds", 1, 5, ""),
              ("heap after GC (old gen live), MiB", "heap_live_bytes", 2**20, 0, ""),
              ("RSS, MiB", "rss_kb", 1024, 0, ""),
              ("threads", "threads", 1, 2, ""))
    for label, key, unit, slack, _ in checks:
        a, b = start[key], end[key]
        limit = a * (1 + p["tolerance"]) + slack * unit
        ok = b <= limit
        ratio = b / a if a else float("nan")
        fa = f"{a / unit:.1f}" if unit > 1 else f"{a:g}"
        fb = f"{b / unit:.1f}" if unit > 1 else f"{b:g}"
        md.append(f"| {label} | {fa} | {fb} | {ratio:.3f} | ≤ start × {1 + p['tolerance']:.2f}"
                  f"{f' + {slack}' if slack else ''} | {'ok' if ok else 'FAIL'} |")
        jl.append({"name": "resource", "figure": key, "start": a, "end": b, "ratio": ratio,
                   "limit": limit, "ok": ok})
        if not ok:
            failures.append(f"{label}: {fb} at the end against {fa} at the start (limit {limit / unit:.1f})")
    for label, key, unit in (("heap used a moment after GC (all pools), MiB", "heap_used_bytes", 2**20),
                             ("heap committed, MiB", "heap_committed_bytes", 2**20),
                             ("non-heap used (metaspace, code cache), MiB", "nonheap_used_bytes", 2**20),
                             ("direct buffers, MiB", "direct_bytes", 2**20),
                             ("peak RSS (VmHWM), MiB", "hwm_kb", 1024)):
        a, b = start[key], end[key]
        md.append(f"| {label} | {a / unit:.1f} | {b / unit:.1f} | {b / a if a else float('nan'):.3f} | "
                  f"(shown, not judged) | |")
        jl.append({"name": "resource", "figure": key, "start": a, "end": b, "judged": False})
    md.append(f"| egret_client_connections / egret_tunnels_active | {start['client_connections']:g} / "
              f"{start['tunnels_active']:g} | {end['client_connections']:g} / {end['tunnels_active']:g} | | "
              f"≤ {p['conn_floor']} | {'ok' if max(end['client_connections'], end['tunnels_active'], start['client_connections'], start['tunnels_active']) <= p['conn_floor'] else 'FAIL'} |")
    md.append(f"\nDescriptors by kind: start {start['fd_kinds']}, end {end['fd_kinds']}.")
    names = sorted(set(start["thread_names"]) | set(end["thread_names"]))
    moved = [f"{n} {start['thread_names'].get(n, 0)}→{end['thread_names'].get(n, 0)}" for n in names
             if start["thread_names"].get(n, 0) != end["thread_names"].get(n, 0)]
    md.append(f"Java threads (jcmd Thread.print, digits as #): {sum(start['thread_names'].values())} at the start, "
              f"{sum(end['thread_names'].values())} at the end; changed: {', '.join(moved) or 'none'}.\n")

    md.append(f"Live heap by class (jcmd GC.class_histogram), the classes that grew most, KiB: "
              f"{histogram_growth(start.get('classes', {}), end.get('classes', {}))}.\n")
    md.append(f"Resident memory (/proc/PID/smaps), the regions that moved most, KiB: "
              f"{mapping_growth(start['smaps_kb'], end['smaps_kb'], start['heap_info'])}.\n")
    if start["native_kb"] and end["native_kb"]:
        cats = sorted(set(start["native_kb"]) | set(end["native_kb"]),
                      key=lambda c: -abs(end["native_kb"].get(c, 0) - start["native_kb"].get(c, 0)))
        md.append("JVM native memory, committed (NMT), start → end KiB: " + ", ".join(
            f"{c} {start['native_kb'].get(c, 0)}→{end['native_kb'].get(c, 0)}" for c in cats
            if start["native_kb"].get(c, 0) != end["native_kb"].get(c, 0)) + ".\n")

    # Reloads.
    ok_delta = end["reloads_success"] - start["reloads_success"]
    bad_delta = end["reloads_failure"] - start["reloads_failure"]
    rewrites = soak.rewrites["soak"]
    reload_ok = ok_delta == rewrites and bad_delta == 0 and start["reloads_failure"] == 0
    md.append(f"Config reloads in the measured phase: {rewrites} rewrites, egret_config_reloads_total "
              f"success +{ok_delta:g}, failure +{bad_delta:g} (warm-up: {soak.rewrites['warmup']} rewrites; "
              f"failures since start {end['reloads_failure']:g}): {'ok' if reload_ok else 'FAIL'}.\n")
    jl.append({"name": "reloads", "rewrites": rewrites, "success_delta": ok_delta,
               "failure_delta": bad_delta, "warmup_rewrites": soak.rewrites["warmup"], "ok": reload_ok})
    if not reload_ok:
        failures.append(f"reloads: {rewrites} rewrites, success +{ok_delta:g}, failure +{bad_delta:g}"
                        f" (failures since start {end['reloads_failure']:g})")

    # Egret's own count of what it did, measured phase only.
    diff = collections.Counter()
    for k in set(start["requests"]) | set(end["requests"]):
        d = end["requests"].get(k, 0) - start["requests"].get(k, 0)
        if d:
            diff[k] = d
    md.append("| Egret: egret_requests_total (measured phase) | kind | outcome | error | count |")
    md.append("| --- | --- | --- | --- | ---: |")
    # Errors the faults cause; a failed hop with any other error is a failure nobody injected.
    caused = {"tls_certificate_error", "dns_error", "http_request_error", "http_response_incomplete",
              "destination_unavailable", "tls_protocol_error"}
    for (kind, outcome, error), v in sorted(diff.items(), key=lambda kv: -kv[1]):
        flag = ""
        if outcome == "failed" and error not in caused:
            flag = " (not caused by a fault)"
            failures.append(f"Egret counted {v:g} {kind} hops failed with {error}, which no fault causes")
        md.append(f"| | {kind} | {outcome} | {error}{flag} | {v:g} |")
        jl.append({"name": "egret_requests", "kind": kind, "outcome": outcome, "error": error, "count": v})
    egret_total = sum(diff.values())
    cpu = end["cpu_s"] - start["cpu_s"]
    md.append(f"\nEgret counted {egret_total:g} requests and tunnels in {secs:.0f} s between the snapshots "
              f"({egret_total / secs:.1f}/s); it used {cpu:.1f} CPU s ({cpu / secs * 100:.0f} % of one core; the "
              f"Python upstream {(end['upstream_cpu_s'] - start['upstream_cpu_s']) / secs * 100:.0f} %, the "
              f"clients {(end['driver_cpu_s'] - start['driver_cpu_s']) / secs * 100:.0f} %); "
              f"access-log lines dropped: {end['access_log_dropped']:g}.\n")
    if end["access_log_dropped"] - start["access_log_dropped"] > 0:
        failures.append(f"Egret dropped {end['access_log_dropped'] - start['access_log_dropped']:g} access-log lines")
    logged = stderr_summary(p["egret_stderr"])
    md.append("Egret's stderr (Vert.x/Netty log records, not judged): "
              + (", ".join(f"{n}× {msg}" for msg, n in logged.most_common(8)) or "none") + ".\n")
    jl.append({"name": "stderr", "records": dict(logged)})
    md.append(f"Setup: `{' '.join(p['jvm'])}` (jar sha256 {p['jar_sha256']}…); {p['java_version']}; {os.cpu_count()} CPUs; load average "
              f"before {p['load_before']}, after {' '.join(open('/proc/loadavg').read().split()[:3])}; "
              f"wall time {wall:.0f} s.\n")
    jl.append({"name": "summary", "operations": total["sent"], "unexpected": total["unexpected"],
               "egret_requests": egret_total, "egret_requests_per_s": egret_total / secs,
               "egret_cpu_s": cpu, "duration_s": p["duration"], "warmup_s": p["warmup"],
               "workers": p["workers"], "rate": p["rate"], "wall_s": wall,
               "failures": len(failures)})
    for snap in (start, end):
        jl.append({"name": "snapshot", **{k: v for k, v in snap.items() if k not in ("requests", "smaps_kb", "classes")},
                   "requests": {"/".join(map(str, k)): v for k, v in snap["requests"].items()}})
    jl.append({"name": "setup", "jvm": p["jvm"], "java": p["java_version"], "cpus": os.cpu_count()})

    if failures:
        md.append("### FAIL\n")
        md += [f"- {f}" for f in failures]
    else:
        md.append("Verdict: ok (no unexpected outcome; every figure within its limit).")
    text = "\n".join(md) + "\n"
    with open(os.path.join(p["out"], "results.md"), "w") as f:
        f.write(text)
    with open(os.path.join(p["out"], "results.jsonl"), "w") as f:
        for rec in jl:
            f.write(json.dumps(rec) + "\n")
    print(text)
    print(f"(also {os.path.join(p['out'], 'results.md')} and results.jsonl)")
    return not failures


def drive_main(p):
    wall0 = time.monotonic()
    soak = Soak(p)
    traffic = Traffic(p)
    gate = Gate(p["workers"], p["rate"])
    workers = [Worker(traffic, gate, i, p["seed"]) for i in range(p["workers"])]
    for w in workers:
        w.start()
    ok = False
    try:
        # The warm-up reloads faster: Vert.x starts a thread of its internal blocking pool for
        # each reload until the pool's 4 are there (docs/performance.md), and the baseline is meant
        # to be the steady state, not that ramp.
        if soak.run_phase(traffic, gate, "warmup", p["warmup"], p["warmup_reload_every"]):
            start = soak.snapshot(gate, "start")
            if soak.run_phase(traffic, gate, "soak", p["duration"], p["reload_every"]):
                end = soak.snapshot(gate, "end")
                ok = report(p, soak, traffic, start, end, time.monotonic() - wall0)
        if soak.problems and not ok:
            for prob in soak.problems:
                print(f"soak: FAIL: {prob}", file=sys.stderr)
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
        return 130
    except (OSError, subprocess.SubprocessError) as e:
        # Egret gone (no /proc entry, admin port refused) or jcmd hung: no report to make.
        state = "running" if alive(soak.pid) else "no longer running"
        print(f"soak: FAIL: {e!r} (Egret, pid {soak.pid}, is {state})", file=sys.stderr)
        for prob in soak.problems:
            print(f"soak: FAIL: {prob}", file=sys.stderr)
        return 1
    finally:
        gate.stop()
    return 0 if ok else 1


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    cmd, p = argv[1], load_params(argv[2])
    if cmd == "upstream":
        upstream_main(p)
    elif cmd == "config":
        sys.stdout.write(render_config(p, int(argv[3])))
    elif cmd == "drive":
        sys.exit(drive_main(p))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
