"""A fault-injecting HTTP proxy in front of moto's server, for the RDS Proxy
error-path tests (stdlib only).

It forwards every request to moto as it came (method, path, query, headers
with Authorization and X-Amz-*, body; moto does not check signatures) and,
driven by the rules on its command line, answers some itself:

  --throttle ACTION=N   the first N calls of ACTION get HTTP 400 Throttling
                        (AWS's "Rate exceeded"), later ones are forwarded
  --unavailable ACTION=N  the first N calls get HTTP 503 ServiceUnavailable
  --reset ACTION=N      the first N calls get headers promising 1,000 bytes,
                        10 of them, then a TCP reset (SO_LINGER 0)
  --hang ACTION=N       the first N calls are read and never answered (the
                        connection is held until the client gives up)
  --deny ACTION         every call of ACTION gets HTTP 403 AccessDenied
  --unhealthy           DescribeDBProxyTargets answers show the target
                        UNAVAILABLE with reason AUTH_FAILURE

ACTION is the AWS Query protocol's `Action=` (form body or query string),
or the operation of an `X-Amz-Target` header (JSON protocol: Secrets
Manager); `*` is every action (the first N calls, whatever they are).
Each request is logged to --log as one line `<seq> <METHOD> <ACTION>
<status> <forwarded|throttled|unavailable|reset|hung|denied>[ unhealthy]`
(status 0: nothing was answered): the action only, never a body, a header
value or a query string.

A connection refused needs no proxy: point the client at a closed port.

It listens on 127.0.0.1 on a port the kernel picks and prints
`listening <port>` on stdout once it accepts connections.

Usage: fault_proxy.py --upstream http://127.0.0.1:PORT --log FILE [rules]
"""
import argparse
import http.client
import io
import json
import re
import socket
import struct
import sys
import time
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "te", "trailers", "transfer-encoding", "upgrade", "content-length",
}

UNHEALTHY = (
    "<TargetHealth><State>UNAVAILABLE</State><Reason>AUTH_FAILURE</Reason>"
    "<Description>Proxy does not have any registered credentials for the user"
    "</Description></TargetHealth>"
)


def error_body(code, message):
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<ErrorResponse><Error><Type>Sender</Type>"
        f"<Code>{code}</Code><Message>{message}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()


def action_of(path, headers, body):
    """The AWS action a request calls, or '-'."""
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    query = urllib.parse.urlsplit(path).query
    for source in (query, body.decode("utf-8", "replace") if body else ""):
        values = urllib.parse.parse_qs(source).get("Action")
        if values:
            return values[0]
    return "-"


def make_unhealthy(xml):
    """Every target of a DescribeDBProxyTargets answer, UNAVAILABLE."""
    xml, n = re.subn(
        r"<TargetHealth\s*/>|<TargetHealth>.*?</TargetHealth>", UNHEALTHY, xml, flags=re.S
    )
    if n == 0:
        # No health reported at all: add it to each target.
        def add(m):
            members = re.sub(r"</member>", UNHEALTHY + "</member>", m.group(0))
            return members
        xml = re.sub(r"<Targets>.*?</Targets>", add, xml, flags=re.S)
    return xml


# The faults that strike the first N calls, in the order they are checked.
COUNTED = ("throttled", "unavailable", "reset", "hung")


