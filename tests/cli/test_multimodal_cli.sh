#!/usr/bin/env bash
# End-to-end tests of `mmcr multimodal`: train (MMCR and CLIP) and eval on the crafted pair files
# of tests/fixtures/multimodal, a resumable two-point compare grid, export of the emoji split
# (when ruby-gemojione is installed), and clear errors for bad pair files. Usage: $0 /path/to/mmcr
set -u

MMCR=${1:?usage: $0 /path/to/mmcr}
HERE=$(cd "$(dirname "$0")" && pwd)
FIX=${MMCR_FIXTURES:-$HERE/../fixtures}/multimodal
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mmcr_mm_cli.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() { # description, command...
    local what=$1
    shift
    if "$@"; then ok; else fail "$what"; fi
}
# Value of "key" in a JSON file (one key per line, as the results are written).
json_get() { sed -n "s/.*\"$2\": *\([^,}]*\).*/\1/p" "$1" | head -n 1; }
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a > b) }'; }
# |a - b| <= 1e-5 |b| + 1e-7
close() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; m = (b < 0 ? -b : b); exit !(a != "" && d <= 1e-5 * m + 1e-7) }'; }

TINY=(--data tsv --train-tsv "$FIX/train.tsv" --test-tsv "$FIX/test.tsv" --image-size 16 --width 4 --proj-hidden 32
      --dim 16 --text-embed 16 --text-hidden 32 --epochs 6 --warmup-epochs 0 --lr 3e-3 --threads 1 --log-every 1000)

# --- help and usage errors ---
check "help exits 0" "$MMCR" multimodal --help
"$MMCR" multimodal >/dev/null 2>&1
check "no subcommand exits 2" test $? -eq 2
"$MMCR" multimodal frobnicate >/dev/null 2>&1
check "unknown subcommand exits 2" test $? -eq 2
"$MMCR" multimodal train --help >"$WORK/help.txt" 2>&1
check "train --help lists --method" grep -q -- "--method" "$WORK/help.txt"
"$MMCR" multimodal train --batch 1 >/dev/null 2>"$WORK/err.txt"
check "batch 1 is a usage error" test $? -eq 2
check "message names the option" grep -q "batch" "$WORK/err.txt"

# --- MMCR train + eval ---
"$MMCR" multimodal train "${TINY[@]}" --method mmcr --batch 8 --out "$WORK/mmcr" >"$WORK/mmcr.json" 2>"$WORK/mmcr.err"
check "mmcr train exits 0 ($(tail -n 2 "$WORK/mmcr.err"))" test $? -eq 0
for f in config.json metrics.jsonl results.json checkpoint.safetensors; do
    check "mmcr run wrote $f" test -s "$WORK/mmcr/$f"
done
r10=$(json_get "$WORK/mmcr.json" recall10_i2t)
check "mmcr result has recall10_i2t ($r10)" test -n "$r10"
check "stdout equals results.json" cmp -s "$WORK/mmcr.json" "$WORK/mmcr/results.json"
check "metrics lines name the ppe" grep -q '"ppe"' "$WORK/mmcr/metrics.jsonl"
"$MMCR" multimodal eval --checkpoint "$WORK/mmcr/checkpoint.safetensors" >"$WORK/eval.json" 2>"$WORK/eval.err"
check "eval exits 0 ($(tail -n 1 "$WORK/eval.err"))" test $? -eq 0
for k in recall1_i2t recall10_i2t recall10_t2i zero_shot ppe modality_gap; do
    a=$(json_get "$WORK/mmcr.json" $k)
    b=$(json_get "$WORK/eval.json" $k)
    check "eval reproduces $k ($a vs $b)" close "$a" "$b"
done
"$MMCR" multimodal eval --data tsv --test-tsv "$FIX/train.tsv" --checkpoint "$WORK/mmcr/checkpoint.safetensors" \
    >"$WORK/eval_train.json" 2>/dev/null
check "eval on other pairs" test "$(json_get "$WORK/eval_train.json" n_test)" = 24
"$MMCR" multimodal eval >/dev/null 2>&1
check "eval without --checkpoint exits 2" test $? -eq 2
"$MMCR" multimodal eval --checkpoint "$WORK/mmcr/results.json" >/dev/null 2>"$WORK/err.txt"
check "eval of a non-checkpoint exits 1" test $? -eq 1
"$MMCR" multimodal eval --checkpoint "$WORK/mmcr/checkpoint.safetensors" --width 13 >/dev/null 2>"$WORK/err.txt"
check "eval refuses a model option (exit 2)" test $? -eq 2
check "eval names the refused option" grep -q "option --width does not apply to eval" "$WORK/err.txt"

