#!/usr/bin/env bash
# Runs the README's shell commands as written (issue 12: its `kiln compile` example read a
# file the main job does not write). Every ```sh block after the first (the first holds the
# two top-level commands, which CI runs itself) is split into commands (continuation lines
# joined, comment lines and trailing comments dropped) and run from a scratch folder laid out
# as a fresh clone after `bash tools/run_main.sh`: `bazel ...` commands run in the repository,
# the others in the scratch folder, which has the main job's outputs (a 1-epoch run) and
# links to bazel-bin, tools/, serve/ and data/. A server command runs in the background until the next command (its
# client) has run. Exit status 0 when every command exits 0.
#
#   bash tools/readme_check.sh        (after the build: tools/test.sh runs it)
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
scratch="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  rm -rf "$scratch"
}
trap cleanup EXIT

bazel build -c opt //examples:fashion_mnist_lenet //tools:kiln //tools:kiln_opt //tools:kiln-train //serve:kiln-serve >/dev/null 2>&1 || {
  echo "readme: build failed"; exit 1; }
ln -s "$repo/bazel-bin" "$scratch/bazel-bin"
# The clone's scripts and protocol files (tools/grpc_client.py reads serve/proto/).
ln -s "$repo/tools" "$scratch/tools"
ln -s "$repo/serve" "$scratch/serve"
ln -s "$repo/data" "$scratch/data"  # what tools/fetch_data.sh fetched (kiln-train reads it)
mkdir -p "$scratch/out"
# The main job's outputs, as `bash tools/run_main.sh` leaves them (one epoch is enough here).
(cd "$scratch" && "$repo/bazel-bin/examples/fashion_mnist_lenet" --epochs 1 --data-dir "$repo/data/fashion-mnist" \
   >"$scratch/main_job.log" 2>&1) || { echo "readme: the main job failed"; tail -5 "$scratch/main_job.log"; exit 1; }

# Commands of every ```sh block but the first, one per line.
mapfile -t commands < <(awk '
  /^```sh$/ { block++; inside = 1; next }
  /^```$/ { inside = 0; next }
  inside && block > 1 {
    line = $0
    if (line ~ /^[[:space:]]*#/) next
    sub(/[[:space:]]+#.*$/, "", line)
    if (line ~ /\\$/) { sub(/\\$/, "", line); pending = pending line; next }
    print pending line; pending = ""
  }' README.md)

failures=0
port_wait() {  # waits until something listens on localhost:$1 (10 s at most)
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
for cmd in "${commands[@]}"; do
  [ -z "${cmd// /}" ] && continue
  case "$cmd" in
    bazel\ *) dir="$repo" ;;
    *) dir="$scratch" ;;
  esac
  if [[ "$cmd" != bazel\ * && ( "$cmd" == *kiln-serve\ * || "$cmd" == *"kiln serve "* ) ]]; then
    (cd "$dir" && exec bash -c "exec $cmd") >"$scratch/server.log" 2>&1 &
    server_pid=$!
    port=$(echo "$cmd" | sed -nE 's/.*--port ([0-9]+).*/\1/p')
    if port_wait "${port:-8000}"; then echo "ok (started): $cmd"; else
      echo "FAIL: server did not listen: $cmd"; tail -5 "$scratch/server.log"; failures=$((failures + 1)); fi
    continue
  fi
  if (cd "$dir" && bash -c "$cmd") >"$scratch/cmd.log" 2>&1; then
    echo "ok: $cmd"
  else
    echo "FAIL (exit $?): $cmd"
    tail -n 8 "$scratch/cmd.log" | sed 's/^/    /'
    failures=$((failures + 1))
  fi
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; server_pid=""; fi
done
echo "readme: ${#commands[@]} commands, $failures failed"
[ "$failures" -eq 0 ]
