#!/usr/bin/env bash
# Installs what kiln needs on Debian 12 (bookworm): Bazel, oneDNN, Catch2, CLI11, JSON, npm.
# Runs apt-get only for what is missing; uses sudo when not root.
set -euo pipefail
pkgs=(bazel-bootstrap libdnnl-dev catch2 nlohmann-json3-dev libcli11-dev libcairo2-dev llvm-19-dev)
# Artifacts (FlatBuffers + flatc, zlib CRC-32), the inference server (cpp-httplib), the loader's
# libFuzzer target (clang, compiler-rt) and the serving benchmark (wrk).
pkgs+=(flatbuffers-compiler libflatbuffers-dev zlib1g-dev libcpp-httplib-dev clang libclang-rt-14-dev wrk curl)
# The zoo's comparison with torchvision 0.14 (tests/zoo) and the PyTorch benchmark peers.
pkgs+=(python3-torch python3-torchvision)
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
