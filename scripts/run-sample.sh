#!/usr/bin/env bash
# Heddle's main job on one machine: build heddle and the hello sample, start a local cluster of 3 nodes
# (`heddle up`), deploy the sample and wait until every instance is Ready, show it and reach it with curl
# (each instance, then the service VIP through the load balancer),
# then keep the cluster running until Ctrl-C, which stops everything it started.
#   scripts/run-sample.sh            run until Ctrl-C
#   scripts/run-sample.sh --check    deploy, check with curl, then stop the cluster and exit (for CI and smoke tests)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
heddle="$root/artifacts/heddle/heddle"
"$root/samples/hello/build.sh" "$heddle" "$root/artifacts/hello.hpkg"

export HEDDLE_HOME="${HEDDLE_HOME:-$HOME/.heddle}"
rm -f "$HEDDLE_HOME/up.json"
"$heddle" up --nodes 3 &
up=$!
stop() { kill -TERM "$up" 2>/dev/null || true; wait "$up" || true; }
trap 'stop; exit 130' INT TERM
for _ in $(seq 1 600); do
  [ -f "$HEDDLE_HOME/up.json" ] && break
  kill -0 "$up" 2>/dev/null || { echo "heddle up exited; see its output above" >&2; exit 1; }
  sleep 0.1
done

"$heddle" deploy "$root/artifacts/hello.hpkg" --config "$root/samples/hello/hello.config.yaml" --wait
"$heddle" status hello
echo
"$heddle" instances hello -o json | tr -d ' \n' | grep -o '"id":"hello/web/[0-9]*","service":"hello","role":"web"[^}]*"nodeAddress":"[0-9.]*"[^}]*"ports":{"http":[0-9]*}' \
  | sed -E 's/.*"nodeAddress":"([0-9.]+)".*"http":([0-9]+).*/\1:\2/' | while read -r endpoint; do
    echo "curl http://$endpoint/  ->  $(curl -sS --max-time 5 "http://$endpoint/")"
  done

vip=$("$heddle" status hello -o json | tr -d ' \n' | grep -o '"vip":"[0-9.]*"' | cut -d'"' -f4)
if [ -n "$vip" ]; then
  for _ in 1 2 3; do echo "curl http://$vip:8080/ (the service VIP)  ->  $(curl -sS --max-time 5 "http://$vip:8080/")"; done
fi

if [ "${1:-}" = "--check" ]; then
  stop
  exit 0
fi
echo "dashboard: $(grep -o '"apiUrl": "[^"]*"' "$HEDDLE_HOME/config.json" | cut -d'"' -f4) (sign in with the token in $HEDDLE_HOME/config.json; the CA is in it too)"
echo "the cluster is running: try 'artifacts/heddle/heddle status hello', 'heddle logs hello/web/0 -f', 'heddle events -f'. Ctrl-C stops it."
wait "$up"
