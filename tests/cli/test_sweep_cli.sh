#!/usr/bin/env bash
# End-to-end tests of `mmcr sweep` on a synthetic IDX data set: a 2 x 2 grid stopped after three
# runs and continued (no run repeated), the results file and the report, a refused restart with
# other options, and the usage errors. Usage: test_sweep_cli.sh /path/to/mmcr
set -u

MMCR=${1:?usage: $0 /path/to/mmcr}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mmcr_sweep_cli.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
. "$HERE/lib_idx.sh"

passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() { # description, command...
    local what=$1
    shift
    if "$@"; then ok; else fail "$what"; fi
}
json_get() { sed -n "s/.*\"$2\": *\([^,}]*\).*/\1/p" "$1" | head -n 1; }
is_png() { [ "$(head -c 8 "$1" | od -A n -t x1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }

write_idx "$WORK/data" 300 120
TINY=(--data-dir "$WORK/data" --P 8,16 --D 8,16 --steps 10 --width 2 --proj-hidden 32 --threads 1 --eval-batches 2
      --log-every 5 --out "$WORK/sw")

"$MMCR" sweep "${TINY[@]}" --max-runs 3 > "$WORK/s1.json" 2> "$WORK/s1.err"
check "first call exits 0 ($(tail -n 1 "$WORK/s1.err"))" [ $? -eq 0 ]
check "three runs finished" [ "$(json_get "$WORK/s1.json" finished)" = 3 ]
check "grid of four" [ "$(json_get "$WORK/s1.json" runs)" = 4 ]
check "three result lines" [ "$(wc -l < "$WORK/sw/results.jsonl")" -eq 3 ]
check "progress names the runs" grep -q "run 1/4 P8_D8_K2_steps10_w2_seed0" "$WORK/s1.err"
"$MMCR" sweep "${TINY[@]}" > "$WORK/s2.json" 2> "$WORK/s2.err"
check "second call exits 0 ($(tail -n 1 "$WORK/s2.err"))" [ $? -eq 0 ]
check "one run finished" [ "$(json_get "$WORK/s2.json" finished)" = 1 ]
check "three skipped" [ "$(json_get "$WORK/s2.json" skipped)" = 3 ]
check "four result lines" [ "$(wc -l < "$WORK/sw/results.jsonl")" -eq 4 ]
for run in P8_D8 P8_D16 P16_D8 P16_D16; do
    check "$run once" [ "$(grep -c "\"run\":\"${run}_K2_steps10_w2_seed0\"" "$WORK/sw/results.jsonl")" -eq 1 ]
    check "$run done marker" test -s "$WORK/sw/runs/${run}_K2_steps10_w2_seed0/result.json"
done
for key in P D K steps width seed status compute flops ppe ppe_se centroid_norm2 train_loss train_ppe \
    train_centroid_norm2 train_seconds; do
    check "result key $key" grep -q "\"$key\":" <(head -n 1 "$WORK/sw/results.jsonl")
done
check "ridge check ran on 2 rows" [ "$(json_get "$WORK/s2.json" rows_checked)" = 2 ]
check "heat map" is_png "$WORK/sw/report/heat_ppe_K2_steps10_w2.png"
check "ridge figure" is_png "$WORK/sw/report/ridge_K2_steps10_w2.png"
check "ridge.json" grep -q '"rows_checked":2' "$WORK/sw/report/ridge.json"
check "tables.md" grep -q "PPE on fresh batches" "$WORK/sw/report/tables.md"
cp "$WORK/sw/results.jsonl" "$WORK/before.jsonl"
"$MMCR" sweep "${TINY[@]}" --no-report > "$WORK/s3.json" 2> /dev/null
check "third call: nothing to do" [ "$(json_get "$WORK/s3.json" finished)" = 0 ]
check "results unchanged" cmp -s "$WORK/before.jsonl" "$WORK/sw/results.jsonl"

# Other options into the same folder: refused, naming the option.
"$MMCR" sweep "${TINY[@]}" --lr 0.01 > /dev/null 2> "$WORK/e1"
check "other --lr: exit 1" [ $? -eq 1 ]
check "message names train.lr" grep -q "train.lr" "$WORK/e1"

# Usage errors: exit 2, message names the option.
bad() { # expected text, arguments...
    local name=$1
    shift
    "$MMCR" sweep --data-dir "$WORK/data" --out "$WORK/bad" "$@" > "$WORK/out" 2> "$WORK/err"
    local rc=$?
    if [ $rc -eq 2 ] && grep -q -- "$name" "$WORK/err" && [ ! -s "$WORK/out" ]; then
        ok
    else
        fail "sweep $* -> rc $rc, stderr: $(cat "$WORK/err")"
    fi
}
bad "--P" --P 8,,16
bad "--P" --P 0
bad "--P" --P 8,8
bad "--D" --D x
bad "--steps" --steps 10,
bad "--seed" --seed -1
bad "--batch" --batch 8
bad "--eval" --eval sometimes
bad "--eval-batches" --eval-batches 0
check "nothing written by usage errors" [ ! -e "$WORK/bad" ]

"$MMCR" sweep --help > "$WORK/help" 2>&1
check "--help exits 0" [ $? -eq 0 ]
for opt in --P --D --K --steps --width --eval-batches --eval --lr --image-size; do
    check "--help lists $opt" grep -q -- "$opt " "$WORK/help"
done
check "--help has no --batch" bash -c "! grep -q -- '--batch ' '$WORK/help'"

echo "test_sweep_cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
