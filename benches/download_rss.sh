#!/usr/bin/env bash
# Peak memory (VmHWM, the server process's peak resident set) while 64
# clients download one 32 MiB attachment at once (review A5 b).
#
#   benches/download_rss.sh [path/to/frontdesk] [clients] [MiB]
#
# Starts the binary on a fresh data dir, uploads the file as a visitor,
# runs the downloads with curl (each read to /dev/null), checks every
# download's length, and prints the peak RSS before and after them.
set -euo pipefail
bin=${1:-target/debug/frontdesk}
clients=${2:-64}
mib=${3:-32}
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
max=$(( mib * 1024 * 1024 ))
cat > "$tmp/frontdesk.toml" <<TOML
[server]
bind = "127.0.0.1:$port"
intents_dir = "$here/intents"
data_dir = "$tmp/data"
[limits]
requests_per_ip_per_minute = 100000
[attachments]
max_bytes = $max
max_bytes_per_conversation = $max
max_total_bytes = 0
TOML
FRONTDESK_LOG=warn "$bin" serve --config "$tmp/frontdesk.toml" >"$tmp/out" 2>"$tmp/err" &
pid=$!
up() {
  for _ in $(seq 1200); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    kill -0 $pid 2>/dev/null || { cat "$tmp/err" >&2; exit 1; }
    sleep 0.1
  done
  echo "the server did not start: $(cat "$tmp/err")" >&2
  exit 1
}
up
conv=$(curl -sf -X POST -H 'content-type: application/json' -d '{"name":"Bench"}' \
  "http://127.0.0.1:$port/api/v1/conversations")
id=$(echo "$conv" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
token=$(echo "$conv" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
python3 - "$tmp/file.png" "$mib" <<'PY'
import sys
with open(sys.argv[1], "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n")
    f.write(bytes(int(sys.argv[2]) * 1024 * 1024 - 8))
PY
att=$(curl -sf -X POST -H "authorization: Bearer $token" --data-binary "@$tmp/file.png" \
  "http://127.0.0.1:$port/api/v1/conversations/$id/attachments?name=big.png" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["records"][0]["event"]["id"])')
# Restarting clears what the upload left in memory: the peak measured is
# the downloads' own.
kill $pid; wait $pid || true
FRONTDESK_LOG=warn "$bin" serve --config "$tmp/frontdesk.toml" >"$tmp/out" 2>"$tmp/err" &
pid=$!
up
before=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
url="http://127.0.0.1:$port/api/v1/conversations/$id/attachments/$att"
start=$(date +%s.%N)
seq "$clients" | xargs -P "$clients" -I{} \
  curl -sf -H "authorization: Bearer $token" -o /dev/null -w '%{size_download}\n' "$url" >"$tmp/sizes"
end=$(date +%s.%N)
after=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
ok=$(grep -c "^$(( mib * 1024 * 1024 ))\$" "$tmp/sizes" || true)
echo "downloads complete: $ok of $clients ($mib MiB each) in $(echo "$end - $start" | bc) s"
echo "peak RSS before the downloads: $(( before / 1024 )) MiB; after: $(( after / 1024 )) MiB"
