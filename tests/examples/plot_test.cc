// The cairo drawing helpers: each picture is written as PNG, read back by cairo, and must
// have the documented size and visible (non-white, multi-colour) content.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "examples/plot.h"

namespace kiln::examples::plot {
namespace {

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return (std::filesystem::path(dir ? dir : "/tmp") / "plot_test" / name).string();
}

TEST_CASE("DrawImageRow writes a PNG of the documented size with the images in it", "[examples][plot]") {
  std::vector<LabelledImage> images;
  for (int i = 0; i < 6; ++i) {
    LabelledImage im;
    im.height = 28;
    im.width = 28;
    im.pixels.assign(28 * 28, 0);
    for (int r = 4; r < 24; ++r) {
      for (int c = 4 + i; c < 20 + i; ++c) im.pixels[static_cast<size_t>(r * 28 + c)] = static_cast<uint8_t>(40 * i);
    }
    im.title = "true: sneaker";
    im.subtitle = "pred: bag";
    im.highlight = i % 2 == 0;
    images.push_back(im);
  }
  std::string path = TempPath("row/images.png");  // the folder does not exist yet
  REQUIRE(DrawImageRow(path, images, 3).ok());
  auto png = ReadPngSummary(path);
  REQUIRE(png.ok());
  CHECK(png->width == 6 * (28 * 3 + 20));
  CHECK(png->height == 28 * 3 + 64);
  // The black image backgrounds alone cover 6 * 84 * 84 pixels; captions add red and green.
  CHECK(png->non_white_pixels >= 6 * 84 * 84);
  CHECK(png->distinct_colors > 10);
}

TEST_CASE("DrawLinePlot writes two panels of loss and accuracy", "[examples][plot]") {
  std::vector<Panel> panels{{"loss", "epoch", {{"train loss", {0.8, 0.5, 0.4, 0.35}}}},
                            {"accuracy", "epoch", {{"train acc", {0.7, 0.8, 0.85, 0.87}}, {"test acc", {0.72, 0.81, 0.84, 0.86}}}}};
  std::string path = TempPath("training.png");
  REQUIRE(DrawLinePlot(path, panels, 400, 300).ok());
  auto png = ReadPngSummary(path);
  REQUIRE(png.ok());
  CHECK(png->width == 800);
  CHECK(png->height == 300);
  CHECK(png->non_white_pixels > 2000);  // axes, grid, lines, text
  CHECK(png->non_white_pixels < 800 * 300 / 2);
  CHECK(png->distinct_colors > 5);  // black text, grey grid, three line colours
}

TEST_CASE("the drawing helpers reject bad input and report missing files", "[examples][plot]") {
  CHECK(DrawImageRow(TempPath("x.png"), {}).code() == StatusCode::kInvalidArgument);
  LabelledImage bad;
  bad.height = 2;
  bad.width = 2;
  bad.pixels = {1, 2, 3};
  CHECK(DrawImageRow(TempPath("x.png"), {bad}).code() == StatusCode::kInvalidArgument);
  CHECK(DrawLinePlot(TempPath("y.png"), {{"empty", "epoch", {}}}).code() == StatusCode::kInvalidArgument);
  CHECK(ReadPngSummary(TempPath("does-not-exist.png")).status().code() == StatusCode::kNotFound);
}

}  // namespace
}  // namespace kiln::examples::plot
