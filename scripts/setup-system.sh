#!/usr/bin/env bash
# System packages the build and the tests need (Debian, run as root). Idempotent.
set -euo pipefail
# cmake and nasm build the vendored libjpeg-turbo (the `turbojpeg` crate).
pkgs=(libopenmpi-dev openmpi-bin libclang-dev clang pkg-config dataset-fashion-mnist python3-venv
      cmake nasm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
