// A counter-based random number generator: the draw for element `index` under `seed` is a
// pure function of the two, so a kernel on any thread, the double-precision reference and
// the backward pass all compute the same dropout mask without storing it (the idea of
// Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3"; here with the
// SplitMix64 finalizer of Steele, Lea and Flood 2014 as the bijection).
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

namespace kiln {

// A uniform 64-bit value for (seed, index): SplitMix64's finalizer of the golden-ratio
// stride applied twice, first to the seed, then to the seed's hash plus the index.
inline uint64_t CounterHash(uint64_t seed, uint64_t index) {
  auto mix = [](uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  return mix(mix(seed + 0x9e3779b97f4a7c15ULL) + (index + 1) * 0x9e3779b97f4a7c15ULL);
}

// Dropout with drop probability `rate` in [0, 1): element `index` is kept when the top 24
// bits of its draw, as a fraction of 2^24, are >= rate (each element is dropped with
// probability rate, up to 2^-24). The threshold is an integer so every implementation
// decides identically.
inline uint32_t DropoutThreshold(double rate) {
  return static_cast<uint32_t>(std::ceil(rate * 16777216.0));
}
inline bool DropoutKeep(uint64_t seed, uint64_t index, uint32_t threshold) {
  return static_cast<uint32_t>(CounterHash(seed, index) >> 40) >= threshold;
}

// The key of one dropout node's draws: the per-step seed (an s32 graph input) in the high
// half, the node's salt in the low half.
inline uint64_t DropoutKey(int32_t seed, int64_t salt) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(seed)) << 32) ^ static_cast<uint64_t>(salt);
}

// Dropout with a mask shared along `axes` (Gluon Dropout(rate, axes)): element i of a dense
// row-major tensor of `dims` draws at the index of its coordinates with the shared axes set
// to 0, i.e. its index in the mask of shape dims-with-axes-as-1, so every element of a
// shared line gets the same decision. No axes: the identity. `axes` must be valid, distinct
// dims (the IR op checks). Source: MXNet 1.9 Dropout (mask broadcast along axes).
class DropoutMaskIndex {
 public:
  DropoutMaskIndex(const std::vector<int64_t>& dims, const std::vector<int64_t>& axes) {
    if (axes.empty()) return;
    size_t rank = dims.size();
    std::vector<bool> shared(rank, false);
    for (int64_t a : axes) shared[static_cast<size_t>(a)] = true;
    dims_ = dims;
    mask_stride_.assign(rank, 0);
    int64_t stride = 1;
    for (size_t d = rank; d-- > 0;) {
      mask_stride_[d] = shared[d] ? 0 : stride;
      if (!shared[d]) stride *= dims[d];
    }
  }
  bool identity() const { return dims_.empty(); }
  uint64_t operator()(int64_t i) const {
    if (dims_.empty()) return static_cast<uint64_t>(i);
    int64_t index = 0;
    for (size_t d = dims_.size(); d-- > 0;) {
      int64_t c = i % dims_[d];
      i /= dims_[d];
      index += c * mask_stride_[d];
    }
    return static_cast<uint64_t>(index);
  }

 private:
  std::vector<int64_t> dims_, mask_stride_;
};

}  // namespace kiln
