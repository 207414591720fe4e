#include "graph/trainer.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "compiler/compile.h"
#include "ir/builder.h"
#include "passes/batch_separable.h"
#include "runtime/training.h"

namespace kiln::graph {

Trainer::Trainer(nn::Block& net, const std::string& optimizer, const std::map<std::string, double>& options)
    : net_(net) {
  if (optimizer != "sgd" && optimizer != "adam") {
    status_ = InvalidArgument("Trainer: optimizer '" + optimizer + "' is not supported (kiln has \"sgd\", \"adam\")");
    return;
  }
  optimizer_ = optimizer;
  if (optimizer == "adam") learning_rate_ = 0.001;  // MXNet Adam's default
  for (const auto& [k, v] : options) {
    if (optimizer == "adam" && k == "beta1") {
      adam_.beta1 = v;
    } else if (optimizer == "adam" && k == "beta2") {
      adam_.beta2 = v;
    } else if (optimizer == "adam" && k == "epsilon") {
      adam_.epsilon = v;
    } else if (optimizer == "adam" && k == "momentum") {
      status_ = InvalidArgument("Trainer: unknown adam option 'momentum'");
      return;
    } else if (k == "learning_rate") {
      learning_rate_ = v;
    } else if (k == "momentum") {
      sgd_.momentum = v;
    } else if (k == "wd") {
      sgd_.wd = v;
      adam_.wd = v;
    } else if (k == "clip_gradient") {
      sgd_.clip_gradient = v;
      adam_.clip_gradient = v;
    } else if (k == "rescale_grad") {
      rescale_grad_ = v;
    } else {
      status_ = InvalidArgument("Trainer: unknown " + optimizer + " option '" + k + "'");
      return;
    }
  }
}

double Trainer::NextStepLearningRate() const {
  if (optimizer_ != "adam") return learning_rate_;
  return runtime::AdamStepLearningRate(learning_rate_, adam_.beta1, adam_.beta2, num_update_ + 1);
}

Status Trainer::Sync() {
  for (auto& [name, e] : state_) RETURN_IF_ERROR(e->Sync());
  return OkStatus();
}

std::shared_ptr<runtime::ParamEntry> Trainer::StateEntry(const std::string& name, const Shape& shape) {
  auto it = state_.find(name);
  if (it == state_.end()) {
    it = state_.emplace(name, std::make_shared<runtime::ParamEntry>(Tensor(DType::kF32, shape))).first;
  }
  return it->second;
}

Tensor* Trainer::State(const std::string& name, const Shape& shape) {
  auto t = StateEntry(name, shape)->Mutable();
  return t.ok() ? *t : nullptr;
}

namespace {

// What autodiff adds to a traced forward graph before the optimization passes.
enum class Autodiff {
  kNone,           // inference, or a graph that carries its own updates
  kTrain,          // backward and the trainer's optimizer update in place
  kGradientsOnly,  // backward; the gradients become outputs "grad:<param>" (training streams)
  kStreamUpdate,   // a graph of parameters: the streams' gradients summed, the update applied
};

// The compiler request of CompileOptions (compiler/compile.h), for a graph compiled with
// (`trainer` non-null) or without a trainer.
compiler::CompileRequest MakeRequest(const CompileOptions& options, Trainer* trainer, Autodiff autodiff,
                                     bool require_batch_separable) {
  compiler::CompileRequest req;
  switch (autodiff) {
    case Autodiff::kNone: req.mode = compiler::Mode::kInference; break;
    case Autodiff::kTrain: req.mode = compiler::Mode::kTraining; break;
    case Autodiff::kGradientsOnly: req.mode = compiler::Mode::kGradientsOnly; break;
    case Autodiff::kStreamUpdate: req.mode = compiler::Mode::kStreamUpdate; break;
  }
  req.streams = options.streams;
  if (trainer != nullptr) {
    req.optimizer = trainer->optimizer() == "adam" ? compiler::Optimizer::Adam(trainer->adam())
                                                   : compiler::Optimizer::Sgd(trainer->sgd());
  }
  req.output_gradients = options.output_gradients;
  req.opt_level = options.opt_level;
  req.target = options.target;
  req.fuse_elementwise = options.fuse_elementwise;
  req.llvm_kernels = options.llvm_kernels;
  req.constant_params = options.constant_params && trainer == nullptr;
  req.resident_params = options.resident_params && trainer != nullptr;
  req.require_batch_separable = require_batch_separable;
  req.dump_ir_after = options.dump_ir_after;
  req.dump = options.dump;
  req.after_pass = options.after_pass;
  req.after_lowering_pass = options.after_lowering_pass;
  return req;
}

// Compiles `graph` through the compiler driver, then opens a session bound to the
// network's parameters (and the trainer's state).
StatusOr<std::unique_ptr<runtime::Session>> CompileAndBind(std::unique_ptr<ir::Graph> graph, nn::Block& net,
                                                           Trainer* trainer, const CompileOptions& options,
                                                           std::string* text, codegen::LowerStats* stats,
                                                           bool require_batch_separable = false,
                                                           Autodiff autodiff = Autodiff::kNone) {
  ASSIGN_OR_RETURN(compiler::CompiledModule m,
                   compiler::Compile(std::move(graph), MakeRequest(options, trainer, autodiff, require_batch_separable)));
  *text = std::move(m.ir_text);
  *stats = m.stats;
  // Sessions bind the entries that own the weights and the optimizer state, so they keep
  // resident copies and dense values coherent by themselves (runtime/parameter_store.h).
  std::map<std::string, std::shared_ptr<runtime::ParamEntry>> entries;
  for (auto& [name, p] : net.CollectParams()) entries[name] = p->entry();
  for (const auto& spec : m.executable->params()) {
    if (!entries.count(spec.name) && trainer) entries[spec.name] = trainer->StateEntry(spec.name, spec.shape);
  }
  ASSIGN_OR_RETURN(auto session, runtime::Session::Create(m.executable, entries));
  session->SetCheckNumerics(options.check_numerics);
  return session;
}

}  // namespace

compiler::CompileRequest InferenceRequest(const CompileOptions& options) {
  return MakeRequest(options, /*trainer=*/nullptr, Autodiff::kNone, /*require_batch_separable=*/false);
}

compiler::CompileRequest TrainingRequest(const CompileOptions& options, Trainer& trainer) {
  return MakeRequest(options, &trainer, Autodiff::kTrain, /*require_batch_separable=*/false);
}

StatusOr<std::unique_ptr<ir::Graph>> TraceTrainingGraph(nn::Block& net, const LossFn& loss_fn, const Shape& data_shape,
                                                        std::ostream* shape_log) {
  if (data_shape.empty() || data_shape[0] < 1) {
    return InvalidArgument("training graph: data shape " + ShapeToString(data_shape) + " needs a batch dim N >= 1");
  }
  net.CollectParams();  // assigns structural names
  Tracer t("train_step");
  t.set_training(true);
  t.SetShapeLog(shape_log);
  Sym data = t.Input("data", DType::kF32, data_shape);
  Sym label = t.Input("label", DType::kS32, {data_shape[0]});
  ASSIGN_OR_RETURN(Sym out, net.Forward(data));
  ASSIGN_OR_RETURN(Sym loss, loss_fn(out, label));
  t.graph().AddOutput("loss", loss.id);
  t.graph().AddOutput("output", out.id);
  return t.TakeGraph();
}

StatusOr<std::unique_ptr<runtime::Session>> CompileGraph(std::unique_ptr<ir::Graph> graph, nn::Block& params,
                                                         const CompileOptions& options, std::string* text,
                                                         codegen::LowerStats* stats) {
  std::string unused_text;
  codegen::LowerStats unused_stats;
  params.CollectParams();  // assigns structural names
  return CompileAndBind(std::move(graph), params, /*trainer=*/nullptr, options, text ? text : &unused_text,
                        stats ? stats : &unused_stats);
}

TrainStep::TrainStep(nn::Block& net, LossFn loss, Trainer& trainer, CompileOptions options)
    : net_(net), loss_(std::move(loss)), trainer_(trainer), options_(std::move(options)) {}

TrainStep::~TrainStep() = default;

Status TrainStep::Release() {
  for (auto& [shape, s] : sessions_) {
    if (s->holding()) RETURN_IF_ERROR(s->Release());
  }
  return OkStatus();
}

Status TrainStep::Compile(const Shape& data_shape) {
  RETURN_IF_ERROR(trainer_.status());
  ASSIGN_OR_RETURN(auto graph, TraceTrainingGraph(net_, loss_, data_shape, options_.shape_log));
  ASSIGN_OR_RETURN(auto session, CompileAndBind(std::move(graph), net_, &trainer_, options_, &graph_text_, &stats_,
                                                /*require_batch_separable=*/false, Autodiff::kTrain));
  sessions_[data_shape] = std::move(session);
  return OkStatus();
}

// The sessions of a batch of `n` rows split over `k` streams (row counts differ by at most
// one, larger parts first). `compile(rows)` builds the first session of each row count, with
// primitives created for one thread (each stream runs on one); parts with a row count seen
// before share its executable (Session::NewSession). Empty when `compile` returns null (the
// graph cannot be split). Errors: compile's.
namespace {

using CompilePart = std::function<StatusOr<std::unique_ptr<runtime::Session>>(int64_t rows)>;
StatusOr<std::vector<std::unique_ptr<runtime::Session>>> CompileStreamParts(int64_t n, int64_t k,
                                                                           const CompilePart& compile) {
  runtime::ThreadLimit one_thread(1);
  std::map<int64_t, runtime::Session*> by_rows;
  std::vector<std::unique_ptr<runtime::Session>> parts;
  for (int64_t part = 0; part < k; ++part) {
    int64_t rows = n / k + (part < n % k ? 1 : 0);
    if (auto it = by_rows.find(rows); it != by_rows.end()) {
      parts.push_back(it->second->NewSession());
      continue;
    }
    ASSIGN_OR_RETURN(auto session, compile(rows));
    if (!session) return std::vector<std::unique_ptr<runtime::Session>>();
    by_rows[rows] = session.get();
    parts.push_back(std::move(session));
  }
  return parts;
}

}  // namespace

// Data-parallel training streams for one input shape: each part computes the gradients of
// its rows on one thread; the update session sums the parts' gradients and runs the
// optimizer once.
struct TrainStep::Streams {
  std::vector<std::unique_ptr<runtime::Session>> parts;
  std::vector<int64_t> first_row;
  std::vector<std::vector<Tensor>> grads;  // [part][parameter]: the part's "grad:<p>" outputs
  std::vector<size_t> grad_output;         // output index of "grad:<p>" in every part
  size_t loss_output = 0, out_output = 0;
  std::unique_ptr<runtime::Session> update;
  Tensor lr{DType::kF32, {}}, rescale{DType::kF32, {}};
  std::vector<const Tensor*> update_inputs;  // in the update executable's input order
};

StatusOr<std::unique_ptr<TrainStep::Streams>> TrainStep::CompileStreams(const Shape& shape) {
  RETURN_IF_ERROR(trainer_.status());
  net_.CollectParams();
  auto st = std::make_unique<Streams>();
  int64_t k = options_.streams;
  auto compile = [&](int64_t rows) -> StatusOr<std::unique_ptr<runtime::Session>> {
    Shape sub = shape;
    sub[0] = rows;
    Tracer t("train_step");
    t.set_training(true);
    t.SetShapeLog(options_.shape_log);
    Sym data = t.Input("data", DType::kF32, sub);
    Sym label = t.Input("label", DType::kS32, {rows});
    ASSIGN_OR_RETURN(Sym out, net_.Forward(data));
    ASSIGN_OR_RETURN(Sym loss, loss_(out, label));
    t.graph().AddOutput("loss", loss.id);
    t.graph().AddOutput("output", out.id);
    auto graph = t.TakeGraph();
    // Summing the parts' gradients equals the whole batch's gradient only when the forward
    // pass and the loss treat every sample on its own.
    if (Status sep = passes::CheckBatchSeparable(*graph); !sep.ok()) {
      streams_note_ = sep.message();
      return std::unique_ptr<runtime::Session>();
    }
    return CompileAndBind(std::move(graph), net_, &trainer_, options_, &graph_text_, &stats_,
                          /*require_batch_separable=*/false, Autodiff::kGradientsOnly);
  };
  ASSIGN_OR_RETURN(st->parts, CompileStreamParts(shape[0], k, compile));
  if (st->parts.empty()) return std::unique_ptr<Streams>();
  int64_t row = 0;
  for (const auto& p : st->parts) {
    st->first_row.push_back(row);
    row += p->executable().inputs()[0].shape[0];
  }
  // Output indices, and the gradient tensors of every part.
  const runtime::Executable& part = st->parts[0]->executable();
  std::vector<std::string> names;
  for (size_t i = 0; i < part.outputs().size(); ++i) {
    const std::string& name = part.outputs()[i].name;
    if (name == "loss") {
      st->loss_output = i;
    } else if (name == "output") {
      st->out_output = i;
    } else {
      st->grad_output.push_back(i);
      names.push_back(name.substr(name.find(':') + 1));
    }
  }
  for (auto& p : st->parts) {
    std::vector<Tensor> g;
    for (size_t i : st->grad_output) g.emplace_back(DType::kF32, p->executable().outputs()[i].shape);
    st->grads.push_back(std::move(g));
  }
  // The update graph: the parameters; the data_parallel_update pass (compiler Mode::
  // kStreamUpdate) adds the K gradient inputs of each, their sum and the optimizer update.
  auto g = std::make_unique<ir::Graph>("update");
  std::map<std::string, std::pair<int64_t, size_t>> grad_inputs;  // input name -> (part, parameter)
  for (size_t j = 0; j < names.size(); ++j) {
    const Shape& ps = part.outputs()[st->grad_output[j]].shape;
    std::string layout = ps.size() == 4 ? "OIHW" : ps.size() == 2 ? "OI" : ps.size() == 1 ? "C" : "";
    g->AddParameter(names[j], ir::TensorType{DType::kF32, ps, layout});
    for (int64_t pk = 0; pk < k; ++pk) grad_inputs["grad" + std::to_string(pk) + ":" + names[j]] = {pk, j};
  }
  std::string update_text;
  codegen::LowerStats update_stats;
  ASSIGN_OR_RETURN(st->update, CompileAndBind(std::move(g), net_, &trainer_, options_, &update_text, &update_stats,
                                              /*require_batch_separable=*/false, Autodiff::kStreamUpdate));
  for (const auto& spec : st->update->executable().inputs()) {
    if (spec.name == "lr") {
      st->update_inputs.push_back(&st->lr);
    } else if (spec.name == "rescale_grad") {
      st->update_inputs.push_back(&st->rescale);
    } else {
      auto [pk, j] = grad_inputs.at(spec.name);
      st->update_inputs.push_back(&st->grads[static_cast<size_t>(pk)][j]);
    }
  }
  return st;
}

Status TrainStep::RunStreams(Streams& st, const Tensor& data, const Tensor& label, int64_t batch_size, Tensor* loss,
                             Tensor* output) {
  // The parts read the dense parameters: a session holding resident copies writes them
  // back, once, before the parts run concurrently.
  for (auto& p : st.parts) RETURN_IF_ERROR(p->SyncBindings());
  const runtime::Executable& part = st.parts[0]->executable();
  int64_t n = data.shape()[0];
  if (label.dtype() != DType::kS32 || label.shape() != Shape{n}) {
    return InvalidArgument("TrainStep: label must be s32" + ShapeToString({n}) + ", got " +
                           std::string(DTypeName(label.dtype())) + ShapeToString(label.shape()));
  }
  auto whole = [&](size_t output) {
    Shape s = part.outputs()[output].shape;
    s[0] = n;
    return s;
  };
  for (auto [t, i] : {std::pair<Tensor*, size_t>{loss, st.loss_output}, {output, st.out_output}}) {
    if (t->empty() || t->dtype() != DType::kF32 || t->shape() != whole(i)) *t = Tensor(DType::kF32, whole(i));
  }
  int64_t data_row = data.num_elements() / n * 4, out_row = output->num_elements() / n * 4;
  RETURN_IF_ERROR(runtime::RunConcurrently(static_cast<int>(st.parts.size()), [&](int k) -> Status {
    auto pk = static_cast<size_t>(k);
    int64_t row = st.first_row[pk];
    runtime::Session& s = *st.parts[pk];
    std::vector<void*> in, out(s.executable().outputs().size());
    for (const auto& spec : s.executable().inputs()) {
      if (spec.name == "data") {
        in.push_back(const_cast<uint8_t*>(static_cast<const uint8_t*>(data.data())) + row * data_row);
      } else {
        in.push_back(const_cast<uint8_t*>(static_cast<const uint8_t*>(label.data())) + row * 4);
      }
    }
    out[st.loss_output] = static_cast<uint8_t*>(loss->data()) + row * 4;
    out[st.out_output] = static_cast<uint8_t*>(output->data()) + row * out_row;
    for (size_t j = 0; j < st.grad_output.size(); ++j) out[st.grad_output[j]] = st.grads[pk][j].data();
    Status status = s.RunWithAddresses(in, out);
    if (status.ok()) return status;
    return status.WithContext("stream " + std::to_string(k) + " (rows " + std::to_string(row) + ".." +
                              std::to_string(row + s.executable().inputs()[0].shape[0] - 1) + ")");
  }));
  st.lr.f32()[0] = static_cast<float>(trainer_.NextStepLearningRate());
  st.rescale.f32()[0] = static_cast<float>(trainer_.StepScale(batch_size));
  RETURN_IF_ERROR(st.update->Run(st.update_inputs, {}));
  trainer_.CountStep();
  return OkStatus();
}

// A batch must have rows: a graph of N = 0 has nothing to compute, and autodiff would fail on
// it with an internal error far from the cause.
static Status CheckRows(const char* who, const Tensor& data) {
  if (data.shape().empty()) return InvalidArgument(std::string(who) + ": data must have a batch axis (N first)");
  if (data.shape()[0] < 1) {
    return InvalidArgument(std::string(who) + ": data " + std::string(DTypeName(data.dtype())) +
                           ShapeToString(data.shape()) + " has no rows (N = 0); a batch needs N >= 1");
  }
  return OkStatus();
}

Status TrainStep::Run(const Tensor& data, const Tensor& label, int64_t batch_size, Tensor* loss, Tensor* output) {
  RETURN_IF_ERROR(CheckRows("TrainStep", data));
  // Gluon's trainer.step(batch_size) divides the gradients by it: 0 would make every weight
  // NaN and a negative value would ascend the gradient.
  if (batch_size < 1) {
    return InvalidArgument("TrainStep: batch_size must be >= 1 (the gradients are divided by it), got " +
                           std::to_string(batch_size));
  }
  if (options_.streams > 1 && !options_.output_gradients && data.shape()[0] >= options_.streams) {
    auto it = streams_.find(data.shape());
    if (it == streams_.end()) {
      streams_note_.clear();
      ASSIGN_OR_RETURN(auto st, CompileStreams(data.shape()));
      it = streams_.emplace(data.shape(), std::move(st)).first;
    }
    if (it->second) {
      last_ = it->second->parts[0].get();
      last_streams_ = static_cast<int>(it->second->parts.size());
      if (data.dtype() != DType::kF32) return InvalidArgument("TrainStep: data must be f32");
      return RunStreams(*it->second, data, label, batch_size, loss, output);
    }
  } else if (options_.streams > 1 && options_.output_gradients) {
    streams_note_ = "streams are off: CompileOptions::output_gradients asks for the whole batch's gradients";
  }
  last_streams_ = 1;
  if (!sessions_.count(data.shape())) RETURN_IF_ERROR(Compile(data.shape()));
  runtime::Session* s = sessions_.at(data.shape()).get();
  last_ = s;
  Tensor lr(DType::kF32, {}), rescale(DType::kF32, {});
  lr.f32()[0] = static_cast<float>(trainer_.NextStepLearningRate());
  rescale.f32()[0] = static_cast<float>(trainer_.StepScale(batch_size));
  // Dropout: a new seed every step, the first drawn from graph::GlobalRng() (so Seed()
  // makes a run reproducible), only when the graph has dropout nodes.
  Tensor seed(DType::kS32, {});
  const auto& specs = s->executable().inputs();
  for (const auto& spec : specs) {
    if (spec.name != "dropout_seed") continue;
    if (!dropout_seed_) dropout_seed_ = static_cast<uint32_t>(GlobalRng()());
    seed.s32()[0] = static_cast<int32_t>((*dropout_seed_)++);
  }
  ASSIGN_OR_RETURN(auto inputs, runtime::BindTrainingInputs(s->executable(), {&data, &label, &lr, &rescale, &seed}));
  std::vector<Tensor*> outputs;
  for (const auto& spec : s->executable().outputs()) {
    if (spec.name == "loss") {
      outputs.push_back(loss);
    } else if (spec.name == "output") {
      outputs.push_back(output);
    } else {
      outputs.push_back(&gradients_[spec.name.substr(spec.name.find(':') + 1)]);
    }
  }
  RETURN_IF_ERROR(s->Run(inputs, outputs));
  trainer_.CountStep();
  return OkStatus();
}

const Tensor* TrainStep::Gradient(const std::string& name) const {
  auto it = gradients_.find(name);
  return it == gradients_.end() ? nullptr : &it->second;
}

StatusOr<std::unique_ptr<runtime::BatchStreams>> Predictor::CompileStreams(const Shape& shape) {
  auto compile = [&](int64_t rows) -> StatusOr<std::unique_ptr<runtime::Session>> {
    Shape sub = shape;
    sub[0] = rows;
    Tracer t("forward");
    t.SetShapeLog(options_.shape_log);
    Sym x = t.Input("data", DType::kF32, sub);
    ASSIGN_OR_RETURN(Sym out, net_.Forward(x));
    t.graph().AddOutput("output", out.id);
    auto session = CompileAndBind(t.TakeGraph(), net_, nullptr, options_, &graph_text_, &stats_,
                                  /*require_batch_separable=*/true);
    if (!session.ok() && session.status().code() == StatusCode::kFailedPrecondition &&
        session.status().message().rfind("not batch separable", 0) == 0) {
      streams_note_ = session.status().message();
      return std::unique_ptr<runtime::Session>();
    }
    return session;
  };
  ASSIGN_OR_RETURN(auto parts, CompileStreamParts(shape[0], options_.streams, compile));
  if (parts.empty()) return std::unique_ptr<runtime::BatchStreams>();
  return runtime::BatchStreams::Create(std::move(parts));
}

Status Predictor::Forward(const Tensor& data, Tensor* output) {
  RETURN_IF_ERROR(CheckRows("Predictor", data));
  if (options_.streams > 1 && !data.shape().empty() && data.shape()[0] >= options_.streams) {
    auto st = streams_.find(data.shape());
    if (st == streams_.end()) {
      net_.CollectParams();
      streams_note_.clear();
      ASSIGN_OR_RETURN(auto streams, CompileStreams(data.shape()));
      st = streams_.emplace(data.shape(), std::move(streams)).first;
    }
    if (st->second) {
      last_ = &st->second->part(0);
      last_streams_ = st->second->num_streams();
      return st->second->Run({&data}, {output});
    }
  }
  last_streams_ = 1;
  auto it = sessions_.find(data.shape());
  if (it == sessions_.end()) {
    net_.CollectParams();
    Tracer t("forward");
    t.SetShapeLog(options_.shape_log);
    Sym x = t.Input("data", DType::kF32, data.shape());
    ASSIGN_OR_RETURN(Sym out, net_.Forward(x));
    t.graph().AddOutput("output", out.id);
    ASSIGN_OR_RETURN(auto session, CompileAndBind(t.TakeGraph(), net_, nullptr, options_, &graph_text_, &stats_));
    it = sessions_.emplace(data.shape(), std::move(session)).first;
  }
  last_ = it->second.get();
  return last_->Run({&data}, {output});
}

Status Accuracy::Update(const Tensor& labels, const Tensor& preds) {
  int64_t n = labels.num_elements();
  if (preds.shape().empty() || preds.shape()[0] != n) {
    return InvalidArgument("Accuracy: labels " + ShapeToString(labels.shape()) + " and preds " +
                           ShapeToString(preds.shape()) + " disagree on N");
  }
  if (preds.dtype() == DType::kS32) {
    for (int64_t i = 0; i < n; ++i) correct_ += preds.s32()[i] == labels.s32()[i];
  } else {
    int64_t c = preds.num_elements() / std::max<int64_t>(n, 1);
    for (int64_t i = 0; i < n; ++i) {
      const float* row = preds.f32() + i * c;
      int64_t best = 0;
      for (int64_t j = 1; j < c; ++j) {
        if (row[j] > row[best]) best = j;
      }
      correct_ += best == labels.s32()[i];
    }
  }
  total_ += n;
  return OkStatus();
}

std::pair<std::string, double> Accuracy::Get() const {
  if (total_ == 0) return {"accuracy", std::numeric_limits<double>::quiet_NaN()};
  return {"accuracy", static_cast<double>(correct_) / static_cast<double>(total_)};
}

}  // namespace kiln::graph
