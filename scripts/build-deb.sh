#!/usr/bin/env bash
# Builds the Debian package artifacts/heddle_<version>_amd64.deb with dpkg-deb alone (no debhelper) from
#   artifacts/heddle/heddle (scripts/build.sh)  -> /usr/bin/heddle
#   packaging/systemd/*.service                 -> /lib/systemd/system/ (none enabled on install)
#   packaging/etc/*.env                         -> /etc/heddle/ (conffiles: an operator's edits survive upgrades)
#   packaging/debian/{control,postinst,prerm,postrm}
# The version is the executable's own (Version in Directory.Build.props, plus its commit): 0.1.0+g1234abc.
# Depends (packaging/debian/control): libc6, libgcc-s1, libstdc++6, which the executable links; libssl3, which the
# .NET runtime loads for TLS; util-linux, mount and e2fsprogs, the host programs the agent runs (HostPrograms.cs:
# setsid, taskset, setpriv, unshare, nsenter, mount, mkfs.ext4); adduser for the postinst. Recommends runc (the
# container driver); Suggests etcd-server (several controllers), mmdebstrap and zstd (`heddle image`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
exe="$root/artifacts/heddle/heddle"
if [ ! -x "$exe" ]; then
  echo "build-deb: $exe is missing; run scripts/build.sh first (or scripts/build.sh --deb)" >&2
  exit 1
fi

full="$("$exe" --version)"                      # 0.1.0+<commit>
upstream="${full%%+*}"
version="$upstream"
if [ "$full" != "$upstream" ]; then
  version="$upstream+g${full#*+}"
  version="${version:0:$(( ${#upstream} + 9 ))}" # 0.1.0+g + 7 hex digits
fi
if ! [[ "$version" =~ ^[0-9][A-Za-z0-9.+~]*$ ]]; then
  echo "build-deb: '$full' from heddle --version is not a version dpkg accepts" >&2
  exit 1
fi

stage="$(mktemp -d /var/tmp/heddle-deb.XXXXXX)"
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage" # the package's ./ is the target's /
install -D -m 0755 "$exe" "$stage/usr/bin/heddle"
for unit in "$root"/packaging/systemd/*.service; do
  install -D -m 0644 "$unit" "$stage/lib/systemd/system/$(basename "$unit")"
done
install -d -m 0755 "$stage/etc/heddle" "$stage/DEBIAN"
for env in "$root"/packaging/etc/*.env; do
  mode=0644
  [ "$(basename "$env")" = agent.env ] && mode=0600 # it may hold the node's join string
  install -m "$mode" "$env" "$stage/etc/heddle/$(basename "$env")"
  echo "/etc/heddle/$(basename "$env")" >> "$stage/DEBIAN/conffiles"
done
for script in postinst prerm postrm; do
  install -m 0755 "$root/packaging/debian/$script" "$stage/DEBIAN/$script"
done
size="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
sed -e "s/@VERSION@/$version/" -e "s/@INSTALLED_SIZE@/$size/" "$root/packaging/debian/control" > "$stage/DEBIAN/control"

rm -f "$root"/artifacts/heddle_*_amd64.deb # one package in artifacts/, the one just built
out="$root/artifacts/heddle_${version}_amd64.deb"
# zstd: 2 s where xz (the default) took 70 s of CPU here for a somewhat smaller file; dpkg reads it since 1.21.18 (Debian 12).
dpkg-deb --build --root-owner-group -Zzstd "$stage" "$out" >/dev/null
echo "$out"
