// Small drawing helpers for the examples, on cairo (Debian libcairo2-dev; cairo's image
// surface and PNG functions): a row of labelled grayscale images, as the Gluon tutorial's
// matplotlib figure of predictions, and line plots of per-epoch metrics. Output is PNG,
// 8-bit RGB(A), written by cairo_surface_write_to_png.
// Source: cairo 1.16 manual, "Image Surfaces", "PNG Support", "text" (toy font API).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace kiln::examples::plot {

// One grayscale image with up to two caption lines drawn above it.
struct LabelledImage {
  std::vector<uint8_t> pixels;  // [height, width] row-major, 0 = black, 255 = white
  int64_t height = 0, width = 0;
  std::string title;     // first caption line (e.g. the true label)
  std::string subtitle;  // second caption line (e.g. the prediction)
  bool highlight = false;  // draw the subtitle in red (e.g. a wrong prediction)
};

// Draws `images` side by side, each magnified `scale` times (nearest neighbour), on a white
// background with its captions above, and writes the PNG to `path` (parent folders are
// created). The picture is sum(width*scale + 20) pixels wide and
// max(height)*scale + 64 pixels high.
// Errors: InvalidArgument for no images, scale < 1 or a pixel count other than
// height*width (naming the image); Internal for a cairo or file error (naming the path and
// cairo's status string).
Status DrawImageRow(const std::string& path, const std::vector<LabelledImage>& images, int scale = 4);

// One line: y values at x = 1, 2, ... (e.g. epochs).
struct Series {
  std::string name;
  std::vector<double> values;
};
// One chart with its own y axis (auto-ranged from the data, with 5 labelled ticks).
struct Panel {
  std::string title;
  std::string x_label = "epoch";
  std::vector<Series> series;
};

// Draws the panels side by side (each `panel_width` x `panel_height` pixels) with axes,
// ticks, lines with point markers and a legend, and writes the PNG to `path` (parent folders
// are created). Non-finite values are skipped.
// Errors: InvalidArgument for no panels or a panel with no values; Internal for a cairo or
// file error (naming the path).
Status DrawLinePlot(const std::string& path, const std::vector<Panel>& panels, int panel_width = 480,
                    int panel_height = 360);

// What a PNG holds, as read back by cairo (cairo_image_surface_create_from_png).
struct PngSummary {
  int width = 0, height = 0;
  int64_t non_white_pixels = 0;  // pixels whose R, G or B is below 250
  int64_t distinct_colors = 0;   // distinct RGB values
};
// Errors: NotFound / Internal naming the path and cairo's status string.
StatusOr<PngSummary> ReadPngSummary(const std::string& path);

}  // namespace kiln::examples::plot
