#!/usr/bin/env bash
# Fuzzes the artifact loader with libFuzzer (Debian's clang + libclang-rt-dev) for a bounded
# time: builds tools/fuzz/artifact_fuzz.cc with the loader sources (runtime/, base/, the CPU
# steps in backends/cpu/) using clang++ -fsanitize=fuzzer,address,undefined, seeds the corpus
# with artifacts written by `kiln compile`, and runs it.
#
#   bash tools/fuzz_artifact.sh [SECONDS]     (default 30)
#
# Exit status 0 when the run ends without a crash, leak or sanitizer report; crashing
# inputs are left in out/fuzz/ (crash-*). Bazel's toolchain is g++, hence the direct build.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
out=out/fuzz
mkdir -p "$out/gen/runtime" "$out/corpus"
CXX="${CXX:-clang++}"

flatc --cpp --scoped-enums -o "$out/gen/runtime" runtime/artifact.fbs
srcs=(tools/fuzz/artifact_fuzz.cc base/*.cc runtime/artifact.cc runtime/model.cc runtime/executable.cc
      runtime/step.cc runtime/step_kinds.cc runtime/step_program.cc runtime/target.cc runtime/parameter_store.cc
      backends/cpu/*.cc)
bin="$out/artifact_fuzz"
# Rebuild only when a source changed.
if [ ! -x "$bin" ] || [ -n "$(find "${srcs[@]}" runtime/*.h backends/cpu/*.h base/*.h runtime/artifact.fbs -newer "$bin" 2>/dev/null)" ]; then
  echo "fuzz: building $bin with $CXX"
  "$CXX" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I. -I"$out/gen" "${srcs[@]}" -ldnnl -l:libgomp.so.1 -lz -o "$bin"
fi

# Seeds: small valid artifacts (an MLP and LeNet) plus a few broken ones.
if [ -z "$(ls -A "$out/corpus")" ]; then
  bazel build -c opt //tools:kiln >/dev/null 2>&1 || true
  if [ -x bazel-bin/tools/kiln ]; then
    bazel-bin/tools/kiln compile --model mlp --input-shape 1,1,4,4 -o "$out/corpus/mlp.kiln" >/dev/null 2>&1 || true
    bazel-bin/tools/kiln compile --model lenet --input-shape 1,1,28,28 -o "$out/corpus/lenet.kiln" >/dev/null 2>&1 || true
  fi
  printf 'KILNAOT\0' >"$out/corpus/magic_only"
  head -c 200 "$out/corpus/mlp.kiln" >"$out/corpus/truncated" 2>/dev/null || true
fi

# Inputs that once crashed the loader are replayed by every run.
cp tools/fuzz/regressions/* "$out/corpus/"

echo "fuzz: running for ${seconds}s on $(ls "$out/corpus" | wc -l) seed files"
ASAN_OPTIONS=detect_leaks=1 OMP_NUM_THREADS=1 "$bin" "$out/corpus" -max_total_time="$seconds" -max_len=262144 \
  -rss_limit_mb=4096 -timeout=20 -artifact_prefix="$out/" -print_final_stats=1 2>"$out/fuzz.log" && status=0 || status=$?
tail -n 25 "$out/fuzz.log"
if [ "$status" -eq 0 ]; then echo "fuzz: no crash in ${seconds}s"; else echo "fuzz: FAILED (status $status; see $out/fuzz.log)"; fi
exit "$status"
