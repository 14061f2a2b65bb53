#!/usr/bin/env bash
# Builds heddle as one self-contained executable for linux-x64 into artifacts/heddle/heddle: the .NET runtime is
# inside it, so a node needs none. With --deb, also the Debian package artifacts/heddle_<version>_amd64.deb
# (scripts/build-deb.sh). With --host-image, also artifacts/hostimage/heddle: the same executable published ReadyToRun,
# for `heddle hostimage build --heddle` (a machine booting under QEMU TCG runs guest code several times slower, and
# JIT at start-up shows: measured here, the agent's start to its first line 24 s without ReadyToRun, 7 s with it).
#   scripts/build.sh               the executable
#   scripts/build.sh --deb         the executable and the package
#   scripts/build.sh --host-image  the executable and its ReadyToRun twin (about 10 minutes more, cold)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
deb=false
hostimage=false
for arg in "$@"; do
  case "$arg" in
    --deb) deb=true ;;
    --host-image) hostimage=true ;;
    *) echo "usage: scripts/build.sh [--deb] [--host-image]" >&2; exit 2 ;;
  esac
done

# PublishSingleFile + SelfContained: one file holding the runtime, the framework and every assembly of Heddle.
# IncludeNativeLibrariesForSelfExtract: SQLite's native library (libe_sqlite3.so) goes inside it too; the runtime
#   unpacks it at start to $DOTNET_BUNDLE_EXTRACT_BASE_DIR (default ~/.net), so nothing needs to sit beside heddle.
# No PublishReadyToRun: measured on this 2-core machine it starts commands ~20-30 % sooner (`heddle --version`
#   240 ms instead of 295 ms, `heddle controller --help` 400 instead of 560) but makes the file 31 MB larger and the
#   publish ~10 minutes longer cold (it compiles the whole framework again, 340 assemblies); see README "Install".
# DebugType=none: no .pdb beside it. InvariantGlobalization is on for every project (Directory.Build.props): no libicu.
# No trimming: Heddle uses reflection (JSON, gRPC, YARP) that trimming would break, and its warnings are not wanted.
staging="$root/artifacts/.publish"
rm -rf "$staging"
dotnet publish "$root/src/Heddle.Cli/Heddle.Cli.csproj" -c Release -r linux-x64 --self-contained \
  -p:PublishSingleFile=true -p:IncludeNativeLibrariesForSelfExtract=true -p:PublishReadyToRun=false -p:DebugType=none \
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

if $hostimage; then
  rm -rf "$staging"
  dotnet publish "$root/src/Heddle.Cli/Heddle.Cli.csproj" -c Release -r linux-x64 --self-contained \
    -p:PublishSingleFile=true -p:IncludeNativeLibrariesForSelfExtract=true -p:PublishReadyToRun=true -p:DebugType=none \
    -o "$staging" --nologo -v quiet
  mkdir -p "$root/artifacts/hostimage"
  mv -f "$staging/heddle" "$root/artifacts/hostimage/heddle"
  rm -rf "$staging"
fi

if $deb; then
  "$root/scripts/build-deb.sh"
fi
