#!/usr/bin/env bash
# Serving benchmark (results and method in bench/serve.md): for the LeNet-5 artifact,
# artifact and runtime binary sizes, cold start (process start to /v2/health/ready = 200),
# latency p50/p99 at batch 1, throughput with and without dynamic batching, and JSON vs the
# binary tensor data extension vs gRPC (bench/grpc_load.cc), batch buckets vs one compiled
# batch; for resnet18_v1 at 3x32x32 (a larger graph), throughput and p99 with and without
# dynamic batching and with batch buckets. Closed-loop load from wrk (HTTP) and grpc_load
# (gRPC) on loopback.
#
#   bash bench/serve_bench.sh [SECONDS_PER_WRK_RUN]   (default 10)
#
# Uses out/lenet-fashion-mnist.params (written by the main job with
# `--params out/lenet-fashion-mnist.params`) or lenet-fashion-mnist.params when present,
# else an untrained LeNet (same compute). Needs wrk, curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
dir=out/serve_bench
mkdir -p "$dir"
bazel build -c opt //tools:kiln //serve:kiln-serve //bench:grpc_load >/dev/null 2>&1
grpc_load=bazel-bin/bench/grpc_load
kiln=bazel-bin/tools/kiln
serve=bazel-bin/serve/kiln-serve

params=""
for p in out/lenet-fashion-mnist.params lenet-fashion-mnist.params; do [ -f "$p" ] && { params="$p"; break; }; done
pflag=(); [ -n "$params" ] && pflag=(--params "$params")
$kiln compile --model lenet "${pflag[@]}" --input-shape 1,1,28,28 -o "$dir/lenet_b1.kiln" --name lenet >/dev/null
$kiln compile --model lenet "${pflag[@]}" --input-shape 32,1,28,28 -o "$dir/lenet_b32.kiln" --name lenet >/dev/null
$kiln compile --model resnet18_v1 --input-shape 1,3,32,32 -o "$dir/resnet_b1.kiln" --name resnet >/dev/null
$kiln compile --model resnet18_v1 --input-shape 16,3,32,32 -o "$dir/resnet_b16.kiln" --name resnet >/dev/null
# Batch buckets: the same graphs with every power of two below the largest batch as well.
$kiln compile --model lenet "${pflag[@]}" --input-shape 32,1,28,28 --batch-buckets 1,2,4,8,16 \
  -o "$dir/lenet_buckets.kiln" --name lenet >/dev/null
$kiln compile --model resnet18_v1 --input-shape 16,3,32,32 --batch-buckets 1,2,4,8 \
  -o "$dir/resnet_buckets.kiln" --name resnet >/dev/null

# One real test image (ToTensor + Normalize(0.13, 0.31), as the main job) as the request body.
python3 - "$dir/body.json" <<'PY'
import json, os, sys
path = "data/fashion-mnist/t10k-images-idx3-ubyte"
if os.path.exists(path):
    with open(path, "rb") as f:
        pix = f.read()[16:16 + 784]
    data = [(p / 255.0 - 0.13) / 0.31 for p in pix]
else:
    data = [0.5] * 784
json.dump({"inputs": [{"name": "data", "shape": [1, 1, 28, 28], "datatype": "FP32", "data": data}]},
          open(sys.argv[1], "w"))
# The same image with the binary tensor data extension: JSON header, then 784 float32.
import struct
header = json.dumps({"inputs": [{"name": "data", "shape": [1, 1, 28, 28], "datatype": "FP32",
                                 "parameters": {"binary_data_size": 784 * 4}}],
                     "outputs": [{"name": "output", "parameters": {"binary_data": True}}]}).encode()
with open(sys.argv[1].replace(".json", ".bin"), "wb") as f:
    f.write(header + struct.pack("<784f", *data))
with open(sys.argv[1].replace(".json", ".bin.len"), "w") as f:
    f.write(str(len(header)))
# A 3x32x32 image for resnet18_v1.
json.dump({"inputs": [{"name": "data", "shape": [1, 3, 32, 32], "datatype": "FP32",
                       "data": [((i * 37) % 255) / 255.0 - 0.5 for i in range(3 * 32 * 32)]}]},
          open(sys.argv[1].replace("body", "resnet_body"), "w"))
PY
cat >"$dir/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$dir/body.json", "r")
wrk.body = f:read("*a")
f:close()
LUA
cat >"$dir/post_binary.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Inference-Header-Content-Length"] = "$(cat "$dir/body.bin.len")"
local f = io.open("$dir/body.bin", "rb")
wrk.body = f:read("*a")
f:close()
LUA
cat >"$dir/post_resnet.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$dir/resnet_body.json", "r")
wrk.body = f:read("*a")
f:close()
LUA

