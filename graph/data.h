// The data pipeline of gluon.data for image classification: the ToTensor / Normalize transforms
// and a single-process DataLoader with Gluon's shuffle and last_batch rules.
// See GLUON_SEMANTICS.md section 6.
//
// Typical use (Gluon: DataLoader(FashionMNIST(train=True).transform_first(
//     Compose([ToTensor(), Normalize(0.286, 0.353)])), batch_size=64, shuffle=True)):
//
//   ASSIGN_OR_RETURN(Dataset train, LoadIdxDataset("data/fashion-mnist", /*train=*/true));
//   ASSIGN_OR_RETURN(DataLoader loader,
//                    DataLoader::Create(train, /*batch_size=*/64, /*shuffle=*/true, LastBatch::kKeep,
//                                       /*seed=*/42,
//                                       transforms::Compose(transforms::ToTensor(),
//                                                           {transforms::Normalize(0.286f, 0.353f)})));
//   for (int epoch = 0; epoch < 10; ++epoch) {
//     Batch batch;
//     while (loader.Next(batch)) { /* batch.data f32 [B,1,28,28] NCHW, batch.label s32 [B] */ }
//     loader.Reset();  // next epoch: fresh permutation
//   }
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "base/status.h"
#include "base/tensor.h"
#include "graph/idx.h"

namespace kiln::graph {
namespace transforms {

// gluon.data.vision.transforms.ToTensor: uint8 images to float32 in [0, 1].
//   src: uint8 (H, W, C) HWC or (N, H, W, C) NHWC, row-major, values 0..255
//   dst: f32   (C, H, W) CHW or (N, C, H, W) NCHW, dst = float(src) / 255.0f (no clipping)
// Source: mxnet/gluon/data/vision/transforms.py ToTensor; src/operator/image/image_random-inl.h
// (ToTensorImpl: out = in / 255.0f).
class ToTensor {
 public:
  // Applies the transform to `pixels` laid out as `shape`.
  // Errors: InvalidArgument if shape has rank other than 3 or 4, a negative dim, or
  // NumElements(shape) != pixels.size().
  StatusOr<Tensor> operator()(std::span<const uint8_t> pixels, const Shape& shape) const;
};

// gluon.data.vision.transforms.Normalize: per-channel standardization, in place.
//   x: f32 (C, H, W) CHW or (N, C, H, W) NCHW; x[.., c, :, :] = (x - mean[c]) / std[c]
// mean and std hold 1 value (broadcast to every channel) or C values. As in MXNet, C must be 1
// or 3, and std = 0 is not rejected (it gives inf/nan like MXNet's division).
// Source: mxnet/gluon/data/vision/transforms.py Normalize; src/operator/image/image_random-inl.h
// (NormalizeOpShape CHECKs C in {1, 3}; NormalizeImpl: out = (in - mean[c]) / std[c]).
class Normalize {
 public:
  // Scalar mean/std, broadcast to every channel (Gluon's defaults: mean 0, std 1).
  explicit Normalize(float mean = 0.0f, float stddev = 1.0f);
  // One value (broadcast) or one per channel; Gluon's mean/std tuples.
  Normalize(std::vector<float> mean, std::vector<float> stddev);

  // Normalizes x in place.
  // Errors: InvalidArgument if x is not f32, its rank is not 3 or 4, C is not 1 or 3, or mean/std
  // have a length other than 1 or C (the message names the shape and both lengths).
  Status operator()(Tensor& x) const;

  // Checks that mean/std fit `channels` (C in {1, 3}; lengths 1 or C). Errors: InvalidArgument.
  Status CheckChannels(int64_t channels) const;
  // (x - mean[c]) / std[c] for one value of channel c, with the same float32 arithmetic as
  // operator(). Requires CheckChannels(C) to have passed for some C > c.
  float Apply(float x, int64_t c) const {
    const float m = mean_.size() == 1 ? mean_[0] : mean_[c];
    const float s = stddev_.size() == 1 ? stddev_[0] : stddev_[c];
    return (x - m) / s;
  }

