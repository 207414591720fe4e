#!/usr/bin/env bash
# The model-zoo cases of issue 13 in one run, every peer on the same machine one after
# another (2 threads each): resnet50_v1 and mobilenet_v2_1.0 inference at 3x224x224, batch 1
# (latency) and batch 32 (throughput), and resnet18_v1's training step at batch 32.
#   kiln:        bench/kiln_bench (inference with constant weights, --frozen: batch norms
#                folded into the convolutions), median s/run, and the convolutions' and
#                dense layers' GFLOP/s;
#   PyTorch:     bench/pytorch_bench.py (Debian python3-torch 1.13, OpenBLAS), eager and
#                TorchScript (trace + freeze); training eager, SGD momentum 0.9;
#   ONNX Runtime: bench/ort_bench.js (npm onnxruntime-node, CPU provider, all graph
#                optimizations) on the file torch.onnx.export wrote for the same model
#                (opset 13, fixed batch; weights random, which does not change the time).
# The machine's measured peak for the FLOP/s fractions: bench/blas_check.py's 4096^3 torch.mm.
#
#   bash bench/zoo_bench.sh | tee bench/zoo_results.txt
#
# Needs an idle machine (see bench/run.sh) and about 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=2
if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SKYLAKEX; else unset OPENBLAS_CORETYPE; fi
bash tools/setup.sh >/dev/null
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-torch python3-torchvision libopenblas0-openmp >/dev/null
# (tools/setup.sh installs onnxruntime-node into out/ort; this is for an older checkout)
if [ ! -d out/ort/node_modules/onnxruntime-node ]; then
  mkdir -p out/ort
  (cd out/ort && ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm install --no-audit --no-fund --silent onnxruntime-node >/dev/null)
fi
bazel build -c opt //bench:kiln_bench >/dev/null 2>&1
kb=bazel-bin/bench/kiln_bench
py=/usr/bin/python3
mkdir -p out/bench
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); OMP_NUM_THREADS=2"
echo "# cpu flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_vnni|avx512_bf16|amx_tile|amx_bf16)$' | xargs)"
echo "# $(date -u +%Y-%m-%dT%H:%MZ), kiln $(git rev-parse --short HEAD)"
"$py" bench/blas_check.py --threads 2 --require-openblas
infer() {  # model batch iters warmup
  local m="$1" b="$2" it="$3" wu="$4" onnx="out/bench/$1_b$2.onnx"
  $kb --model "$m" --mode infer --batch "$b" --frozen --iters "$it" --warmup "$wu" | grep -v '^  memory'
  "$py" bench/pytorch_bench.py --model "$m" --mode infer --batch "$b" --iters "$it" --warmup "$wu" --threads 2 \
    --onnx "$onnx" 2>/dev/null
  node bench/ort_bench.js "$onnx" "$m" --shape "$b,3,224,224" --threads 2 --iters "$it" --warmup "$wu"
  # kiln on the same ONNX file (kiln compile model.onnx's path: import, fold, compile)
  $kb --onnx "$onnx" --mode infer --batch "$b" --frozen --iters "$it" --warmup "$wu" | grep -v '^  memory'
}
infer resnet50_v1 1 20 3
infer resnet50_v1 32 5 1
infer mobilenet_v2_1.0 1 40 5
infer mobilenet_v2_1.0 32 8 2
$kb --model resnet18_v1 --mode train --batch 32 --iters 5 --warmup 2 | grep -v '^  memory'
"$py" bench/pytorch_bench.py --model resnet18_v1 --mode train --batch 32 --iters 5 --warmup 2 --threads 2
