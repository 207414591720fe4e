// What the Fashion-MNIST examples print and draw (the main job, examples/fashion_mnist_lenet.cc,
// and the ResNet, examples/resnet_fashion.cc): a progress bar, the test accuracy of a
// compiled Predictor, the first six test predictions printed and drawn with their labels
// (as the Gluon tutorial's matplotlib figure) and loss/accuracy curves per epoch
// (examples/plot.h, on cairo).
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "graph/data.h"
#include "graph/trainer.h"

namespace kiln::examples {

// Fashion-MNIST's ten classes in label order (Xiao et al. 2017, "Fashion-MNIST").
extern const char* const kFashionClassNames[10];

// A one-line progress bar on stderr, "[=====     ] done/total batches 1.2s", redrawn in
// place; only when stderr is a terminal. Cleared when done == total.
void PrintProgress(int64_t done, int64_t total, double seconds);

// Accuracy (fraction in [0, 1]) of `predictor` over every batch of `loader` (reset first).
// Errors: the Predictor's and graph::Accuracy's, unchanged.
StatusOr<double> EvaluateAccuracy(graph::Predictor& predictor, graph::DataLoader& loader);

// Per-epoch metrics, one value per epoch (mean per-sample training loss; accuracies in [0, 1]).
struct EpochLog {
  std::vector<double> loss, train_acc, test_acc;
};

// Predicts the first six images of `test_loader` (reset first; batches of >= 6 images) with
// `predictor`, prints "first six test images:" and one line per image (predicted and true
// class), and draws them magnified 4x with both labels (wrong ones in red) into the PNG
// `picture_path`. `test_set` is the dataset behind the loader (its raw pixels are drawn).
// Errors: InvalidArgument when the first batch has fewer than six images; the Predictor's
// and plot::DrawImageRow's errors.
Status ReportFirstPredictions(graph::Predictor& predictor, graph::DataLoader& test_loader,
                              const graph::Dataset& test_set, const std::string& picture_path);

// Draws the training loss and the train/test accuracy per epoch into the PNG `plot_path`
// (two panels). Errors: plot::DrawLinePlot's (e.g. no epochs).
Status DrawTrainingCurves(const EpochLog& log, const std::string& plot_path);

}  // namespace kiln::examples
