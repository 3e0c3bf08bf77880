#!/usr/bin/env bash
# Fetches the guest kernel of tent's VM isolation mode (docs/vm.md) from
# Debian's packages: the cloud kernel's vmlinuz and the few modules the
# guest's initramfs loads (virtio transport, disk, serial port). Nothing is
# installed into /boot. Usage: guest-kernel.sh [DEST], default
# /usr/local/lib/tent/vm. Run as root on Debian 12.
set -euo pipefail
dest=${1:-/usr/local/lib/tent/vm}
meta=linux-image-cloud-amd64
pkg=$(apt-cache depends "$meta" | awk '/Depends: linux-image-/{print $2; exit}')
if [ -z "$pkg" ]; then
	echo "guest-kernel: no package behind $meta" >&2
	exit 1
fi
modules="virtio_ring virtio virtio_mmio virtio_blk virtio_console failover net_failover virtio_net"
stamp="$pkg: $modules"
if [ -f "$dest/kernel.version" ] && [ "$(cat "$dest/kernel.version")" = "$stamp" ]; then
	exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
(cd "$work" && apt-get download -q "$pkg" >/dev/null 2>&1 || { apt-get update -qq && apt-get download -q "$pkg" >/dev/null; })
dpkg-deb -x "$work"/*.deb "$work/x"
mkdir -p "$dest/modules"
rm -f "$dest"/modules/*.ko
cp "$work"/x/boot/vmlinuz-* "$dest/vmlinuz"
# In load order: each after the ones it needs.
for m in $modules; do
	f=$(find "$work/x/lib/modules" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" | head -1)
	if [ -z "$f" ]; then
		echo "guest-kernel: $pkg has no module $m" >&2
		exit 1
	fi
	case "$f" in
	*.xz) xz -dc "$f" > "$dest/modules/$m.ko" ;;
	*.zst) zstd -qdc "$f" > "$dest/modules/$m.ko" ;;
	*) cp "$f" "$dest/modules/$m.ko" ;;
	esac
	echo "$m.ko"
done > "$dest/modules/order"
echo "$stamp" > "$dest/kernel.version"
