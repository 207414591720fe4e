#!/usr/bin/env bash
# Every zoo model against torchvision 0.14 on the same random weights (graph/zoo.h): the
# reference (tests/zoo/torch_reference.py, Debian's python3-torch and python3-torchvision)
# writes weights, a batch and torch's results; zoo_compare loads the weights into kiln by
# name and checks inference logits and one training step (losses, logits, gradients
# against torch's float64 gradients, the SGD update, running statistics).
#
# Tolerances (zoo_compare): inference logits within 3e-4 of max |logit| (measured 1e-7 to
# 2.7e-5 on the AVX2 dev machine: float32 summation order over up to ~100 layers; 10x
# headroom for the other CPUs' oneDNN kernels, AVX-512 blocking and summation orders);
# training outputs 2e-3; gradients within 4x torch float32's own error against float64, or
# 2e-3. GoogLeNet at 64x64 gets 5e-2: its float32 gradients (kiln's and torch's alike) are
# 1% off float64 at most input sizes (torch at 65x65: 4.9%), and torch happens to be 0.2%
# at exactly 64x64. MobileNetV2 gets 3e-2 for the same reason: a relu6 input within float32
# rounding of its kink takes the other branch, and that element's gradient error reaches every
# layer below. Measured (AVX2 dev machine), worst tensor against float64: torch float32 1.1% at
# 56x56 and 0.8% at 96x96; kiln with dense training batch norm 0.65% at 72x72; kiln with
# blocked batch norm 1.1% at 64x64 (one element of features.18's input, 5.6e-5 above zero in
# float64: channel 1078's beta gradient off by 38%, every other channel within 1e-3) and 1.6%
# at 72x72. Its logits, losses, update and running statistics still agree within 5e-5.
# Inputs are 4x3x64x64 (CI-sized), resnet18_v1 also 1x3x224x224 (inference), vgg11_bn
# 4x3x32x32 inference only (its 25088x4096 classifier makes the training entries 2 GB).
set -euo pipefail
compare="$1"
script="$2"
py=/usr/bin/python3
if ! "$py" -c "import torch, torchvision" 2>/dev/null; then
  echo "FAIL: python3-torch and python3-torchvision are needed (tools/setup.sh installs them)"
  exit 1
fi
dir="${TEST_TMPDIR:-/tmp}/zoo_ref"
failed=0
run() {  # model size batch [infer] [extra zoo_compare flags...]
  local model="$1" size="$2" batch="$3" mode="$4"
  shift 4
  rm -rf "$dir"
  "$py" "$script" "$model" "$size" "$batch" 10 "$dir" $mode
  local flags=()
  [ "$mode" = infer ] && flags+=(--skip-train)
  if ! "$compare" --model "$model" --dir "$dir" --classes 10 --infer-tol 3e-4 "${flags[@]}" "$@"; then
    failed=$((failed + 1))
  fi
}
run resnet18_v1 224 1 infer
run resnet18_v1 64 4 train
run resnet50_v1 64 4 train
run mobilenet_v2_1.0 64 4 train --train-tol 3e-2
run mobilenet_v3_small 64 4 train
run densenet121 64 4 train
run squeezenet1.1 64 4 train
run googlenet 64 4 train --train-tol 5e-2
run efficientnet_b0 64 4 train
run vgg11_bn 32 4 infer
rm -rf "$dir"
echo "zoo vs torchvision: $failed model runs failed"
[ "$failed" = 0 ]