# --- CLIP ---
"$MMCR" multimodal train "${TINY[@]}" --method clip --batch 8 --out "$WORK/clip" >"$WORK/clip.json" 2>"$WORK/clip.err"
check "clip train exits 0 ($(tail -n 2 "$WORK/clip.err"))" test $? -eq 0
scale=$(json_get "$WORK/clip.json" logit_scale)
check "clip reports its logit scale ($scale)" gt "$scale" 1
check "clip metrics have the batch accuracy" grep -q '"batch_acc_i2t"' "$WORK/clip/metrics.jsonl"
"$MMCR" multimodal train "${TINY[@]}" --method clip --image-views 2 --augment --batch 8 --out "" >/dev/null 2>"$WORK/err.txt"
check "clip with extra image views is refused" test $? -eq 1
"$MMCR" multimodal train "${TINY[@]}" --method mmcr --image-views 2 --augment --epochs 1 --batch 8 --out "" \
    >"$WORK/k3.json" 2>/dev/null
check "mmcr with 2 augmented image views (K = 3) trains" test -n "$(json_get "$WORK/k3.json" recall10_i2t)"

# --- compare: two batch sizes, one seed; second call resumes ---
CMP=(--batches 4,8 --seeds 0 --runs-dir "$WORK/grid" --table "$WORK/docs/results.md" --img-dir "$WORK/docs/img")
"$MMCR" multimodal compare "${TINY[@]}" --epochs 2 "${CMP[@]}" >/dev/null 2>"$WORK/cmp.err"
check "compare exits 0 ($(tail -n 1 "$WORK/cmp.err"))" test $? -eq 0
check "compare wrote the table" grep -q "| MMCR | 8 |" "$WORK/docs/results.md"
check "table has CLIP rows" grep -q "| CLIP | 4 |" "$WORK/docs/results.md"
for p in recall10 recall1 zeroshot ppe gap; do
    check "plot $p written" test -s "$WORK/docs/img/multimodal-$p.png"
done
check "four runs" test "$(ls "$WORK/grid" | wc -l)" -eq 4
"$MMCR" multimodal compare "${TINY[@]}" --epochs 2 "${CMP[@]}" >/dev/null 2>"$WORK/cmp2.err"
check "compare resumes" test "$(grep -c "done before" "$WORK/cmp2.err")" -eq 4

# --- bad pair files: clear errors naming file and line, no crash ---
cp "$FIX"/red_square_0.png "$WORK/"
printf 'red_square_0.png\ta red square\nmissing.png\tnothing here\n' >"$WORK/missing.tsv"
printf 'red_square_0.png\ta red square\nred_square_0.png\t\n' >"$WORK/empty.tsv"
printf '\x89PNG\r\n\x1a\nnot really a png' >"$WORK/corrupt.png"
printf '# c\nred_square_0.png\tok\ncorrupt.png\tbroken image\n' >"$WORK/corrupt.tsv"
printf 'red_square_0.png a caption without a tab\n' >"$WORK/notab.tsv"
for case in "missing.tsv:2:missing.png" "empty.tsv:2:empty caption" "corrupt.tsv:3:corrupt" "notab.tsv:1:no tab"; do
    file=${case%%:*}
    rest=${case#*:}
    line=${rest%%:*}
    msg=${rest#*:}
    "$MMCR" multimodal train "${TINY[@]}" --train-tsv "$WORK/$file" --batch 2 --out "" >/dev/null 2>"$WORK/err.txt"
    rc=$?
    check "$file: exit 1 (got $rc)" test $rc -eq 1
    check "$file: message names $file:$line ($(cat "$WORK/err.txt"))" grep -q "$file:$line:" "$WORK/err.txt"
    check "$file: message says '$msg'" grep -q "$msg" "$WORK/err.txt"
done

# --- the real emoji data set (Debian ruby-gemojione), when installed ---
EMOJI=/usr/share/rubygems-integration/all/gems/gemojione-3.3.0
if [ -r "$EMOJI/config/index.json" ]; then
    "$MMCR" multimodal export --out-dir "$WORK" >"$WORK/export.json" 2>/dev/null
    check "export exits 0" test $? -eq 0
    ntr=$(grep -vc '^#\|^path	' "$WORK/train.tsv")
    nte=$(grep -vc '^#\|^path	' "$WORK/test.tsv")
    check "export: $ntr + $nte pairs = 1794" test $((ntr + nte)) -eq 1794
    check "export: about 20% held out ($nte)" test "$nte" -gt 300 -a "$nte" -lt 420
    check "export: captions are name + keywords" grep -q "	hundred points symbol, numbers, perfect" "$WORK/train.tsv" "$WORK/test.tsv"
else
    echo "ruby-gemojione not installed: export check skipped"
fi

echo "test_multimodal_cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
