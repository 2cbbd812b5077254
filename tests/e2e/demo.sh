#!/usr/bin/env bash
# `make demo`: the test IdP (with a user picker), the echo upstream app and a proxy running dist/vigil.wasm with
# vigil's own login, on 127.0.0.1: `host-sim serve` (DEMO_PROXY=host-sim, the default) or the real Envoy binary
# (DEMO_PROXY=envoy, configured from examples/envoy/envoy.yaml). Prints the URL to open and the users; Ctrl-C stops
# everything. Ports: DEMO_PORT (proxy, 8080), DEMO_IDP_PORT (8081), DEMO_APP_PORT (8082); DEMO_INTERVAL (10s).
# Run from the repository root after `make wasm` and `cargo build -p host-sim` or `make envoy` (make demo does it).

set -euo pipefail

PORT=${DEMO_PORT:-8080}
IDP_PORT=${DEMO_IDP_PORT:-8081}
APP_PORT=${DEMO_APP_PORT:-8082}
INTERVAL=${DEMO_INTERVAL:-10s}
WORKERS=${DEMO_WORKERS:-4}
NODE=${NODE:-node}
HOST_SIM=${HOST_SIM_BIN:-${CARGO_TARGET_DIR:-target}/debug/host-sim}
WASM=${VIGIL_WASM:-dist/vigil.wasm}
DEMO_PROXY=${DEMO_PROXY:-host-sim}
DIR=dist/demo
PROXY=http://127.0.0.1:$PORT
SECRET=demo-secret-$RANDOM$RANDOM

case $DEMO_PROXY in
  host-sim) PROXY_BIN=$HOST_SIM ;;
  envoy) PROXY_BIN=${ENVOY_BIN:-.tools/envoy-1.40.0/envoy/_bin/envoy} ;;
  *) echo "demo: DEMO_PROXY is host-sim or envoy, not $DEMO_PROXY" >&2; exit 2 ;;
esac
for f in "$PROXY_BIN" "$WASM" tests/idp/node_modules; do
  [ -e "$f" ] || { echo "demo: $f is missing; run 'make demo'" >&2; exit 1; }
done
for p in "$PORT" "$IDP_PORT" "$APP_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "demo: port $p is in use (set DEMO_PORT, DEMO_IDP_PORT, DEMO_APP_PORT)" >&2
    exit 1
  fi
done

mkdir -p "$DIR"
rm -f "$DIR"/*.out
pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo
  echo "demo: stopped"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME PATTERN COMMAND...: runs COMMAND with stdout on a FIFO, stderr in $DIR/NAME.log, and waits (at most 60 s)
# for a stdout line matching PATTERN, which it leaves in READY_LINE.
READY_LINE=
start() {
  local name=$1 pattern=$2 line fd
  shift 2
  mkfifo "$DIR/$name.out"
  "$@" >"$DIR/$name.out" 2>"$DIR/$name.log" &
  pids+=($!)
  exec {fd}<"$DIR/$name.out"
  while IFS= read -r -t 60 -u "$fd" line; do
    if [[ $line =~ $pattern ]]; then
      READY_LINE=$line
      return 0
    fi
  done
  echo "demo: $name did not start; its log ($DIR/$name.log):" >&2
  tail -n 30 "$DIR/$name.log" >&2
  exit 1
}

start idp '^\{' "$NODE" tests/idp/provider.mjs --port "$IDP_PORT" --login-form \
  --client-id vigil --client-secret "$SECRET" \
  --redirect-uri "$PROXY/oauth2/callback" --post-logout-redirect-uri "$PROXY/" \
  --backchannel-logout-uri "$PROXY/oauth2/backchannel-logout"
ISSUER=$("$NODE" -e 'process.stdout.write(JSON.parse(process.argv[1]).issuer)' "$READY_LINE")
CONTROL=$("$NODE" -e 'process.stdout.write(JSON.parse(process.argv[1]).control)' "$READY_LINE")

start app '^\{' "$NODE" tests/idp/echo-upstream.mjs --port "$APP_PORT"

"$NODE" tests/e2e/demo-config.mjs --proxy-url "$PROXY" --issuer "$ISSUER" --client-id vigil \
  --interval "$INTERVAL" --out "$DIR/vigil.json"
if [ "$DEMO_PROXY" = envoy ]; then
  ENVOY_BIN=$PROXY_BIN start proxy '^listening on ' "$NODE" tests/e2e/run-envoy.mjs --config "$DIR/vigil.json" \
    --port "$PORT" --upstream-port "$APP_PORT" --idp-port "$IDP_PORT" --workers "$WORKERS" \
    --log "$DIR/envoy.log" --env "VIGIL_CLIENT_SECRET=$SECRET"
  PROXY_DESC="real Envoy $("$PROXY_BIN" --version | sed -n 's/.*version: [0-9a-f]*\/\([^/]*\)\/.*/\1/p') ($WORKERS workers)"
  PROXY_LOG="$DIR/envoy.log (Envoy and the filter)"
else
  start proxy '^listening on ' "$HOST_SIM" serve --wasm "$WASM" --config "$DIR/vigil.json" \
    --listen "127.0.0.1:$PORT" --upstream "127.0.0.1:$APP_PORT" --cluster "idp=127.0.0.1:$IDP_PORT" \
    --workers "$WORKERS" --profile envoy --env "VIGIL_CLIENT_SECRET=$SECRET"
  PROXY_DESC="host-sim serve ($WORKERS workers)"
  PROXY_LOG="$DIR/proxy.log (the filter)"
fi

users=$("$NODE" -e '
  fetch(process.argv[1] + "/users").then((r) => r.json()).then((users) => {
    for (const u of users) console.log(`    ${u.sub.padEnd(8)} ${u.email}  groups: ${u.groups.join(", ") || "-"}${u.email_verified ? "" : "  (email not verified)"}`);
  });' "$CONTROL")

cat <<EOF

  vigil demo: proxy-wasm filter dist/vigil.wasm in $PROXY_DESC, revalidation every $INTERVAL

  Open   $PROXY/   (an upstream app behind vigil: who is signed in, when the session was last validated and
                     is next due, a log-out button, then every header it received)
  Log in as one of:
$users
  Log out         the page's button (POST $PROXY/oauth2/logout)
  Deprovision     curl -X POST $CONTROL/users/alice/deprovision    (denied within $INTERVAL)
  Re-enable       curl -X POST $CONTROL/users/alice/enable
  Back-channel    curl -X POST $CONTROL/users/alice/backchannel-logout    (denied at once)
  Logs            $PROXY_LOG, $DIR/idp.log, $DIR/app.log
  IdP             $ISSUER (control API $CONTROL, see tests/idp/README.md)

  Ctrl-C stops everything.
EOF

# Until Ctrl-C, or until one of the three stops on its own.
set +e
wait -n "${pids[@]}"
echo "demo: a process stopped on its own; see the logs in $DIR" >&2
exit 1
