"""Marker servers for the namespace tests: each TCP connection gets one line naming the
server ("MARK\n") and is closed; each UDP datagram is answered with "MARK". Prints "ready"
once every socket is bound, so the test can await it.

usage: servers.py tcp:HOST:PORT:MARK ... udp:HOST:PORT:MARK ...
"""
import socket
import sys
import threading


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def split(spec):
    kind, rest = spec.split(":", 1)
    rest, mark = rest.rsplit(":", 1)
    host, port = rest.rsplit(":", 1)
    return kind, host.strip("[]"), int(port), mark


def serve_tcp(sock, mark):
    while True:
        conn, _ = sock.accept()
        try:
            conn.sendall((mark + "\n").encode())
        except OSError:
            pass
        finally:
            conn.close()


def serve_udp(sock, mark):
    while True:
        _, peer = sock.recvfrom(2048)
        sock.sendto(mark.encode(), peer)


threads = []
for spec in sys.argv[1:]:
    kind, host, port, mark = split(spec)
    if kind == "tcp":
        s = socket.socket(family(host), socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        s.listen(64)
        threads.append(threading.Thread(target=serve_tcp, args=(s, mark), daemon=True))
    else:
        s = socket.socket(family(host), socket.SOCK_DGRAM)
        s.bind((host, port))
        threads.append(threading.Thread(target=serve_udp, args=(s, mark), daemon=True))
for t in threads:
    t.start()
print("ready", flush=True)
for t in threads:
    t.join()
