#include <chrono>
#include <map>

#include "examples/cnn_from_scratch.h"
#include "graph/data.h"
#include "graph/idx.h"
#include "graph/lowlevel.h"

namespace kiln::examples {
namespace {

using namespace kiln::graph;

// The tutorial's parameters: W1 (20,1,3,3), b1 (20), W2 (50,20,5,5), b2 (50), W3, b3 (128),
// W4, b4 (10); weights OIHW / OI.
const std::vector<std::pair<std::string, Shape>>& ParamShapes() {
  static const auto* shapes = new std::vector<std::pair<std::string, Shape>>{
      {"W1", {20, 1, 3, 3}}, {"b1", {20}}, {"W2", {50, 20, 5, 5}}, {"b2", {50}},
      {"W3", {128, 800}},    {"b3", {128}}, {"W4", {10, 128}},      {"b4", {10}}};
  return *shapes;
}

// net(X): the forward pass, with the tutorial's names for the intermediate values.
StatusOr<Sym> Net(Tracer& t, ParameterSet& params, Sym x) {
  std::map<std::string, Sym> p;
  for (const auto& [name, shape] : ParamShapes()) {
    ASSIGN_OR_RETURN(p[name], t.Param(*params.Find(name)));
  }
  ops::PoolArgs avg{.pool_type = "avg", .kernel = {2, 2}, .stride = {2, 2}};
  ASSIGN_OR_RETURN(Sym h1_conv, ops::Convolution(x, p["W1"], p["b1"], {}, "h1_conv"));
  ASSIGN_OR_RETURN(Sym h1_activation, ops::Relu(h1_conv, "h1_activation"));
  ASSIGN_OR_RETURN(Sym h1, ops::Pooling(h1_activation, avg, "h1"));
  ASSIGN_OR_RETURN(Sym h2_conv, ops::Convolution(h1, p["W2"], p["b2"], {}, "h2_conv"));
  ASSIGN_OR_RETURN(Sym h2_activation, ops::Relu(h2_conv, "h2_activation"));
  ASSIGN_OR_RETURN(Sym h2_pool, ops::Pooling(h2_activation, avg, "h2_pool"));
  ASSIGN_OR_RETURN(Sym h2, ops::Flatten(h2_pool, "h2"));
  ASSIGN_OR_RETURN(Sym h3_dot, ops::Dot(h2, p["W3"], "h3_dot"));
  ASSIGN_OR_RETURN(Sym h3_linear, ops::Add(h3_dot, p["b3"], "h3_linear"));
  ASSIGN_OR_RETURN(Sym h3, ops::Relu(h3_linear, "h3"));
  ASSIGN_OR_RETURN(Sym yhat_dot, ops::Dot(h3, p["W4"], "yhat_dot"));
  return ops::Add(yhat_dot, p["b4"], "yhat_linear");
}

// softmax_cross_entropy(yhat_linear, y) = -nd.sum(y * nd.log_softmax(yhat_linear), axis=1).
StatusOr<Sym> SoftmaxCrossEntropyFromScratch(Sym yhat_linear, Sym label_one_hot) {
  ASSIGN_OR_RETURN(Sym log_p, ops::LogSoftmax(yhat_linear, -1, "log_softmax"));
  ASSIGN_OR_RETURN(Sym picked, ops::Mul(label_one_hot, log_p, "picked"));
  ASSIGN_OR_RETURN(Sym sum, ops::Sum(picked, {1}, false, "sum"));
  ASSIGN_OR_RETURN(Sym minus_one, ops::Fill(*sum.tracer, {}, -1.0, "minus_one"));
  return ops::Mul(sum, minus_one, "loss");
}

// The training step: forward, loss, gradients and `param[:] = param - lr * param.grad` for
// every parameter, as one graph. Inputs data, label, lr; outputs loss [N], output [N,10].
StatusOr<CompiledGraph> CompileTrainStep(ParameterSet& params, const Shape& data_shape, std::ostream* shape_log) {
  Tracer t("cnn_from_scratch_train");
  t.SetShapeLog(shape_log);
  Sym x = t.Input("data", DType::kF32, data_shape);
  Sym label = t.Input("label", DType::kS32, {data_shape[0]});
  Sym lr = t.Input("lr", DType::kF32, {});
  ASSIGN_OR_RETURN(Sym yhat, Net(t, params, x));
  ASSIGN_OR_RETURN(Sym label_one_hot, ops::OneHot(label, 10, 1.0, 0.0, "label_one_hot"));
  ASSIGN_OR_RETURN(Sym loss, SoftmaxCrossEntropyFromScratch(yhat, label_one_hot));
  std::vector<Sym> wrt;
  for (const auto& [name, shape] : ParamShapes()) {
    ASSIGN_OR_RETURN(Sym s, t.Param(*params.Find(name)));
    wrt.push_back(s);
  }
  ASSIGN_OR_RETURN(std::vector<Sym> grads, Grad(loss, wrt));
  for (size_t i = 0; i < wrt.size(); ++i) {  // SGD: param[:] = param - lr * param.grad
    const std::string name = ParamShapes()[i].first;
    ASSIGN_OR_RETURN(Sym step, ops::Mul(grads[i], lr, name + "_step"));
    ASSIGN_OR_RETURN(Sym updated, ops::Sub(wrt[i], step, name + "_new"));
    RETURN_IF_ERROR(Update(wrt[i], updated));
  }
  t.graph().AddOutput("loss", loss.id);
  t.graph().AddOutput("output", yhat.id);
  return CompiledGraph::Compile(t, params);
}

StatusOr<CompiledGraph> CompileForward(ParameterSet& params, const Shape& data_shape) {
  Tracer t("cnn_from_scratch_forward");
  Sym x = t.Input("data", DType::kF32, data_shape);
  ASSIGN_OR_RETURN(Sym yhat, Net(t, params, x));
  t.graph().AddOutput("output", yhat.id);
  return CompiledGraph::Compile(t, params);
}

}  // namespace

StatusOr<std::vector<ScratchEpoch>> RunCnnFromScratch(const CnnFromScratchOptions& o) {
  Seed(o.seed);
  ASSIGN_OR_RETURN(Dataset train, LoadIdxDataset(o.data_dir, true));
  ASSIGN_OR_RETURN(Dataset test, LoadIdxDataset(o.data_dir, false));
  transforms::Compose to_tensor;  // ToTensor only: pixels / 255, as the tutorial
  ASSIGN_OR_RETURN(DataLoader train_loader, DataLoader::Create(train, o.batch_size, true, LastBatch::kKeep, o.seed, to_tensor));
  ASSIGN_OR_RETURN(DataLoader test_loader, DataLoader::Create(test, o.batch_size, false, LastBatch::kKeep, 0, to_tensor));

  ParameterSet params;
  Normal init(o.weight_scale);
  for (const auto& [name, shape] : ParamShapes()) RETURN_IF_ERROR(params.Add(name, shape, init).status());

  std::map<Shape, CompiledGraph> train_steps, forwards;  // one compiled graph per batch shape
  Tensor lr(DType::kF32, {}), loss, out;
  lr.f32()[0] = static_cast<float>(o.learning_rate);
  std::vector<ScratchEpoch> results;
  Batch batch;
  for (int e = 0; e < o.epochs; ++e) {
    auto start = std::chrono::steady_clock::now();
    Accuracy train_acc, test_acc;
    ScratchEpoch r;
    double loss_sum = 0;
    int64_t batches = 0;
    train_loader.Reset();
    while (train_loader.Next(batch)) {
      if (o.max_train_batches > 0 && batches >= o.max_train_batches) break;
      auto it = train_steps.find(batch.data.shape());
      if (it == train_steps.end()) {
        // Debug mode prints the shapes of the first compiled graph only.
        std::ostream* log = train_steps.empty() ? o.shape_log : nullptr;
        ASSIGN_OR_RETURN(CompiledGraph g, CompileTrainStep(params, batch.data.shape(), log));
        it = train_steps.emplace(batch.data.shape(), std::move(g)).first;
      }
      RETURN_IF_ERROR(it->second.Run({{"data", &batch.data}, {"label", &batch.label}, {"lr", &lr}},
                                     {{"loss", &loss}, {"output", &out}}));
      for (int64_t i = 0; i < loss.num_elements(); ++i) loss_sum += loss.f32()[i];
      r.images += batch.size();
      ++batches;
      RETURN_IF_ERROR(train_acc.Update(batch.label, out));
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    test_loader.Reset();
    while (test_loader.Next(batch)) {
      auto it = forwards.find(batch.data.shape());
      if (it == forwards.end()) {
        ASSIGN_OR_RETURN(CompiledGraph g, CompileForward(params, batch.data.shape()));
        it = forwards.emplace(batch.data.shape(), std::move(g)).first;
      }
      RETURN_IF_ERROR(it->second.Run({{"data", &batch.data}}, {{"output", &out}}));
      RETURN_IF_ERROR(test_acc.Update(batch.label, out));
    }
    r.loss = loss_sum / static_cast<double>(std::max<int64_t>(r.images, 1));
    r.train_accuracy = train_acc.Get().second;
    r.test_accuracy = test_acc.Get().second;
    results.push_back(r);
    if (o.log) {
      std::fprintf(o.log, "Epoch %d. Loss: %.5f, Train_acc %.4f, Test_acc %.4f (%.2f s, %.0f images/s)\n", e, r.loss,
                   r.train_accuracy, r.test_accuracy, r.seconds, static_cast<double>(r.images) / r.seconds);
      std::fflush(o.log);
    }
  }
  return results;
}

}  // namespace kiln::examples
