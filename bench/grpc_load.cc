// A closed-loop KServe v2 gRPC load client (ghz is not packaged in Debian): `connections`
// threads, each with its own channel (HTTP/2 connection), send ModelInfer calls back to back
// for `seconds`, with `batch` images of the model's input shape (from ModelMetadata) as
// raw_input_contents FP32 (or fp32_contents with --typed). Prints requests/s, latency p50,
// p90 and p99 (milliseconds) and the error count, in the form bench/serve.md records.
//
//   bazel run -c opt //bench:grpc_load -- --target 127.0.0.1:8001 --model lenet -c 32 -d 10
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "serve/proto/grpc_predict_v2.grpc.pb.h"

namespace pb = ::inference;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  CLI::App app{"closed-loop KServe v2 gRPC load (ModelInfer)"};
  std::string target = "127.0.0.1:8001", model = "lenet";
  int connections = 1, seconds = 10, batch = 1;
  bool typed = false;
  app.add_option("--target", target, "host:port of the gRPC endpoint")->capture_default_str();
  app.add_option("--model", model, "model name")->capture_default_str();
  app.add_option("-c,--connections", connections, "concurrent connections (one thread each)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("-d,--seconds", seconds, "duration")->check(CLI::Range(1, 3600))->capture_default_str();
  app.add_option("--batch", batch, "images per request")->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_flag("--typed", typed, "send fp32_contents instead of raw_input_contents");
  CLI11_PARSE(app, argc, argv);

  auto meta_channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto meta_stub = pb::GRPCInferenceService::NewStub(meta_channel);
  pb::ModelMetadataRequest mreq;
  mreq.set_name(model);
  pb::ModelMetadataResponse meta;
  grpc::ClientContext mctx;
  mctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Status ms = meta_stub->ModelMetadata(&mctx, mreq, &meta);
  if (!ms.ok()) {
    std::fprintf(stderr, "grpc_load: ModelMetadata: %s\n", ms.error_message().c_str());
    return 1;
  }
  pb::ModelInferRequest request;
  request.set_model_name(model);
  for (const auto& t : meta.inputs()) {
    auto* in = request.add_inputs();
    in->set_name(t.name());
    in->set_datatype("FP32");
    int64_t count = batch;
    in->add_shape(batch);
    for (int i = 1; i < t.shape_size(); ++i) {
      in->add_shape(t.shape(i));
      count *= t.shape(i);
    }
    std::vector<float> values(static_cast<size_t>(count));
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>((i * 37) % 255) / 255.0f - 0.5f;
    if (typed) {
      for (float v : values) in->mutable_contents()->add_fp32_contents(v);
    } else {
      request.add_raw_input_contents(std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4));
    }
  }

  std::atomic<int64_t> errors{0};
  std::mutex first_error_mu;
  std::string first_error;
  std::vector<std::vector<double>> latencies(static_cast<size_t>(connections));
  const auto end = Clock::now() + std::chrono::seconds(seconds);
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      grpc::ChannelArguments args;
      args.SetInt("kiln.connection", c);  // a distinct argument: a channel (connection) of its own
      auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
      auto stub = pb::GRPCInferenceService::NewStub(channel);
      pb::ModelInferResponse response;
      while (Clock::now() < end) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
        auto t0 = Clock::now();
        grpc::Status s = stub->ModelInfer(&ctx, request, &response);
        auto t1 = Clock::now();
        if (!s.ok()) {
          if (errors++ == 0) {
            std::lock_guard<std::mutex> lock(first_error_mu);
            first_error = std::to_string(s.error_code()) + " " + s.error_message();
          }
          continue;
        }
        latencies[static_cast<size_t>(c)].push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      }
    });
  }
  for (auto& t : threads) t.join();
  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all.empty() ? 0.0 : all[std::min(all.size() - 1, static_cast<size_t>(p * all.size()))]; };
  std::printf("  %zu requests in %d s, %lld errors%s\n", all.size(), seconds, static_cast<long long>(errors.load()),
              first_error.empty() ? "" : (" (first: " + first_error + ")").c_str());
  std::printf("  Requests/sec: %.2f\n", static_cast<double>(all.size()) / seconds);
  std::printf("  latency ms: 50%% %.3f  90%% %.3f  99%% %.3f\n", pct(0.50), pct(0.90), pct(0.99));
  return errors.load() > 0 ? 1 : 0;
}
