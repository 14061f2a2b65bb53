#!/usr/bin/env bash
# Builds the heddle executable into artifacts/heddle/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dotnet publish "$root/src/Heddle.Cli/Heddle.Cli.csproj" -c Release -o "$root/artifacts/heddle" --nologo -v quiet
