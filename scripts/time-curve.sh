#!/usr/bin/env bash
# Accuracy against training time for the default recipe: one `mmcr train --time-budget S` per
# budget (the one-cycle schedule is re-planned to fit each budget, so every point is a complete
# run, not a snapshot of a longer one), each evaluated like scripts/demo.sh (linear probe, kNN
# k=20 T=0.07, 1%-label probe on the 10,000 test images). Rows go to OUT/curve.jsonl (one JSON
# object per budget, appended as each finishes; a budget already in the file is not re-run) and
# a table to OUT/curve.md.
# Usage: scripts/time-curve.sh [--budgets 300,780,1560] [extra `mmcr train` options]
# Environment: MMCR_CURVE_OUT (default runs/time-curve). Not run by CI: it takes the sum of the
# budgets plus about 2 minutes of evaluation per budget.
set -euo pipefail
cd "$(dirname "$0")/.."
budgets=300,780,1560
train_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --budgets) budgets=$2; shift ;;
    --budgets=*) budgets=${1#--budgets=} ;;
    *) train_args+=("$1") ;;
  esac
  shift
done
scripts/deps.sh build data
echo "[curve] building (Release) in build/" >&2
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target mmcr >/dev/null
mmcr=build/mmcr
out=${MMCR_CURVE_OUT:-runs/time-curve}
mkdir -p "$out"
touch "$out/curve.jsonl"
field() { sed -n "s/.*\"$2\":\([-0-9.e]*\).*/\1/p" "$1"; }

IFS=, read -r -a list <<< "$budgets"
for b in "${list[@]}"; do
  if grep -q "\"budget_s\":$b," "$out/curve.jsonl"; then
    echo "[curve] budget ${b} s already measured, skipped" >&2
    continue
  fi
  run="$out/budget_$b"
  echo "[curve] training with --time-budget $b ${train_args[*]:-}" >&2
  t0=$(date +%s)
  $mmcr train --out "$run" --time-budget "$b" --quiet "${train_args[@]}" > "$run.train.json"
  t1=$(date +%s)
  echo "[curve] evaluating the budget-$b encoder" >&2
  $mmcr eval --checkpoint "$run/checkpoint.safetensors" --knn-k 20 --knn-t 0.07 --out "$run.eval.json" >/dev/null
  printf '{"budget_s":%s,"train_wall_s":%s,"steps":%s,"linear_top1":%s,"knn_top1":%s,"low_label_top1":%s}\n' \
    "$b" "$((t1 - t0))" "$(field "$run.train.json" steps)" "$(field "$run.eval.json" linear_top1)" \
    "$(field "$run.eval.json" knn_top1)" "$(field "$run.eval.json" low_label_top1)" >> "$out/curve.jsonl"
done

{
  echo "| budget | training wall time | steps | linear | kNN | 1%-labels |"
  echo "|---|---|---|---|---|---|"
  sort -t: -k2 -n "$out/curve.jsonl" | while read -r line; do
    f=$(mktemp); echo "$line" > "$f"
    awk -v b="$(field "$f" budget_s)" -v w="$(field "$f" train_wall_s)" -v s="$(field "$f" steps)" \
        -v l="$(field "$f" linear_top1)" -v k="$(field "$f" knn_top1)" -v o="$(field "$f" low_label_top1)" \
        'BEGIN { printf "| %d s (%.1f min) | %d s | %d | %.2f | %.2f | %.2f |\n", b, b / 60, w, s, 100 * l, 100 * k, 100 * o }'
    rm -f "$f"
  done
} | tee "$out/curve.md"
