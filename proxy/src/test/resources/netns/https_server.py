"""An HTTPS server for the namespace tests: answers every GET with 200 and the body
"MARK PATH", and prints "ready" once listening, then one line "request PATH" per request, so
the test can see what reached the upstream.

usage: https_server.py HOST PORT CERT_PEM KEY_PEM MARK
"""
import http.server
import ssl
import sys

host, port, cert, key, mark = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        print("request " + self.path, flush=True)
        body = (mark + " " + self.path).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer((host, port), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.minimum_version = ssl.TLSVersion.TLSv1_2
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
