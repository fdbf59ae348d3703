#!/usr/bin/env bash
# The README's first command: installs what is missing, builds the release
# tree, then runs the main job: sluice-echo on the epoll transport driven by
# sluice-bench for a few seconds, and prints what was measured.
set -euo pipefail
cd "$(dirname "$0")/.."

bash build/install-deps.sh --quiet
if [ ! -f _build/release/build.ninja ]; then
  meson setup _build/release --buildtype=release >/dev/null
fi
meson compile -C _build/release >/dev/null
bin=_build/release/apps

# The server announces its address (with the port the kernel chose) on stdout.
exec 3< <(exec "$bin/sluice-echo" --listen=127.0.0.1:0 --transport=epoll --cpuset=0 2>&1)
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
if ! read -r -t 10 -u 3 announce || [[ "$announce" != *" on "* ]]; then
  echo "demo: sluice-echo did not start: $announce"; exit 1
fi
target=$(sed -n 's/.* on \([^ ]*\) .*/\1/p' <<<"$announce")
echo "demo: $announce"
echo "demo: sluice-bench echo on CPU 1 (server on CPU 0), 50 connections, 64-byte messages, 5 s after 1 s of warm-up"
"$bin/sluice-bench" echo --target="$target" --cpuset=1 --connections=50 --size=64 --duration=5s --warmup=1s
kill -INT $server
wait $server
echo "demo: server stopped cleanly"
