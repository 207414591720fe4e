// kiln -> ONNX: builds a network (LeNet-5 or a zoo model, Xavier weights; BatchNorm running
// statistics randomized), writes its ONNX export (import/onnx_export.h) to DIR/model.onnx,
// a random input DIR/input.bin and kiln's own output DIR/kiln.bin (Predictor), and
// DIR/shape.txt. With --compare it instead checks DIR/output.bin (ONNX Runtime's output,
// tests/import/ort_reference.js) against DIR/kiln.bin: max |ort - kiln| / max |kiln| <= --tol.
//
//   onnx_export_check --model lenet|<zoo name> --dir DIR [--image 64] [--batch 2] [--compare]
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "examples/lenet_model.h"
#include "graph/trainer.h"
#include "graph/zoo.h"
#include "import/onnx_export.h"

namespace {

using namespace kiln;

bool WriteFloats(const std::string& path, const Tensor& t) {
  std::ofstream f(path, std::ios::binary);
  f.write(static_cast<const char*>(t.data()), static_cast<std::streamsize>(t.size_bytes()));
  return static_cast<bool>(f);
}

std::vector<float> ReadFloats(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), v.size() * 4);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kiln's ONNX export, checked by ONNX Runtime"};
  std::string model = "lenet", dir;
  int64_t image = 64, batch = 2;
  double tol = 1e-4;
  bool compare = false;
  app.add_option("--model", model);
  app.add_option("--dir", dir)->required();
  app.add_option("--image", image);
  app.add_option("--batch", batch);
  app.add_option("--tol", tol);
  app.add_flag("--compare", compare);
  CLI11_PARSE(app, argc, argv);
  if (compare) {
    std::vector<float> ort = ReadFloats(dir + "/output.bin"), ours = ReadFloats(dir + "/kiln.bin");
    if (ort.size() != ours.size() || ours.empty()) {
      std::fprintf(stderr, "FAIL: ONNX Runtime gave %zu values, kiln %zu\n", ort.size(), ours.size());
      return 1;
    }
    double worst = 0, scale = 0;
    for (size_t i = 0; i < ours.size(); ++i) {
      worst = std::max(worst, std::fabs(static_cast<double>(ort[i]) - ours[i]));
      scale = std::max(scale, std::fabs(static_cast<double>(ours[i])));
    }
    double rel = worst / std::max(scale, 1e-12);
    std::printf("%s %s: ONNX Runtime on kiln's export vs kiln: rel.err %.3g (tol %.3g)\n", rel <= tol ? "ok  " : "FAIL",
                model.c_str(), rel, tol);
    return rel <= tol ? 0 : 1;
  }
  graph::Seed(5);
  std::shared_ptr<graph::nn::Block> net;
  Shape shape;
  if (model == "lenet") {
    net = examples::MakeLeNet();
    shape = {batch, 1, 28, 28};
  } else {
    auto z = graph::zoo::GetModel(model, graph::zoo::ZooOptions{.classes = 10});
    if (!z.ok()) {
      std::fprintf(stderr, "FAIL: %s\n", z.status().ToString().c_str());
      return 1;
    }
    net = *z;
    shape = {batch, 3, image, image};
  }
  if (Status s = net->Initialize(graph::Xavier()); !s.ok()) {
    std::fprintf(stderr, "FAIL init: %s\n", s.ToString().c_str());
    return 1;
  }
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(0, 1);
  Tensor x(DType::kF32, shape), y;
  for (int64_t i = 0; i < x.num_elements(); ++i) x.f32()[i] = u(rng);
  graph::Predictor predictor(*net);
  if (Status s = predictor.Forward(x, &y); !s.ok()) {  // also infers the deferred shapes
    std::fprintf(stderr, "FAIL forward: %s\n", s.ToString().c_str());
    return 1;
  }
  // Non-trivial batch-norm statistics, then kiln's output with them.
  for (auto& [name, p] : net->CollectParams()) {
    const bool mean = name.size() > 12 && name.compare(name.size() - 12, 12, "running_mean") == 0;
    const bool var = name.size() > 11 && name.compare(name.size() - 11, 11, "running_var") == 0;
    if (!mean && !var) continue;
    auto t = p->Data();
    if (!t.ok()) return 1;
    for (int64_t i = 0; i < (*t)->num_elements(); ++i) (*t)->f32()[i] = var ? 0.5f + u(rng) : 0.2f * (u(rng) - 0.5f);
  }
  if (Status s = predictor.Forward(x, &y); !s.ok()) {
    std::fprintf(stderr, "FAIL forward: %s\n", s.ToString().c_str());
    return 1;
  }
  std::filesystem::create_directories(dir);
  if (Status s = onnx_import::ExportOnnx(*net, shape, dir + "/model.onnx"); !s.ok()) {
    std::fprintf(stderr, "FAIL export: %s\n", s.ToString().c_str());
    return 1;
  }
  if (!WriteFloats(dir + "/input.bin", x) || !WriteFloats(dir + "/kiln.bin", y)) return 1;
  std::printf("exported %s %s to %s/model.onnx (%lld bytes)\n", model.c_str(), ShapeToString(shape).c_str(), dir.c_str(),
              static_cast<long long>(std::filesystem::file_size(dir + "/model.onnx")));
  return 0;
}
