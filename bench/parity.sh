#!/usr/bin/env bash
# Training parity: the same recipe through `mmcr train` and through the PyTorch twin
# (bench/torch_twin.py), both checkpoints evaluated by the same `mmcr eval` (kNN k=20, T=0.07 as
# scripts/demo.sh), then a table and the loss/PPE curves (bench/parity_report.py).
# Usage: bench/parity.sh [--quick] [--publish] [training options for both sides, e.g. --epochs 1]
#   default   the demo recipe (the `mmcr train` defaults) for its full schedule, without the
#             demo's wall-clock cap (--time-budget), so both sides run the same number of steps
#   --quick   a 100-step smoke run of the whole pipeline (checks the plumbing, not parity)
#   --publish replace the results section of docs/parity.md and docs/parity_curves.png
#   --threads N  threads of both trainings and both evaluations (default 0: all cores)
# Environment: MMCR_PARITY_OUT (default runs/parity), MMCR_BUILD_DIR (default build).
# Not run by CI: it needs PyTorch and takes as long as two demo trainings.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0 publish=0 threads=0 train_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --publish) publish=1 ;;
    --threads) threads=$2; shift ;;
    --threads=*) threads=${1#--threads=} ;;
    *) train_args+=("$1") ;;
  esac
  shift
done
train_args=(--threads "$threads" "${train_args[@]}")
[ "$quick" = 1 ] && train_args=(--max-steps 100 "${train_args[@]}")
out=${MMCR_PARITY_OUT:-runs/parity}
build=${MMCR_BUILD_DIR:-build}
scripts/deps.sh build data bench
echo "[parity] building (Release) in $build/" >&2
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target mmcr >/dev/null
mmcr=$build/mmcr
mkdir -p "$out"
knn=(--knn-k 20 --knn-t 0.07 --threads "$threads")

echo "[parity] 1/4 mmcr train ${train_args[*]:-}" >&2
$mmcr train --out "$out/mmcr" "${train_args[@]}" > "$out/mmcr_summary.json"
echo "[parity] 2/4 PyTorch twin ${train_args[*]:-}" >&2
/usr/bin/python3 bench/torch_twin.py --out "$out/torch" "${train_args[@]}" > "$out/torch_summary.json"
echo "[parity] 3/4 evaluating the mmcr encoder" >&2
$mmcr eval --checkpoint "$out/mmcr/checkpoint.safetensors" "${knn[@]}" --out "$out/eval_mmcr.json" >/dev/null
echo "[parity] 4/4 evaluating the PyTorch encoder (same evaluation code)" >&2
$mmcr eval --checkpoint "$out/torch/checkpoint.safetensors" "${knn[@]}" --out "$out/eval_torch.json" >/dev/null

note="Recipe: \`mmcr train\` defaults${train_args[*]:+ with ${train_args[*]}}; \`bench/parity.sh$([ "$quick" = 1 ] && echo ' --quick')\`, $(date +%Y-%m-%d), $(nproc) CPUs."
report=(/usr/bin/python3 bench/parity_report.py "$out" --note "$note")
[ "$publish" = 1 ] && report+=(--publish docs/parity.md)
"${report[@]}"
