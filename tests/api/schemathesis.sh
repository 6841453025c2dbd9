#!/usr/bin/env bash
# Property-based run of schemathesis (PyPI) against the live server's own
# /api/v1/openapi.json: no 5xx, and every response conforms to the document
# (status, content type, headers, body schema). Used by .ci/run.
#
#   bash tests/api/schemathesis.sh [MAX_EXAMPLES]
#
# Installs schemathesis into target/schemathesis-venv on first use.
set -euo pipefail
cd "$(dirname "$0")/../.."
examples="${1:-40}"
venv=target/schemathesis-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "schemathesis==4.32.5"
fi
cargo build --quiet
tmp="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
# A copy of the intents: the admin API writes intent files, and a run must
# never write into the repository's intents/.
cp -R intents "$tmp/intents"
# Generous rate limits, so the run reaches past them into the handlers
# (429s are still documented and checked when they happen).
cat > "$tmp/frontdesk.toml" <<TOML
[server]
bind = "127.0.0.1:0"
intents_dir = "$tmp/intents"
data_dir = "$tmp/data"
[limits]
messages_per_minute = 100000
conversations_per_ip_per_minute = 100000
requests_per_ip_per_minute = 1000000
TOML
FRONTDESK_LOG=warn target/debug/frontdesk serve --config "$tmp/frontdesk.toml" > "$tmp/out" 2> "$tmp/err" &
server_pid=$!
for _ in $(seq 1 100); do
  grep -q "listening on" "$tmp/out" 2>/dev/null && break
  sleep 0.1
done
addr="$(sed -n 's#^frontdesk listening on \(http://.*\)$#\1#p' "$tmp/out")"
token="$(grep '^fd_' "$tmp/out" | head -n1)"
[ -n "$addr" ] && [ -n "$token" ] || { cat "$tmp/out" "$tmp/err"; echo "server did not start"; exit 1; }
echo "server at $addr"
status=0
run() {
  "$venv/bin/schemathesis" run "$addr/api/v1/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --header "Authorization: Bearer $token" \
    --max-examples "$examples" \
    --workers 2 \
    --request-timeout 60 \
    --seed 1 \
    --no-color "$@" || status=$?
}
# `POST /api/v1/admin/agents` with the name `admin` once gave the admin a
# new token, so run in the same pass it logged the run out, and every
# admin operation generated after it was answered 401 (15 of them were
# never reached). An existing name is refused now (409 `agent_exists`);
# it still runs last, on its own, as the agents it creates would change
# what the runs before it see. The timeout is generous because
# this is the debug build: an intent edit or a replay rebuilds the intent
# set, seconds each in debug on a busy machine. The agent management under
# it (rename, make admin or not, rotate a token, disable, remove) runs just
# before, after everything else: the admin cannot demote, disable or remove
# itself (409 `last_admin` / `own_account`), but a rotation of its own
# token (the name `admin`) would log the run out like the POST does.
run --exclude-path-regex '^/api/v1/admin/agents'
run --include-path-regex '^/api/v1/admin/agents/'
run --include-path /api/v1/admin/agents
if grep -qi "panicked" "$tmp/err"; then
  echo "the server panicked:"; cat "$tmp/err"; status=1
fi
exit "$status"
