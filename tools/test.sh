#!/usr/bin/env bash
# Runs every test: install dependencies, fetch the data the real-data tests use, run
# `bazel test //...`, the README's commands, bounded runs of the seven fuzz targets and the
# suite again under ASan + UBSan (less the four tests tagged no_sanitizer), and print one
# summary line "N passed, M failed" (Catch2 test cases; a test without a Catch2 summary — a
# shell test, or a binary that crashed — counts once by the status Bazel recorded; the
# README check, each fuzz target and the sanitizer run count once).
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
bash tools/fetch_data.sh data || { echo "0 passed, 1 failed"; exit 1; }
# One test at a time: oneDNN runs OpenMP on every core, and two such tests at once on a
# 2-core machine spin against each other (10x slower).
bazel test -c opt //... --local_test_jobs=1 --test_env=KILN_DATA_DIR="$PWD/data" --test_env=KILN_REQUIRE_DATA=1 \
  --test_env=KILN_ORT_DIR="$PWD/out/ort" --test_output=errors
status=$?
passed=0
failed=0
while IFS= read -r log; do
  if line=$(grep -E "^All tests passed \(" "$log" | tail -n 1) && [ -n "$line" ]; then
    n=$(echo "$line" | sed -E 's/.* in ([0-9]+) test case.*/\1/')
    passed=$((passed + n))
  elif line=$(grep -E "^test cases: " "$log" | tail -n 1) && [ -n "$line" ]; then
    p=$(echo "$line" | sed -E 's/.*\| *([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.*\| *([0-9]+) failed.*/\1/')
    [[ "$p" =~ ^[0-9]+$ ]] || p=0
    [[ "$f" =~ ^[0-9]+$ ]] || f=1
    passed=$((passed + p))
    failed=$((failed + f))
  else
    # A test without Catch2 (a shell test) counts once, by the status Bazel recorded.
    xml="$(dirname "$log")/test.xml"
    if [ -f "$xml" ] && grep -q 'failures="0" errors="0"' "$xml" && ! grep -q '<failure' "$xml"; then
      passed=$((passed + 1))
    else
      failed=$((failed + 1))
    fi
  fi
done < <(find -L bazel-testlogs/ -name test.log 2>/dev/null)
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
# GPU test cases (tag gpu) that found no CUDA driver say "skipped: no CUDA driver": they
# count as skipped, not passed.
skipped=$(find -L bazel-testlogs/ -name test.log -exec grep -h "skipped: no CUDA driver" {} + 2>/dev/null | wc -l)
passed=$((passed - skipped))
# The README's commands as written (tools/readme_check.sh) count as one test.
if bash tools/readme_check.sh; then passed=$((passed + 1)); else failed=$((failed + 1)); status=1; fi
# Each libFuzzer target (tools/fuzz.sh: the artifact loader, artifacts run with random
# inputs, the IR text parser, the .params reader, kiln-serve's request parser, the ONNX importer) counts as one test: a bounded run without
# a crash, leak or sanitizer report.
for spec in artifact:30 artifact_run:30 ir_text:30 params:15 infer_request:20 grpc_infer:20 onnx:30; do
  if bash tools/fuzz.sh "${spec%%:*}" "${spec##*:}"; then passed=$((passed + 1)); else failed=$((failed + 1)); status=1; fi
done
# The suite again under AddressSanitizer + UndefinedBehaviorSanitizer with assertions on
# (.bazelrc --config=asan: its own output tree, longer timeouts) counts as one test. It
# builds only the tests (--build_tests_only: no sanitized benchmarks or tools nobody runs)
# and skips the four tagged no_sanitizer: the comparisons with PyTorch and ONNX Runtime
# (zoo, importer) and the two trainings to an accuracy bar on real data, which ran 4 of
# the opt suite's 5 test minutes and ~4x that sanitized (CI took 55 min with them);
# onnx_import_test, batchnorm_test, train tests, fold_batch_norm_test and the lowering
# tests run the same importer, zoo and training code under the sanitizers.
# LeakSanitizer ignores fontconfig's process-lifetime caches (tools/lsan.supp).
if bazel test -c opt --config=asan //... --build_tests_only --test_tag_filters=-no_sanitizer \
    --local_test_jobs=1 --test_output=errors \
    --test_env=KILN_DATA_DIR="$PWD/data" --test_env=KILN_REQUIRE_DATA=1 --test_env=KILN_ORT_DIR="$PWD/out/ort" \
    --test_env=LSAN_OPTIONS="suppressions=$PWD/tools/lsan.supp:print_suppressions=0"; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
  status=1
fi
[ "$skipped" -gt 0 ] && echo "$skipped skipped (GPU test cases without a CUDA driver)"
echo "$passed passed, $failed failed"
exit "$status"
