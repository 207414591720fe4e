// Parameter entries own every weight and optimizer-state tensor (runtime/parameter_store.h):
// sessions bound to them keep resident copies and dense values coherent by themselves.
// A training graph whose weight stays resident (a convolution in a blocked layout and its
// SGD update) runs in two sessions of one store, with reads and writes through the entry in
// between; every result is checked against the reference interpreter.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "backends/cpu/kernels_cpu.h"
#include "codegen/lower.h"
#include "ir/interpreter.h"
#include "runtime/parameter_store.h"
#include "tests/passes/equivalence.h"

namespace kiln {
namespace {

const char* kTrain = R"(graph train {
  input %x : f32[2,3,6,6]NCHW
  input %gw : f32[16,3,3,3]OIHW
  input %lr : f32[]
  input %rescale_grad : f32[]
  param %w : f32[16,3,3,3]OIHW
  %c = conv2d[conv](%x, %w) {dilation=[1,1], padding_begin=[0,0], padding_end=[0,0], stride=[1,1]} : f32[2,16,4,4]NCHW
  %u = sgd_update[u](%w, %gw, %lr, %rescale_grad) {clip_gradient=-1.0, momentum=0.0, wd=0.0} : f32[16,3,3,3]OIHW
  output y = %c
  update %w <- %u
}
)";

struct Fixture {
  ir::Graph g = testing::ParseOrFail(kTrain);
  std::mt19937 rng{11};
  testing::Named args = testing::RandomArguments(g, rng);
  std::shared_ptr<runtime::Executable> exe;
  runtime::ParameterStore store;
  std::vector<Tensor> inputs;
  Fixture() {
    codegen::LowerOptions o{true, true, false};
    o.resident_params = true;
    auto e = codegen::Lower(g, backends::cpu::CpuSteps(), nullptr, o);
    REQUIRE(e.ok());
    exe = *e;
    REQUIRE(!exe->writeback_steps().empty());  // the weight is resident
    REQUIRE(store.Set("w", ir::FromRef(args.at("w"), DType::kF32)).ok());
    for (const auto& spec : exe->inputs()) inputs.push_back(ir::FromRef(args.at(spec.name), DType::kF32));
  }
  Status Run(runtime::Session& s, Tensor* y) {
    std::vector<const Tensor*> in;
    for (const Tensor& t : inputs) in.push_back(&t);
    return s.Run(in, {y});
  }
  // The reference's w after one step from `w`.
  ir::RefTensor Step(const ir::RefTensor& w) {
    testing::Named a = args;
    a["w"] = w;
    auto out = testing::RunReferenceNamed(g, a);
    REQUIRE(out.ok());
    return out->at("w");
  }
  void CheckW(const Tensor& w, const ir::RefTensor& want) {
    REQUIRE(w.num_elements() == want.size());
    for (int64_t i = 0; i < want.size(); ++i) {
      INFO("w[" << i << "]");
      CHECK_THAT(w.f32()[i], Catch::Matchers::WithinAbs(want[i], 1e-5));  // f32 vs double
    }
  }
};

TEST_CASE("a session holding a resident weight writes it back when the entry is read", "[runtime][params]") {
  Fixture f;
  auto s = runtime::Session::Create(f.exe, &f.store);
  REQUIRE(s.ok());
  auto entry = f.store.entry("w");
  uint64_t v0 = entry->version();
  Tensor y;
  REQUIRE(f.Run(**s, &y).ok());
  CHECK(entry->holder() == s->get());
  CHECK(entry->version() > v0);
  auto w = entry->Read();  // the session writes back, by itself
  REQUIRE(w.ok());
  CHECK(entry->holder() == nullptr);
  f.CheckW(**w, f.Step(f.args.at("w")));
}

TEST_CASE("a write through the entry is seen by the next run (resident copy re-read)", "[runtime][params]") {
  Fixture f;
  auto s = runtime::Session::Create(f.exe, &f.store);
  REQUIRE(s.ok());
  Tensor y;
  REQUIRE(f.Run(**s, &y).ok());
  ir::RefTensor fresh = f.args.at("w");
  for (double& v : fresh.data) v = 0.25;
  REQUIRE(f.store.entry("w")->Write(ir::FromRef(fresh, DType::kF32)).ok());
  REQUIRE(f.Run(**s, &y).ok());
  auto w = f.store.entry("w")->Read();
  REQUIRE(w.ok());
  f.CheckW(**w, f.Step(fresh));  // one step from the written value, not from the old copy
}

TEST_CASE("two sessions of one store see each other's updates", "[runtime][params]") {
  Fixture f;
  auto a = runtime::Session::Create(f.exe, &f.store);
  auto b = runtime::Session::Create(f.exe, &f.store);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  Tensor y;
  REQUIRE(f.Run(**a, &y).ok());  // step 1 in a's resident copy
  REQUIRE(f.Run(**b, &y).ok());  // a writes back first; b re-reads and takes step 2
  CHECK(f.store.entry("w")->holder() == b->get());
  REQUIRE(f.Run(**a, &y).ok());  // b writes back; a's copy is stale and re-read: step 3
  auto w = f.store.entry("w")->Read();
  REQUIRE(w.ok());
  f.CheckW(**w, f.Step(f.Step(f.Step(f.args.at("w")))));
}

