// The deployable runtime does not contain the compiler: the kiln-serve binary (runtime +
// CPU steps + oneDNN + HTTP server) must not link LLVM (ldd) nor contain any symbol of
// kiln's ir/, passes/ or graph/ namespaces, or of llvm:: (nm); nor may kiln-train (runtime +
// CPU steps + the IDX data pipeline of graph/data.h, whose symbols are the only graph:: ones
// allowed there). Positive controls make sure the tools read the binaries: they do link
// oneDNN and contain runtime::Model::Load.
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
  CHECK_THAT(symbols, Catch::Contains("kiln::backends::cpu::CpuSteps"));
  CHECK_THAT(symbols, Catch::Contains("kiln::runtime::Instantiate"));
  CHECK_THAT(symbols, Catch::Contains("kiln::backends::cuda::Driver::Load"));  // serves cuda artifacts where a GPU is
  for (const char* forbidden : {"kiln::ir::", "kiln::passes::", "kiln::graph::", "kiln::aot::", "kiln::codegen::",
                                "kiln::compiler::", "llvm::"}) {
    INFO(forbidden);
    CHECK(symbols.find(forbidden) == std::string::npos);
  }
}

TEST_CASE("kiln-train links oneDNN, not LLVM, and contains no compiler code", "[runtime][deps]") {
  const char* train = "tools/kiln-train";
  std::string libs = Run(std::string("ldd ") + train + " 2>&1");
  INFO(libs);
  CHECK_THAT(libs, Catch::Contains("libdnnl"));
  CHECK_THAT(libs, !Catch::Contains("LLVM"));
  std::string symbols = Run(std::string("nm -C ") + train + " 2>&1");
  REQUIRE(symbols.size() > 10000);
  CHECK_THAT(symbols, Catch::Contains("kiln::runtime::TrainingSession::Step"));
  CHECK_THAT(symbols, Catch::Contains("kiln::runtime::Model::Load"));
  CHECK_THAT(symbols, Catch::Contains("kiln::graph::DataLoader"));
  for (const char* forbidden : {"kiln::ir::", "kiln::passes::", "kiln::graph::nn::", "kiln::graph::Tracer",
                                "kiln::graph::TrainStep", "kiln::graph::Trainer", "kiln::aot::", "kiln::codegen::",
                                "kiln::compiler::", "llvm::"}) {
    INFO(forbidden);
    CHECK(symbols.find(forbidden) == std::string::npos);
  }
}

// The BUILD rule behind the binary check: the runtime libraries and the CPU backend list no
// dependency on the compiler's packages (what `bazel query 'deps(//runtime:model) +
// deps(//backends/cpu:kernels_cpu)'` shows, checked here without running Bazel).
TEST_CASE("runtime and backend BUILD files depend on no compiler package", "[runtime][deps]") {
  for (const char* build : {"runtime/BUILD", "backends/cpu/BUILD", "backends/cuda/BUILD"}) {
    std::string text = Run(std::string("cat ") + build + " 2>&1");
    INFO(build << ":\n" << text);
    REQUIRE(text.find("cc_library") != std::string::npos);
    for (const char* forbidden : {"\"//ir", "\"//passes", "\"//codegen", "\"//compiler", "\"//graph", "\"//aot",
                                  "@llvm"}) {
      INFO(forbidden);
      CHECK(text.find(forbidden) == std::string::npos);
    }
  }
}

}  // namespace
