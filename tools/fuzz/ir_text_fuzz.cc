// libFuzzer target for the IR text parser (ir/text.h) and verifier (ir/verifier.h): any
// text must give a Status, never a crash, hang or sanitizer report. A text that parses and
// verifies must also round-trip: its printed form parses again, verifies, and prints the
// same (a parser/printer disagreement aborts, which the fuzzer reports). Built and run by
// tools/fuzz.sh with clang++ -fsanitize=fuzzer,address,undefined.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "ir/text.h"
#include "ir/verifier.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln::ir;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto graph = ParseGraph(text);
  if (!graph.ok() || !Verify(*graph).ok()) return 0;
  std::string printed = PrintGraph(*graph);
  auto again = ParseGraph(printed);
  if (!again.ok()) {
    std::fprintf(stderr, "printed form does not parse: %s\n%s\n", again.status().ToString().c_str(), printed.c_str());
    std::abort();
  }
  if (kiln::Status v = Verify(*again); !v.ok()) {
    std::fprintf(stderr, "printed form does not verify: %s\n", v.ToString().c_str());
    std::abort();
  }
  if (PrintGraph(*again) != printed) {
    std::fprintf(stderr, "print(parse(print(g))) != print(g):\n%s\n---\n%s\n", printed.c_str(),
                 PrintGraph(*again).c_str());
    std::abort();
  }
  return 0;
}
