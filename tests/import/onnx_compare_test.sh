#!/usr/bin/env bash
# kiln's ONNX import against PyTorch: models written by torch.onnx.export (Debian
# python3-torch 1.13, torchvision 0.14; random weights and randomized batch-norm statistics,
# tests/import/onnx_reference.py), imported and run by kiln (plain and with constant
# parameters, i.e. batch norms folded) on the same input (tests/import/onnx_compare).
# Tolerance: max |kiln - torch| <= 1e-4 * max |torch| (measured 1e-7 to 2e-6 on the AVX2 dev
# machine: float32 summation order; 50x headroom for other CPUs' kernels).
# Cases: the tutorial LeNet-5 and seven torchvision models at 64x64 (batch 2) at opsets 13
# and 11; resnet18 and LeNet at opset 9 (converted to 13 by the ONNX version converter);
# mobilenet_v2 with a symbolic batch, exported at 4 and run at 3. Then the small models of
# tools/fuzz/seeds/onnx (operators PyTorch does not write: Selu, Elu, PRelu, Pad, Split,
# Slice, Squeeze, Gemm with alpha/beta, opset 9 and 14) against ONNX Runtime (npm
# onnxruntime-node in $KILN_ORT_DIR, which tools/setup.sh installs; required when
# KILN_REQUIRE_DATA is set, as in tools/test.sh and CI).
# Export: LeNet-5, resnet18_v1 and mobilenet_v2_1.0 built in kiln, written as ONNX
# (import/onnx_export.h), run by ONNX Runtime on kiln's input (same tolerance against kiln's
# output), and imported back into kiln (kiln -> ONNX -> kiln, against ONNX Runtime's output).
set -euo pipefail
compare="$1"
script="$2"
ort_script="$3"
export_check="$4"
shift 4
seeds=("$@")
py=/usr/bin/python3
if ! "$py" -c "import torch, torchvision" 2>/dev/null; then
  echo "FAIL: python3-torch and python3-torchvision are needed (tools/setup.sh installs them)"
  exit 1
fi
dir="${TEST_TMPDIR:-/tmp}/onnx_ref"
failed=0
run() {  # model size batch opset [--dynamic] [-- compare flags]
  local model="$1" size="$2" batch="$3" opset="$4"
  shift 4
  local export_flags=() compare_flags=()
  while [ $# -gt 0 ]; do
    case "$1" in --dynamic) export_flags+=(--dynamic) ;; *) compare_flags+=("$1") ;; esac
    shift
  done
  rm -rf "$dir"
  if ! "$py" "$script" "$model" "$size" "$batch" "$opset" "$dir" "${export_flags[@]}" >"$dir.log" 2>&1; then
    echo "FAIL export $model opset $opset:"; tail -5 "$dir.log"; failed=$((failed + 1)); return
  fi
  echo "== $model opset $opset ${export_flags[*]}"
  if ! "$compare" --dir "$dir" --tol 1e-4 "${compare_flags[@]}"; then failed=$((failed + 1)); fi
}
for opset in 13 11; do
  run lenet 28 2 "$opset"
  for m in resnet18 mobilenet_v2 mobilenet_v3_small squeezenet1_1 densenet121 googlenet efficientnet_b0; do
    run "$m" 64 2 "$opset"
  done
done
run resnet18 64 2 9
run lenet 28 2 9
run mobilenet_v2 64 4 13 --dynamic --batch 3
if [ -n "${KILN_ORT_DIR:-}" ] && [ -d "$KILN_ORT_DIR/node_modules/onnxruntime-node" ] && command -v node >/dev/null; then
  for m in lenet resnet18_v1 mobilenet_v2_1.0; do
    rm -rf "$dir"
    shape=2,3,64,64
    [ "$m" = lenet ] && shape=2,1,28,28
    echo "== kiln $m -> ONNX -> ONNX Runtime and -> kiln"
    if ! "$export_check" --model "$m" --dir "$dir" --image 64 --batch 2 || ! node "$ort_script" "$dir/model.onnx" "$shape" "$dir" ||
       ! "$export_check" --model "$m" --dir "$dir" --compare --tol 1e-4 || ! "$compare" --dir "$dir" --tol 1e-4; then
      failed=$((failed + 1))
    fi
  done
  for seed in "${seeds[@]}"; do
    shape=3,2,6,6
    case "$seed" in *opset9*) shape=1,2,6,6 ;; esac
    rm -rf "$dir"
    echo "== $(basename "$seed") vs ONNX Runtime"
    if ! node "$ort_script" "$seed" "$shape" "$dir" || ! "$compare" --dir "$dir" --tol 1e-4; then failed=$((failed + 1)); fi
  done
elif [ -n "${KILN_REQUIRE_DATA:-}" ]; then
  echo "FAIL: onnxruntime-node not found in KILN_ORT_DIR='${KILN_ORT_DIR:-}' (tools/setup.sh installs it)"
  failed=$((failed + 1))
else
  echo "skipping the ONNX Runtime comparisons: KILN_ORT_DIR is not set"
fi
rm -rf "$dir" "$dir.log"
echo "ONNX import vs PyTorch and ONNX Runtime: $failed cases failed"
[ "$failed" = 0 ]
