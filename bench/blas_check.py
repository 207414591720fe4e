"""Which BLAS PyTorch loaded, and how fast it multiplies: printed with every PyTorch figure.

Debian's python3-torch calls BLAS through libblas.so.3, which the alternatives system points
at Debian's reference BLAS unless libopenblas0-openmp is installed (and selected); on the
reference BLAS, PyTorch's convolutions and matmuls run 3-5x slower than they can. OpenBLAS
0.3.21's CPU autodetection also picks a slow kernel on these CPUs unless
OPENBLAS_CORETYPE=SKYLAKEX is set (46 instead of 272 GFLOP/s for a 4096^3 torch.mm).

    python3 bench/blas_check.py [--threads 2] [--size 4096] [--require-openblas]

Prints one line: "# pytorch blas: <library path> (OPENBLAS_CORETYPE=...), torch.mm 4096^3:
N GFLOP/s, T threads". With --require-openblas, exits 1 when the library is not OpenBLAS.
"""
import argparse
import os
import sys
import time

import torch


def loaded_blas():
    """The BLAS shared object(s) mapped into this process, resolved through symlinks."""
    torch.mm(torch.ones(8, 8), torch.ones(8, 8))  # make sure BLAS is loaded
    libs = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            name = os.path.basename(path)
            if "blas" in name or "mkl_rt" in name or "libflexiblas" in name:
                libs.add(os.path.realpath(path))
    return sorted(libs)


def describe():
    libs = loaded_blas()
    kind = "openblas" if any("openblas" in l for l in libs) else ("mkl" if any("mkl" in l for l in libs) else
                                                                   "reference" if libs else "none")
    return kind, libs


def mm_gflops(size, threads, repeats=3):
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # warm up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * size ** 3 / best / 1e9


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--require-openblas", action="store_true")
    a = p.parse_args()
    kind, libs = describe()
    if kind == "reference":
        a.size = min(a.size, 1024)  # the reference BLAS takes minutes for 4096^3
    gflops = mm_gflops(a.size, a.threads)
    print(f"# pytorch {torch.__version__} blas: {kind} {' '.join(libs) or '(none mapped)'} "
          f"(OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}), "
          f"torch.mm {a.size}^3: {gflops:.0f} GFLOP/s, {a.threads} threads")
    if a.require_openblas and kind != "openblas":
        print("# pytorch is not running OpenBLAS: install libopenblas0-openmp and select it with\n"
              "#   update-alternatives --set libblas.so.3-x86_64-linux-gnu "
              "/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3\n"
              "# (and liblapack.so.3 likewise); PyTorch figures on another BLAS are not comparable.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
