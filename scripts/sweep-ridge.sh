#!/usr/bin/env bash
# The P = D ridge of the pretraining percent error on Fashion-MNIST (docs/analyses.md): 25 short
# MMCR runs (ResNet-18 of width 4 on 16x16 views, 200 steps, K = 2) over P, D in {16..256}; each
# run's PPE is measured after training on 5 fresh batches of P test images. Resumable: run it
# again after an interruption and it continues. Results: OUT/results.jsonl, OUT/report/.
# Usage: scripts/sweep-ridge.sh [extra `mmcr sweep` options, e.g. --threads 2]
# Environment: MMCR (an mmcr binary to use instead of building build/mmcr), MMCR_SWEEP_OUT
# (the sweep folder, default runs/sweep-ridge).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${MMCR:-}" ]; then
  scripts/deps.sh build data
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j "$(nproc)" --target mmcr >/dev/null
  MMCR=build/mmcr
fi
out=${MMCR_SWEEP_OUT:-runs/sweep-ridge}
"$MMCR" sweep --out "$out" --P 16,32,64,128,256 --D 16,32,64,128,256 --K 2 --steps 200 \
  --width 4 --image-size 16 --eval-batches 5 --threads 1 "$@"
