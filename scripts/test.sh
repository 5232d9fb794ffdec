#!/usr/bin/env bash
# Builds mmcr and runs the whole test suite (ctest). Installs missing Debian packages first.
# MMCR_SANITIZE=1 scripts/test.sh builds with AddressSanitizer + UBSan in build-asan/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
jobs=$(nproc)
if [ "${MMCR_SANITIZE:-0}" = 1 ]; then
  dir=build-asan; extra=(-DCMAKE_BUILD_TYPE=Debug -DMMCR_SANITIZE=ON)
else
  dir=build; extra=(-DCMAKE_BUILD_TYPE=Release)
fi
# A build/ configured by hand with the tests off keeps that in its cache: switch them on
# explicitly; and an empty suite is a failure, never a pass.
extra+=(-DMMCR_BUILD_TESTS=ON)
echo "[test] configuring and building in $dir/"
cmake -S . -B "$dir" "${extra[@]}" >/dev/null
cmake --build "$dir" -j "$jobs"
echo "[test] running the test suite"
OMP_NUM_THREADS=${OMP_NUM_THREADS:-$jobs} ctest --test-dir "$dir" --output-on-failure --no-tests=error -j "$jobs" "$@"
