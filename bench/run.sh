#!/usr/bin/env bash
# Runs one benchmark harness in Release, pinned to one core: bench/run.sh placement [--nodes N --instances N ...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dotnet build "$root/bench/Heddle.Benchmarks/Heddle.Benchmarks.csproj" -c Release --nologo -v quiet
pin=()
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -gt 1 ]; then pin=(taskset -c 1); fi
exec "${pin[@]}" dotnet "$root/bench/Heddle.Benchmarks/bin/Release/net10.0/Heddle.Benchmarks.dll" "$@"
