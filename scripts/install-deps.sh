#!/usr/bin/env bash
# Installs what Heddle's build and tests need on a fresh Debian 12 machine. Idempotent: it runs
# apt-get only when a package is missing, so repeated runs cost nothing.
set -euo pipefail

# Debian packages the tests and the sample use. Extend this list (never install by hand) when a test needs a tool.
packages=(ca-certificates curl util-linux mount e2fsprogs iproute2 nftables dnsutils python3 runc busybox-static mmdebstrap zstd etcd-server etcd-client gcc libc6-dev systemd gobgpd bird2 arping ethtool chromium dnsmasq-base ipxe ipxe-qemu qemu-system-x86 linux-image-cloud-amd64 haproxy nginx-light wrk knot dnsperf)
# python3: the hostile-tenant test; util-linux, mount: setpriv, setsid, unshare, mount (the agent runs them by absolute path);
# e2fsprogs: mkfs.ext4 for each instance's disk; gcc, libc6-dev: the launch test builds a library to preload; runc: the container driver; busybox-static: the tests' tiny
# base images; mmdebstrap: `heddle image build`; zstd: `heddle image import` of .tar.zst files; etcd-server, etcd-client:
# the etcd store's contract tests (etcd 3.4, started by the tests on loopback ports they pick); iproute2, nftables: the test bed
# of hosts in network namespaces (links, silent drops and loss); systemd: systemd-analyze verify
# on the packaged units (the install tests; systemd need not be running). dpkg-deb, which builds the package, is in dpkg.
# gobgpd: `heddle lb --announce bgp` starts it; bird2: the router in the BGP tests; arping: the tests ask who answers ARP for a VIP.
# chromium: the browser tests drive it headless over the DevTools protocol (tests/Heddle.Testing/Browser).
# dnsmasq-base: `heddle boot` runs its dnsmasq (DHCP, TFTP; dnsmasq-base, not dnsmasq, whose service would answer DNS on
# every interface); ipxe: the iPXE builds it serves over TFTP to cards that are not iPXE yet; qemu-system-x86, ipxe-qemu
# (QEMU's iPXE ROMs), linux-image-cloud-amd64: the network-boot test's machines and the kernel they boot.
# haproxy, nginx-light, wrk, knot, dnsperf: the data-plane guard (tests/Heddle.EndToEnd.Tests/Guard) runs `bench/run.sh lb`
# and `dns`, whose references are HAProxy (nginx the backend, wrk the client) and Knot (dnsperf the client).
# `heddle hostimage build` takes from this machine linux-image-cloud-amd64 (kernel and virtio modules), busybox-static,
# util-linux, mount and e2fsprogs (the programs the agent runs), and libssl3 (which .NET opens for TLS) into the image.

if ! command -v dotnet >/dev/null 2>&1; then
  echo "install-deps: the .NET 10 SDK (dotnet) is not on PATH; install it first (see README.md)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "install-deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
