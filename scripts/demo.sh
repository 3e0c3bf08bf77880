#!/usr/bin/env bash
# The main job: make a busybox image from the host's static busybox (there
# is no Docker Hub here) and run a container from it with the tent CLI. The
# CLI starts the daemon by itself when none answers on /run/tent/tent.sock.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tent=${TENT:-$here/bin/tent}
if [ -z "$("$tent" images -q busybox)" ]; then
	"$tent" image bootstrap busybox
fi
"$tent" run --rm busybox sh -c 'echo hello from a tent container; echo hostname: $(hostname); echo pid: $$; id'
