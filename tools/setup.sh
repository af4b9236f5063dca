#!/usr/bin/env bash
# Installs every build and test dependency on a fresh Debian 12 machine (as root,
# or with sudo). Safe to run again.
set -euo pipefail
packages=(
  cmake g++ make pkg-config git
  nlohmann-json3-dev libcli11-dev libfmt-dev libpcre2-dev libutf8proc-dev
  libopenblas-dev libgtest-dev libgmock-dev libbenchmark-dev libcpp-httplib-dev
  libssl-dev zlib1g-dev libbrotli-dev  # headers httplib.h includes (Debian builds it with TLS, zlib and brotli)
  gnuplot-nox
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
