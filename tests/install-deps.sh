#!/usr/bin/env bash
# Installs what flowlua needs to build and test on Debian 12, if missing.
# Safe to run again: it does nothing when everything is there.
set -euo pipefail
packages=(build-essential cmake pkg-config python3 lua5.4 liblua5.4-dev
          lua-cjson lua-cjson-dev libcsv-dev libcurl4-openssl-dev libsqlite3-dev
          libpq-dev postgresql # the PostgreSQL history; the tests' own servers
          libmicrohttpd-dev # flowlua ui's HTTP server
          chromium-driver python3-selenium # flowlua ui's browser test (ui/browser)
          openssl tzdata graphviz nginx chromium tmux
          clang libclang-rt-14-dev) # the fuzz targets: clang 14 and its libFuzzer
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi
