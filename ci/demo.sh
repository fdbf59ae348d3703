#!/usr/bin/env bash
# The README's first command: installs what is missing, builds the release
# tree, then runs the main job: two sluice-httpd upstreams behind
# sluice-gateway on the epoll transport, loaded through the gateway by
# sluice-bench for a few seconds; prints what was measured and the gateway's
# own view from its admin endpoint, then stops everything cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

bash build/install-deps.sh --quiet
if [ ! -f _build/release/build.ninja ]; then
  meson setup _build/release --buildtype=release >/dev/null
fi
meson compile -C _build/release >/dev/null
bin=_build/release/apps

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# Starts an app whose first stdout line announces "... on HOST:PORT ...";
# sets $announce to that line. The app keeps its stdout pipe (fd 3.., one per app).
start() {
  local name=$1; shift
  local fifo
  fifo=$(mktemp -u)
  mkfifo "$fifo"
  "$@" >"$fifo" 2>&1 &
  pids+=($!)
  exec {fd}<"$fifo"
  rm -f "$fifo"
  if ! read -r -t 10 -u "$fd" announce || [[ "$announce" != *" on "* ]]; then
    echo "demo: $name did not start: ${announce:-no output}"; exit 1
  fi
  fds+=("$fd")
}
addr() { sed -n 's/.* on \([^ ]*\).*/\1/p' <<<"$1"; }
fds=()

start "upstream 1" "$bin/sluice-httpd" --listen=127.0.0.1:0 --cpuset=1 --cores=1
up1=$(addr "$announce")
start "upstream 2" "$bin/sluice-httpd" --listen=127.0.0.1:0 --cpuset=1 --cores=1
up2=$(addr "$announce")
echo "demo: upstreams (sluice-httpd on CPU 1): $up1 $up2"

fifo=$(mktemp -u); mkfifo "$fifo"
"$bin/sluice-gateway" --listen=127.0.0.1:0 --upstream="$up1,$up2" --mode=http --admin=127.0.0.1:0 \
  --transport=epoll --cpuset=0 --cores=1 >"$fifo" 2>&1 &
gateway=$!
pids+=($gateway)
exec {gwfd}<"$fifo"; rm -f "$fifo"
read -r -t 10 -u "$gwfd" gw_line || { echo "demo: sluice-gateway did not start"; exit 1; }
read -r -t 10 -u "$gwfd" admin_line || { echo "demo: sluice-gateway did not start its admin endpoint"; exit 1; }
target=$(addr "$gw_line")
admin=$(addr "$admin_line")
echo "demo: $gw_line"
echo "demo: $admin_line"

echo "demo: sluice-bench http through the gateway: 100 connections, GET /, 5 s after 1 s of warm-up (load on CPU 1)"
"$bin/sluice-bench" http --target="$target" --cpuset=1 --connections=100 --duration=5s --warmup=1s \
  --expect-body='Hello, World!'

echo "demo: the gateway's own counters (http://$admin/metrics):"
metrics=$(curl -s "http://$admin/metrics")
grep -E '^sluice_gateway_(requests_total|responses_total\{[^}]*class="(2|5)xx"|errors_total|upstream_requests_total|upstream_healthy|upstream_connects_total)' <<<"$metrics" \
  | sed 's/^/  /'
busy=$(grep -E '^sluice_loop_busy_ratio' <<<"$metrics" | awk '{print $2}')
echo "  gateway loop busy ratio during the run: $busy"
echo "demo: admin endpoint was http://$admin/metrics (and /healthz)"

kill -TERM "$gateway"
if wait "$gateway"; then echo "demo: gateway stopped cleanly (exit 0)"; else echo "demo: gateway exit code $?"; exit 1; fi
cleanup
wait 2>/dev/null || true
trap - EXIT
echo "demo: upstreams stopped"
