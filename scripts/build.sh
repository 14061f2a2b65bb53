#!/usr/bin/env bash
# Builds heddle as one self-contained executable for linux-x64 into artifacts/heddle/heddle: the .NET runtime is
# inside it, so a node needs none. With --deb, also the Debian package artifacts/heddle_<version>_amd64.deb
# (scripts/build-deb.sh).
#   scripts/build.sh               the executable
#   scripts/build.sh --deb         the executable and the package
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
deb=false
for arg in "$@"; do
  case "$arg" in
    --deb) deb=true ;;
    *) echo "usage: scripts/build.sh [--deb]" >&2; exit 2 ;;
  esac
done

# PublishSingleFile + SelfContained: one file holding the runtime, the framework and every assembly of Heddle.
# IncludeNativeLibrariesForSelfExtract: SQLite's native library (libe_sqlite3.so) goes inside it too; the runtime
#   unpacks it at start to $DOTNET_BUNDLE_EXTRACT_BASE_DIR (default ~/.net), so nothing needs to sit beside heddle.
# PublishReadyToRun: Heddle's assemblies and its NuGet dependencies compiled ahead of time (the framework's come
#   compiled in the runtime pack; Heddle.Cli.csproj keeps them out of the compile list). A fresh process has no JIT
#   to do before it works: measured on this 2-core machine, a fresh `heddle up` cluster deploys the hello sample's
#   3 instances in 0.81 s instead of 1.14 s and a busybox service's 3 in 0.38 s instead of 0.66 s (bench/run.sh
#   deploy), `heddle validate` takes 0.05 s instead of 0.13 s, and a host image's agent starts several times sooner
#   under QEMU TCG. It costs 37 MB of file (146 MB) and about 2 minutes of publish.
# DebugType=none: no .pdb beside it. InvariantGlobalization is on for every project (Directory.Build.props): no libicu.
# No trimming: Heddle uses reflection (JSON, gRPC, YARP) that trimming would break, and its warnings are not wanted.
staging="$root/artifacts/.publish"
rm -rf "$staging"
dotnet publish "$root/src/Heddle.Cli/Heddle.Cli.csproj" -c Release -r linux-x64 --self-contained \
  -p:PublishSingleFile=true -p:IncludeNativeLibrariesForSelfExtract=true -p:PublishReadyToRun=true -p:DebugType=none \
  -o "$staging" --nologo -v quiet
extra="$(find "$staging" -mindepth 1 ! -name heddle)"
if [ -n "$extra" ]; then
  echo "build: the publish left more than the executable beside it:" >&2
  echo "$extra" >&2
  exit 1
fi

# Replaced by a rename, so a heddle running from the old file keeps running; the folder holds the executable alone.
mkdir -p "$root/artifacts/heddle"
find "$root/artifacts/heddle" -mindepth 1 ! -name heddle -exec rm -rf {} +
mv -f "$staging/heddle" "$root/artifacts/heddle/heddle"
rm -rf "$staging"

# The ReadyToRun twin earlier builds made for host images: the executable is that build now.
rm -rf "$root/artifacts/hostimage"

if $deb; then
  "$root/scripts/build-deb.sh"
fi
