// Imports an ONNX file written by tests/import/onnx_reference.py and checks kiln's output
// on the same input against PyTorch's: max |kiln - torch| / max |torch| <= --tol. Runs the
// Predictor twice: plain, and with constant parameters (batch norms folded, as artifacts).
//
//   onnx_compare --dir DIR [--tol 1e-4] [--batch N]
//
// --batch (models exported with a symbolic batch): run the first N images only.
// Exit status 0 when both runs are within the tolerance.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "graph/trainer.h"
#include "import/onnx_import.h"

namespace {

using namespace kiln;

StatusOr<std::vector<float>> ReadFloats(const std::string& path, int64_t count) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(path);
  std::vector<float> v(static_cast<size_t>(count));
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(count * 4));
  if (!in) return InvalidArgument(path + " is shorter than " + std::to_string(count) + " floats");
  return v;
}

Shape ReadShapeLine(std::istream& in) {
  std::string line;
  std::getline(in, line);
  std::istringstream s(line);
  Shape d;
  for (int64_t x; s >> x;) d.push_back(x);
  return d;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kiln's ONNX import against PyTorch"};
  std::string dir;
  double tol = 1e-4;
  int64_t batch = 0;
  app.add_option("--dir", dir)->required();
  app.add_option("--tol", tol);
  app.add_option("--batch", batch);
  CLI11_PARSE(app, argc, argv);
  std::ifstream shapes(dir + "/shape.txt");
  Shape in_shape = ReadShapeLine(shapes), out_shape = ReadShapeLine(shapes);
  auto x = ReadFloats(dir + "/input.bin", NumElements(in_shape));
  auto y = ReadFloats(dir + "/output.bin", NumElements(out_shape));
  if (!x.ok() || !y.ok()) {
    std::fprintf(stderr, "FAIL reading the reference: %s\n", (!x.ok() ? x.status() : y.status()).ToString().c_str());
    return 1;
  }
  auto start = std::chrono::steady_clock::now();
  auto net = onnx_import::ImportOnnxFile(dir + "/model.onnx");
  if (!net.ok()) {
    std::fprintf(stderr, "FAIL import: %s\n", net.status().ToString().c_str());
    return 1;
  }
  double import_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (batch > 0 && batch < in_shape[0]) {
    int64_t per_in = NumElements(in_shape) / in_shape[0], per_out = NumElements(out_shape) / out_shape[0];
    x->resize(static_cast<size_t>(batch * per_in));
    y->resize(static_cast<size_t>(batch * per_out));
    in_shape[0] = out_shape[0] = batch;
  }
  Tensor input(DType::kF32, in_shape);
  std::copy(x->begin(), x->end(), input.f32());
  double scale = 0;
  for (float v : *y) scale = std::max(scale, static_cast<double>(std::fabs(v)));
  int failed = 0;
  for (bool frozen : {false, true}) {
    graph::Predictor predictor(**net, graph::CompileOptions{.constant_params = frozen});
    Tensor out;
    Status s = predictor.Forward(input, &out);
    if (!s.ok()) {
      std::fprintf(stderr, "FAIL %s run: %s\n", frozen ? "frozen" : "plain", s.ToString().c_str());
      ++failed;
      continue;
    }
    if (out.shape() != out_shape) {
      std::fprintf(stderr, "FAIL output shape %s, torch %s\n", ShapeToString(out.shape()).c_str(),
                   ShapeToString(out_shape).c_str());
      ++failed;
      continue;
    }
    double worst = 0;
    for (int64_t i = 0; i < out.num_elements(); ++i) {
      worst = std::max(worst, std::fabs(static_cast<double>(out.f32()[i]) - (*y)[static_cast<size_t>(i)]));
    }
    double rel = worst / std::max(scale, 1e-12);
    bool ok = rel <= tol;
    failed += !ok;
    std::printf("%s %-7s opset %2d, %zu nodes, input %s: rel.err %.3g (tol %.3g), import %.2f s\n", ok ? "ok  " : "FAIL",
                frozen ? "frozen" : "plain", (*net)->model_opset(), (*net)->nodes().size(),
                ShapeToString(in_shape).c_str(), rel, tol, import_s);
  }
  return failed == 0 ? 0 : 1;
}
