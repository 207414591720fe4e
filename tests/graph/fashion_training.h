// Shared by the real-data training tests: a prefix of a dataset, and a run of epochs through
// a compiled TrainStep followed by the test accuracy of a Predictor.
#pragma once

#include "graph/data.h"
#include "graph/trainer.h"

namespace kiln::graph::testing {

// The first `n` samples of `d`.
inline Dataset Prefix(const Dataset& d, int64_t n) {
  Dataset out = d;
  out.images.count = n;
  out.images.pixels.resize(static_cast<size_t>(n * d.images.rows * d.images.cols));
  out.labels.resize(static_cast<size_t>(n));
  return out;
}

struct TrainResult {
  Status status;
  double first_loss = -1, last_loss = 0;  // mean per-sample loss of the first and last epoch
  double accuracy = 0;                    // on the test loader, in inference mode
};

// `epochs` passes over `train` with `step`, then the accuracy of `net` on `test`.
inline TrainResult TrainAndEvaluate(nn::Block& net, TrainStep& step, DataLoader& train, DataLoader& test, int epochs) {
  TrainResult r;
  Batch batch;
  Tensor loss, out;
  for (int epoch = 0; epoch < epochs; ++epoch) {
    train.Reset();
    double sum = 0;
    int64_t n = 0;
    while (train.Next(batch)) {
      r.status = step.Run(batch.data, batch.label, batch.size(), &loss, &out);
      if (!r.status.ok()) return r;
      for (int64_t i = 0; i < loss.num_elements(); ++i) sum += loss.f32()[i];
      n += batch.size();
    }
    if (r.first_loss < 0) r.first_loss = sum / static_cast<double>(n);
    r.last_loss = sum / static_cast<double>(n);
  }
  Predictor predictor(net);
  Accuracy acc;
  test.Reset();
  while (test.Next(batch)) {
    r.status = predictor.Forward(batch.data, &out);
    if (r.status.ok()) r.status = acc.Update(batch.label, out);
    if (!r.status.ok()) return r;
  }
  r.accuracy = acc.Get().second;
  return r;
}

}  // namespace kiln::graph::testing
