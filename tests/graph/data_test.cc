// Tests for graph/idx.h (IDX readers) and graph/data.h (ToTensor, Normalize, DataLoader).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "graph/data.h"
#include "graph/idx.h"

namespace kiln::graph {
namespace {

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir ? dir : "/tmp";
}

void PutBigEndian32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

// An idx3-ubyte file written by hand, byte by byte, as the standard says.
std::string ImagesFile(uint32_t count, uint32_t rows, uint32_t cols, const std::vector<uint8_t>& pixels) {
  std::string bytes;
  PutBigEndian32(bytes, 0x00000803);
  PutBigEndian32(bytes, count);
  PutBigEndian32(bytes, rows);
  PutBigEndian32(bytes, cols);
  bytes.append(pixels.begin(), pixels.end());
  return bytes;
}

std::string LabelsFile(const std::vector<uint8_t>& labels) {
  std::string bytes;
  PutBigEndian32(bytes, 0x00000801);
  PutBigEndian32(bytes, static_cast<uint32_t>(labels.size()));
  bytes.append(labels.begin(), labels.end());
  return bytes;
}

// A data set of n images of 2x3 pixels where every pixel of image i is i (mod 256) and label i % 3.
Dataset MakeDataset(int64_t n) {
  Dataset ds;
  ds.images.count = n;
  ds.images.rows = 2;
  ds.images.cols = 3;
  for (int64_t i = 0; i < n; ++i) {
    for (int p = 0; p < 6; ++p) ds.images.pixels.push_back(static_cast<uint8_t>(i));
    ds.labels.push_back(static_cast<int32_t>(i % 3));
  }
  return ds;
}

// Runs one epoch and returns the indices of each batch.
std::vector<std::vector<int64_t>> RunEpoch(DataLoader& loader) {
  std::vector<std::vector<int64_t>> batches;
  Batch batch;
  while (loader.Next(batch)) batches.push_back(batch.indices);
  return batches;
}

std::vector<int64_t> Flatten(const std::vector<std::vector<int64_t>>& batches) {
  std::vector<int64_t> all;
  for (const auto& b : batches) all.insert(all.end(), b.begin(), b.end());
  return all;
}

TEST_CASE("idx reader round-trips a hand-written images and labels file", "[graph][data][idx]") {
  const std::string dir = TempDir() + "/idx_round_trip";
  REQUIRE(std::system(("mkdir -p '" + dir + "'").c_str()) == 0);
  // 2 images of 2x3: image 0 = 0..5, image 1 = 250..255.
  const std::vector<uint8_t> pixels = {0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255};
  WriteBytes(dir + "/train-images-idx3-ubyte", ImagesFile(2, 2, 3, pixels));
  WriteBytes(dir + "/train-labels-idx1-ubyte", LabelsFile({7, 255}));

  StatusOr<IdxImages> images = ReadIdxImages(dir + "/train-images-idx3-ubyte");
  REQUIRE(images.ok());
  CHECK(images->count == 2);
  CHECK(images->rows == 2);
  CHECK(images->cols == 3);
  CHECK(images->pixels == pixels);

  StatusOr<std::vector<int32_t>> labels = ReadIdxLabels(dir + "/train-labels-idx1-ubyte");
  REQUIRE(labels.ok());
  CHECK(*labels == std::vector<int32_t>{7, 255});

  StatusOr<Dataset> ds = LoadIdxDataset(dir, /*train=*/true);
  REQUIRE(ds.ok());
  CHECK(ds->size() == 2);
  CHECK(ds->images.pixels == pixels);
  CHECK(ds->labels == std::vector<int32_t>{7, 255});

  SECTION("a count mismatch between images and labels is InvalidArgument") {
    WriteBytes(dir + "/t10k-images-idx3-ubyte", ImagesFile(2, 2, 3, pixels));
    WriteBytes(dir + "/t10k-labels-idx1-ubyte", LabelsFile({1, 2, 3}));
    StatusOr<Dataset> bad = LoadIdxDataset(dir, /*train=*/false);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().code() == StatusCode::kInvalidArgument);
    CHECK_THAT(bad.status().message(), Catch::Contains("2 images") && Catch::Contains("3 labels"));
  }
  SECTION("a missing split is NotFound") {
    StatusOr<Dataset> missing = LoadIdxDataset(dir + "/nowhere", /*train=*/true);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.status().code() == StatusCode::kNotFound);
  }
}

