// The VGG tutorial, shortened: the builders give the documented structure; VGG-16 at
// 3x224x224 (batch 1) runs a forward pass with output [1, 10] and 134,301,514 parameters;
// VGG-11 at 3x32x32 trains a handful of SGD steps on a batch of real Fashion-MNIST images
// and the loss falls. Needs KILN_DATA_DIR for the data parts.
#include <catch2/catch.hpp>

#include <cstdlib>

#include "examples/vgg.h"
#include "graph/trainer.h"

namespace kiln::examples {
namespace {

const char* DataDir() {
  const char* dir = std::getenv("KILN_DATA_DIR");
  if (!dir && std::getenv("KILN_REQUIRE_DATA")) FAIL("KILN_DATA_DIR is not set but KILN_REQUIRE_DATA is");
  return dir;
}

TEST_CASE("vgg_block and vgg_stack build the tutorial's structure", "[examples][vgg]") {
  auto block = VggBlock(3, 256);
  CHECK(block->size() == 4);  // three convs and a pool
  auto stack = VggStack(kVgg16);
  CHECK(stack->size() == 5);
  // Shapes through VGG-11 at 3x32x32 (traced: shape inference and deferred initialization).
  auto features = VggStack(kVgg11);
  REQUIRE(features->Initialize(graph::Xavier(2.24)).ok());
  graph::Tracer t("vgg11_stack");
  auto f = (*features)(t.Input("data", DType::kF32, {2, 3, 32, 32}));
  REQUIRE(f.ok());
  CHECK(f->shape() == Shape{2, 512, 1, 1});
  auto net = MakeVgg(kVgg11, /*classes=*/10, /*dense_units=*/64);
  REQUIRE(net->Initialize(graph::Xavier(2.24)).ok());
  graph::Tracer t2("vgg11");
  auto out = (*net)(t2.Input("data", DType::kF32, {2, 3, 32, 32}));
  REQUIRE(out.ok());
  CHECK(out->shape() == Shape{2, 10});
  // VGG-11: 8 convs (weight + bias each) and 3 dense layers.
  CHECK(net->CollectParams().size() == 2 * (8 + 3));
}

TEST_CASE("VggBatch resizes to 3 identical channels with the labels", "[examples][vgg][data]") {
  const char* dir = DataDir();
  if (!dir) {
    WARN("KILN_DATA_DIR not set: skipping");
    return;
  }
  auto train = graph::LoadIdxDataset(std::string(dir) + "/fashion-mnist", true);
  REQUIRE(train.ok());
  auto b = VggBatch(*train, 5, 3, 224);
  REQUIRE(b.ok());
  CHECK(b->first.shape() == Shape{3, 3, 224, 224});
  const int64_t plane = 224 * 224;
  for (int64_t i = 0; i < plane; i += 101) {
    CHECK(b->first.f32()[i] == b->first.f32()[plane + i]);
    CHECK(b->first.f32()[i] == b->first.f32()[2 * plane + i]);
  }
  CHECK(b->second.s32()[0] == train->labels[5]);
  CHECK(b->second.s32()[2] == train->labels[7]);
}

TEST_CASE("VGG-16 forward at 3x224x224 and VGG-11 training steps at 3x32x32", "[examples][vgg][data]") {
  const char* dir = DataDir();
  if (!dir) {
    WARN("KILN_DATA_DIR not set: skipping");
    return;
  }
  VggOptions o;
  o.data_dir = std::string(dir) + "/fashion-mnist";
  o.log = nullptr;
  SECTION("VGG-16 forward, batch 1") {
    o.batch_size = 1;
    o.steps = 0;
    auto r = RunVggOnFixedBatch(kVgg16, o);
    REQUIRE(r.ok());
    CHECK(r->output_shape == Shape{1, 10});
    CHECK(r->num_parameters == 134301514);
    CHECK(r->forward_seconds > 0);
  }
  SECTION("VGG-11 at 32x32: the loss falls over 6 steps") {
    o.size = 32;
    o.batch_size = 8;
    o.steps = 6;
    o.lr = 0.01;
    auto r = RunVggOnFixedBatch(kVgg11, o);
    REQUIRE(r.ok());
    REQUIRE(r->losses.size() == 6);
    INFO("loss " << r->losses.front() << " -> " << r->losses.back());
    CHECK(r->losses.back() < r->losses.front());
    for (size_t i = 1; i < r->losses.size(); ++i) CHECK(r->losses[i] < r->losses[i - 1] + 1e-3);
  }
}

}  // namespace
}  // namespace kiln::examples
