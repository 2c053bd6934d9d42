#!/usr/bin/env python3
"""Prints a clients: section of N gateway clients with K tokens each (1,000 tokens: 500 clients
of 2, since a config holds at most 512 clients) and a rule of its own each, for bench/ab.sh (the
cost of gateway mode against a sidecar):

  bench/gateway-clients.py 500 2 >/tmp/clients.yaml
  AB_B_YAML_FILE=/tmp/clients.yaml \\
  AB_B_PROXY_AUTH="$(bench/gateway-clients.py --auth 250)" bench/ab.sh

Client i's tokens are "bench-token-i-j" (written in the config as their SHA-256 only); --auth I
prints the Proxy-Authorization client I sends with its first token (Basic, name and token).
"""
import base64, hashlib, sys

if sys.argv[1] == "--auth":
    i = int(sys.argv[2])
    print("Basic " + base64.b64encode(f"client-{i}:bench-token-{i}-0".encode()).decode())
    sys.exit(0)
n = int(sys.argv[1])
k = int(sys.argv[2]) if len(sys.argv) > 2 else 1
print("clients:")
for i in range(n):
    hashes = ", ".join(
        '"sha256:' + hashlib.sha256(f"bench-token-{i}-{j}".encode()).hexdigest() + '"'
        for j in range(k))
    print(f"  - name: client-{i}")
    print(f"    match: {{tokens: [{hashes}]}}")
    print(f"    allow: [{{host: \"api-{i}.example\"}}]")
