#!/usr/bin/env bash
# Compute scaling of the pretraining percent error on Fashion-MNIST (docs/analyses.md): runs of
# 25 ... 800 steps at P = 64, D = 128, K = 2 (two seeds), PPE measured on 5 fresh batches after
# each run, then PPE(C) = E + a C^-alpha fitted with C = steps * P * K and checked on the two
# largest C values held out of the fit. Resumable. Results: OUT/results.jsonl, OUT/report/.
# Usage: scripts/sweep-scaling.sh [extra `mmcr sweep` options]
# Environment: MMCR (an mmcr binary to use instead of building build/mmcr), MMCR_SWEEP_OUT
# (the sweep folder, default runs/sweep-scaling).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${MMCR:-}" ]; then
  scripts/deps.sh build data
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j "$(nproc)" --target mmcr >/dev/null
  MMCR=build/mmcr
fi
out=${MMCR_SWEEP_OUT:-runs/sweep-scaling}
"$MMCR" sweep --out "$out" --P 64 --D 128 --K 2 --steps 25,35,50,71,100,141,200,283,400,566,800 \
  --seed 0,1 --width 4 --image-size 16 --eval-batches 5 --threads 1 --holdout 2 "$@"
# The same fit with the floor held at the random-matrix value 1 - sqrt(E|mu|^2) m(gamma)
# (paper-notes.md §4, form (b)); E|mu|^2 is measured at the largest compute each fit may use.
"$MMCR" report "$out" --fit-floor mp --out "$out/report-mp-floor"
