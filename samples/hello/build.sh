#!/usr/bin/env bash
# Builds the sample's roles into roles/<role>/ and packs them: samples/hello/build.sh [heddle] [output.hpkg]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
heddle="${1:-$here/../../artifacts/heddle/heddle}"
output="${2:-$here/../../artifacts/hello.hpkg}"
rm -rf "$here/roles"
dotnet publish "$here/src/HelloWeb/HelloWeb.csproj" -c Release -o "$here/roles/web" --nologo -v quiet
dotnet publish "$here/src/HelloWorker/HelloWorker.csproj" -c Release -o "$here/roles/worker" --nologo -v quiet
# Debug symbols are not needed to run the roles; leaving them out keeps the package small.
find "$here/roles" -name '*.pdb' -delete
"$heddle" pack "$here" -o "$output"
