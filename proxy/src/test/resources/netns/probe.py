"""One probe from inside the task namespace, printing one word the test asserts on:
"got:DATA" (what the server said), "rejected" (a reset or ICMP unreachable came back, or
the local stack refused the send with EPERM, which is what an OUTPUT rule's REJECT of a
datagram looks like to the sender), "timeout", or "error:..." for anything else.

usage: probe.py tcp|udp HOST PORT
"""
import socket
import sys

kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
try:
    if kind == "tcp":
        with socket.create_connection((host, port), timeout=5) as s:
            data = b""
            while len(data) < 200:
                chunk = s.recv(200)
                if not chunk:
                    break
                data += chunk
        print("got:" + data.decode().strip())
    else:
        with socket.socket(fam, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.connect((host, port))
            s.send(b"ping")
            print("got:" + s.recv(2048).decode().strip())
except (ConnectionRefusedError, PermissionError):
    print("rejected")
except socket.timeout:
    print("timeout")
except OSError as e:
    print("error:" + str(e))
