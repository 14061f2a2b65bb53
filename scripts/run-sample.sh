#!/usr/bin/env bash
# Heddle's main job on this machine, until the control plane lands: build heddle, build and pack the
# hello sample, then validate the package against its model configuration and show what it holds.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
heddle="$root/artifacts/heddle/heddle"
"$root/samples/hello/build.sh" "$heddle" "$root/artifacts/hello.hpkg"
"$heddle" validate "$root/artifacts/hello.hpkg" --config "$root/samples/hello/hello.config.yaml"
"$heddle" inspect "$root/artifacts/hello.hpkg"
