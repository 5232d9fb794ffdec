#!/usr/bin/env bash
# Times libmmcr's training step and MMCR objective against the PyTorch twin, side by side,
# on 1 and 2 threads; prints a markdown table and writes bench/results.md.
# Usage: bench/run.sh [--quick] [bench/bench.py options, e.g. --threads 1 --only loss]
# Environment: MMCR_BENCH_BUILD (build folder, default build-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build bench
build=${MMCR_BENCH_BUILD:-build-bench}
echo "[bench] building bench_step (Release) in $build/" >&2
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DMMCR_BUILD_TESTS=OFF -DMMCR_BUILD_BENCH=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target mmcr_bench_step >/dev/null
exec /usr/bin/python3 bench/bench.py --bin "$build/bench/mmcr_bench_step" --raw "$build/bench/results.jsonl" "$@"
