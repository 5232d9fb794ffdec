#!/usr/bin/env bash
# Installs the Debian 12 packages mmcr needs, only those that are missing.
# Usage: scripts/deps.sh [build|data|bench|mpi ...]   (build is always included)
set -euo pipefail
groups=(build "$@")
pkgs=()
for g in "${groups[@]}"; do
  case "$g" in
    build) pkgs+=(build-essential cmake pkg-config libopenblas-openmp-dev liblapacke-dev zlib1g-dev
                  libpng-dev libjpeg62-turbo-dev libgsl-dev libcairo2-dev libdnnl-dev fonts-dejavu-core) ;;
    data)  pkgs+=(dataset-fashion-mnist ruby-gemojione) ;;
    bench) pkgs+=(python3-torch python3-numpy python3-torchvision python3-matplotlib) ;;
    mpi)   pkgs+=(libopenmpi-dev openmpi-bin) ;;
    *) echo "deps.sh: unknown group '$g' (build, data, bench, mpi)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "[deps] all required Debian packages are installed"
  exit 0
fi
echo "[deps] missing Debian packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "[deps] not running as root: install them with" >&2
  echo "       sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "[deps] installing with apt-get (this happens once)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
