#!/usr/bin/env bash
# Runs every benchmark case of bench/README.md in one go: kiln at -O0 and -O2, then the same
# models in PyTorch (eager, and TorchScript for inference), 2 threads each, and the memory
# reports. Output: one line per case (median of repeated runs) on stdout.
#
#   bash bench/run.sh | tee bench/results.txt
#
# Needs an idle machine: oneDNN and PyTorch spin OpenMP threads, and another busy process
# on a 2-core machine slows them several-fold. PyTorch comes from Debian's python3-torch
# with libopenblas0-openmp, both installed here even when torch is already there (without
# OpenBLAS, PyTorch runs Debian's reference BLAS, 3-5x slower), and OPENBLAS_CORETYPE=SKYLAKEX
# (OpenBLAS 0.3.21 misdetects these CPUs; set only where the CPU has AVX-512).
# bench/blas_check.py prints the BLAS PyTorch loaded and its 4096^3 torch.mm GFLOP/s, and
# stops the run when it is not OpenBLAS; every PyTorch row also says blas=<kind>.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=2
# SKYLAKEX kernels need AVX-512: on a CPU without it (seen: an EPYC VM exposing only AVX2)
# they die with SIGILL, so OpenBLAS's own detection stays in charge there.
if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SKYLAKEX; else unset OPENBLAS_CORETYPE; fi
bash tools/setup.sh
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
# apt-get install is a no-op for what is there; libopenblas0-openmp registers itself as the
# libblas.so.3 alternative with a higher priority than the reference BLAS.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-torch libopenblas0-openmp >/dev/null
bazel build -c opt //bench:kiln_bench //tools:kiln_opt >/dev/null 2>&1
kb=bazel-bin/bench/kiln_bench
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); OMP_NUM_THREADS=2"
echo "# cpu flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_vnni|avx512_bf16|amx_tile|amx_bf16)$' | xargs)"
echo "# $(date -u +%Y-%m-%dT%H:%MZ), kiln $(git rev-parse --short HEAD)"
/usr/bin/python3 bench/blas_check.py --threads 2 --require-openblas
run() {  # label, kiln args, pytorch args
  for o in 0 2; do $kb $2 --opt "$o" --profile | grep -vE '^  [a-z_0-9]+ +[0-9.]+ us/run'; done
  # Inference with constant (frozen) parameters, as TorchScript's freeze; and in throughput
  # mode (two concurrent sub-batches, one core each) where the batch can be split.
  if [[ "$2" == *"--mode infer"* ]]; then
    $kb $2 --opt 2 --frozen | head -1
    if [[ "$2" != *"--batch 1 "* ]]; then $kb $2 --opt 2 --frozen --streams 2 | head -1; fi
  fi
  # Training with weights reordered every step (no resident parameters), for comparison, and
  # data parallel over two streams (one core each).
  if [[ "$2" == *"--mode train"* ]]; then
    $kb $2 --opt 2 --no-resident | head -1
    $kb $2 --opt 2 --streams 2 | head -1
  fi
  /usr/bin/python3 bench/pytorch_bench.py $3 --threads 2
}
run "lenet train 256" "--model lenet --mode train --batch 256 --iters 50" "--model lenet --mode train --batch 256 --iters 50"
run "lenet infer 256" "--model lenet --mode infer --batch 256 --iters 100" "--model lenet --mode infer --batch 256 --iters 100"
run "lenet infer 1" "--model lenet --mode infer --batch 1 --iters 5000 --warmup 100" \
    "--model lenet --mode infer --batch 1 --iters 5000 --warmup 100"
run "vgg11 infer 1" "--model vgg11 --mode infer --batch 1 --iters 10 --warmup 2" \
    "--model vgg11 --mode infer --batch 1 --iters 10 --warmup 2"
run "vgg11 infer 8" "--model vgg11 --mode infer --batch 8 --iters 5 --warmup 1" \
    "--model vgg11 --mode infer --batch 8 --iters 5 --warmup 1"
for m in lenet vgg11; do
  for o in 0 2; do
    bazel-bin/tools/kiln_opt --model "$m" --mode train --batch 64 --image 32 --channels 3 -O "$o" --report | head -2
  done
done