class Rules:
    def __init__(self, args):
        self.counted = {}
        for outcome, rules in zip(
            COUNTED, (args.throttle, args.unavailable, args.reset, args.hang)
        ):
            left = self.counted.setdefault(outcome, {})
            for rule in rules:
                action, _, n = rule.partition("=")
                left[action] = int(n or "1")
        self.deny = set(args.deny)
        self.unhealthy = args.unhealthy
        self.lock = threading.Lock()
        self.seq = 0
        self.log = open(args.log, "a", buffering=1, encoding="utf-8")

    def decide(self, action):
        """'denied', one of COUNTED (counting it down) or 'forwarded'."""
        with self.lock:
            if action in self.deny:
                return "denied"
            for outcome in COUNTED:
                left = self.counted[outcome]
                for key in (action, "*"):
                    if left.get(key, 0) > 0:
                        left[key] -= 1
                        return outcome
            return "forwarded"

    def record(self, method, action, status, outcome):
        with self.lock:
            self.seq += 1
            self.log.write(f"{self.seq} {method} {action} {status} {outcome}\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fault-proxy"

    def log_message(self, format, *args):
        # BaseHTTPRequestHandler's own access log would show the request
        # line; the rules log the action instead.
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def answer(self, status, headers, body):
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        rules = self.server.rules
        body = self.read_body()
        action = action_of(self.path, self.headers, body)
        outcome = rules.decide(action)
        if outcome == "throttled":
            rules.record(self.command, action, 400, outcome)
            self.answer(400, [("Content-Type", "text/xml")],
                        error_body("Throttling", "Rate exceeded"))
            return
        if outcome == "unavailable":
            rules.record(self.command, action, 503, outcome)
            if self.headers.get("X-Amz-Target"):
                body = json.dumps({"__type": "ServiceUnavailable",
                                   "message": "Service is unavailable"}).encode()
                self.answer(503, [("Content-Type", "application/x-amz-json-1.1")], body)
            else:
                self.answer(503, [("Content-Type", "text/xml")],
                            error_body("ServiceUnavailable", "Service is unavailable"))
            return
        if outcome == "reset":
            rules.record(self.command, action, 200, outcome)
            self.reset_mid_body()
            return
        if outcome == "hung":
            rules.record(self.command, action, 0, outcome)
            self.hang()
            return
        if outcome == "denied":
            rules.record(self.command, action, 403, outcome)
            service = self.headers.get("X-Amz-Target", "rds.").split(".")[0].lower()
            if service != "secretsmanager":
                service = "rds"
            message = (
                "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: "
                f"{service}:{action} because no identity-based policy allows the "
                f"{service}:{action} action"
            )
            self.answer(403, [("Content-Type", "text/xml")],
                        error_body("AccessDenied", message))
            return
        upstream = self.server.upstream
        conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() not in HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body, headers=headers)
            response = conn.getresponse()
            status = response.status
            out_headers = response.getheaders()
            out = response.read()
        except OSError as e:
            rules.record(self.command, action, 502, "upstream-failed")
            self.answer(502, [("Content-Type", "text/plain")], f"moto: {e}".encode())
            return
        finally:
            conn.close()
        note = ""
        if rules.unhealthy and action == "DescribeDBProxyTargets" and status == 200:
            out = make_unhealthy(out.decode("utf-8")).encode("utf-8")
            note = " unhealthy"
        rules.record(self.command, action, status, outcome + note)
        self.answer(status, out_headers, out)

    def reset_mid_body(self):
        """Headers for 1,000 bytes, 10 of them, then an RST (not a FIN)."""
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n"
            b"Content-Length: 1000\r\n\r\n<Response>"
        )
        self.wfile.flush()
        # Let the headers arrive before the reset, which could overtake them.
        time.sleep(0.05)
        self.connection.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        # The socket closes for real only when its files are closed too;
        # stand-ins take their place for what the server does afterwards.
        self.rfile.close()
        self.wfile.close()
        self.connection.close()
        self.rfile, self.wfile = io.BytesIO(), io.BytesIO()
        self.close_connection = True

    def hang(self):
        """Holds the connection, unanswered, until the client goes (at most 5 min)."""
        self.connection.settimeout(300)
        try:
            while self.connection.recv(4096):
                pass
        except OSError:
            pass
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = handle_any


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="moto's URL")
    parser.add_argument("--log", required=True, help="the request log file")
    parser.add_argument("--throttle", action="append", default=[], metavar="ACTION=N")
    parser.add_argument("--unavailable", action="append", default=[], metavar="ACTION=N")
    parser.add_argument("--reset", action="append", default=[], metavar="ACTION=N")
    parser.add_argument("--hang", action="append", default=[], metavar="ACTION=N")
    parser.add_argument("--deny", action="append", default=[], metavar="ACTION")
    parser.add_argument("--unhealthy", action="store_true")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.rules = Rules(args)
    server.upstream = urllib.parse.urlsplit(args.upstream)
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
