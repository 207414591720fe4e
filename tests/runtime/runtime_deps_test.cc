// The deployable runtime does not contain the compiler: the kiln-serve binary (runtime +
// CPU steps + oneDNN + HTTP server) must not link LLVM (ldd) nor contain any symbol of
// kiln's ir/, passes/ or graph/ namespaces, or of llvm:: (nm). Positive controls make sure
// the tools read the binary: it does link oneDNN and contains runtime::Model::Load.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

namespace {

std::string Run(const std::string& command) {
  std::string out;
  std::FILE* p = ::popen(command.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

const char* kBinary = "serve/kiln-serve";  // runfiles path (data dependency)

TEST_CASE("kiln-serve links oneDNN but not LLVM", "[runtime][deps]") {
  std::string libs = Run(std::string("ldd ") + kBinary + " 2>&1");
  INFO(libs);
  CHECK_THAT(libs, Catch::Contains("libdnnl"));
  CHECK_THAT(libs, !Catch::Contains("LLVM"));
  CHECK_THAT(libs, !Catch::Contains("libclang"));
}

TEST_CASE("kiln-serve contains no compiler code", "[runtime][deps]") {
  std::string symbols = Run(std::string("nm -C ") + kBinary + " 2>&1");
  REQUIRE(symbols.size() > 10000);
  CHECK_THAT(symbols, Catch::Contains("kiln::runtime::Model::Load"));
  CHECK_THAT(symbols, Catch::Contains("kiln::codegen::cpu::CpuSteps"));
  for (const char* forbidden : {"kiln::ir::", "kiln::passes::", "kiln::graph::", "kiln::aot::", "llvm::"}) {
    INFO(forbidden);
    CHECK(symbols.find(forbidden) == std::string::npos);
  }
}

}  // namespace
