// Compares a kiln zoo model with torchvision on the same weights (tests/zoo/
// torch_reference.py writes them): inference logits, then one training step in training
// mode (per-sample losses, logits, every parameter's gradient, the updated parameters and
// running statistics). Prints one line per quantity with its error, relative to the scale
// of the torch values (max |torch|), and exits 1 when one exceeds its tolerance.
// Usage: zoo_compare --model resnet18_v1 --dir DIR [--classes 10] [--opt-level 2]
//        [--infer-tol 1e-4] [--train-tol 2e-3] [--grad-ratio 4] [--skip-train]
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "graph/trainer.h"
#include "graph/zoo.h"

namespace kiln {
namespace {

StatusOr<std::vector<std::pair<std::string, Tensor>>> ReadReference(const std::string& dir) {
  std::ifstream man(dir + "/manifest.txt");
  std::ifstream data(dir + "/data.bin", std::ios::binary);
  if (!man || !data) return NotFound("no manifest.txt/data.bin in " + dir);
  std::vector<std::pair<std::string, Tensor>> out;
  std::string key, dims;
  while (man >> key >> dims) {
    Shape s;
    if (dims != "-") {
      std::stringstream ss(dims);
      std::string d;
      while (std::getline(ss, d, ',')) s.push_back(std::stoll(d));
    }
    Tensor t(DType::kF32, s);
    data.read(reinterpret_cast<char*>(t.data()), t.num_elements() * 4);
    if (!data) return DataLoss("data.bin is shorter than the manifest at " + key);
    out.emplace_back(key, std::move(t));
  }
  return out;
}

// ||a - b||_2 / max(||b||_2, floor): the relative error of a whole tensor, robust to the
// single elements where a near-zero gradient is all rounding noise.
double L2RelError(const Tensor& a, const Tensor& b, double floor = 0) {
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < b.num_elements(); ++i) {
    double d = static_cast<double>(a.f32()[i]) - b.f32()[i];
    diff += d * d;
    norm += static_cast<double>(b.f32()[i]) * b.f32()[i];
  }
  if (std::isnan(diff)) return INFINITY;
  double scale = std::max(std::sqrt(norm), floor);
  return scale == 0 ? std::sqrt(diff) : std::sqrt(diff) / scale;
}

double L2(const Tensor& t) {
  double n = 0;
  for (int64_t i = 0; i < t.num_elements(); ++i) n += static_cast<double>(t.f32()[i]) * t.f32()[i];
  return std::sqrt(n);
}

double MaxAbs(const Tensor& t) {
  double m = 0;
  for (int64_t i = 0; i < t.num_elements(); ++i) m = std::max(m, static_cast<double>(std::abs(t.f32()[i])));
  return m;
}

// max |a - b| / max(max |b|, floor) (b the reference values); 0 for two zero tensors.
double RelError(const Tensor& a, const Tensor& b, double floor = 0) {
  double diff = 0;
  for (int64_t i = 0; i < b.num_elements(); ++i) {
    double d = std::abs(a.f32()[i] - b.f32()[i]);
    if (std::isnan(d)) return INFINITY;
    diff = std::max(diff, d);
  }
  double scale = std::max(MaxAbs(b), floor);
  return scale == 0 ? diff : diff / scale;
}

int Run(int argc, char** argv) {
  CLI::App app{"kiln zoo model vs torchvision on the same weights"};
  std::string model, dir;
  int64_t classes = 10;
  int opt_level = 2;
  double infer_tol = 1e-4, train_tol = 2e-3, grad_ratio = 4;
  bool skip_train = false;
  app.add_option("--model", model)->required();
  app.add_option("--dir", dir)->required();
  app.add_option("--classes", classes);
  app.add_option("--opt-level", opt_level);
  app.add_option("--infer-tol", infer_tol);
  app.add_option("--train-tol", train_tol);
  app.add_option("--grad-ratio", grad_ratio);
  app.add_flag("--skip-train", skip_train);
  bool verbose = false, resident = true;
  app.add_option("--resident", resident, "TrainStep keeps parameters resident in the steps' layouts (default 1)");
  app.add_flag("--verbose", verbose, "list every gradient over its tolerance");
  CLI11_PARSE(app, argc, argv);

  auto ref = ReadReference(dir);
  if (!ref.ok()) {
    std::fprintf(stderr, "%s\n", ref.status().ToString().c_str());
    return 1;
  }
  std::map<std::string, Tensor> r;
  for (auto& [k, t] : *ref) r[k] = std::move(t);
  auto net_or = graph::zoo::GetModel(model, graph::zoo::ZooOptions{.classes = classes, .dropout = 0});
  if (!net_or.ok()) {
    std::fprintf(stderr, "%s\n", net_or.status().ToString().c_str());
    return 1;
  }
  std::shared_ptr<graph::nn::Block> net = *net_or;
  int failures = 0;
  auto params = net->CollectParams();
  for (auto& [name, p] : params) {
    auto it = r.find("param:" + name);
    if (it == r.end()) {
      std::fprintf(stderr, "FAIL kiln parameter %s has no torchvision counterpart\n", name.c_str());
      return 1;
    }
    Status s = p->SetData(it->second);
    if (!s.ok()) {
      std::fprintf(stderr, "FAIL %s: %s\n", name.c_str(), s.ToString().c_str());
      return 1;
    }
  }
  size_t torch_params = 0;
  for (const auto& [k, t] : r) torch_params += k.rfind("param:", 0) == 0;
  if (torch_params != params.size()) {
    std::fprintf(stderr, "FAIL torchvision has %zu parameters and running statistics, kiln %zu\n", torch_params,
                 params.size());
    return 1;
  }
  auto report = [&](const std::string& what, double err, double tol) {
    bool ok = err <= tol;
    failures += ok ? 0 : 1;
    std::printf("%s %-44s rel.err %.3g (tol %.3g)\n", ok ? "ok  " : "FAIL", what.c_str(), err, tol);
  };
  const Tensor& x = r.at("input");
  Tensor label(DType::kS32, {x.shape()[0]});
  for (int64_t i = 0; i < label.num_elements(); ++i) label.s32()[i] = static_cast<int32_t>(r.at("label").f32()[i]);

  graph::Predictor predictor(*net, graph::CompileOptions{.constant_params = true, .opt_level = opt_level});
  Tensor logits;
  if (Status s = predictor.Forward(x, &logits); !s.ok()) {
    std::fprintf(stderr, "FAIL inference: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("%s %s input %s, %zu parameters and statistics, -O%d\n", model.c_str(), "vs torchvision 0.14",
              ShapeToString(x.shape()).c_str(), params.size(), opt_level);
  report("inference logits", RelError(logits, r.at("eval_logits")), infer_tol);
  if (skip_train) return failures == 0 ? 0 : 1;

  graph::Trainer trainer(*net, "sgd", {{"learning_rate", 0.1}});
  graph::TrainStep step(*net, graph::SoftmaxCrossEntropyLoss(), trainer,
                        graph::CompileOptions{.output_gradients = true, .opt_level = opt_level,
                                              .resident_params = resident});
  Tensor loss, out;
  if (Status s = step.Run(x, label, x.shape()[0], &loss, &out); !s.ok()) {
    std::fprintf(stderr, "FAIL training step: %s\n", s.ToString().c_str());
    return 1;
  }
  report("training-mode logits", RelError(out, r.at("train_logits")), train_tol);
  report("per-sample losses", RelError(loss, r.at("train_loss")), train_tol);
  // Gradients against torch's float64 ones: each tensor's L2 relative error, its norm
  // floored at 1e-3 of the largest gradient norm in the network (a bias right before a
  // training-mode BatchNorm has an exactly zero gradient, which float32 computes as rounding
  // noise). kiln must be within grad_ratio times torch float32's own error, or train_tol.
  // The update must be SGD's on kiln's gradient: new = old - lr * grad / N.
  double global = 0;
  for (auto& [name, p] : params) {
    if (p->grad_req() != "null") global = std::max(global, L2(r.at("grad64:" + name)));
  }
  double worst_grad = 0, worst_torch = 0, worst_update = 0, worst_stat = 0;
  std::string worst_grad_name, worst_update_name, worst_stat_name;
  const double lr = 0.1, n = static_cast<double>(x.shape()[0]);
  for (auto& [name, p] : params) {
    Tensor* v = p->Data().value();
    if (p->grad_req() == "null") {
      double e = RelError(*v, r.at("new:" + name));
      if (e > worst_stat) worst_stat = e, worst_stat_name = name;
      continue;
    }
    const Tensor* g = step.Gradient(name);
    const Tensor& g64 = r.at("grad64:" + name);
    double e = g ? L2RelError(*g, g64, 1e-3 * global) : INFINITY;
    double et = L2RelError(r.at("grad:" + name), g64, 1e-3 * global);
    if (e > worst_grad) worst_grad = e, worst_grad_name = name;
    worst_torch = std::max(worst_torch, et);
    if (verbose && e > std::max(train_tol, grad_ratio * et)) {
      std::printf("     gradient %s: rel.err %.3g (torch float32 %.3g)\n", name.c_str(), e, et);
    }
    if (g) {
      Tensor expect(DType::kF32, v->shape());
      const Tensor& old = r.at("param:" + name);
      for (int64_t i = 0; i < expect.num_elements(); ++i) {
        expect.f32()[i] = static_cast<float>(old.f32()[i] - lr * g->f32()[i] / n);
      }
      double eu = RelError(*v, expect);
      if (eu > worst_update) worst_update = eu, worst_update_name = name;
    }
  }
  std::printf("     torch float32 gradients vs float64: L2 rel.err %.3g\n", worst_torch);
  report("gradients vs float64 (worst: " + worst_grad_name + ")", worst_grad,
         std::max(train_tol, grad_ratio * worst_torch));
  report("SGD update on kiln's gradient (worst: " + worst_update_name + ")", worst_update, 1e-5);
  report("running statistics (worst: " + worst_stat_name + ")", worst_stat, train_tol);
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace kiln

int main(int argc, char** argv) { return kiln::Run(argc, argv); }
