#include "examples/plot.h"

#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <set>

namespace kiln::examples::plot {
namespace {

using SurfacePtr = std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)>;
using ContextPtr = std::unique_ptr<cairo_t, decltype(&cairo_destroy)>;

Status MakeParentDirs(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) return OkStatus();
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  if (ec) return Internal("cannot create folder '" + parent.string() + "': " + ec.message());
  return OkStatus();
}

Status CairoStatus(cairo_status_t s, const std::string& what, const std::string& path) {
  if (s == CAIRO_STATUS_SUCCESS) return OkStatus();
  return Internal(what + " '" + path + "': cairo: " + cairo_status_to_string(s));
}

Status WritePng(cairo_surface_t* surface, cairo_t* cr, const std::string& path) {
  RETURN_IF_ERROR(CairoStatus(cairo_status(cr), "drawing", path));
  RETURN_IF_ERROR(MakeParentDirs(path));
  cairo_surface_flush(surface);
  return CairoStatus(cairo_surface_write_to_png(surface, path.c_str()), "writing PNG", path);
}

void Text(cairo_t* cr, double x_center, double y_baseline, const std::string& s) {
  cairo_text_extents_t ext;
  cairo_text_extents(cr, s.c_str(), &ext);
  cairo_move_to(cr, x_center - ext.width / 2 - ext.x_bearing, y_baseline);
  cairo_show_text(cr, s.c_str());
}

// Tick values: 5 evenly spaced values over [lo, hi].
std::string FormatTick(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

constexpr double kPalette[][3] = {{0.12, 0.47, 0.71}, {1.0, 0.5, 0.05}, {0.17, 0.63, 0.17},
                                  {0.84, 0.15, 0.16}, {0.58, 0.4, 0.74}, {0.55, 0.34, 0.29}};

}  // namespace

Status DrawImageRow(const std::string& path, const std::vector<LabelledImage>& images, int scale) {
  if (images.empty()) return InvalidArgument("DrawImageRow: no images for '" + path + "'");
  if (scale < 1) return InvalidArgument("DrawImageRow: scale " + std::to_string(scale) + " must be >= 1");
  constexpr int kMargin = 10, kCaption = 44, kBottom = 20;
  int64_t total_w = 0, max_h = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    const LabelledImage& im = images[i];
    if (im.height < 1 || im.width < 1 || static_cast<int64_t>(im.pixels.size()) != im.height * im.width) {
      return InvalidArgument("DrawImageRow: image " + std::to_string(i) + " has " + std::to_string(im.pixels.size()) +
                             " pixels for [" + std::to_string(im.height) + "," + std::to_string(im.width) + "]");
    }
    total_w += im.width * scale + 2 * kMargin;
    max_h = std::max(max_h, im.height * scale);
  }
  const int width = static_cast<int>(total_w), height = static_cast<int>(max_h + kCaption + kBottom);
  SurfacePtr surface(cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height), cairo_surface_destroy);
  ContextPtr cr(cairo_create(surface.get()), cairo_destroy);
  cairo_set_source_rgb(cr.get(), 1, 1, 1);
  cairo_paint(cr.get());
  cairo_select_font_face(cr.get(), "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr.get(), 12);
  int64_t x0 = 0;
  for (const LabelledImage& im : images) {
    // The image as an A8-free RGB24 surface: one pixel per source pixel, then scaled up.
    SurfacePtr img(cairo_image_surface_create(CAIRO_FORMAT_RGB24, static_cast<int>(im.width), static_cast<int>(im.height)),
                   cairo_surface_destroy);
    cairo_surface_flush(img.get());
    unsigned char* data = cairo_image_surface_get_data(img.get());
    int stride = cairo_image_surface_get_stride(img.get());
    for (int64_t r = 0; r < im.height; ++r) {
      auto* row = reinterpret_cast<uint32_t*>(data + r * stride);
      for (int64_t c = 0; c < im.width; ++c) {
        uint32_t v = im.pixels[static_cast<size_t>(r * im.width + c)];
        row[c] = (v << 16) | (v << 8) | v;  // xRGB, native endian as cairo expects
      }
    }
    cairo_surface_mark_dirty(img.get());
    const double left = static_cast<double>(x0 + kMargin), top = kCaption;
    cairo_save(cr.get());
    cairo_translate(cr.get(), left, top);
    cairo_scale(cr.get(), scale, scale);
    cairo_set_source_surface(cr.get(), img.get(), 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr.get()), CAIRO_FILTER_NEAREST);
    cairo_paint(cr.get());
    cairo_restore(cr.get());
    const double cx = left + static_cast<double>(im.width * scale) / 2;
    cairo_set_source_rgb(cr.get(), 0, 0, 0);
    Text(cr.get(), cx, 18, im.title);
    if (im.highlight) {
      cairo_set_source_rgb(cr.get(), 0.8, 0, 0);
    } else {
      cairo_set_source_rgb(cr.get(), 0, 0.45, 0);
    }
    Text(cr.get(), cx, 36, im.subtitle);
    x0 += im.width * scale + 2 * kMargin;
  }
  return WritePng(surface.get(), cr.get(), path);
}