  const std::vector<float>& mean() const { return mean_; }
  const std::vector<float>& stddev() const { return stddev_; }

 private:
  std::vector<float> mean_;
  std::vector<float> stddev_;
};

// gluon.data.vision.transforms.Resize(size, keep_ratio=False, interpolation=1): bilinear
// resize of every channel to (height, width).
//   x:   f32 (C, H, W) CHW or (N, C, H, W) NCHW  ->  (C, OH, OW) / (N, C, OH, OW)
// OpenCV's INTER_LINEAR convention (pixel centres aligned): for an output column ox,
// sx = (ox + 0.5) * W / OW - 0.5, clamped to [0, W - 1]; the value interpolates columns
// floor(sx) and floor(sx) + 1 (the last column repeats at the border); rows likewise.
// Difference from Gluon: Gluon resizes the uint8 HWC image before ToTensor (cv::resize, which
// rounds to uint8); kiln resizes the float tensor after ToTensor/Normalize, which is the same
// affine map applied in the other order, without the uint8 rounding (|diff| <= 0.5/255/std).
// Gluon's `size` is (width, height); kiln takes (height, width) like every kiln shape.
// Source: mxnet/gluon/data/vision/transforms.py Resize; src/operator/image/resize-inl.h
// (cv::resize with INTER_LINEAR); OpenCV imgproc resize (INTER_LINEAR).
class Resize {
 public:
  Resize(int64_t height, int64_t width) : height_(height), width_(width) {}
  explicit Resize(int64_t size) : Resize(size, size) {}
  // Errors: InvalidArgument if x is not f32 of rank 3 or 4, has an empty H or W, or the
  // target size is < 1 (naming the shape and the size).
  StatusOr<Tensor> operator()(const Tensor& x) const;

 private:
  int64_t height_, width_;
};

// Compose([ToTensor(), Normalize(...), ...]) for uint8 images: ToTensor, then each Normalize in
// order. Because the input is uint8, the whole pipeline is a per-channel table of 256 floats
// (PixelTable), computed with exactly the float32 arithmetic of applying the steps one by one, so
// a batch is assembled with one table lookup per pixel and bit-identical results.
// Source: mxnet/gluon/data/vision/transforms.py Compose.
class Compose {
 public:
  // ToTensor only.
  Compose() = default;
  // ToTensor followed by `normalize` in order.
  explicit Compose(ToTensor to_tensor, std::vector<Normalize> normalize = {});

  // Applies the pipeline: uint8 (H,W,C) / (N,H,W,C) -> f32 (C,H,W) / (N,C,H,W), as ToTensor.
  // Errors: those of ToTensor (shape vs pixel count) and of Normalize::CheckChannels.
  StatusOr<Tensor> operator()(std::span<const uint8_t> pixels, const Shape& shape) const;

  // The pipeline's value for every (channel, uint8 value): f32 [channels, 256], row-major.
  // Errors: InvalidArgument if channels < 1 or a Normalize does not fit `channels`.
  StatusOr<std::vector<float>> PixelTable(int64_t channels) const;

  const std::vector<Normalize>& normalize() const { return normalize_; }

 private:
  std::vector<Normalize> normalize_;
};

// dst[i] = table[src[i]] for i < count: applies a PixelTable (C = 1) to `count` uint8 pixels.
// src, table and dst must not overlap. Used by Compose and DataLoader to assemble batches.
void GatherThroughTable(const uint8_t* src, int64_t count, const float* table, float* dst);

}  // namespace transforms

// gluon.data.DataLoader's last_batch, for when batch_size does not divide the epoch's samples.
enum class LastBatch {
  kKeep,      // yield the short final batch: ceil(N / B) batches
  kDiscard,   // drop it: floor(N / B) batches
  kRollover,  // carry its indices to the front of the next epoch: floor((leftover + N) / B)
};

// One mini-batch.
struct Batch {
  Tensor data;                   // f32 [B, C, H, W] NCHW, the transformed images (C = 1 for IDX)
  Tensor label;                  // s32 [B], the class labels
  std::vector<int64_t> indices;  // [B], the data-set index of each sample, in batch order

