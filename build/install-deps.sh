#!/usr/bin/env bash
# Installs every Debian package sluice needs to build, test and benchmark.
# Skips what is already present; works as root on a fresh Debian 12 (uses sudo otherwise).
# Usage: bash build/install-deps.sh [--quiet]
set -euo pipefail

packages=(
  # toolchain and build
  g++ clang meson ninja-build pkg-config git ca-certificates
  # required libraries
  libhwloc-dev hwloc libboost-dev libgtest-dev libgmock-dev
  libdpdk-dev dpdk dpdk-dev libtomlplusplus-dev libhttp-parser-dev
  # DPDK ports without a bound NIC (issue 21): AF_XDP (the PMD, libxdp with its
  # default XDP program xsk_def_xdp_prog.o, libbpf) and shared memory (memif)
  librte-net-af-xdp23 libxdp1 libbpf1 librte-net-memif23
  # TLS (core/tls) and the certificates its tests make
  libssl-dev openssl
  # the io_uring transport (liburing 2.3 on Debian 12)
  liburing-dev
  # sanitizer and fuzzing runtimes for clang (libFuzzer)
  libclang-rt-14-dev
  # the API reference (meson target "docs", test "api_docs")
  doxygen
  # peers, load tools and test helpers
  python3 python3-scapy curl wrk nginx-light haproxy sockperf iproute2 iputils-ping
  ethtool netcat-openbsd strace valgrind procps util-linux gnuplot-nox psmisc
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  [ "${1:-}" = "--quiet" ] || echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has empty package lists; refresh them once.
$sudo apt-get update -qq
# Packages such as nginx try to start a service on install; we do not want that.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
fi
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
