#!/usr/bin/env bash
# End-to-end CLI test of train / eval / embed on a tiny synthetic IDX data set, plus the
# error paths a user can hit (bad options, missing data, corrupt checkpoint).
set -u
mmcr=$1
pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
expect_rc() { # expected_rc description command...
  local want=$1 what=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ "$rc" = "$want" ]; then ok; else bad "$what: exit $rc, expected $want; stderr: $(head -c 300 "$tmp/err")"; fi
}
expect_err() { # pattern description
  if grep -q -- "$1" "$tmp/err"; then ok; else bad "$2: stderr lacks '$1': $(head -c 300 "$tmp/err")"; fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

be32() { printf "\\x$(printf %02x $(( ($1 >> 24) & 255 )))\\x$(printf %02x $(( ($1 >> 16) & 255 )))\\x$(printf %02x $(( ($1 >> 8) & 255 )))\\x$(printf %02x $(( $1 & 255 )))"; }
make_split() { # prefix n
  local n=$2
  { be32 2051; be32 "$n"; be32 16; be32 16; head -c $((n * 256)) /dev/urandom; } > "$tmp/data/$1-images-idx3-ubyte"
  { be32 2049; be32 "$n"; for ((i = 0; i < n; i++)); do printf "\\x0$((i % 10))"; done; } > "$tmp/data/$1-labels-idx1-ubyte"
}
mkdir -p "$tmp/data"
make_split train 200
make_split t10k 50
small=(--data-dir "$tmp/data" --image-size 16 --width 2 --proj-hidden 16 --proj-out 8 --batch 16 --views 2 --threads 2)

expect_rc 0 "train --help" "$mmcr" train --help
grep -q -- "--batch" "$tmp/out" && grep -q -- "--resume" "$tmp/out" && ok || bad "help lacks options"
expect_rc 2 "unknown option" "$mmcr" train --bogus 1
expect_err "bogus" "unknown option"
expect_rc 2 "out of range" "$mmcr" train --batch 0
expect_err "batch" "out of range"
expect_rc 2 "bad number" "$mmcr" train --lr 1e
expect_err "lr" "bad number"
expect_rc 1 "missing data" "$mmcr" train --data-dir "$tmp/nope" --out "$tmp/r0" --max-steps 1
expect_err "nope" "missing data"
expect_rc 1 "resume without checkpoint" "$mmcr" train "${small[@]}" --out "$tmp/r1" --resume
expect_err "checkpoint" "resume without checkpoint"
printf "batch = 16\nbogus-key = 3\n" > "$tmp/bad.cfg"
expect_rc 2 "config file unknown key" "$mmcr" train --config "$tmp/bad.cfg"
expect_err "bogus-key" "config file unknown key"

expect_rc 0 "tiny training" "$mmcr" train "${small[@]}" --out "$tmp/run" --max-steps 6 --log-every 1 --quiet
[ -s "$tmp/run/checkpoint.safetensors" ] && ok || bad "no checkpoint"
[ -s "$tmp/run/config.json" ] && ok || bad "no config.json"
[ "$(wc -l < "$tmp/run/metrics.jsonl")" = 6 ] && ok || bad "metrics.jsonl should have 6 lines"
grep -q '"ppe"' "$tmp/run/metrics.jsonl" && grep -q '"images_per_s"' "$tmp/run/metrics.jsonl" && ok || bad "metric keys"
grep -q '"steps":6' "$tmp/out" && ok || bad "train summary"

expect_rc 0 "resume to 8 steps" "$mmcr" train "${small[@]}" --out "$tmp/run" --max-steps 8 --log-every 1 --quiet --resume
[ "$(wc -l < "$tmp/run/metrics.jsonl")" = 8 ] && ok || bad "resumed metrics should have 8 lines"

# --conv gemm (im2col + sgemm instead of oneDNN): the same first-step loss to float rounding; a
# run may be resumed with the other kernels (like --threads, they are not part of the run).
expect_rc 1 "one value per BN channel" "$mmcr" train "${small[@]}" --batch 1 --views 1 --image-size 8 --proj-hidden 0 --out "$tmp/bn1" --max-steps 1
expect_err "batch norm" "one value per BN channel"
expect_rc 2 "bad --conv" "$mmcr" train "${small[@]}" --conv fft --out "$tmp/g0" --max-steps 1
expect_err "conv" "bad --conv"
expect_rc 0 "gemm convolutions" "$mmcr" train "${small[@]}" --conv gemm --out "$tmp/gemm" --max-steps 4 --log-every 1 --quiet
grep -q '"conv": *"gemm"' "$tmp/gemm/config.json" && ok || bad "config.json lacks conv"
l1=$(head -n 1 "$tmp/run/metrics.jsonl" | sed -n 's/.*"loss":\([-0-9.e]*\).*/\1/p')
l2=$(head -n 1 "$tmp/gemm/metrics.jsonl" | sed -n 's/.*"loss":\([-0-9.e]*\).*/\1/p')
awk -v a="$l1" -v b="$l2" 'BEGIN { d = a - b; if (d < 0) d = -d; s = a < 0 ? -a : a; exit !(a != "" && d <= 1e-4 * s) }' \
  && ok || bad "first-step loss differs between kernels: '$l1' vs '$l2'"
expect_rc 0 "resume with other kernels" "$mmcr" train "${small[@]}" --out "$tmp/gemm" --max-steps 6 --log-every 1 --quiet --resume

# --time-budget re-plans the schedule so it completes: the last lr is the one-cycle floor.
expect_rc 0 "time budget" "$mmcr" train "${small[@]}" --out "$tmp/budget" --max-steps 1000000 --time-budget 2 --log-every 1 --quiet
last=$(tail -n 1 "$tmp/budget/metrics.jsonl")
steps=$(sed -n 's/.*"step":\([0-9]*\).*/\1/p' <<<"$last")
lr=$(sed -n 's/.*"lr":\([-0-9.e]*\).*/\1/p' <<<"$last")
[ -n "$steps" ] && [ "$steps" -lt 1000000 ] && [ "$steps" -ge 20 ] && ok || bad "time budget steps: $steps"
awk -v v="$lr" 'BEGIN { exit !(v < 1e-6) }' && ok || bad "time budget: final lr $lr should be the schedule floor"

expect_rc 1 "resume with a changed batch" "$mmcr" train "${small[@]}" --batch 8 --out "$tmp/run" --max-steps 10 --resume
expect_err "batch" "resume with a changed batch"
expect_rc 1 "resume past the end" "$mmcr" train "${small[@]}" --out "$tmp/run" --max-steps 8 --resume
expect_err "already" "resume past the end"

ev=(--knn-k 5 --labels-per-class 5 --probe-epochs 2 --threads 2)
expect_rc 0 "eval pretrained" "$mmcr" eval --checkpoint "$tmp/run/checkpoint.safetensors" "${ev[@]}" --out "$tmp/ev.json"
for k in linear_top1 knn_top1 low_label_top1 feature_dim; do grep -q "\"$k\"" "$tmp/ev.json" && ok || bad "eval json lacks $k"; done
grep -q '"feature_dim":16' "$tmp/ev.json" && ok || bad "feature_dim should be 8*width=16"
expect_rc 0 "eval reinit" "$mmcr" eval --checkpoint "$tmp/run/checkpoint.safetensors" --reinit "${ev[@]}"
grep -q '"encoder":"random-init"' "$tmp/out" && ok || bad "reinit label"
expect_rc 0 "eval raw pixels" "$mmcr" eval --raw-pixels --data-dir "$tmp/data" "${ev[@]}"
grep -q '"feature_dim":256' "$tmp/out" && ok || bad "raw pixel dim"
expect_rc 2 "eval without encoder" "$mmcr" eval
expect_rc 2 "eval with two encoders" "$mmcr" eval --raw-pixels --checkpoint "$tmp/run/checkpoint.safetensors"
expect_rc 2 "embed labels over features" "$mmcr" embed --checkpoint "$tmp/run/checkpoint.safetensors" --out "$tmp/same.npy" --labels-out "$tmp/same.npy"
expect_rc 0 "embed" "$mmcr" embed --checkpoint "$tmp/run/checkpoint.safetensors" --split test --project --out "$tmp/e.npy"
# .npy v1 header is 128 bytes here; 50 x 8 float32 follow
[ "$(stat -c %s "$tmp/e.npy")" = $((128 + 50 * 8 * 4)) ] && ok || bad "embed size $(stat -c %s "$tmp/e.npy")"

cp "$tmp/run/checkpoint.safetensors" "$tmp/corrupt.safetensors"
printf '\xff\xff\xff\xff' | dd of="$tmp/corrupt.safetensors" bs=1 seek=0 conv=notrunc 2>/dev/null
expect_rc 1 "corrupt checkpoint" "$mmcr" eval --checkpoint "$tmp/corrupt.safetensors" "${ev[@]}"
expect_err "corrupt.safetensors" "corrupt checkpoint"
head -c 100 "$tmp/run/checkpoint.safetensors" > "$tmp/trunc.safetensors"
expect_rc 1 "truncated checkpoint" "$mmcr" embed --checkpoint "$tmp/trunc.safetensors" --out "$tmp/x.npy"
expect_err "trunc.safetensors" "truncated checkpoint"
[ ! -e "$tmp/x.npy" ] && ok || bad "no output on failure"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
