#!/usr/bin/env bash
# Installs the Debian packages that omsign's tests and benchmarks use for real.
set -euo pipefail
pkgs=(softhsm2 b3sum openssl time docker-registry apache2-utils chromium nginx-light tinyproxy)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "setup-system: need root to install ${missing[*]}; install them and rerun" >&2
    exit 0
  fi
else SUDO=; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