TEST_CASE("idx reader reports a truncated file as DataLoss with the path and sizes", "[graph][data][idx]") {
  const std::string path = TempDir() + "/truncated-images-idx3-ubyte";
  SECTION("data shorter than the header says") {
    std::string bytes = ImagesFile(2, 2, 3, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
    bytes.resize(bytes.size() - 1);
    WriteBytes(path, bytes);
    StatusOr<IdxImages> images = ReadIdxImages(path);
    REQUIRE_FALSE(images.ok());
    CHECK(images.status().code() == StatusCode::kDataLoss);
    CHECK_THAT(images.status().message(),
               Catch::Contains(path) && Catch::Contains("truncated") && Catch::Contains("need 12") &&
                   Catch::Contains("has 11"));
  }
  SECTION("file shorter than the header") {
    WriteBytes(path, ImagesFile(2, 2, 3, {}).substr(0, 10));
    StatusOr<IdxImages> images = ReadIdxImages(path);
    REQUIRE_FALSE(images.ok());
    CHECK(images.status().code() == StatusCode::kDataLoss);
    CHECK_THAT(images.status().message(), Catch::Contains("10 bytes") && Catch::Contains("16-byte header"));
  }
  SECTION("trailing bytes") {
    WriteBytes(path, LabelsFile({1, 2}) + "x");
    StatusOr<std::vector<int32_t>> labels = ReadIdxLabels(path);
    REQUIRE_FALSE(labels.ok());
    CHECK(labels.status().code() == StatusCode::kDataLoss);
    CHECK_THAT(labels.status().message(), Catch::Contains("1 trailing bytes"));
  }
}

TEST_CASE("idx reader rejects a wrong magic as InvalidArgument", "[graph][data][idx]") {
  const std::string path = TempDir() + "/wrong-magic-idx1-ubyte";
  WriteBytes(path, LabelsFile({1, 2, 3}));
  StatusOr<IdxImages> images = ReadIdxImages(path);  // a labels file read as images
  REQUIRE_FALSE(images.ok());
  CHECK(images.status().code() == StatusCode::kInvalidArgument);
  CHECK_THAT(images.status().message(),
             Catch::Contains(path) && Catch::Contains("0x00000801") && Catch::Contains("0x00000803"));

  std::string float_labels = LabelsFile({1});
  float_labels[2] = 0x0D;  // element type float32
  WriteBytes(path, float_labels);
  StatusOr<std::vector<int32_t>> labels = ReadIdxLabels(path);
  REQUIRE_FALSE(labels.ok());
  CHECK(labels.status().code() == StatusCode::kInvalidArgument);

  CHECK(ReadIdxLabels(TempDir() + "/does-not-exist").status().code() == StatusCode::kNotFound);
}

TEST_CASE("ToTensor turns uint8 HWC into f32 CHW divided by 255", "[graph][data][transforms]") {
  // (H,W,C) = (1,2,2): pixel (0,0) = {0, 255}, pixel (0,1) = {51, 102}.
  const std::vector<uint8_t> hwc = {0, 255, 51, 102};
  StatusOr<Tensor> out = transforms::ToTensor()(hwc, {1, 2, 2});
  REQUIRE(out.ok());
  CHECK(out->dtype() == DType::kF32);
  CHECK(out->shape() == Shape{2, 1, 2});
  const float* x = out->f32();
  // CHW: channel 0 = {0, 51}/255, channel 1 = {255, 102}/255. 51/255 = 0.2, 102/255 = 0.4.
  CHECK(x[0] == 0.0f);
  CHECK_THAT(x[1], Catch::Matchers::WithinAbs(0.2, 1e-7));  // float32 rounding of 0.2
  CHECK(x[2] == 1.0f);
  CHECK_THAT(x[3], Catch::Matchers::WithinAbs(0.4, 1e-7));

  SECTION("batched NHWC -> NCHW") {
    const std::vector<uint8_t> nhwc = {10, 20, 30, 40, 50, 60};  // (N,H,W,C) = (3,1,1,2)
    StatusOr<Tensor> b = transforms::ToTensor()(nhwc, {3, 1, 1, 2});
    REQUIRE(b.ok());
    CHECK(b->shape() == Shape{3, 2, 1, 1});
    for (int i = 0; i < 6; ++i) CHECK(b->f32()[i] == static_cast<float>(nhwc[i]) / 255.0f);
  }
  SECTION("shape errors") {
    CHECK(transforms::ToTensor()(hwc, {4}).status().code() == StatusCode::kInvalidArgument);
    StatusOr<Tensor> bad = transforms::ToTensor()(hwc, {1, 3, 2});
    REQUIRE_FALSE(bad.ok());
    CHECK_THAT(bad.status().message(), Catch::Contains("[1,3,2]") && Catch::Contains("needs 6 pixels, got 4"));
  }
}

TEST_CASE("Normalize subtracts mean and divides by std per channel", "[graph][data][transforms]") {
  // CHW (3,1,2).
  Tensor x(DType::kF32, {3, 1, 2});
  const float in[6] = {1.0f, 0.0f, 2.0f, 4.0f, 5.0f, 9.0f};
  std::copy(in, in + 6, x.f32());

  SECTION("per-channel mean/std") {
    REQUIRE(transforms::Normalize({0.5f, 0.0f, 1.0f}, {0.5f, 2.0f, 4.0f})(x).ok());
    // c0: (1-0.5)/0.5 = 1, (0-0.5)/0.5 = -1; c1: 2/2 = 1, 4/2 = 2; c2: (5-1)/4 = 1, (9-1)/4 = 2.
    const float want[6] = {1.0f, -1.0f, 1.0f, 2.0f, 1.0f, 2.0f};
    for (int i = 0; i < 6; ++i) CHECK(x.f32()[i] == want[i]);  // exact in binary floating point
  }
  SECTION("scalar mean/std broadcast to every channel") {
    REQUIRE(transforms::Normalize(1.0f, 2.0f)(x).ok());
    const float want[6] = {0.0f, -0.5f, 0.5f, 1.5f, 2.0f, 4.0f};
    for (int i = 0; i < 6; ++i) CHECK(x.f32()[i] == want[i]);
  }
  SECTION("batched NCHW") {
    Tensor b(DType::kF32, {2, 1, 1, 2});
    const float vals[4] = {0.0f, 1.0f, 2.0f, 3.0f};
    std::copy(vals, vals + 4, b.f32());
    REQUIRE(transforms::Normalize(1.0f, 0.5f)(b).ok());
    const float want[4] = {-2.0f, 0.0f, 2.0f, 4.0f};
    for (int i = 0; i < 4; ++i) CHECK(b.f32()[i] == want[i]);
  }
  SECTION("errors") {
    Tensor two_channels(DType::kF32, {2, 1, 1});
    Status st = transforms::Normalize()(two_channels);
    CHECK(st.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(st.message(), Catch::Contains("C=2") && Catch::Contains("[2,1,1]"));
    st = transforms::Normalize({0.1f, 0.2f}, {1.0f})(x);
    CHECK(st.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(st.message(), Catch::Contains("1 or C=3"));
    Tensor labels(DType::kS32, {3, 1, 1});
    CHECK(transforms::Normalize()(labels).code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("Compose equals ToTensor then Normalize applied one by one", "[graph][data][transforms]") {
  std::vector<uint8_t> pixels(256);
  for (int v = 0; v < 256; ++v) pixels[v] = static_cast<uint8_t>(v);
  const transforms::Normalize norm(0.2860f, 0.3530f);
  StatusOr<Tensor> step = transforms::ToTensor()(pixels, {16, 16, 1});
  REQUIRE(step.ok());
  REQUIRE(norm(*step).ok());
  StatusOr<Tensor> fused = transforms::Compose(transforms::ToTensor(), {norm})(pixels, {16, 16, 1});
  REQUIRE(fused.ok());
  REQUIRE(fused->shape() == Shape{1, 16, 16});
  for (int v = 0; v < 256; ++v) {
    INFO("pixel value " << v);
    CHECK(fused->f32()[v] == step->f32()[v]);  // bit-identical: same float32 operations
  }
  CHECK_THAT(fused->f32()[255], Catch::Matchers::WithinAbs((1.0 - 0.2860) / 0.3530, 1e-6));
}

TEST_CASE("DataLoader batch counts for keep, discard and rollover (N=10, B=4)", "[graph][data][loader]") {
  const Dataset ds = MakeDataset(10);

  SECTION("keep: 3 batches of 4, 4, 2") {
    StatusOr<DataLoader> loader = DataLoader::Create(ds, 4, /*shuffle=*/false, LastBatch::kKeep);
    REQUIRE(loader.ok());
    CHECK(loader->size() == 3);
    const auto batches = RunEpoch(*loader);
    REQUIRE(batches.size() == 3);
    CHECK(batches[0] == std::vector<int64_t>{0, 1, 2, 3});
    CHECK(batches[1] == std::vector<int64_t>{4, 5, 6, 7});
    CHECK(batches[2] == std::vector<int64_t>{8, 9});
    loader->Reset();
    CHECK(loader->size() == 3);
    CHECK(RunEpoch(*loader) == batches);
  }
  SECTION("discard: 2 batches, the last 2 samples dropped") {
    StatusOr<DataLoader> loader = DataLoader::Create(ds, 4, /*shuffle=*/false, LastBatch::kDiscard);
    REQUIRE(loader.ok());
    CHECK(loader->size() == 2);
    const auto batches = RunEpoch(*loader);
    CHECK(batches == std::vector<std::vector<int64_t>>{{0, 1, 2, 3}, {4, 5, 6, 7}});
    loader->Reset();
    CHECK(loader->size() == 2);
  }
  SECTION("rollover: leftovers open the next epoch") {
    StatusOr<DataLoader> loader = DataLoader::Create(ds, 4, /*shuffle=*/false, LastBatch::kRollover);
    REQUIRE(loader.ok());
    // Epoch 0: floor(10/4) = 2 batches, leftover {8, 9}.
    CHECK(loader->size() == 2);
    CHECK(RunEpoch(*loader) == std::vector<std::vector<int64_t>>{{0, 1, 2, 3}, {4, 5, 6, 7}});
    // Epoch 1: floor((2+10)/4) = 3 batches, starting with the carried 8, 9; leftover none.
    loader->Reset();
    CHECK(loader->epoch() == 1);
    CHECK(loader->size() == 3);
    CHECK(RunEpoch(*loader) ==
          std::vector<std::vector<int64_t>>{{8, 9, 0, 1}, {2, 3, 4, 5}, {6, 7, 8, 9}});
    // Epoch 2: nothing carried, back to 2 batches.
    loader->Reset();
    CHECK(loader->size() == 2);
    CHECK(RunEpoch(*loader).size() == 2);
  }
  SECTION("rollover: an abandoned epoch carries nothing") {
    StatusOr<DataLoader> loader = DataLoader::Create(ds, 4, /*shuffle=*/false, LastBatch::kRollover);
    REQUIRE(loader.ok());
    Batch batch;
    REQUIRE(loader->Next(batch));
    loader->Reset();
    CHECK(loader->size() == 2);
  }
  SECTION("batch_size must be positive") {
    StatusOr<DataLoader> loader = DataLoader::Create(ds, 0, /*shuffle=*/false);
    REQUIRE_FALSE(loader.ok());
    CHECK(loader.status().code() == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("DataLoader batches hold the transformed images and labels", "[graph][data][loader]") {
  const Dataset ds = MakeDataset(5);
  StatusOr<DataLoader> loader = DataLoader::Create(
      ds, 2, /*shuffle=*/true, LastBatch::kKeep, /*seed=*/7,
      transforms::Compose(transforms::ToTensor(), {transforms::Normalize(0.5f, 0.25f)}));
  REQUIRE(loader.ok());
  Batch batch;
  int64_t seen = 0;
  while (loader->Next(batch)) {
    const int64_t b = batch.size();
    REQUIRE(batch.data.shape() == Shape{b, 1, 2, 3});
    REQUIRE(batch.label.shape() == Shape{b});
    for (int64_t k = 0; k < b; ++k) {
      const int64_t i = batch.indices[k];
      CHECK(batch.label.s32()[k] == i % 3);
      const float want = (static_cast<float>(i) / 255.0f - 0.5f) / 0.25f;
      for (int p = 0; p < 6; ++p) CHECK(batch.data.f32()[k * 6 + p] == want);
    }
    seen += b;
  }
  CHECK(seen == 5);
  CHECK(batch.size() == 1);  // the last batch of keep is short
}

TEST_CASE("DataLoader shuffle: a permutation per epoch, reproducible from the seed", "[graph][data][loader]") {
  const int64_t n = 103;
  const Dataset ds = MakeDataset(n);
  const uint64_t seed = GENERATE(0u, 42u);
  INFO("seed " << seed << ", N=" << n << ", B=8");
  StatusOr<DataLoader> a = DataLoader::Create(ds, 8, /*shuffle=*/true, LastBatch::kKeep, seed);
  StatusOr<DataLoader> b = DataLoader::Create(ds, 8, /*shuffle=*/true, LastBatch::kKeep, seed);
  StatusOr<DataLoader> other = DataLoader::Create(ds, 8, /*shuffle=*/true, LastBatch::kKeep, seed + 1);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  REQUIRE(other.ok());
  std::vector<std::vector<int64_t>> orders;
  for (int epoch = 0; epoch < 3; ++epoch) {
    CHECK(a->size() == 13);
    const std::vector<int64_t> order = Flatten(RunEpoch(*a));
    std::vector<int64_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int64_t> all(n);
    for (int64_t i = 0; i < n; ++i) all[i] = i;
    CHECK(sorted == all);                            // every index exactly once
    CHECK(Flatten(RunEpoch(*b)) == order);           // same seed, same order
    CHECK(Flatten(RunEpoch(*other)) != order);       // another seed, another order
    for (const auto& previous : orders) CHECK(previous != order);  // a fresh permutation per epoch
    orders.push_back(order);
    a->Reset();
    b->Reset();
    other->Reset();
  }
  std::vector<int64_t> sequential(n);
  for (int64_t i = 0; i < n; ++i) sequential[i] = i;
  CHECK(orders[0] != sequential);
}

TEST_CASE("DataLoader rollover with shuffle keeps the carried indices in front", "[graph][data][loader]") {
  const Dataset ds = MakeDataset(10);
  StatusOr<DataLoader> loader = DataLoader::Create(ds, 4, /*shuffle=*/true, LastBatch::kRollover, /*seed=*/3);
  REQUIRE(loader.ok());
  const std::vector<int64_t> epoch0 = Flatten(RunEpoch(*loader));
  REQUIRE(epoch0.size() == 8);
  std::set<int64_t> used(epoch0.begin(), epoch0.end());
  std::vector<int64_t> leftover;
  for (int64_t i = 0; i < 10; ++i) {
    if (!used.count(i)) leftover.push_back(i);
  }
  REQUIRE(leftover.size() == 2);
  loader->Reset();
  CHECK(loader->size() == 3);
  const auto batches = RunEpoch(*loader);
  REQUIRE(batches.size() == 3);
  std::vector<int64_t> front(batches[0].begin(), batches[0].begin() + 2);
  std::sort(front.begin(), front.end());
  CHECK(front == leftover);
  // The other 10 positions are a permutation of 0..9.
  std::vector<int64_t> rest = Flatten(batches);
  rest.erase(rest.begin(), rest.begin() + 2);
  std::sort(rest.begin(), rest.end());
  CHECK(rest == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
}

// Loads $KILN_DATA_DIR/fashion-mnist as written by tools/fetch_data.sh. Without KILN_DATA_DIR the
// test warns and passes, unless KILN_REQUIRE_DATA=1 (CI), where it fails.
TEST_CASE("Fashion-MNIST IDX files have 60000/10000 images, 6000/1000 per class", "[graph][data][dataset]") {
  const char* data_dir = std::getenv("KILN_DATA_DIR");
  const char* require = std::getenv("KILN_REQUIRE_DATA");
  if (data_dir == nullptr || *data_dir == '\0') {
    if (require != nullptr && std::string(require) == "1") {
      FAIL("KILN_REQUIRE_DATA=1 but KILN_DATA_DIR is not set: run tools/fetch_data.sh and pass "
           "--test_env=KILN_DATA_DIR=<repo>/data");
    }
    WARN("KILN_DATA_DIR is not set; skipping the Fashion-MNIST check (run tools/fetch_data.sh, then "
         "bazel test --test_env=KILN_DATA_DIR=<repo>/data)");
    return;
  }
  const std::string dir = std::string(data_dir) + "/fashion-mnist";
  INFO("data set folder " << dir);
  struct Split {
    bool train;
    int64_t total;
    int64_t per_class;
  };
  for (const Split& split : {Split{true, 60000, 6000}, Split{false, 10000, 1000}}) {
    INFO((split.train ? "train" : "t10k") << " split");
    StatusOr<Dataset> ds = LoadIdxDataset(dir, split.train);
    if (!ds.ok()) FAIL(ds.status().ToString());
    CHECK(ds->size() == split.total);
    CHECK(ds->images.rows == 28);
    CHECK(ds->images.cols == 28);
    std::vector<int64_t> per_class(10, 0);
    int64_t out_of_range = 0;
    for (int32_t label : ds->labels) {
      if (label >= 0 && label <= 9) {
        ++per_class[label];
      } else {
        ++out_of_range;
      }
    }
    CHECK(out_of_range == 0);
    CHECK(per_class == std::vector<int64_t>(10, split.per_class));
    // The converter writes round-robin over the classes, so the first 10 labels are 0..9.
    CHECK(std::vector<int32_t>(ds->labels.begin(), ds->labels.begin() + 10) ==
          std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});

    if (split.train) {
      // One shuffled epoch through the loader: B=64, 938 batches, every image once.
      StatusOr<DataLoader> loader = DataLoader::Create(
          *ds, 64, /*shuffle=*/true, LastBatch::kKeep, /*seed=*/1,
          transforms::Compose(transforms::ToTensor(), {transforms::Normalize(0.2860f, 0.3530f)}));
      REQUIRE(loader.ok());
      CHECK(loader->size() == 938);
      Batch batch;
      int64_t images = 0;
      const auto start = std::chrono::steady_clock::now();
      while (loader->Next(batch)) images += batch.size();
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      CHECK(images == 60000);
      WARN("one shuffled epoch of 60000 images (ToTensor + Normalize, B=64) took " << seconds * 1e3 << " ms");
    }
  }
}

}  // namespace
}  // namespace kiln::graph

namespace kiln::graph {
namespace {

TEST_CASE("Resize is bilinear with OpenCV's pixel-centre convention", "[graph][data][transforms]") {
  // 1x1x2x2 [[0, 1], [2, 3]] -> 4x4: source coordinate s = (o + 0.5) / 2 - 0.5, clamped to
  // [0, 1]: o = 0..3 -> 0, 0.25, 0.75, 1. Value = 2 * sy + sx.
  Tensor x(DType::kF32, {1, 1, 2, 2});
  for (int i = 0; i < 4; ++i) x.f32()[i] = static_cast<float>(i);
  auto y = transforms::Resize(4, 4)(x);
  REQUIRE(y.ok());
  REQUIRE(y->shape() == Shape{1, 1, 4, 4});
  const float c[4] = {0, 0.25f, 0.75f, 1};
  for (int r = 0; r < 4; ++r) {
    for (int q = 0; q < 4; ++q) CHECK(y->f32()[r * 4 + q] == Approx(2 * c[r] + c[q]).margin(1e-6));
  }
}

TEST_CASE("Resize keeps constants, handles CHW, many channels and downsampling", "[graph][data][transforms]") {
  Tensor x(DType::kF32, {3, 28, 28});
  for (int64_t i = 0; i < x.num_elements(); ++i) x.f32()[i] = static_cast<float>(i / (28 * 28)) - 0.5f;
  auto up = transforms::Resize(224)(x);
  REQUIRE(up.ok());
  CHECK(up->shape() == Shape{3, 224, 224});
  for (int64_t i = 0; i < up->num_elements(); i += 97) CHECK(up->f32()[i] == static_cast<float>(i / (224 * 224)) - 0.5f);
  // Downsampling by 2 exactly averages 2x2 blocks (s = 2o + 0.5).
  Tensor ramp(DType::kF32, {1, 4, 4});
  for (int i = 0; i < 16; ++i) ramp.f32()[i] = static_cast<float>(i);
  auto down = transforms::Resize(2, 2)(ramp);
  REQUIRE(down.ok());
  CHECK(down->f32()[0] == Approx((0 + 1 + 4 + 5) / 4.0));
  CHECK(down->f32()[3] == Approx((10 + 11 + 14 + 15) / 4.0));
  // Same size: identity.
  auto same = transforms::Resize(4, 4)(ramp);
  REQUIRE(same.ok());
  for (int i = 0; i < 16; ++i) CHECK(same->f32()[i] == ramp.f32()[i]);
}

TEST_CASE("Resize rejects bad ranks, dtypes and sizes", "[graph][data][transforms]") {
  CHECK(transforms::Resize(4)(Tensor(DType::kF32, {4, 4})).status().code() == StatusCode::kInvalidArgument);
  CHECK(transforms::Resize(4)(Tensor(DType::kS32, {1, 4, 4})).status().code() == StatusCode::kInvalidArgument);
  auto zero = transforms::Resize(0, 4)(Tensor(DType::kF32, {1, 4, 4}));
  REQUIRE_FALSE(zero.ok());
  CHECK_THAT(zero.status().message(), Catch::Contains("[1,4,4]"));
}

}  // namespace
}  // namespace kiln::graph
