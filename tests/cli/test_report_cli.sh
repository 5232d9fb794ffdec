#!/usr/bin/env bash
# End-to-end tests of `mmcr report`: a training run (four figures), a sweep results file written
# here (ridge check counts, a scaling fit with its held-out check, the figures), and the errors.
# Usage: test_report_cli.sh /path/to/mmcr
set -u

MMCR=${1:?usage: $0 /path/to/mmcr}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mmcr_report_cli.XXXXXX")
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
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 < b + 0) }'; }

# --- a training run ---
write_idx "$WORK/data" 200 50
"$MMCR" train --data-dir "$WORK/data" --image-size 16 --width 2 --proj-hidden 32 --proj-out 8 --batch 16 \
    --max-steps 12 --log-every 2 --threads 1 --quiet --out "$WORK/run" > /dev/null 2>&1
"$MMCR" report "$WORK/run" > "$WORK/r.json" 2> "$WORK/r.err"
check "run report exits 0 ($(tail -n 1 "$WORK/r.err"))" [ $? -eq 0 ]
check "kind run" grep -q '"kind":"run"' "$WORK/r.json"
check "four figures" [ "$(json_get "$WORK/r.json" figures)" = 4 ]
for f in loss ppe centroid_norm lr; do check "$f.png" is_png "$WORK/run/report/$f.png"; done
"$MMCR" report "$WORK/run" --out "$WORK/elsewhere" > /dev/null 2>&1
check "--out puts the figures elsewhere" is_png "$WORK/elsewhere/ppe.png"

# --- a sweep: a 3 x 3 ridge table (P = D largest everywhere but in row P = 8 and column D = 16) and a steps
#     series following PPE = 0.15 + 0.2 (C / 3200)^-0.5 exactly ---
mkdir -p "$WORK/sw"
{
    for p in 8 16 32; do
        for d in 8 16 32; do
            ppe=0.30
            [ "$p" = "$d" ] && ppe=0.40
            [ "$p" = 8 ] && [ "$d" = 16 ] && ppe=0.50
            echo "{\"run\":\"r\",\"P\":$p,\"D\":$d,\"K\":2,\"steps\":100,\"width\":4,\"seed\":0,\"status\":\"ok\",\"compute\":$((100 * p * 2)),\"ppe\":$ppe,\"centroid_norm2\":0.6}"
        done
    done
    for s in 25 50 100 200 400 800; do
        c=$((s * 128))
        ppe=$(awk -v c="$c" 'BEGIN { printf "%.9f", 0.15 + 0.2 * (c / 3200) ^ -0.5 }')
        echo "{\"run\":\"s\",\"P\":64,\"D\":128,\"K\":2,\"steps\":$s,\"width\":8,\"seed\":0,\"status\":\"ok\",\"compute\":$c,\"ppe\":$ppe,\"centroid_norm2\":0.8}"
    done
} > "$WORK/sw/results.jsonl"
"$MMCR" report "$WORK/sw" > "$WORK/s.json" 2> "$WORK/s.err"
check "sweep report exits 0 ($(tail -n 1 "$WORK/s.err"))" [ $? -eq 0 ]
check "kind sweep" grep -q '"kind":"sweep"' "$WORK/s.json"
check "3 rows checked" [ "$(json_get "$WORK/s.json" rows_checked)" = 3 ]
check "2 rows peak at P = D" [ "$(json_get "$WORK/s.json" rows_peak_at_P_eq_D)" = 2 ]
check "2 columns peak at P = D (column 16 peaks at P = 8)" [ "$(json_get "$WORK/s.json" cols_peak_at_P_eq_D)" = 2 ]
check "one fit" [ "$(json_get "$WORK/s.json" fits)" = 1 ]
check "held-out error tiny on exact data" lt "$(json_get "$WORK/s.json" max_holdout_relative_error)" 1e-6
check "fit recovers E = 0.15" grep -q '"fit":{"n":6,"dof":3,"E":0.1500000' "$WORK/sw/report/fits.jsonl"
check "fit figure" is_png "$WORK/sw/report/fit_P64_D128_K2_width8.png"
check "heat map" is_png "$WORK/sw/report/heat_ppe_K2_steps100_w4.png"
check "theory figure" is_png "$WORK/sw/report/ppe_vs_theory_K2_steps100_w4.png"
check "row P = 8 flagged" grep -q '"P":8,"argmax_D":16,"peak_at_P":false' "$WORK/sw/report/ridge.json"
"$MMCR" report "$WORK/sw" --holdout 0 --fit-floor mp > "$WORK/s2.json" 2> /dev/null
check "fixed floor, no held-out: exit 0" [ $? -eq 0 ]
check "no held-out error" [ "$(json_get "$WORK/s2.json" max_holdout_relative_error)" = null ]
check "floor held fixed" grep -q '"fixed_floor":true' "$WORK/sw/report/fits.jsonl"

# --- errors ---
"$MMCR" report > /dev/null 2> "$WORK/e"
check "no directory: exit 2" [ $? -eq 2 ]
"$MMCR" report "$WORK/run" "$WORK/sw" > /dev/null 2> "$WORK/e"
check "two directories: exit 2" [ $? -eq 2 ]
mkdir -p "$WORK/empty"
"$MMCR" report "$WORK/empty" > /dev/null 2> "$WORK/e"
check "neither kind: exit 1" [ $? -eq 1 ]
check "message says what is missing" grep -q "results.jsonl" "$WORK/e"
"$MMCR" report "$WORK/sw" --fit-by P,colour > /dev/null 2> "$WORK/e"
check "bad --fit-by: exit 1" [ $? -eq 1 ]
check "message names --fit-by" grep -q -- "--fit-by" "$WORK/e"
"$MMCR" report "$WORK/sw" --holdout 99 > /dev/null 2> "$WORK/e"
check "--holdout out of range: exit 2" [ $? -eq 2 ]
"$MMCR" report --help > "$WORK/help" 2>&1
check "--help exits 0" [ $? -eq 0 ]

echo "test_report_cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