  int64_t size() const { return static_cast<int64_t>(indices.size()); }
};

// gluon.data.DataLoader(dataset.transform_first(transform), batch_size, shuffle,
// last_batch=...) with num_workers=0: yields batches of (transform(image), label) in sampler
// order, stacked on a new axis 0 (default_batchify_fn).
//
// Epochs: the loader starts in epoch 0. Next() returns batches until the epoch is exhausted, then
// false; Reset() starts the next epoch. Each epoch's order is 0..N-1 (shuffle = false) or a fresh
// uniform permutation (shuffle = true) drawn by a Fisher-Yates shuffle from one std::mt19937_64
// seeded once with `seed` and advanced by every epoch, so a loader's sequence of epochs depends
// only on `seed` and is the same on every platform. (Gluon draws from numpy's global RNG instead,
// so the orders differ from Gluon's; the rules are the same.)
//
// last_batch = kRollover: when an epoch is exhausted (Next() returned false), the leftover
// indices (fewer than B) are put in front of the next epoch's order, so they open its first batch
// and that epoch has floor((leftover + N) / B) batches; its own leftover rolls over again. An
// epoch abandoned by Reset() before Next() returned false carries nothing over (as Gluon, whose
// BatchSampler only stores the leftover when its generator runs to the end).
//
// The loader keeps a pointer to `dataset`, which must outlive it. Not thread-safe.
// Source: mxnet/gluon/data/dataloader.py DataLoader; gluon/data/sampler.py RandomSampler,
// SequentialSampler, BatchSampler.
class DataLoader {
 public:
  // Errors: InvalidArgument if batch_size < 1, the data set is inconsistent (labels.size() or
  // pixels.size() do not match images.count), or `transform` does not fit C = 1.
  static StatusOr<DataLoader> Create(const Dataset& dataset, int64_t batch_size, bool shuffle,
                                     LastBatch last_batch = LastBatch::kKeep, uint64_t seed = 0,
                                     transforms::Compose transform = transforms::Compose());
  // The loader points into the data set, so a temporary one is refused at compile time.
  static StatusOr<DataLoader> Create(Dataset&& dataset, int64_t batch_size, bool shuffle,
                                     LastBatch last_batch = LastBatch::kKeep, uint64_t seed = 0,
                                     transforms::Compose transform = transforms::Compose()) = delete;

  // Number of batches the current epoch yields in all (len(loader) in Gluon): keep ceil(M / B),
  // discard and rollover floor(M / B), where M = N plus, for rollover, the indices carried in.
  int64_t size() const { return num_batches_; }
  // 0-based index of the current epoch (the number of Reset() calls).
  int64_t epoch() const { return epoch_; }
  int64_t batch_size() const { return batch_size_; }

  // Fills `batch` with the next batch of the epoch and returns true, or returns false when the
  // epoch is exhausted (then, for rollover, stores the leftover). B is batch_size, or fewer for the
  // final batch under kKeep. Reuses batch's buffers when their shapes already match.
  bool Next(Batch& batch);

  // Starts the next epoch (draws a new permutation when shuffling).
  void Reset();

 private:
  DataLoader() = default;
  void StartEpoch();

  const Dataset* dataset_ = nullptr;
  int64_t batch_size_ = 1;
  bool shuffle_ = false;
  LastBatch last_batch_ = LastBatch::kKeep;
  std::mt19937_64 rng_;
  std::vector<float> table_;     // transform as f32 [1, 256]
  std::vector<int64_t> order_;   // this epoch's sample order (carried indices first)
  std::vector<int64_t> carry_;   // rollover leftover for the next epoch
  int64_t cursor_ = 0;           // next position in order_
  bool exhausted_ = false;
  int64_t num_batches_ = 0;
  int64_t epoch_ = 0;
};

}  // namespace kiln::graph
