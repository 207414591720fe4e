// The MNIST CNN tutorial, shortened to 2 epochs: the moving loss falls and test accuracy
// passes a bar. Needs KILN_DATA_DIR (tools/test.sh and CI fetch the data).
#include <catch2/catch.hpp>

#include <cstdlib>

#include "examples/mnist_cnn.h"

TEST_CASE("MNIST CNN tutorial: 2 epochs reach test accuracy > 0.90", "[examples][data]") {
  const char* dir = std::getenv("KILN_DATA_DIR");
  if (!dir) {
    if (std::getenv("KILN_REQUIRE_DATA")) FAIL("KILN_DATA_DIR is not set but KILN_REQUIRE_DATA is");
    WARN("KILN_DATA_DIR not set: skipping");
    return;
  }
  kiln::examples::MnistCnnOptions o;
  o.data_dir = std::string(dir) + "/mnist";
  o.epochs = 2;
  o.log = nullptr;
  auto r = kiln::examples::RunMnistCnn(o);
  REQUIRE(r.ok());
  REQUIRE(r->size() == 2);
  INFO("loss " << (*r)[0].moving_loss << " -> " << (*r)[1].moving_loss << ", test acc " << (*r)[1].test_accuracy);
  CHECK((*r)[1].moving_loss < (*r)[0].moving_loss);
  CHECK((*r)[1].test_accuracy > 0.90);
}
