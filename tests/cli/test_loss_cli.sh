#!/usr/bin/env bash
# End-to-end tests of `mmcr loss`: fixture parity of the JSON numbers and of --grad, 2-D vs 3-D
# and float32 inputs, and the error exits. Usage: test_loss_cli.sh /path/to/mmcr
set -u

MMCR=${1:?usage: $0 /path/to/mmcr}
HERE=$(cd "$(dirname "$0")" && pwd)
FIX=${MMCR_FIXTURES:-$HERE/../fixtures}/mmcr-loss
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mmcr_loss_cli.XXXXXX")
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

# Value of "key" in a flat JSON object (one line).
json_get() { sed -n "s/.*\"$2\": *\([^,}]*\).*/\1/p" "$1" | head -n 1; }

# |a - b| <= rtol * |b| + atol
close() { awk -v a="$1" -v b="$2" -v r="$3" -v t="$4" 'BEGIN { d = a - b; if (d < 0) d = -d; m = (b < 0 ? -b : b); exit !(a != "" && d <= r * m + t) }'; }

# Byte offset of the data in a .npy file (version 1 or 2 header).
npy_data_offset() {
    local ver hlen
    ver=$(od -A n -t u1 -j 6 -N 1 "$1" | tr -d ' ')
    if [ "$ver" = 1 ]; then
        hlen=$(od -A n -t u2 -j 8 -N 2 "$1" | tr -d ' ')
        echo $((10 + hlen))
    else
        hlen=$(od -A n -t u4 -j 8 -N 4 "$1" | tr -d ' ')
        echo $((12 + hlen))
    fi
}

# All float64 values of a .npy file, one per line.
npy_f8() { od -A n -v -t f8 -j "$(npy_data_offset "$1")" "$1" | tr -s ' ' '\n' | sed '/^$/d'; }

# Element-wise comparison of two float64 .npy files: |a - b| <= 1e-9 |b| + 1e-12.
npy_close() {
    paste <(npy_f8 "$1") <(npy_f8 "$2") | awk '
        NF != 2 { bad = 1 }
        { d = $1 - $2; if (d < 0) d = -d; m = ($2 < 0 ? -$2 : $2); if (d > 1e-9 * m + 1e-12) bad = 1; n++ }
        END { exit !(n > 0 && !bad) }'
}

npy_all_tiny() { npy_f8 "$1" | awk '{ v = $1 < 0 ? -$1 : $1; if (v > 1e-12) bad = 1; n++ } END { exit !(n > 0 && !bad) }'; }

