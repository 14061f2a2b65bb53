#!/usr/bin/env bash
# Runs every test: installs what the tests need, builds, runs each test project, and prints the
# totals of the whole run alone on the last line as "N passed, N failed, N skipped".
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

started=$SECONDS
# Each stage's end, with the minutes since the start, so a slow CI run shows which stage took the time.
stage() { printf 'test.sh: %s done at %d:%02d\n' "$1" $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60)); }

scripts/install-deps.sh || exit 1
stage "install-deps"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
dotnet build Heddle.slnx -c Release --nologo -v quiet 2>&1 | tee -a "$log"
build=${PIPESTATUS[0]}
if [ "$build" -ne 0 ]; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit "$build"
fi
stage "build"

# The self-contained executable and the Debian package, once, for the install tests (tests/Heddle.EndToEnd.Tests/Install).
main="Category!=TestBed&Category!=Scale&Category!=Guard"
units_pid=""
if [ $# -eq 0 ]; then
  # The unit and integration projects need neither the self-contained executable nor the package: they run while
  # those are made (their output is printed when they end); the end-to-end tests start once the package is there.
  units_log="$(mktemp)"
  trap 'rm -f "$log" "$units_log" "$units_log.rc" "$units_log.at"' EXIT
  ( dotnet test Heddle.slnx -c Release --no-build --nologo --filter "$main&FullyQualifiedName!~Heddle.EndToEnd.Tests" > "$units_log" 2>&1
    echo $? > "$units_log.rc"
    stage "unit and integration projects" > "$units_log.at" ) &
  units_pid=$!
fi

scripts/build.sh --deb 2>&1 | tee -a "$log"
package=${PIPESTATUS[0]}
stage "package"
if [ "$package" -ne 0 ]; then
  [ -z "$units_pid" ] || wait "$units_pid"
  echo "scripts/build.sh --deb failed"
  echo "0 passed, 1 failed"
  exit "$package"
fi

if [ -n "$units_pid" ]; then
  dotnet test tests/Heddle.EndToEnd.Tests -c Release --no-build --nologo --filter "$main" 2>&1 | tee -a "$log"
  status=${PIPESTATUS[0]}
  stage "end-to-end"
  wait "$units_pid"
  tee -a "$log" < "$units_log"
  cat "$units_log.at" 2>/dev/null
  units=$(cat "$units_log.rc" 2>/dev/null || echo 1)
  [ "$status" -ne 0 ] || status=$units
else
  dotnet test Heddle.slnx -c Release --no-build --nologo --filter "$main" "$@" 2>&1 | tee -a "$log"
  status=${PIPESTATUS[0]}
fi
# The test bed of hosts (hosts in network namespaces, a replicated control plane, link faults) last and alone: its
# scenarios assert times (a new leader within 5 s, commands within 2 s) that a machine busy with other tests would skew.
# Then the scale tests alone (a controller and 200 hollow agents in one process: beside other tests they starve), and
# the data plane's speed guard alone (ratios to HAProxy and Knot measured in the same run).
if [ $# -eq 0 ]; then
  dotnet test tests/Heddle.EndToEnd.Tests -c Release --no-build --nologo --filter "Category=TestBed" 2>&1 | tee -a "$log"
  bed=${PIPESTATUS[0]}
  stage "test bed"
  [ "$status" -ne 0 ] || status=$bed
  dotnet test tests/Heddle.Controller.Tests -c Release --no-build --nologo --filter "Category=Scale" 2>&1 | tee -a "$log"
  scale=${PIPESTATUS[0]}
  stage "scale"
  [ "$status" -ne 0 ] || status=$scale
  # The data plane's regression guard (heddle / HAProxy and heddle / Knot ratios from the same run) on a quiet machine.
  dotnet test tests/Heddle.EndToEnd.Tests -c Release --no-build --nologo --filter "Category=Guard" 2>&1 | tee -a "$log"
  guard=${PIPESTATUS[0]}
  stage "guard"
  [ "$status" -ne 0 ] || status=$guard
fi

# Each test assembly ends with "Passed!  - Failed: F, Passed: P, Skipped: S, Total: T" (or "Failed!  - ...").
read -r passed failed skipped < <(grep -E '^(Passed|Failed)! +- Failed:' "$log" | awk -F'[:,]' '
  { f += $2; p += $4; s += $6 } END { print p+0, f+0, s+0 }')
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1 # a test host crashed or a project failed without a summary line
fi
if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
exit "$status"
