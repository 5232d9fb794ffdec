#!/usr/bin/env bash
# End-to-end tests of `mmcr theory`: JSON keys and values, grid size, Monte Carlo keys, the
# plots, and the error exits. Usage: test_theory_cli.sh /path/to/mmcr
set -u

MMCR=${1:?usage: $0 /path/to/mmcr}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mmcr_theory_cli.XXXXXX")
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

# Value of "key" in the first line of a file of flat JSON objects.
json_get() { sed -n "s/.*\"$2\": *\([^,}]*\).*/\1/p" "$1" | head -n 1; }
# |a - b| <= atol
close() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d <= t) }'; }
is_png() { [ "$(head -c 8 "$1" | od -A n -t x1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }

# --- one point: keys and values at P = D (m = 8 / (3 pi)) ---
"$MMCR" theory --P 64 --D 64 --K 4 > "$WORK/one.jsonl" 2> "$WORK/one.err"
check "exit 0 for a valid call" [ $? -eq 0 ]
check "one line for one grid point" [ "$(wc -l < "$WORK/one.jsonl")" -eq 1 ]
for key in P D K bound gamma m_gamma ppe_aligned ppe_init; do
    check "key $key present" grep -q "\"$key\":" "$WORK/one.jsonl"
done
check "no ppe_predicted without --centroid-norm2" bash -c "! grep -q ppe_predicted '$WORK/one.jsonl'"
check "no Monte Carlo keys without --monte-carlo" bash -c "! grep -q mc_ '$WORK/one.jsonl'"
check "m_gamma = 8/(3 pi) at P = D" close "$(json_get "$WORK/one.jsonl" m_gamma)" 0.848826363156775 1e-12
check "ppe_aligned = 0.151174 at P = D" close "$(json_get "$WORK/one.jsonl" ppe_aligned)" 0.151174 1e-5
check "ppe_init = 1 - m/2 for K = 4" close "$(json_get "$WORK/one.jsonl" ppe_init)" 0.575586818421612 1e-12
check "bound = 64" close "$(json_get "$WORK/one.jsonl" bound)" 64 0
check "gamma = 1" close "$(json_get "$WORK/one.jsonl" gamma)" 1 0

# --- rectangular: bound sqrt(P min) and gamma min/max; table value m(1/4) ---
"$MMCR" theory --P 256 --D 64 > "$WORK/rect.jsonl"
check "bound = sqrt(256*64)" close "$(json_get "$WORK/rect.jsonl" bound)" 128 1e-12
check "gamma = 1/4" close "$(json_get "$WORK/rect.jsonl" gamma)" 0.25 0
check "m(1/4) from the table" close "$(json_get "$WORK/rect.jsonl" m_gamma)" 0.967688 1e-6
"$MMCR" theory --P 64 --D 256 --centroid-norm2=0.81 > "$WORK/rect2.jsonl"
check "bound = P for P < D" close "$(json_get "$WORK/rect2.jsonl" bound)" 64 0
check "same m for P <-> D" [ "$(json_get "$WORK/rect.jsonl" m_gamma)" = "$(json_get "$WORK/rect2.jsonl" m_gamma)" ]
check "ppe_predicted = 1 - 0.9 m" close "$(json_get "$WORK/rect2.jsonl" ppe_predicted)" 0.1290812398657765 1e-12

# --- grid: |P| x |D| x |K| lines, P outermost ---
"$MMCR" theory --P 16,32,64 --D 64,128 --K 1,2,8 > "$WORK/grid.jsonl"
check "grid exit 0" [ $? -eq 0 ]
check "grid has 3*2*3 = 18 lines" [ "$(wc -l < "$WORK/grid.jsonl")" -eq 18 ]
check "grid starts at P=16 D=64 K=1" grep -q '^{"P":16,"D":64,"K":1,' <(head -n 1 "$WORK/grid.jsonl")
check "grid ends at P=64 D=128 K=8" grep -q '^{"P":64,"D":128,"K":8,' <(tail -n 1 "$WORK/grid.jsonl")

# --- Monte Carlo keys and a loose agreement with the prediction (P = D = 32, 40 samples) ---
"$MMCR" theory --P 32 --D 32 --K 2 --monte-carlo 40 --seed 5 --threads 2 > "$WORK/mc.jsonl"
check "Monte Carlo exit 0" [ $? -eq 0 ]
for key in mc_samples mc_ppe_mean mc_ppe_se mc_ppe_init_mean mc_ppe_init_se; do
    check "key $key present" grep -q "\"$key\":" "$WORK/mc.jsonl"
done
check "mc_ppe_mean near 0.151" close "$(json_get "$WORK/mc.jsonl" mc_ppe_mean)" 0.1512 0.006
check "mc_ppe_init_mean near 0.400" close "$(json_get "$WORK/mc.jsonl" mc_ppe_init_mean)" 0.3998 0.01
"$MMCR" theory --P 32 --D 32 --K 2 --monte-carlo 40 --seed 5 --threads 1 > "$WORK/mc1.jsonl"
check "Monte Carlo independent of --threads" cmp -s "$WORK/mc.jsonl" "$WORK/mc1.jsonl"

# --- plots ---
"$MMCR" theory --P 16,64,256 --D 64 --K 2 --monte-carlo 4 --plot "$WORK/ppe.png" --heatmap "$WORK/heat.png" \
    > /dev/null 2> "$WORK/plot.err"
check "plot exit 0" [ $? -eq 0 ]
check "plot is a PNG" is_png "$WORK/ppe.png"
check "heat map is a PNG" is_png "$WORK/heat.png"
check "no temporary files left" [ "$(ls "$WORK" | grep -c '\.tmp\.')" -eq 0 ]
"$MMCR" theory --P 4 --D 4 --plot "$WORK/no/such/dir/x.png" > /dev/null 2> "$WORK/err"
rc=$?
check "unwritable plot path fails" [ $rc -ne 0 ]
check "unwritable plot path is named" grep -q "no/such/dir" "$WORK/err"

# --- help ---
"$MMCR" theory --help > "$WORK/help" 2>&1
check "--help exits 0" [ $? -eq 0 ]
check "--help lists --monte-carlo" grep -q -- "--monte-carlo" "$WORK/help"

# --- bad options: exit 2 and a message naming the option ---
bad() { # expected option name in the message, arguments...
    local name=$1
    shift
    "$MMCR" theory "$@" > "$WORK/out" 2> "$WORK/err"
    local rc=$?
    if [ $rc -eq 2 ] && grep -q -- "$name" "$WORK/err" && [ ! -s "$WORK/out" ]; then
        ok
    else
        fail "theory $* -> rc $rc, stderr: $(cat "$WORK/err")"
    fi
}
bad "--P" --D 4
bad "--D" --P 4
bad "--P" --P 0 --D 4
bad "--P" --P abc --D 4
bad "--P" --P 64,,128 --D 4
bad "--P" --P 64, --D 4
bad "--P" --P ,64 --D 4
bad "--P" --P= --D 4
bad "--P" --P 1.5 --D 4
bad "--D" --P 4 --D -8
bad "--D" --P 4 --D 99999999999
bad "--K" --P 4 --D 4 --K 0
bad "--K" --P 4 --D 4 --K 2,x
bad "--centroid-norm2" --P 4 --D 4 --centroid-norm2 1.5
bad "--centroid-norm2" --P 4 --D 4 --centroid-norm2 abc
bad "--monte-carlo" --P 4 --D 4 --monte-carlo 1
bad "--monte-carlo" --P 4 --D 4 --monte-carlo -2
bad "--monte-carlo" --P 4 --D 4 --monte-carlo ten
bad "--seed" --P 4 --D 4 --seed
bad "--threads" --P 4 --D 4 --threads -1
bad "--bogus" --P 4 --D 4 --bogus 1

echo "test_theory_cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
