// libFuzzer target for the ONNX importer (import/onnx_import.h ImportOnnxBytes): any bytes
// must give a Status, never a crash, a huge allocation or a sanitizer report; a model that
// imports is traced for batch 1 (OnnxNetwork::Forward: the node conversions, the host
// shape computations and kiln's shape inference), which must also end in a Status.
// Tensors are limited to 2^20 elements. Built and run by tools/fuzz.sh with clang++
// -fsanitize=fuzzer,address,undefined; seeds: tools/fuzz/seeds/onnx (make_onnx_seeds.py).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "graph/symbol.h"
#include "import/onnx_import.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln;
  onnx_import::ImportOptions options;
  options.max_tensor_elements = int64_t{1} << 20;
  auto net = onnx_import::ImportOnnxBytes(std::string_view(reinterpret_cast<const char*>(data), size), options);
  if (!net.ok()) return 0;
  auto shape = (*net)->InputShapeForBatch(1);
  if (!shape.ok()) return 0;
  int64_t n = 1;
  for (int64_t d : *shape) {
    if (d < 1 || d > (int64_t{1} << 20) || n * d > (int64_t{1} << 20)) return 0;
    n *= d;
  }
  graph::Tracer tracer("fuzz");
  graph::Sym x = tracer.Input("data", DType::kF32, *shape);
  auto y = (*net)->Forward(x);
  (void)y;
  return 0;
}