TEST_CASE("a destroyed holder writes its copy back", "[runtime][params]") {
  Fixture f;
  {
    auto s = runtime::Session::Create(f.exe, &f.store);
    REQUIRE(s.ok());
    Tensor y;
    REQUIRE(f.Run(**s, &y).ok());
  }
  auto entry = f.store.entry("w");
  CHECK(entry->holder() == nullptr);
  f.CheckW(entry->value(), f.Step(f.args.at("w")));
}

TEST_CASE("saving parameters is atomic and clears temp files of killed writers", "[runtime][params][io]") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("kiln_atomic_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string path = (dir / "net.params").string();
  // A writer killed mid-save left its temp file (pid 2^22 + 1 is above Linux's pid_max
  // default of 2^22, so no process has it); a live process's temp file (ours, pid 1's)
  // must stay.
  std::string stale = path + ".tmp.4194305", live = path + ".tmp.1", other = (dir / "other.tmp.4194305").string();
  for (const std::string& f : {stale, live, other}) std::ofstream(f) << "partial";
  runtime::ParameterStore store;
  REQUIRE(store.Set("w", Tensor(DType::kF32, {3})).ok());
  store.Find("w")->f32()[1] = 2.5f;
  REQUIRE(store.Save(path).ok());
  CHECK(!fs::exists(stale));
  CHECK(fs::exists(live));
  CHECK(fs::exists(other));  // another file's temp files are not ours to remove
  CHECK(!fs::exists(path + ".tmp." + std::to_string(::getpid())));
  runtime::ParameterStore back;
  REQUIRE(back.Set("w", Tensor(DType::kF32, {3})).ok());
  REQUIRE(back.Load(path).ok());
  CHECK(back.Find("w")->f32()[1] == 2.5f);
  SECTION("an unwritable folder is an error naming the file, and leaves nothing behind") {
    Status s = store.Save((dir / "no_such_folder" / "x.params").string());
    CHECK(s.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(s.message(), Catch::Contains("parameter file") && Catch::Contains("x.params"));
  }
  fs::remove_all(dir);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST_CASE("the checksum trailer detects flipped weight bytes; Gluon files without it load", "[runtime][params][io]") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("kiln_crc_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string path = (dir / "net.params").string();
  runtime::ParameterStore store;
  REQUIRE(store.Set("conv.weight", Tensor(DType::kF32, {4, 3})).ok());
  for (int i = 0; i < 12; ++i) store.Find("conv.weight")->f32()[i] = 0.25f * static_cast<float>(i);
  REQUIRE(store.Save(path).ok());
  std::string bytes = ReadAll(path);
  REQUIRE(runtime::HasParamsChecksum(bytes));
  // The MXNet payload is the file minus the 24-byte trailer: a Gluon-written file, which
  // must load as before (no trailer, no check).
  std::string gluon = bytes.substr(0, bytes.size() - 24);
  CHECK_FALSE(runtime::HasParamsChecksum(gluon));
  auto plain = runtime::ParseParams(gluon, "gluon.params");
  REQUIRE(plain.ok());
  CHECK(plain->at("conv.weight").f32()[5] == 1.25f);

  // One flipped bit in a weight: the values would parse, the checksum refuses them.
  std::string flipped = bytes;
  size_t weight_byte = gluon.size() - 8 - std::string("conv.weight").size() - 8 - 4 * 7;  // inside the data
  flipped[weight_byte] = static_cast<char>(flipped[weight_byte] ^ 0x10);
  WriteAll(path, flipped);
  runtime::ParameterStore back;
  REQUIRE(back.Set("conv.weight", Tensor(DType::kF32, {4, 3})).ok());
  Status s = back.Load(path);
  CHECK(s.code() == StatusCode::kDataLoss);
  CHECK_THAT(s.message(), Catch::Contains("is corrupted: CRC-32") && Catch::Contains("net.params"));
  CHECK(back.Find("conv.weight")->f32()[5] == 0.f);  // nothing loaded
  CHECK_FALSE(runtime::ParseParams(flipped, "x").ok());
  // A flipped trailer byte turns the trailer into trailing garbage: also refused.
  std::string bad_trailer = bytes;
  bad_trailer[bytes.size() - 24] = 'X';
  auto t = runtime::ParseParams(bad_trailer, "x");
  CHECK(t.status().code() == StatusCode::kDataLoss);
  CHECK_THAT(t.status().message(), Catch::Contains("trailing bytes"));
  // The intact file loads.
  WriteAll(path, bytes);
  REQUIRE(back.Load(path).ok());
  CHECK(back.Find("conv.weight")->f32()[5] == 1.25f);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kiln
