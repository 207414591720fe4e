// The "CNN from scratch" tutorial: the debug mode prints every intermediate shape of the
// traced step, and a shortened run (8 epochs of 7,996 MNIST digits, ~10 s) trains the
// hand-written SGD graph past test accuracy 0.90. Needs KILN_DATA_DIR for the training part.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <sstream>

#include "examples/cnn_from_scratch.h"

namespace {

const char* DataDir() {
  const char* dir = std::getenv("KILN_DATA_DIR");
  if (!dir && std::getenv("KILN_REQUIRE_DATA")) FAIL("KILN_DATA_DIR is not set but KILN_REQUIRE_DATA is");
  return dir;
}

TEST_CASE("CNN from scratch: shapes printed in debug mode, one graph trains past 0.90", "[examples][data]") {
  const char* dir = DataDir();
  if (!dir) {
    WARN("KILN_DATA_DIR not set: skipping");
    return;
  }
  kiln::examples::CnnFromScratchOptions o;
  o.data_dir = std::string(dir) + "/mnist";
  o.epochs = 8;
  o.log = nullptr;
  std::ostringstream shapes;
  o.shape_log = &shapes;
  auto r = kiln::examples::RunCnnFromScratch(o);
  REQUIRE(r.ok());
  // The tutorial's debug printout, value by value (batch 64).
  const std::string s = shapes.str();
  INFO(s);
  CHECK_THAT(s, Catch::Contains("h1_conv conv2d: f32[64,20,26,26]NCHW\n") &&
                    Catch::Contains("h1 pool2d: f32[64,20,13,13]NCHW\n") &&
                    Catch::Contains("h2_conv conv2d: f32[64,50,9,9]NCHW\n") &&
                    Catch::Contains("h2_pool pool2d: f32[64,50,4,4]NCHW\n") && Catch::Contains("h2 reshape: f32[64,800]NC\n") &&
                    Catch::Contains("h3 relu: f32[64,128]NC\n") && Catch::Contains("yhat_linear add: f32[64,10]NC\n") &&
                    Catch::Contains("label_one_hot one_hot: f32[64,10]NC\n") && Catch::Contains("loss mul: f32[64]N\n") &&
                    Catch::Contains("W3_new sub: f32[128,800]OI\n"));
  REQUIRE(r->size() == 8);
  INFO("loss " << r->front().loss << " -> " << r->back().loss << ", test acc " << r->back().test_accuracy);
  CHECK(r->back().loss < 0.5 * r->front().loss);
  CHECK(r->back().test_accuracy > 0.90);
}

TEST_CASE("CNN from scratch: a missing data folder is an error naming the file", "[examples]") {
  kiln::examples::CnnFromScratchOptions o;
  o.data_dir = "/nonexistent/mnist";
  o.log = nullptr;
  auto r = kiln::examples::RunCnnFromScratch(o);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.status().message(), Catch::Contains("/nonexistent/mnist"));
}

}  // namespace
