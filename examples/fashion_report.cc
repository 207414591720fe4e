#include "examples/fashion_report.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "examples/plot.h"

namespace kiln::examples {

const char* const kFashionClassNames[10] = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                            "sandal",  "shirt",   "sneaker",  "bag",   "ankle boot"};

void PrintProgress(int64_t done, int64_t total, double seconds) {
  static const bool tty = ::isatty(2);
  if (!tty) return;
  int width = 30, filled = static_cast<int>(width * done / std::max<int64_t>(total, 1));
  std::string bar(static_cast<size_t>(filled), '=');
  bar.resize(static_cast<size_t>(width), ' ');
  std::fprintf(stderr, "\r  [%s] %lld/%lld batches %.1fs", bar.c_str(), static_cast<long long>(done),
               static_cast<long long>(total), seconds);
  if (done == total) std::fprintf(stderr, "\r%*s\r", width + 40, "");
  std::fflush(stderr);
}

StatusOr<double> EvaluateAccuracy(graph::Predictor& predictor, graph::DataLoader& loader) {
  graph::Accuracy acc;
  graph::Batch batch;
  Tensor out;
  loader.Reset();
  while (loader.Next(batch)) {
    RETURN_IF_ERROR(predictor.Forward(batch.data, &out));
    RETURN_IF_ERROR(acc.Update(batch.label, out));
  }
  return acc.Get().second;
}

Status ReportFirstPredictions(graph::Predictor& predictor, graph::DataLoader& test_loader,
                              const graph::Dataset& test_set, const std::string& picture_path) {
  graph::Batch batch;
  test_loader.Reset();
  if (!test_loader.Next(batch) || batch.size() < 6) {
    return InvalidArgument("the first test batch has fewer than 6 images");
  }
  const Shape& in = batch.data.shape();
  Tensor first(DType::kF32, {6, in[1], in[2], in[3]}), out;
  std::memcpy(first.data(), batch.data.data(), static_cast<size_t>(first.size_bytes()));
  RETURN_IF_ERROR(predictor.Forward(first, &out));
  std::printf("first six test images:\n");
  std::vector<plot::LabelledImage> images;
  const int64_t hw = test_set.images.rows * test_set.images.cols;
  const int64_t classes = out.shape()[1];
  for (int i = 0; i < 6; ++i) {
    int best = 0;
    for (int j = 1; j < classes; ++j) {
      if (out.f32()[i * classes + j] > out.f32()[i * classes + best]) best = j;
    }
    const int truth = batch.label.s32()[i];
    std::printf("  %d: predicted %-10s true %-10s\n", i, kFashionClassNames[best], kFashionClassNames[truth]);
    plot::LabelledImage im;
    im.height = test_set.images.rows;
    im.width = test_set.images.cols;
    const auto* src = test_set.images.pixels.data() + batch.indices[static_cast<size_t>(i)] * hw;
    im.pixels.assign(src, src + hw);
    im.title = std::string("true: ") + kFashionClassNames[truth];
    im.subtitle = std::string("pred: ") + kFashionClassNames[best];
    im.highlight = best != truth;
    images.push_back(std::move(im));
  }
  RETURN_IF_ERROR(plot::DrawImageRow(picture_path, images, /*scale=*/4));
  std::printf("drew the six predictions into %s\n", picture_path.c_str());
  return OkStatus();
}

Status DrawTrainingCurves(const EpochLog& log, const std::string& plot_path) {
  std::vector<plot::Panel> panels{{"training loss", "epoch", {{"train loss", log.loss}}},
                                  {"accuracy", "epoch", {{"train acc", log.train_acc}, {"test acc", log.test_acc}}}};
  RETURN_IF_ERROR(plot::DrawLinePlot(plot_path, panels));
  std::printf("drew loss and accuracy per epoch into %s\n", plot_path.c_str());
  return OkStatus();
}

}  // namespace kiln::examples
