#!/usr/bin/env bash
# kiln compile --train and kiln-train, as a user runs them: LeNet-5's training step compiled
# ahead of time, trained by the runtime-only kiln-train on real Fashion-MNIST (the main job's
# CI bar: 12,000 images, 2 epochs, test accuracy > 0.75; measured 0.795-0.824 over four
# seeds at batch 64 on the dev VM), a run resumed from its checkpoint ending with the same
# bytes as the uninterrupted run, the trained weights compiled into an inference artifact,
# and clear errors with the right exit codes. Arguments: the kiln and kiln-train binaries.
# Needs KILN_DATA_DIR (tools/test.sh sets it); without it only the data-free part runs,
# unless KILN_REQUIRE_DATA=1.
set -uo pipefail
kiln="$1" train="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failures=0

# expect CODE PATTERN CMD...: CMD exits CODE and its stderr+stdout matches PATTERN.
expect() {
  local code="$1" pattern="$2"
  shift 2
  "$@" >"$tmp/out" 2>&1
  local rc=$?
  if [ "$rc" -ne "$code" ] || { [ -n "$pattern" ] && ! grep -qE -- "$pattern" "$tmp/out"; }; then
    echo "FAIL: '$*' exited $rc (want $code), output:"
    sed 's/^/    /' "$tmp/out" | tail -n 8
    echo "    (wanted a match for: $pattern)"
    failures=$((failures + 1))
  else
    echo "ok: $* -> $rc"
    tail -n 2 "$tmp/out" | sed 's/^/    /'
  fi
}

art="$tmp/lenet-train.kiln"
expect 0 "training step for \[64,1,28,28\] \(sgd, lr 0.1\)" \
  "$kiln" compile --model lenet --train --input-shape 64,1,28,28 --lr 0.1 -o "$art"
expect 0 "training step \(run with kiln-train\): optimizer sgd, 0 steps done" "$kiln" inspect "$art"
expect 0 "eval program: data: f32\[64,1,28,28\]" "$kiln" inspect "$art"
expect 2 "--batch-buckets does not apply to --train" \
  "$kiln" compile --model lenet --train --batch-buckets 1,2 -o "$tmp/x.kiln"
expect 2 "--optimizer: rmsprop not in" "$kiln" compile --model lenet --train --optimizer rmsprop -o "$tmp/x.kiln"
expect 0 "\(adam, lr 0.001\)" "$kiln" compile --model lenet --train --optimizer adam --lr 0.001 -o "$tmp/adam.kiln"
# An inference artifact is refused by kiln-train, and kiln-serve's loader refuses a
# training artifact as an inference model.
expect 0 "" "$kiln" compile --model lenet -o "$tmp/plain.kiln"
mkdir -p "$tmp/empty"
expect 1 "inference artifact: training needs one written by kiln compile --train" \
  "$train" "$tmp/plain.kiln" --data-dir "$tmp/empty"
expect 2 "--epochs" "$train" "$art" --data-dir "$tmp/empty" --epochs -1
expect 1 "loading the training set.*train-images-idx3-ubyte" "$train" "$art" --data-dir "$tmp/empty"

data="${KILN_DATA_DIR:-}/fashion-mnist"
if [ -z "${KILN_DATA_DIR:-}" ] || [ ! -f "$data/train-images-idx3-ubyte" ]; then
  if [ "${KILN_REQUIRE_DATA:-0}" = 1 ]; then
    echo "FAIL: KILN_REQUIRE_DATA=1 but no Fashion-MNIST under '${KILN_DATA_DIR:-}'"
    exit 1
  fi
  echo "skipped the data part: set KILN_DATA_DIR (tools/fetch_data.sh)"
  [ "$failures" -eq 0 ] && exit 0 || exit 1
fi

subset=(--data-dir "$data" --limit-train 12000 --seed 42)
expect 0 "epoch  2: .*test acc 0\.[0-9]+" \
  "$train" "$art" "${subset[@]}" --epochs 2 --min-test-acc 0.75 --save-params "$tmp/straight.params"
# One epoch with a checkpoint, then one more from it: the same weights, byte for byte.
expect 0 "checkpoint: " "$train" "$art" "${subset[@]}" --epochs 1 --checkpoint "$tmp/ckpt.params"
expect 0 "epoch  2: .*from step|after 374 steps" \
  "$train" "$art" "${subset[@]}" --epochs 1 --resume "$tmp/ckpt.params" --save-params "$tmp/resumed.params"
if cmp -s "$tmp/straight.params" "$tmp/resumed.params"; then
  echo "ok: the resumed run's weights equal the uninterrupted run's"
else
  echo "FAIL: the resumed run's weights differ from the uninterrupted run's"
  failures=$((failures + 1))
fi
# A weights-only file is not a checkpoint; a bar that is not reached exits 1.
expect 1 "checkpoint .*has no .kiln:num_update. \(not a kiln training checkpoint\)" "$train" "$art" "${subset[@]}" --epochs 1 --resume "$tmp/straight.params"
expect 1 "below --min-test-acc 0.9900" "$train" "$art" "${subset[@]}" --epochs 0 --min-test-acc 0.99
# The trained weights compile into an inference artifact.
expect 0 "wrote $tmp/lenet.kiln" "$kiln" compile --model lenet --params "$tmp/straight.params" -o "$tmp/lenet.kiln"

[ "$failures" -eq 0 ] && echo "all kiln-train checks passed" && exit 0
echo "$failures kiln-train checks failed"
exit 1
