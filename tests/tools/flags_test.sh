#!/usr/bin/env bash
# Every bad tool flag of issue 12 is a usage error: exit code 2 and a message naming the
# flag, never a crash, a bad_alloc or a silent exit 0; runtime failures exit 1; good flags
# still work. Arguments: the kiln, kiln_opt, kiln_bench and kiln-serve binaries.
set -uo pipefail
kiln="$1" kiln_opt="$2" kiln_bench="$3" kiln_serve="$4"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failures=0

# expect CODE PATTERN CMD...: CMD exits CODE and its stderr+stdout matches PATTERN.
expect() {
  local code="$1" pattern="$2"
  shift 2
  "$@" >"$tmp/out" 2>&1
  local rc=$?
  if [ "$rc" -ne "$code" ] || { [ -n "$pattern" ] && ! grep -qE -- "$pattern" "$tmp/out"; }; then
    echo "FAIL: '$*' exited $rc (want $code), output:"
    sed 's/^/    /' "$tmp/out" | tail -n 5
    echo "    (wanted a match for: $pattern)"
    failures=$((failures + 1))
  else
    echo "ok: $* -> $rc"
  fi
}

expect 2 "--iters: must be an integer >= 1, got '0'" "$kiln_bench" --iters 0
expect 2 "--batch: must be an integer >= 1, got '-2'" "$kiln_bench" --batch -2
expect 2 "--streams: must be an integer >= 1" "$kiln_bench" --streams 0
expect 2 "--warmup" "$kiln_bench" --warmup -1
expect 2 "--opt: Value 3 not in range 0 to 2" "$kiln_bench" --opt 3
expect 2 "--batch: must be an integer >= 1, got '-3'" "$kiln_opt" --batch -3
expect 2 "--batch: must be an integer >= 1, got '0'" "$kiln_opt" --batch 0
expect 2 "--image" "$kiln_opt" --image -5
expect 2 "--model: resnet not in" "$kiln_opt" --model resnet
expect 2 "--opt-level: Value 7 not in range 0 to 2" "$kiln" compile --model lenet --opt-level 7
expect 2 "--opt-level: Value -1 not in range 0 to 2" "$kiln" compile --model lenet --opt-level -1
expect 2 "--input-shape.*'-1' is not a positive integer" "$kiln" compile --model lenet --input-shape 1,-1,28,28
expect 2 "--input-shape.*'x' is not a positive integer" "$kiln" compile --model lenet --input-shape 1,x
expect 2 "--model: nosuchnet not in" "$kiln" compile --model nosuchnet
expect 2 "--output: cannot write '/nonexistent/m.kiln'" "$kiln" compile --model lenet -o /nonexistent/m.kiln
expect 2 "--dot: cannot write '/nonexistent/x.dot': folder '/nonexistent' does not exist" "$kiln_opt" --dot /nonexistent/x.dot
expect 2 "--dump-ir-after: no pass named 'nosuchpass' ran; passes that ran: .*fuse_activation" \
  "$kiln_opt" --mode infer --batch 2 --dump-ir-after nosuchpass
expect 2 "--dot-stage: no pass named 'nosuchpass' ran" "$kiln_opt" --mode infer --batch 2 --dot "$tmp/x.dot" --dot-stage nosuchpass
expect 2 "--print-program-after: no pass named 'nosuchpass' ran; passes that ran: select_steps" \
  "$kiln_opt" --mode infer --batch 2 --print-program-after nosuchpass
expect 2 "--port: Value 70000 not in range 0 to 65535" "$kiln_serve" m.kiln --port 70000
expect 2 "--workers: Value 0 not in range" "$kiln" serve m.kiln --workers 0
expect 2 "an artifact or --model-repository is required" "$kiln_serve"
expect 2 "excludes" "$kiln_serve" m.kiln --model-repository /tmp
expect 2 "token file /nonexistent/t cannot be read" "$kiln_serve" m.kiln --auth-token-file /nonexistent/t
expect 2 "The following argument was not expected: --no-such-flag" "$kiln_opt" --no-such-flag

# Failures while running are exit code 1 with the error.
expect 1 "parameter file '$tmp' is a directory" "$kiln" compile --model lenet --params "$tmp" -o "$tmp/m.kiln"
expect 1 "NotFound" "$kiln" inspect "$tmp/missing.kiln"

# Good flags still work, and --help is exit code 0.
expect 0 "Usage:" "$kiln_opt" --help
expect 0 "arena" "$kiln_opt" --mode infer --batch 2 --report
expect 0 "IR after pass fuse_activation" "$kiln_opt" --mode infer --batch 2 --dump-ir-after fuse_activation
expect 0 "" "$kiln_opt" --mode infer --batch 2 --dot "$tmp/ir.dot" --dot-stage fuse_activation
grep -q "digraph" "$tmp/ir.dot" || { echo "FAIL: --dot wrote no DOT"; failures=$((failures + 1)); }
expect 0 "median .* s/run" "$kiln_bench" --mode infer --batch 4 --iters 2 --warmup 1 --check-numerics
expect 0 "wrote $tmp/m.kiln" "$kiln" compile --model lenet --input-shape 2,1,28,28 -O 1 -o "$tmp/m.kiln"
expect 2 "--batch-buckets: must be an integer >= 1, got '0'" "$kiln" compile --model lenet --batch-buckets 0,2
expect 0 "batch buckets 1,2,4" "$kiln" compile --model lenet --input-shape 4,1,28,28 --batch-buckets 1,2 -o "$tmp/b.kiln"
expect 0 "batch 2 .* arena" "$kiln" inspect "$tmp/b.kiln"
expect 2 "--grpc-port: Value 70000 not in range 0 to 65535" "$kiln_serve" "$tmp/b.kiln" --grpc-port 70000

if [ "$failures" -ne 0 ]; then
  echo "$failures case(s) failed"
  exit 1
fi
echo "all flag cases passed"
