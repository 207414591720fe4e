// libFuzzer target for the artifact loader (runtime/artifact.h, runtime/model.h): any bytes
// must give a Status, never a crash, hang or sanitizer report. Each input is tried twice:
// as a whole file (header, CRC-32, verifier, validation) and with the checksum check off, so
// that mutations reach the FlatBuffers verifier, the field checks and the step factory
// (oneDNN primitive creation) instead of stopping at the CRC. Built and run by
// tools/fuzz_artifact.sh with clang++ -fsanitize=fuzzer,address,undefined.
#include <cstddef>
#include <cstdint>

#include "runtime/artifact.h"
#include "runtime/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::runtime;
  (void)Model::FromBytes(data, size);
  LoadOptions options;
  options.limits.verify_checksum = false;
  options.limits.max_arena_bytes = int64_t{1} << 26;  // keep sessions small under ASan
  auto model = Model::FromBytes(data, size, options);
  if (model.ok()) {
    auto session = (*model)->NewSession();
    (void)session;
  }
  return 0;
}
