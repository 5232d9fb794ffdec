#!/usr/bin/env bash
# End-to-end tests of `mmcr geometry` on a tiny model trained on a synthetic IDX data set: JSON
# keys and consistency (bound, PPE range, the random-matrix prediction), the files of --out,
# P/K overrides, batch-statistics BN, and the error exits. Usage: test_geometry_cli.sh /path/to/mmcr
set -u

MMCR=${1:?usage: $0 /path/to/mmcr}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mmcr_geometry_cli.XXXXXX")
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
close() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d <= t) }'; }
between() { awk -v a="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(a != "" && a + 0 >= lo && a + 0 <= hi) }'; }
is_png() { [ "$(head -c 8 "$1" | od -A n -t x1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }

write_idx "$WORK/data" 300 120
"$MMCR" train --data-dir "$WORK/data" --image-size 16 --width 2 --proj-hidden 32 --proj-out 16 --batch 16 \
    --max-steps 10 --threads 1 --quiet --out "$WORK/run" > /dev/null 2> "$WORK/train.err"
check "tiny training run ($(tail -n 1 "$WORK/train.err"))" test -s "$WORK/run/checkpoint.safetensors"
CK="$WORK/run/checkpoint.safetensors"

"$MMCR" geometry --checkpoint "$CK" --batches 3 --threads 1 --out "$WORK/geo" > "$WORK/g.json" 2> "$WORK/g.err"
check "geometry exits 0 ($(tail -n 1 "$WORK/g.err"))" [ $? -eq 0 ]
check "one JSON line" [ "$(wc -l < "$WORK/g.json")" -eq 1 ]
for key in P K D batches n_data bound gamma m_gamma ppe ppe_se ppe_predicted centroid_norm2_mean centroid_norm_median \
    align mean_cos uniformity_views uniformity_centroids uniformity_uniform vmf_kappa reconstruction entropy \
    entropy_uniform mi_lower_bound rank sv_scale sv_max sv_mp_max cond cond_mp; do
    check "key $key" grep -q "\"$key\":" "$WORK/g.json"
done
check "P and K from the checkpoint" [ "$(json_get "$WORK/g.json" P)" = 16 ] && [ "$(json_get "$WORK/g.json" K)" = 2 ]
check "n_data = batches * P" [ "$(json_get "$WORK/g.json" n_data)" = 48 ]
check "bound = sqrt(16 * 16)" close "$(json_get "$WORK/g.json" bound)" 16 1e-12
check "PPE in [0, 1]" between "$(json_get "$WORK/g.json" ppe)" 0 1
c2=$(json_get "$WORK/g.json" centroid_norm2_mean)
m=$(json_get "$WORK/g.json" m_gamma)
check "ppe_predicted = 1 - sqrt(c) m" close "$(json_get "$WORK/g.json" ppe_predicted)" \
    "$(awk -v c="$c2" -v m="$m" 'BEGIN { printf "%.17g", 1 - sqrt(c) * m }')" 1e-9
check "align = 2 - 2 mean_cos" close "$(json_get "$WORK/g.json" align)" \
    "$(awk -v c="$(json_get "$WORK/g.json" mean_cos)" 'BEGIN { printf "%.17g", 2 - 2 * c }')" 1e-6
check "rank = min(P, D)" [ "$(json_get "$WORK/g.json" rank)" = 16 ]
check "cond_mp is infinite (null) at P = D" [ "$(json_get "$WORK/g.json" cond_mp)" = null ]
check "geometry.json written" grep -q '"singular_values":\[' "$WORK/geo/geometry.json"
check "geometry.json has the centroid norms" grep -q '"centroid_norms":\[' "$WORK/geo/geometry.json"
check "spectrum.png" is_png "$WORK/geo/spectrum.png"
check "centroid_norms.png" is_png "$WORK/geo/centroid_norms.png"

# Deterministic for a seed; another seed gives other batches.
"$MMCR" geometry --checkpoint "$CK" --batches 3 --threads 1 > "$WORK/g2.json" 2> /dev/null
check "same seed, same numbers" cmp -s "$WORK/g.json" "$WORK/g2.json"
"$MMCR" geometry --checkpoint "$CK" --batches 3 --threads 1 --seed 5 > "$WORK/g3.json" 2> /dev/null
check "other seed, other PPE" [ "$(json_get "$WORK/g.json" ppe)" != "$(json_get "$WORK/g3.json" ppe)" ]

# Overrides: P = 32 > D = 16, K = 4, BN with batch statistics, the training split.
"$MMCR" geometry --checkpoint "$CK" --batch 32 --views 4 --batches 2 --bn train --split train --threads 1 \
    > "$WORK/o.json" 2> "$WORK/o.err"
check "overrides exit 0 ($(tail -n 1 "$WORK/o.err"))" [ $? -eq 0 ]
check "P = 32, K = 4" [ "$(json_get "$WORK/o.json" P)" = 32 ] && [ "$(json_get "$WORK/o.json" K)" = 4 ]
check "bound = sqrt(32 * 16)" close "$(json_get "$WORK/o.json" bound)" 22.627416997969522 1e-9
check "gamma = 1/2" close "$(json_get "$WORK/o.json" gamma)" 0.5 0
check "bn recorded" grep -q '"bn":"train"' "$WORK/o.json"

# Errors.
"$MMCR" geometry > /dev/null 2> "$WORK/e1"
check "no --checkpoint: exit 2" [ $? -eq 2 ]
check "message names --checkpoint" grep -q -- "--checkpoint" "$WORK/e1"
"$MMCR" geometry --checkpoint "$WORK/none.safetensors" > /dev/null 2> "$WORK/e2"
check "missing checkpoint: exit 1" [ $? -eq 1 ]
check "message names the file" grep -q "none.safetensors" "$WORK/e2"
"$MMCR" geometry --checkpoint "$CK" --batches 0 > /dev/null 2> "$WORK/e3"
check "--batches 0: exit 2" [ $? -eq 2 ]
"$MMCR" geometry --checkpoint "$CK" --batches 1 --entropy-k 200 --threads 1 > /dev/null 2> "$WORK/e4"
check "entropy k >= data: exit 1" [ $? -eq 1 ]
check "message names the entropy k" grep -q "entropy k" "$WORK/e4"
"$MMCR" geometry --checkpoint "$CK" --batch 500 --threads 1 > /dev/null 2> "$WORK/e5"
check "P larger than the split: exit 1" [ $? -eq 1 ]
"$MMCR" geometry --help > "$WORK/help" 2>&1
check "--help exits 0" [ $? -eq 0 ]
check "--help lists --entropy-k" grep -q -- "--entropy-k" "$WORK/help"

echo "test_geometry_cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
