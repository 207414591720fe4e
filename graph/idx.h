// Readers for the IDX files of MNIST and Fashion-MNIST (what gluon.data.vision.MNIST and
// FashionMNIST load from $MXNET_HOME/datasets/{mnist,fashion-mnist}).
//
// IDX format (Y. LeCun, "THE MNIST DATABASE of handwritten digits", file formats section):
// a big-endian header, then the data, row-major.
//   bytes 0-1: 0x00 0x00
//   byte  2:   element type, 0x08 = unsigned byte (the only one accepted here)
//   byte  3:   number of dims: 3 for images (N, rows, cols), 1 for labels (N)
//   then one big-endian uint32 per dim, then N*rows*cols (or N) bytes.
// So images start with magic 0x00000803 and labels with 0x00000801.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace kiln::graph {

// A stack of uint8 gray images as stored in an idx3-ubyte file.
//   pixels: [count, rows, cols] row-major, count*rows*cols bytes, values 0..255.
// As a Gluon sample each image is (rows, cols, 1) HWC uint8.
struct IdxImages {
  int64_t count = 0;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<uint8_t> pixels;
};

// Reads an idx3-ubyte image file (magic 0x00000803).
// Errors: NotFound if the file cannot be opened; InvalidArgument if the magic is not 0x00000803 or
// rows/cols is 0; DataLoss if the file is shorter than its header, shorter than the header says
// (truncated) or longer (trailing bytes). Messages name the path and the sizes in bytes.
// Source: gluon/data/vision/datasets.py, MNIST._get_data (struct.unpack('>IIII') header; Gluon
// reads the gzipped files, these are the same bytes uncompressed).
StatusOr<IdxImages> ReadIdxImages(const std::string& path);

// Reads an idx1-ubyte label file (magic 0x00000801); labels are widened to int32 (Gluon keeps
// MNIST labels as numpy int32). Values are not range-checked.
// Errors: as ReadIdxImages (NotFound, InvalidArgument for the magic, DataLoss for the size).
// Source: gluon/data/vision/datasets.py, MNIST._get_data (struct.unpack('>II') header).
StatusOr<std::vector<int32_t>> ReadIdxLabels(const std::string& path);

// An image classification data set: images[i] has class labels[i].
// Invariant (checked by LoadIdxDataset): labels.size() == images.count.
struct Dataset {
  IdxImages images;
  std::vector<int32_t> labels;

  int64_t size() const { return images.count; }
};

// Loads one split of an MNIST-style data set folder:
//   train = true:  dir/train-images-idx3-ubyte + dir/train-labels-idx1-ubyte
//   train = false: dir/t10k-images-idx3-ubyte  + dir/t10k-labels-idx1-ubyte
// Errors: those of ReadIdxImages / ReadIdxLabels; InvalidArgument if the image count and the
// label count differ (both counts and both paths in the message).
// Source: gluon.data.vision.MNIST(root, train) / FashionMNIST(root, train).
StatusOr<Dataset> LoadIdxDataset(const std::string& dir, bool train);

}  // namespace kiln::graph
