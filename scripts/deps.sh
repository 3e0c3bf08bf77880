#!/usr/bin/env bash
# Installs what building and testing tent needs on Debian 12, as root.
set -euo pipefail
pkgs=(busybox-static tini runc containerd docker.io docker-compose docker-registry skopeo buildah iproute2 procps hyperfine iperf3 make git ca-certificates qemu-system-x86 qemu-utils e2fsprogs xz-utils binutils)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v go >/dev/null; then
	if [ -x /usr/local/go/bin/go ]; then
		export PATH=$PATH:/usr/local/go/bin
	else
		echo "deps: Go is not installed (expected /usr/local/go)" >&2
		exit 1
	fi
fi
go mod download
# The guest kernel of the VM isolation mode (docs/vm.md).
"$(dirname "$0")/guest-kernel.sh"
