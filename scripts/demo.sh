#!/usr/bin/env bash
# The main job, for now: make a busybox bundle from the host's static
# busybox and run a container from it with tent-runtime.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rt=${TENT_RUNTIME:-$here/bin/tent-runtime}
bundle=$(mktemp -d /tmp/tent-demo.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
mkdir -p "$bundle/rootfs/bin"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for applet in $("$bundle/rootfs/bin/busybox" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$bundle/rootfs/bin/$applet"
done
cd "$bundle"
"$rt" spec
# No terminal, and a command instead of an interactive shell.
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"sh", "-c", "echo hello from a tent container; echo hostname: $(hostname); echo pid: $$; id"/' config.json
"$rt" run "demo-$$"
