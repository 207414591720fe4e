#!/usr/bin/env bash
# Runs one of kiln's libFuzzer targets for a bounded time (Debian's clang + libclang-rt-dev;
# Bazel's toolchain is g++, hence the direct build):
#
#   bash tools/fuzz.sh TARGET [SECONDS]     (default 30)
#
# TARGET (sources in tools/fuzz/):
#   artifact      the artifact loader: header, CRC-32, FlatBuffers verifier, field checks,
#                 step creation (artifact_fuzz.cc)
#   artifact_run  loaded artifacts run through Session::Run with random inputs, training
#                 artifacts through TrainingSession (artifact_run_fuzz.cc)
#   ir_text       the IR text parser and verifier, with the print/parse round trip
#                 (ir_text_fuzz.cc)
#   params        the .params reader, with the write/read round trip (params_fuzz.cc)
#   infer_request kiln-serve's KServe v2 JSON request parser and response writer
#                 (infer_request_fuzz.cc)
#   grpc_infer    kiln-serve's gRPC request path: protobuf parse of a ModelInferRequest and
#                 its conversion (serve/grpc_request.h; grpc_infer_fuzz.cc)
#   onnx          the ONNX importer (libonnx parse, checker, shape inference, version
#                 converter, kiln's checks) and the trace of an imported model (onnx_fuzz.cc)
#
# Sources are compiled once into out/fuzz/obj (clang++ -fsanitize=fuzzer-no-link,address,
# undefined; rebuilt when a source or header is newer) and linked per target. Seeds: the
# committed corpus in tools/fuzz/seeds/TARGET plus, for the artifact targets, artifacts
# written by `kiln compile`; inputs that once crashed (tools/fuzz/regressions/TARGET*) are
# replayed by every run. Exit status 0 when the run ends without a crash, leak or sanitizer
# report; crashing inputs are left in out/fuzz/TARGET/ (crash-*).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?usage: tools/fuzz.sh artifact|artifact_run|ir_text|params|infer_request|grpc_infer|onnx [SECONDS]}"
seconds="${2:-30}"
CXX="${CXX:-clang++}"
root=out/fuzz
mkdir -p "$root/gen/runtime" "$root/gen/serve/proto" "$root/obj"
flags=(-std=c++20 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -I. -I"$root/gen"
       -DONNX_NAMESPACE=onnx -DONNX_ML=1)

