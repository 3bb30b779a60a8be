#!/bin/sh
# Installs the build dependencies (Debian 12), builds AeroDB and runs the quickstart
# example. Safe to run again: it reuses the existing build directory.
set -eu
cd "$(dirname "$0")/.."
pkgs="meson ninja-build g++ pkg-config libboost1.81-dev libboost-json1.81-dev doctest-dev strace libcli11-dev libssl-dev"
if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $pkgs >/dev/null
[ -d build ] || meson setup build
# Only what the example needs; `meson test -C build` builds the rest.
ninja -C build examples/quickstart
./build/examples/quickstart "${1:-build/aerodb-data}"
