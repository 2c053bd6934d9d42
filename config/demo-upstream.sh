#!/usr/bin/env bash
# The quick start's third-party API: an HTTPS server on 127.0.0.1:8443, so config/demo.yaml can
# be tried on a machine with no network. On first use it makes a throwaway CA and a certificate
# for 127.0.0.1 with openssl, in config/demo/ (git-ignored); config/demo.yaml trusts that CA.
# It serves the files of config/demo/www (openssl s_server -WWW) until Ctrl-C.
set -euo pipefail
dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/demo"
mkdir -p "$dir/www"
if [[ ! -f "$dir/ca.pem" || ! -f "$dir/upstream.pem" ]]; then
  openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 30 -subj "/CN=Egret demo CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$dir/upstream.key" -out "$dir/upstream.csr" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' \
    >"$dir/upstream.ext"
  openssl x509 -req -sha256 -days 30 -in "$dir/upstream.csr" -CA "$dir/ca.pem" \
    -CAkey "$dir/ca.key" -CAcreateserial -extfile "$dir/upstream.ext" \
    -out "$dir/upstream.pem" 2>/dev/null
  echo "demo-upstream: made $dir/ca.pem and a certificate for 127.0.0.1"
fi
echo "hello from the demo upstream" >"$dir/www/hello.txt"
cd "$dir/www"
echo "demo-upstream: serving https://127.0.0.1:8443/hello.txt (Ctrl-C stops it)"
exec openssl s_server -quiet -accept 127.0.0.1:8443 -cert "$dir/upstream.pem" \
  -key "$dir/upstream.key" -WWW