runtime_srcs=(base/*.cc runtime/artifact.cc runtime/model.cc runtime/executable.cc runtime/check_numerics.cc
              runtime/step.cc runtime/step_kinds.cc runtime/step_program.cc runtime/target.cc
              runtime/parameter_store.cc runtime/training.cc backends/cpu/*.cc)
case "$target" in
  artifact) srcs=("${runtime_srcs[@]}"); libs=(-ldnnl -l:libgomp.so.1 -lz); max_len=262144 ;;
  artifact_run) srcs=("${runtime_srcs[@]}"); libs=(-ldnnl -l:libgomp.so.1 -lz); max_len=262144 ;;
  ir_text) srcs=(base/*.cc ir/*.cc ir/ops/*.cc); libs=(); max_len=16384 ;;
  params) srcs=(base/*.cc runtime/parameter_store.cc); libs=(-lz); max_len=65536 ;;
  infer_request) srcs=(base/*.cc serve/infer_request.cc); libs=(); max_len=65536 ;;
  grpc_infer) srcs=(base/*.cc serve/infer_request.cc serve/grpc_request.cc "$root/gen/serve/proto/grpc_predict_v2.pb.cc")
              libs=(-lprotobuf); max_len=65536 ;;
  onnx) srcs=(base/*.cc ir/*.cc ir/ops/*.cc graph/nn.cc graph/ops.cc graph/parameter.cc graph/symbol.cc
              runtime/parameter_store.cc import/*.cc)
        libs=(-lonnx -lonnx_proto -lprotobuf -lz); max_len=65536 ;;
  *) echo "fuzz: unknown target '$target' (artifact | artifact_run | ir_text | params | infer_request | grpc_infer | onnx)" >&2; exit 2 ;;
esac

flatc --cpp --scoped-enums -o "$root/gen/runtime" runtime/artifact.fbs
pb="$root/gen/serve/proto/grpc_predict_v2.pb.cc"
if [ ! -f "$pb" ] || [ serve/proto/grpc_predict_v2.proto -nt "$pb" ]; then
  protoc -Iserve/proto --cpp_out="$root/gen/serve/proto" serve/proto/grpc_predict_v2.proto
fi

# Objects, rebuilt when their source or any header is newer (coarse but safe).
newest_header=$(find base runtime backends ir graph import serve tools/fuzz -name '*.h' -o -name '*.def' -o -name '*.fbs' | xargs ls -t | head -n 1)
objs=()
todo=()
for src in "${srcs[@]}"; do
  obj="$root/obj/${src//\//_}.o"
  objs+=("$obj")
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ "$newest_header" -nt "$obj" ]; then todo+=("$src"); fi
done
if [ "${#todo[@]}" -gt 0 ]; then
  echo "fuzz: compiling ${#todo[@]} sources with $CXX"
  printf '%s\n' "${todo[@]}" | xargs -P 2 -I{} sh -c \
    'o="'"$root"'/obj/$(echo {} | tr / _).o"; '"$CXX"' '"${flags[*]}"' -fsanitize=fuzzer-no-link -c {} -o "$o" || { rm -f "$o"; exit 255; }'
fi
bin="$root/${target}_fuzz"
main="tools/fuzz/${target}_fuzz.cc"
if [ ! -x "$bin" ] || [ "$main" -nt "$bin" ] || [ -n "$(find "${objs[@]}" -newer "$bin" 2>/dev/null)" ]; then
  echo "fuzz: linking $bin"
  "$CXX" "${flags[@]}" -fsanitize=fuzzer "$main" "${objs[@]}" "${libs[@]}" -o "$bin"
fi

corpus="$root/$target/corpus"
mkdir -p "$corpus"
if [ -d "tools/fuzz/seeds/$target" ]; then cp tools/fuzz/seeds/"$target"/* "$corpus/"; fi
if [[ "$target" == artifact* ]] && [ ! -f "$corpus/mlp.kiln" ]; then
  # Small valid artifacts (an MLP and LeNet, -O0 and -O2, an MLP with batch buckets) plus a few
  # broken ones.
  bazel build -c opt //tools:kiln >/dev/null 2>&1 || true
  if [ -x bazel-bin/tools/kiln ]; then
    bazel-bin/tools/kiln compile --model mlp --input-shape 1,1,4,4 -o "$corpus/mlp.kiln" >/dev/null 2>&1 || true
    bazel-bin/tools/kiln compile --model lenet --input-shape 1,1,28,28 -o "$corpus/lenet.kiln" >/dev/null 2>&1 || true
    bazel-bin/tools/kiln compile --model lenet --input-shape 2,1,28,28 -O 0 -o "$corpus/lenet_O0.kiln" >/dev/null 2>&1 || true
    bazel-bin/tools/kiln compile --model mnist_cnn --input-shape 1,1,28,28 --constant-params \
      -o "$corpus/mnist_cnn_const.kiln" >/dev/null 2>&1 || true
    bazel-bin/tools/kiln compile --model mlp --input-shape 3,1,4,4 --batch-buckets 1,2 \
      -o "$corpus/mlp_buckets.kiln" >/dev/null 2>&1 || true
  fi
  printf 'KILNAOT\0' >"$corpus/magic_only"
  head -c 200 "$corpus/mlp.kiln" >"$corpus/truncated" 2>/dev/null || true
fi
if [[ "$target" == artifact* ]] && [ ! -f "$corpus/mlp_train_adam.kiln" ] && [ -x bazel-bin/tools/kiln ]; then
  # Training artifacts (kiln compile --train): SGD with momentum and Adam, with their eval programs.
  bazel-bin/tools/kiln compile --model mlp --train --input-shape 2,1,4,4 --momentum 0.9 --eval-batch 3 \
    -o "$corpus/mlp_train_sgd.kiln" >/dev/null 2>&1 || true
  bazel-bin/tools/kiln compile --model mlp --train --input-shape 2,1,4,4 --optimizer adam --lr 0.01 \
    -o "$corpus/mlp_train_adam.kiln" >/dev/null 2>&1 || true
fi
for f in tools/fuzz/regressions/"$target"*; do [ -f "$f" ] && cp "$f" "$corpus/"; done
if [ "$target" = artifact ]; then  # the loader's older regressions (*.kiln)
  for f in tools/fuzz/regressions/*.kiln; do [ -f "$f" ] && cp "$f" "$corpus/"; done
fi

echo "fuzz $target: running for ${seconds}s on $(ls "$corpus" | wc -l) seed files"
log="$root/$target/fuzz.log"
ASAN_OPTIONS=detect_leaks=1 OMP_NUM_THREADS=1 "$bin" "$corpus" -max_total_time="$seconds" -max_len="$max_len" \
  -rss_limit_mb=4096 -timeout=20 -artifact_prefix="$root/$target/" -print_final_stats=1 2>"$log" && status=0 || status=$?
tail -n 12 "$log"
if [ "$status" -eq 0 ]; then echo "fuzz $target: no crash in ${seconds}s"; else echo "fuzz $target: FAILED (status $status; see $log)"; fi
exit "$status"
