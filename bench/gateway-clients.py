#!/usr/bin/env python3
"""Prints a clients: section of N gateway clients, each with a token and a rule of its own, for
bench/ab.sh (the cost of gateway mode against a sidecar):

  AB_B_YAML="$(bench/gateway-clients.py 1000)" \\
  AB_B_PROXY_AUTH="$(bench/gateway-clients.py 1000 --auth 500)" bench/ab.sh

Client i's token is "bench-token-i" (written in the config as its SHA-256 only); --auth I prints
the Proxy-Authorization client I sends (Basic, its name and token).
"""
import base64, hashlib, sys

n = int(sys.argv[1])
if len(sys.argv) == 4 and sys.argv[2] == "--auth":
    i = int(sys.argv[3])
    print("Basic " + base64.b64encode(f"client-{i}:bench-token-{i}".encode()).decode())
    sys.exit(0)
print("clients:")
for i in range(n):
    digest = hashlib.sha256(f"bench-token-{i}".encode()).hexdigest()
    print(f"  - name: client-{i}")
    print(f"    match: {{tokens: [\"sha256:{digest}\"]}}")
    print(f"    allow: [{{host: \"api-{i}.example\"}}]")
