#!/usr/bin/env bash
# Serving benchmark for the LeNet-5 artifact (results and method in bench/serve.md):
# artifact and runtime binary sizes, cold start (process start to /v2/health/ready = 200),
# latency p50/p99 at batch 1, and throughput with and without dynamic batching under a
# bounded closed-loop load from wrk on loopback.
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
bazel build -c opt //tools:kiln //serve:kiln-serve >/dev/null 2>&1
kiln=bazel-bin/tools/kiln
serve=bazel-bin/serve/kiln-serve

params=""
for p in out/lenet-fashion-mnist.params lenet-fashion-mnist.params; do [ -f "$p" ] && { params="$p"; break; }; done
pflag=(); [ -n "$params" ] && pflag=(--params "$params")
$kiln compile --model lenet "${pflag[@]}" --input-shape 1,1,28,28 -o "$dir/lenet_b1.kiln" --name lenet >/dev/null
$kiln compile --model lenet "${pflag[@]}" --input-shape 32,1,28,28 -o "$dir/lenet_b32.kiln" --name lenet >/dev/null

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
PY
cat >"$dir/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$dir/body.json", "r")
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

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "params: ${params:-none (untrained weights)}"
echo "artifact lenet_b1.kiln:  $(stat -c %s "$dir/lenet_b1.kiln") bytes"
echo "artifact lenet_b32.kiln: $(stat -c %s "$dir/lenet_b32.kiln") bytes"
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

run_wrk() {  # label, threads, connections
  echo "== $1 (wrk -t$2 -c$3 -d${secs}s)"
  wrk -t"$2" -c"$3" -d"${secs}s" --latency -s "$dir/post.lua" "http://127.0.0.1:$port/v2/models/lenet/infer" |
    grep -E "Requests/sec|^\s+(50|90|99)%|Non-2xx|Socket errors|requests in"
  curl -s "http://127.0.0.1:$port/metrics" | grep -E "^kiln_(requests_total|request_failures_total|inference_runs_total|batch_size_sum|batch_size_count)"
}

start_server "$dir/lenet_b1.kiln" --batch-delay-us 0
run_wrk "batch-1 artifact, 1 connection (latency at batch 1)" 1 1
stop_server

start_server "$dir/lenet_b1.kiln" --batch-delay-us 0 --http-threads 32
run_wrk "batch-1 artifact, no batching, 32 connections" 1 32
stop_server

start_server "$dir/lenet_b32.kiln" --batch-delay-us 2000 --http-threads 32
run_wrk "batch-32 artifact, dynamic batching (delay 2 ms, max 32), 32 connections" 1 32
stop_server

start_server "$dir/lenet_b32.kiln" --batch-delay-us 500 --max-batch-size 8 --http-threads 32
run_wrk "batch-32 artifact, dynamic batching (delay 0.5 ms, max 8), 32 connections" 1 32
stop_server
