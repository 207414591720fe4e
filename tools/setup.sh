#!/usr/bin/env bash
# Installs what kiln needs on Debian 12 (bookworm): Bazel, oneDNN, Catch2, CLI11, JSON, npm.
# Runs apt-get only for what is missing; uses sudo when not root.
set -euo pipefail
pkgs=(bazel-bootstrap libdnnl-dev catch2 nlohmann-json3-dev libcli11-dev libcairo2-dev llvm-19-dev)
# Artifacts (FlatBuffers + flatc, zlib CRC-32), the inference server (Boost.Beast/Asio from
# libboost1.81-dev; cpp-httplib as the tests' HTTP client), the libFuzzer targets (clang,
# compiler-rt) and the serving benchmark (wrk).
pkgs+=(flatbuffers-compiler libflatbuffers-dev zlib1g-dev libboost1.81-dev libcpp-httplib-dev clang libclang-rt-14-dev wrk curl)
# The zoo's comparison with torchvision 0.14 (tests/zoo) and the PyTorch benchmark peers.
pkgs+=(python3-torch python3-torchvision)
# The ONNX importer (libonnx 1.12, protobuf) and its tests (python3-onnx checks exported files).
pkgs+=(libonnx-dev libprotobuf-dev python3-onnx)
# kiln-serve's KServe v2 gRPC front end (gRPC C++ 1.51, protoc and its gRPC plugin; TLS from
# OpenSSL) and the README's Python gRPC client.
pkgs+=(libgrpc++-dev protobuf-compiler protobuf-compiler-grpc libssl-dev openssl python3-grpcio)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# ONNX Runtime for the importer's comparisons (tests/import) and the benchmarks (bench/),
# from the npm registry into out/ort (CPU only: no CUDA download).
ort="$(cd "$(dirname "$0")/.." && pwd)/out/ort"
if [ ! -f "$ort/node_modules/onnxruntime-node/package.json" ]; then
  mkdir -p "$ort"
  (cd "$ort" && ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm install --no-audit --no-fund --silent onnxruntime-node@1.30.0 >/dev/null) ||
    echo "setup: installing onnxruntime-node failed (the ONNX Runtime comparisons will fail)"
fi
