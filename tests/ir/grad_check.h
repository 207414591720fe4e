// Finite-difference gradient checks on the reference kernels, in double precision.
#pragma once

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "ir/builder.h"
#include "ir/interpreter.h"
#include "passes/autodiff.h"

namespace kiln::testing {

inline ir::RefTensor RandomRef(const Shape& shape, std::mt19937& rng, double lo = -1, double hi = 1) {
  ir::RefTensor t(shape);
  std::uniform_real_distribution<double> d(lo, hi);
  for (double& v : t.data) v = d(rng);
  return t;
}

struct GradCheckResult {
  double max_rel_error = 0;
  int checked = 0;
  std::string worst;
};

// Builds loss = sum(y * r) for the graph's output "y" (r a random input of y's shape),
// differentiates w.r.t. every value in `wrt` with AppendBackward, and compares every
// element's gradient (up to `max_elements` per value) with central differences
// (f(x+h) - f(x-h)) / 2h computed by re-running the forward graph in double.
// `env` holds every graph argument.
inline GradCheckResult CheckGradients(ir::Graph g, ir::RefEnv env, const std::vector<ir::ValueId>& wrt,
                                      std::mt19937& rng, double h = 1e-6, int max_elements = 64) {
  GradCheckResult res;
  ir::Builder b(g);
  ir::ValueId y = *g.FindOutput("y");
  ir::ValueId r = g.AddInput("grad_check_r", g.value(y).type);
  env[r] = RandomRef(g.value(y).type.shape, rng);
  ir::ValueId prod = b.Emit1("mul", {y, r}).value();
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < g.value(y).type.rank(); ++i) axes.push_back(i);
  ir::ValueId loss = b.Emit1("reduce_sum", {prod}, ir::Attrs{{"axes", axes}, {"keepdims", int64_t{0}}}).value();
  g.AddOutput("loss", loss);
  ir::Graph forward = g;  // before backward nodes
  auto grads = passes::AppendBackward(g, loss, wrt);
  if (!grads.ok()) {
    res.worst = grads.status().ToString();
    res.max_rel_error = 1e9;
    return res;
  }
  ir::RefEnv genv = env;
  Status s = ir::RunReference(g, genv);
  if (!s.ok()) {
    res.worst = s.ToString();
    res.max_rel_error = 1e9;
    return res;
  }
  auto eval = [&](ir::RefEnv e) {
    Status st = ir::RunReference(forward, e);
    return st.ok() ? e.at(loss)[0] : std::nan("");
  };
  for (ir::ValueId w : wrt) {
    const ir::RefTensor& analytic = genv.at(grads->at(w));
    int64_t n = env.at(w).size();
    int64_t step = std::max<int64_t>(1, n / max_elements);
    for (int64_t i = 0; i < n; i += step) {
      ir::RefEnv plus = env, minus = env;
      plus[w][i] += h;
      minus[w][i] -= h;
      double fd = (eval(plus) - eval(minus)) / (2 * h);
      double err = std::abs(fd - analytic[i]) / std::max(1.0, std::abs(fd));
      ++res.checked;
      if (err > res.max_rel_error || std::isnan(err)) {
        res.max_rel_error = std::isnan(err) ? 1e9 : err;
        res.worst = g.value(w).name + "[" + std::to_string(i) + "]: analytic " + std::to_string(analytic[i]) +
                    " vs finite difference " + std::to_string(fd);
      }
    }
  }
  return res;
}

}  // namespace kiln::testing
