#!/usr/bin/env bash
# Runs one benchmark harness in Release:
#   bench/run.sh placement [--nodes N --instances N ...]   pinned to one core
#   bench/run.sh deploy [--trials N]                       builds heddle and the sample first; uses every core
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
dotnet build bench/Heddle.Benchmarks/Heddle.Benchmarks.csproj -c Release --nologo -v quiet
pin=()
case "${1:-}" in
  placement)
    if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -gt 1 ]; then pin=(taskset -c 1); fi ;;
  deploy)
    scripts/build.sh
    samples/hello/build.sh artifacts/heddle/heddle artifacts/hello.hpkg >/dev/null ;;
esac
exec "${pin[@]}" dotnet bench/Heddle.Benchmarks/bin/Release/net10.0/Heddle.Benchmarks.dll "$@"
