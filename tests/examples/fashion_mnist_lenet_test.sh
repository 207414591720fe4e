#!/usr/bin/env bash
# The main job, shortened to 1 epoch: it must train, save, reload with the same accuracy,
# print six predictions and write the predictions picture and the training plot as PNG files.
# Needs KILN_DATA_DIR (skips without it unless KILN_REQUIRE_DATA is set).
set -euo pipefail
bin="$1"
if [ -z "${KILN_DATA_DIR:-}" ]; then
  if [ -n "${KILN_REQUIRE_DATA:-}" ]; then echo "KILN_DATA_DIR is not set but KILN_REQUIRE_DATA is"; exit 1; fi
  echo "KILN_DATA_DIR not set: skipping"; exit 0
fi
out="${TEST_TMPDIR:-/tmp}/lenet_main"
rm -rf "$out"
mkdir -p "$out"
"$bin" --data-dir "$KILN_DATA_DIR/fashion-mnist" --epochs 1 --params "$out/lenet.params" \
  --picture "$out/pics/predictions.png" --plot "$out/pics/training.png" | tee "$out.log"
grep -q "reloaded into a fresh network: test acc .* (same)" "$out.log"
test "$(grep -c "predicted" "$out.log")" -eq 6
acc=$(sed -n 's/^epoch  1: .*test acc \([0-9.]*\),.*/\1/p' "$out.log")
awk -v a="$acc" 'BEGIN { exit !(a > 0.65) }' || { echo "test acc $acc <= 0.65"; exit 1; }
for f in predictions training; do
  png="$out/pics/$f.png"
  test "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" || { echo "$png is not a PNG"; exit 1; }
  test "$(stat -c %s "$png")" -gt 5000 || { echo "$png is too small"; exit 1; }
done
echo PASS