port=18431
pid=""
start_server() {  # artifact, extra flags...
  local artifact="$1"; shift
  "$serve" "$artifact" --port "$port" "$@" >"$dir/server.log" 2>&1 &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null 2>&1; do sleep 0.001; done
}
stop_server() { kill -TERM "$pid"; wait "$pid" || true; }
grpc_port=18432
run_grpc() {  # label, connections, model[, extra grpc_load flags...]
  local label="$1" c="$2" model="$3"; shift 3
  echo "== $label (grpc_load -c$c -d${secs}s $*)"
  "$grpc_load" --target "127.0.0.1:$grpc_port" --model "$model" -c "$c" -d "$secs" "$@"
  curl -s "http://127.0.0.1:$port/metrics" |
    grep -E "^kiln_inference_(request_success|count|exec_count|padding_count|compute_infer_duration_us)\{"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "params: ${params:-none (untrained weights)}"
echo "artifact lenet_b1.kiln:  $(stat -c %s "$dir/lenet_b1.kiln") bytes"
echo "artifact lenet_b32.kiln: $(stat -c %s "$dir/lenet_b32.kiln") bytes"
echo "artifact lenet_buckets.kiln (1,2,4,8,16,32): $(stat -c %s "$dir/lenet_buckets.kiln") bytes"
echo "artifact resnet_b16.kiln: $(stat -c %s "$dir/resnet_b16.kiln") bytes; resnet_buckets.kiln (1,2,4,8,16): $(stat -c %s "$dir/resnet_buckets.kiln") bytes"
echo "runtime binary kiln-serve: $(stat -c %s "$serve") bytes (+ shared libdnnl $(stat -Lc %s /usr/lib/x86_64-linux-gnu/libdnnl.so.2) bytes)"
echo "request body: $(stat -c %s "$dir/body.json") bytes"

echo "cold start (exec to /v2/health/ready = 200), 5 runs, ms:"
for i in 1 2 3 4 5; do
  t0=$(date +%s%N)
  start_server "$dir/lenet_b1.kiln"
  t1=$(date +%s%N)
  echo "  $(( (t1 - t0) / 1000 )) us"
  stop_server
done

run_wrk() {  # label, threads, connections[, lua script, model]
  local script="${4:-$dir/post.lua}" model="${5:-lenet}"
  echo "== $1 (wrk -t$2 -c$3 -d${secs}s)"
  wrk -t"$2" -c"$3" -d"${secs}s" --latency -s "$script" "http://127.0.0.1:$port/v2/models/$model/infer" |
    grep -E "Requests/sec|^\s+(50|90|99)%|Non-2xx|Socket errors|requests in"
  curl -s "http://127.0.0.1:$port/metrics" |
    grep -E "^kiln_inference_(request_success|request_failure|count|exec_count|queue_duration_us|compute_infer_duration_us)\{"
}

start_server "$dir/lenet_b1.kiln" --batch-delay-us 0
run_wrk "LeNet batch-1 artifact, 1 connection (latency at batch 1), JSON" 1 1
run_wrk "LeNet batch-1 artifact, 1 connection (latency at batch 1), binary tensor data" 1 1 "$dir/post_binary.lua"
stop_server

start_server "$dir/lenet_b1.kiln" --batch-delay-us 0 --grpc-port "$grpc_port"
run_grpc "LeNet batch-1 artifact, 1 connection (latency at batch 1), gRPC raw contents" 1 lenet
run_grpc "LeNet batch-1 artifact, 1 connection (latency at batch 1), gRPC fp32_contents" 1 lenet --typed
stop_server

start_server "$dir/lenet_b1.kiln" --batch-delay-us 0 --grpc-port "$grpc_port"
run_wrk "LeNet batch-1 artifact, no batching, 32 connections, JSON" 1 32
run_wrk "LeNet batch-1 artifact, no batching, 32 connections, binary tensor data" 1 32 "$dir/post_binary.lua"
run_grpc "LeNet batch-1 artifact, no batching, 32 connections, gRPC raw contents" 32 lenet
stop_server

start_server "$dir/lenet_b32.kiln" --batch-delay-us 2000
run_wrk "LeNet batch-32 artifact, dynamic batching (delay 2 ms, max 32), 32 connections, JSON" 1 32
run_wrk "LeNet batch-32 artifact, dynamic batching (delay 2 ms, max 32), 32 connections, binary" 1 32 "$dir/post_binary.lua"
stop_server

start_server "$dir/lenet_buckets.kiln" --batch-delay-us 2000 --grpc-port "$grpc_port"
run_wrk "LeNet buckets 1..32, dynamic batching (delay 2 ms, max 32), 32 connections, binary" 1 32 "$dir/post_binary.lua"
run_grpc "LeNet buckets 1..32, dynamic batching (delay 2 ms, max 32), 32 connections, gRPC raw" 32 lenet
stop_server

start_server "$dir/resnet_b1.kiln" --batch-delay-us 0
run_wrk "resnet18_v1 3x32x32 batch-1 artifact, no batching, 16 connections" 1 16 "$dir/post_resnet.lua" resnet
stop_server

start_server "$dir/resnet_b16.kiln" --batch-delay-us 2000
run_wrk "resnet18_v1 3x32x32 batch-16 artifact, 1 connection (every request computes 16 images)" 1 1 "$dir/post_resnet.lua" resnet
run_wrk "resnet18_v1 3x32x32 batch-16 artifact, dynamic batching (delay 2 ms, max 16), 16 connections" 1 16 "$dir/post_resnet.lua" resnet
stop_server

start_server "$dir/resnet_buckets.kiln" --batch-delay-us 2000 --grpc-port "$grpc_port"
run_wrk "resnet18_v1 3x32x32 buckets 1..16, 1 connection (a request computes its own image)" 1 1 "$dir/post_resnet.lua" resnet
run_wrk "resnet18_v1 3x32x32 buckets 1..16, dynamic batching (delay 2 ms, max 16), 16 connections" 1 16 "$dir/post_resnet.lua" resnet
run_grpc "resnet18_v1 3x32x32 buckets 1..16, dynamic batching, 16 connections, gRPC raw" 16 resnet
stop_server