# mknpy FILE DESCR SHAPE DATA: a version 1.0 .npy; DATA is a printf format of \xHH escapes.
mknpy() {
    local dict="{'descr': '$2', 'fortran_order': False, 'shape': $3, }"
    local len=$((${#dict} + 1))
    local pad=$(((64 - (10 + len) % 64) % 64))
    local hlen=$((len + pad))
    {
        printf '\223NUMPY\001\000'
        printf "\\x$(printf %02x $((hlen & 255)))\\x$(printf %02x $((hlen >> 8)))"
        printf '%s' "$dict"
        printf "%${pad}s\n" ''
        printf "$4"
    } >"$1"
}

D1='\x00\x00\x00\x00\x00\x00\xf0\x3f' # 1.0 as <f8
D0='\x00\x00\x00\x00\x00\x00\x00\x00'  # 0.0
DNAN='\x00\x00\x00\x00\x00\x00\xf8\x7f'
F1='\x00\x00\x80\x3f' # 1.0 as <f4
F0='\x00\x00\x00\x00'

# ---- fixture parity ----
ncase=0
for dir in "$FIX"/*/; do
    [ -f "$dir/case.json" ] || continue
    ncase=$((ncase + 1))
    name=$(basename "$dir")
    K=$(json_get "$dir/case.json" K)
    L=$(json_get "$dir/case.json" lambda)
    out="$WORK/$name.json"
    if "$MMCR" loss --views "$K" --lambda "$L" --grad "$WORK/$name.grad.npy" "$dir/y.npy" >"$out" 2>"$WORK/err"; then ok; else fail "$name: exit status"; continue; fi
    check "$name: one JSON object on one line" test "$(wc -l <"$out")" -eq 1
    check "$name: exactly nine keys" test "$(grep -o '"[a-z_A-Z]*":' "$out" | sort | tr -d '\n')" = \
        '"D":"K":"P":"bound":"global_nuclear_norm":"lambda":"local_term":"loss":"ppe":'
    for key in P K D lambda global_nuclear_norm local_term loss bound ppe; do
        got=$(json_get "$out" "$key")
        want=$(json_get "$dir/case.json" "$key")
        check "$name: $key = $got, want $want" close "$got" "$want" 1e-9 1e-12
    done
    # --grad: float64, same shape, size = header + (P*K) * D * 8
    P=$(json_get "$dir/case.json" P)
    D=$(json_get "$dir/case.json" D)
    g="$WORK/$name.grad.npy"
    check "$name: --grad written" test -s "$g"
    if [ -s "$g" ]; then
        size=$(wc -c <"$g")
        check "$name: --grad size $size" test "$size" -eq $(($(npy_data_offset "$g") + P * K * D * 8))
        check "$name: --grad header" grep -q "'descr': '<f8', 'fortran_order': False, 'shape': ($((P * K)), $D)" "$g"
        case "$name" in
        *collapsed*) # rank-deficient: the minimum-norm gradient (zero), not the reference's choice
            check "$name: minimum-norm gradient is zero" npy_all_tiny "$g" ;;
        *) check "$name: gradient matches the reference" npy_close "$g" "$dir/grad.npy" ;;
        esac
    fi
done
check "found the fixture cases" test "$ncase" -ge 5

# ---- 2-D vs 3-D layout, and --views taken from a 3-D input ----
src="$FIX/p16_k3_d16/y.npy"
if [ -f "$src" ]; then
    off=$(npy_data_offset "$src")
    mknpy "$WORK/y3.npy" '<f8' '(16, 3, 16)' ''
    tail -c +$((off + 1)) "$src" >>"$WORK/y3.npy"
    "$MMCR" loss --views 3 "$src" >"$WORK/a.json" 2>/dev/null
    if "$MMCR" loss --grad "$WORK/g3.npy" "$WORK/y3.npy" >"$WORK/b.json" 2>"$WORK/err"; then ok; else fail "3-D input: $(cat "$WORK/err")"; fi
    check "3-D input gives the same JSON as 2-D" cmp -s "$WORK/a.json" "$WORK/b.json"
    check "3-D --grad keeps the 3-D shape" grep -q "'shape': (16, 3, 16)" "$WORK/g3.npy"
    "$MMCR" loss --views 4 "$WORK/y3.npy" >/dev/null 2>"$WORK/err"
    check "3-D input with a conflicting --views fails" test $? -eq 1
    check "conflicting --views message" grep -q "^mmcr loss: .*--views 4" "$WORK/err"
fi

# ---- float32 input: orthonormal rows, K = 1: loss -2, ppe 0; gradient in float32 ----
mknpy "$WORK/f4.npy" '<f4' '(2, 2)' "$F1$F0$F0$F1"
mknpy "$WORK/f8.npy" '<f8' '(2, 2)' "$D1$D0$D0$D1"
"$MMCR" loss --views 1 --grad "$WORK/gf4.npy" "$WORK/f4.npy" >"$WORK/f4.json" 2>"$WORK/err"
check "float32 input runs" test $? -eq 0
check "float32 loss" close "$(json_get "$WORK/f4.json" loss)" -2 0 1e-15
check "float32 ppe" close "$(json_get "$WORK/f4.json" ppe)" 0 0 1e-15
check "float32 --grad header" grep -q "'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)" "$WORK/gf4.npy"
check "float32 --grad size" test "$(wc -c <"$WORK/gf4.npy")" -eq $(($(npy_data_offset "$WORK/gf4.npy") + 16))
"$MMCR" loss --views=1 "$WORK/f8.npy" >"$WORK/f8.json" 2>/dev/null
check "float32 and float64 agree" cmp -s "$WORK/f4.json" "$WORK/f8.json"
"$MMCR" loss --views 1 --threads 1 "$WORK/f8.npy" >"$WORK/t1.json" 2>/dev/null
check "--threads 1" cmp -s "$WORK/t1.json" "$WORK/f8.json"

# ---- errors: exit status 1 (2 for usage) and a message naming the file, option or row ----
expect_fail() { # description, status, message regex, args...
    local what=$1 want=$2 re=$3
    shift 3
    "$MMCR" loss "$@" >"$WORK/out" 2>"$WORK/err"
    local st=$?
    if [ "$st" -eq "$want" ]; then ok; else fail "$what: exit $st, want $want"; fi
    if grep -Eq "$re" "$WORK/err"; then ok; else fail "$what: stderr '$(head -c 300 "$WORK/err")' lacks /$re/"; fi
    if [ ! -s "$WORK/out" ]; then ok; else fail "$what: printed to stdout"; fi
}
expect_fail "missing file" 1 "^mmcr loss: .*$WORK/nope.npy" --views 2 "$WORK/nope.npy"
printf 'this is not a numpy file' >"$WORK/corrupt.npy"
expect_fail "corrupt file" 1 "^mmcr loss: .*corrupt.npy.*magic" --views 2 "$WORK/corrupt.npy"
head -c 150 "$FIX/p8_k2_d16/y.npy" >"$WORK/trunc.npy"
expect_fail "truncated file" 1 "^mmcr loss: .*trunc.npy.*truncated" --views 2 "$WORK/trunc.npy"
mknpy "$WORK/fortran.npy" '<f8' '(2, 2)' "$D1$D0$D0$D1"
sed -i 's/False/True /' "$WORK/fortran.npy"
expect_fail "fortran order" 1 "^mmcr loss: .*fortran" --views 1 "$WORK/fortran.npy"
mknpy "$WORK/u8.npy" '|u1' '(2, 2)' '\x01\x02\x03\x04'
expect_fail "integer input" 1 "^mmcr loss: .*u8.npy.*float" --views 1 "$WORK/u8.npy"
expect_fail "rows not divisible by K" 1 "^mmcr loss: .*16 rows are not divisible by --views 3" --views 3 "$FIX/p8_k2_d16/y.npy"
expect_fail "--views 0" 1 "^mmcr loss: --views" --views 0 "$FIX/p8_k2_d16/y.npy"
expect_fail "--views abc" 1 "^mmcr loss: --views" --views abc "$FIX/p8_k2_d16/y.npy"
expect_fail "--views 2x" 1 "^mmcr loss: --views" --views 2x "$FIX/p8_k2_d16/y.npy"
expect_fail "--lambda -1" 1 "^mmcr loss: --lambda" --views 2 --lambda -1 "$FIX/p8_k2_d16/y.npy"
expect_fail "--lambda xyz" 1 "^mmcr loss: --lambda" --views 2 --lambda xyz "$FIX/p8_k2_d16/y.npy"
expect_fail "--lambda nan" 1 "^mmcr loss: --lambda" --views 2 --lambda nan "$FIX/p8_k2_d16/y.npy"
expect_fail "--threads 0" 1 "^mmcr loss: --threads" --views 2 --threads 0 "$FIX/p8_k2_d16/y.npy"
# NaN in row 2 (datum 1, view 0) of a 4 x 2 float64 array
mknpy "$WORK/nan.npy" '<f8' '(4, 2)' "$D1$D0$D0$D1$DNAN$D0$D1$D1"
expect_fail "NaN input" 1 "^mmcr loss: .*nan.npy.*row 2 .*not finite" --views 2 "$WORK/nan.npy"
expect_fail "NaN input, --grad not written" 1 "not finite" --views 2 --grad "$WORK/nan_grad.npy" "$WORK/nan.npy"
check "no gradient file after a failure" test ! -e "$WORK/nan_grad.npy"
expect_fail "--grad into a missing folder" 1 "^mmcr loss: .*$WORK/no/dir/g.npy" --views 1 --grad "$WORK/no/dir/g.npy" "$WORK/f8.npy"
expect_fail "unknown option" 2 "^mmcr loss: unknown option '--bogus'" --bogus 1 "$WORK/f8.npy"
expect_fail "missing input" 2 "^mmcr loss: no input file" --views 2
expect_fail "option without value" 2 "^mmcr loss: option '--views' needs a value" "$WORK/f8.npy" --views
expect_fail "2-D input without --views" 2 "^mmcr loss: --views is required" "$WORK/f8.npy"
expect_fail "two inputs" 2 "^mmcr loss: unexpected argument" --views 1 "$WORK/f8.npy" "$WORK/f8.npy"

# "--" ends the options: a file whose name starts with "--" is an input, not an option
cp "$WORK/f8.npy" "$WORK/--odd.npy"
mmcr_abs=$(cd "$(dirname "$MMCR")" && pwd)/$(basename "$MMCR")
(cd "$WORK" && "$mmcr_abs" loss --views 1 -- --odd.npy >"$WORK/odd.json" 2>"$WORK/odd.err")
check "-- then a file named like an option" cmp -s "$WORK/odd.json" "$WORK/f8.json"
expect_fail "option after --" 1 "^mmcr loss: .*--views" --views 2 -- --views

# ---- help ----
"$MMCR" loss --help >"$WORK/help" 2>&1
check "--help exits 0" test $? -eq 0
check "--help prints usage" grep -q "^usage: mmcr loss --views K" "$WORK/help"
"$MMCR" --help | grep -q "^  loss " && ok || fail "mmcr --help lists loss"

echo "test_loss_cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
