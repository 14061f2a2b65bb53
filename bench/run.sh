#!/usr/bin/env bash
# Runs one benchmark harness in Release:
#   bench/run.sh placement [--nodes N --instances N ...]   pinned to one core
#   bench/run.sh deploy [--trials N]                       builds heddle and the sample first; uses every core
#   bench/run.sh dns [--seconds N --clients N]             installs dnsperf, knot, dnsmasq if missing
#   bench/run.sh dns --via-up [--rounds N --clients 1,4]   the `heddle dns` process of a `heddle up` cluster against Knot, in turns (builds heddle first)
#   bench/run.sh lb [--seconds N --rounds N --only l4|l7]  installs haproxy, nginx-light, wrk if missing
#   bench/run.sh lb --via-up [...]                     the same through the `heddle lb` process of a `heddle up` cluster (builds heddle first)
#   bench/run.sh upgrade [--trials N]                      builds heddle and the sample first; a settings change walked over 3 UDs
#   bench/run.sh swap [--trials N]                         builds heddle and the sample first; production/staging swaps under a client loop
#   bench/run.sh failover [--trials N]                     builds heddle and the sample first; the leader of 3 controllers killed with -9
#   bench/run.sh isolation [--trials N]                    as root: an instance's launch with its own disk and namespaces vs without
#   bench/run.sh scale [--nodes N --instances N --store sqlite|etcd --no-data-planes --idle-only --logs DIR -o json]  builds heddle first; a controller (etcd: three on a 3-member etcd), a remote `heddle dns` and `heddle lb`, and one `heddle hollow` process
#                                                      (defaults 10000 nodes, 100000 instances; run it under `timeout`)
#   bench/run.sh dashboard [--nodes N --instances N]     the cluster page rendered at 10,000 nodes, against JSON of the same
#   bench/run.sh store [--commits N]                   commits/s to the SQLite store from 1, 8, 64 writers at once, against SQLite alone
#   (deploy runs on SQLite with 1 controller and on etcd with 3, in the same run; --stores sqlite|etcd for one)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
dotnet build bench/Heddle.Benchmarks/Heddle.Benchmarks.csproj -c Release --nologo -v quiet
pin=()
case "${1:-}" in
  placement)
    if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -gt 1 ]; then pin=(taskset -c 1); fi ;;
  dns)
    missing=()
    for tool in dnsperf:dnsperf knotd:knot dnsmasq:dnsmasq-base dig:dnsutils; do
      command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; fi
    for arg in "$@"; do if [ "$arg" = --via-up ]; then scripts/build.sh; fi; done ;;
  lb)
    missing=()
    for tool in haproxy:haproxy nginx:nginx-light wrk:wrk; do
      command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; fi
    for arg in "$@"; do if [ "$arg" = --via-up ]; then scripts/build.sh; fi; done ;;
  scale)
    scripts/build.sh ;;
  deploy|upgrade|swap|failover)
    scripts/build.sh
    samples/hello/build.sh artifacts/heddle/heddle artifacts/hello.hpkg >/dev/null ;;
esac
exec "${pin[@]}" dotnet bench/Heddle.Benchmarks/bin/Release/net10.0/Heddle.Benchmarks.dll "$@"
