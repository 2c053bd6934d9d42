"""One GET with Python requests (urllib3), through the proxy named by HTTP_PROXY/HTTPS_PROXY,
printing one JSON line: {"status", "body", "proxyStatus"} or {"error"}.

usage: requests_client.py URL CA_FILE
"""
import json
import sys

import requests

url, ca = sys.argv[1], sys.argv[2]
try:
    r = requests.get(url, verify=ca, timeout=10)
    print(json.dumps({"status": r.status_code, "body": r.text,
                      "proxyStatus": r.headers.get("Proxy-Status")}))
except requests.exceptions.RequestException as e:
    print(json.dumps({"error": type(e).__name__ + ": " + str(e)}))
