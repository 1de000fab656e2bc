#!/usr/bin/env bash
# Installs what building and testing libtfm needs on Debian 12: the Debian packages that are missing,
# and (with --test) the pinned npm oracles under tests/npm/node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."

build_pkgs="meson ninja-build pkg-config gcc g++ libopenblas-dev libcjson-dev libpcre2-dev"
test_pkgs="python3-numpy python3-torch python3-sentencepiece python3-pytest sentencepiece bible-kjv bible-kjv-text
  abigail-tools clang libclang-rt-14-dev valgrind"

pkgs=$build_pkgs
[ "${1:-}" = "--test" ] && pkgs="$pkgs $test_pkgs"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
# Node.js may come from outside Debian (e.g. NodeSource); only ask apt for it when it is absent.
if [ "${1:-}" = "--test" ] && ! command -v npm >/dev/null; then missing="$missing nodejs npm"; fi
if [ -n "$missing" ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "installing Debian packages:$missing"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ "${1:-}" = "--test" ] && ! [ -d tests/npm/node_modules/node-llama-cpp ]; then
  echo "installing pinned npm oracles into tests/npm/node_modules"
  (cd tests/npm && npm install -E --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
fi