Status DrawLinePlot(const std::string& path, const std::vector<Panel>& panels, int panel_width, int panel_height) {
  if (panels.empty()) return InvalidArgument("DrawLinePlot: no panels for '" + path + "'");
  const int width = panel_width * static_cast<int>(panels.size()), height = panel_height;
  SurfacePtr surface(cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height), cairo_surface_destroy);
  ContextPtr cr_ptr(cairo_create(surface.get()), cairo_destroy);
  cairo_t* cr = cr_ptr.get();
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  for (size_t p = 0; p < panels.size(); ++p) {
    const Panel& panel = panels[p];
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    size_t n = 0;
    for (const Series& s : panel.series) {
      n = std::max(n, s.values.size());
      for (double v : s.values) {
        if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
      }
    }
    if (n == 0 || !std::isfinite(lo)) return InvalidArgument("DrawLinePlot: panel '" + panel.title + "' has no values");
    if (hi - lo < 1e-9) lo -= 0.5, hi += 0.5;
    const double pad = 0.05 * (hi - lo);
    lo -= pad, hi += pad;
    // Plot area inside the panel.
    const double ox = p * static_cast<double>(panel_width);
    const double left = ox + 60, right = ox + panel_width - 20, top = 40, bottom = panel_height - 50.0;
    auto X = [&](size_t i) { return n == 1 ? (left + right) / 2 : left + (right - left) * static_cast<double>(i) / (n - 1); };
    auto Y = [&](double v) { return bottom - (bottom - top) * (v - lo) / (hi - lo); };
    // Axes, grid and ticks.
    cairo_set_font_size(cr, 11);
    cairo_set_line_width(cr, 1);
    for (int k = 0; k <= 4; ++k) {
      double v = lo + (hi - lo) * k / 4, y = Y(v);
      cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
      cairo_move_to(cr, left, y);
      cairo_line_to(cr, right, y);
      cairo_stroke(cr);
      cairo_set_source_rgb(cr, 0, 0, 0);
      std::string t = FormatTick(v);
      cairo_text_extents_t ext;
      cairo_text_extents(cr, t.c_str(), &ext);
      cairo_move_to(cr, left - 6 - ext.width - ext.x_bearing, y + ext.height / 2);
      cairo_show_text(cr, t.c_str());
    }
    for (size_t i = 0; i < n; ++i) {
      if (n > 12 && i % ((n + 11) / 12) != 0 && i + 1 != n) continue;
      Text(cr, X(i), bottom + 16, std::to_string(i + 1));
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_rectangle(cr, left, top, right - left, bottom - top);
    cairo_stroke(cr);
    cairo_set_font_size(cr, 13);
    Text(cr, (left + right) / 2, 24, panel.title);
    cairo_set_font_size(cr, 11);
    Text(cr, (left + right) / 2, bottom + 36, panel.x_label);
    // Lines, markers and legend.
    for (size_t s = 0; s < panel.series.size(); ++s) {
      const double* c = kPalette[s % (sizeof kPalette / sizeof kPalette[0])];
      cairo_set_source_rgb(cr, c[0], c[1], c[2]);
      cairo_set_line_width(cr, 2);
      bool started = false;
      const auto& vals = panel.series[s].values;
      for (size_t i = 0; i < vals.size(); ++i) {
        if (!std::isfinite(vals[i])) {
          started = false;
          continue;
        }
        if (started) {
          cairo_line_to(cr, X(i), Y(vals[i]));
        } else {
          cairo_move_to(cr, X(i), Y(vals[i]));
        }
        started = true;
      }
      cairo_stroke(cr);
      for (size_t i = 0; i < vals.size(); ++i) {
        if (!std::isfinite(vals[i])) continue;
        cairo_arc(cr, X(i), Y(vals[i]), 3, 0, 2 * M_PI);
        cairo_fill(cr);
      }
      const double ly = top + 16 + 16.0 * static_cast<double>(s);
      cairo_move_to(cr, right - 130, ly - 4);
      cairo_line_to(cr, right - 110, ly - 4);
      cairo_stroke(cr);
      cairo_set_source_rgb(cr, 0, 0, 0);
      cairo_move_to(cr, right - 104, ly);
      cairo_show_text(cr, panel.series[s].name.c_str());
    }
  }
  return WritePng(surface.get(), cr, path);
}

StatusOr<PngSummary> ReadPngSummary(const std::string& path) {
  if (!std::filesystem::exists(path)) return NotFound("no PNG file '" + path + "'");
  SurfacePtr s(cairo_image_surface_create_from_png(path.c_str()), cairo_surface_destroy);
  RETURN_IF_ERROR(CairoStatus(cairo_surface_status(s.get()), "reading PNG", path));
  cairo_surface_flush(s.get());
  PngSummary r;
  r.width = cairo_image_surface_get_width(s.get());
  r.height = cairo_image_surface_get_height(s.get());
  const unsigned char* data = cairo_image_surface_get_data(s.get());
  const int stride = cairo_image_surface_get_stride(s.get());
  std::set<uint32_t> colors;
  for (int y = 0; y < r.height; ++y) {
    const auto* row = reinterpret_cast<const uint32_t*>(data + y * stride);
    for (int x = 0; x < r.width; ++x) {
      uint32_t px = row[x] & 0xffffffu;  // ARGB32 / RGB24: the low 24 bits are R, G, B
      uint32_t red = (px >> 16) & 0xff, green = (px >> 8) & 0xff, blue = px & 0xff;
      if (red < 250 || green < 250 || blue < 250) ++r.non_white_pixels;
      colors.insert(px);
    }
  }
  r.distinct_colors = static_cast<int64_t>(colors.size());
  return r;
}

}  // namespace kiln::examples::plot
