#include "graph/trainer.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "codegen/cpu/kernels_cpu.h"
#include "ir/text.h"
#include "passes/batch_separable.h"
#include "passes/pass.h"
#include "passes/pipeline.h"

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
  auto t = static_cast<double>(num_update_ + 1);
  return learning_rate_ * std::sqrt(1.0 - std::pow(adam_.beta2, t)) / (1.0 - std::pow(adam_.beta1, t));
}

Status Trainer::Sync() {
  if (!release_) return OkStatus();
  auto release = std::move(release_);
  release_ = nullptr;
  return release();
}

Tensor* Trainer::State(const std::string& name, const Shape& shape) {
  if (!Sync().ok()) return nullptr;
  auto it = state_.find(name);
  if (it == state_.end()) it = state_.emplace(name, Tensor(DType::kF32, shape)).first;
  return &it->second;
}

namespace {

// Compiles `graph` through the pass pipeline and the CPU lowering, then opens a session
// bound to the network's parameters (and the trainer's state).
StatusOr<std::unique_ptr<runtime::Session>> CompileAndBind(std::unique_ptr<ir::Graph> graph, nn::Block& net,
                                                           Trainer* trainer, const CompileOptions& options,
                                                           std::string* text, codegen::LowerStats* stats,
                                                           bool require_batch_separable = false) {
  passes::PassManager pm(passes::PassManagerOptions{options.dump_ir_after, options.dump, options.after_pass});
  if (trainer) {
    if (trainer->optimizer() == "adam") {
      pm.Add(std::make_unique<passes::BuildTrainingGraph>("loss", trainer->adam(), options.output_gradients));
    } else {
      pm.Add(std::make_unique<passes::BuildTrainingGraph>("loss", trainer->sgd(), options.output_gradients));
    }
  }
  passes::OptimizationOptions opt_options;
  opt_options.fuse_elementwise = options.fuse_elementwise;
  passes::AddOptimizationPasses(pm, options.opt_level, opt_options);
  RETURN_IF_ERROR(pm.Run(*graph));
  if (require_batch_separable) RETURN_IF_ERROR(passes::CheckBatchSeparable(*graph));
  *text = ir::PrintGraph(*graph);
  codegen::LowerOptions lower;
  lower.blocked_layouts = options.opt_level >= 2;
  lower.plan_memory = options.opt_level >= 2;
  lower.constant_params = options.constant_params && trainer == nullptr;
  lower.group_updates = options.opt_level >= 2;
  lower.resident_params = options.resident_params && trainer != nullptr && options.opt_level >= 2;
  const runtime::StepFactory& factory = options.step_factory ? *options.step_factory : codegen::cpu::CpuSteps();
  ASSIGN_OR_RETURN(auto exe, codegen::Lower(*graph, factory, stats, lower));
  std::map<std::string, Tensor*> bindings;
  for (auto& [name, p] : net.CollectParams()) bindings[name] = p->data_or_null();
  for (const auto& spec : exe->params()) {
    if (!bindings.count(spec.name) && trainer) bindings[spec.name] = trainer->State(spec.name, spec.shape);
  }
  return runtime::Session::Create(exe, bindings);
}

}  // namespace

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

TrainStep::~TrainStep() {
  Status s = Release();
  if (!s.ok()) std::fprintf(stderr, "TrainStep: writing resident parameters back failed: %s\n", s.ToString().c_str());
}

Status TrainStep::Release() {
  if (holder_ == nullptr) return OkStatus();
  runtime::Session* s = holder_;
  holder_ = nullptr;
  for (Parameter* p : held_) p->SetHolder(nullptr);
  held_.clear();
  trainer_.SetHolder(nullptr);
  Status status = s->WriteBack();
  s->Invalidate();  // the dense values may change before this session runs again
  return status;
}

Status TrainStep::Compile(const Shape& data_shape) {
  RETURN_IF_ERROR(trainer_.status());
  net_.CollectParams();  // assigns structural names
  Tracer t("train_step");
  t.SetShapeLog(options_.shape_log);
  Sym data = t.Input("data", DType::kF32, data_shape);
  Sym label = t.Input("label", DType::kS32, {data_shape[0]});
  ASSIGN_OR_RETURN(Sym out, net_.Forward(data));
  ASSIGN_OR_RETURN(Sym loss, loss_(out, label));
  t.graph().AddOutput("loss", loss.id);
  t.graph().AddOutput("output", out.id);
  ASSIGN_OR_RETURN(auto session, CompileAndBind(t.TakeGraph(), net_, &trainer_, options_, &graph_text_, &stats_));
  sessions_[data_shape] = std::move(session);
  return OkStatus();
}

Status TrainStep::Run(const Tensor& data, const Tensor& label, int64_t batch_size, Tensor* loss, Tensor* output) {
  if (data.shape().empty()) return InvalidArgument("TrainStep: data must have a batch axis");
  if (!sessions_.count(data.shape())) RETURN_IF_ERROR(Compile(data.shape()));
  runtime::Session* s = sessions_.at(data.shape()).get();
  last_ = s;
  if (holder_ != s && !s->executable().writeback_steps().empty()) {
    // Another session (shape) may hold newer values: write them back, then this session
    // re-reads the dense values before it runs and holds them from now on.
    RETURN_IF_ERROR(Release());
    s->Invalidate();
    auto release = [this]() { return Release(); };
    for (auto& [name, p] : net_.CollectParams()) {
      p->SetHolder(release);
      held_.push_back(p);
    }
    trainer_.SetHolder(release);
    holder_ = s;
  }
  Tensor lr(DType::kF32, {}), rescale(DType::kF32, {});
  lr.f32()[0] = static_cast<float>(trainer_.NextStepLearningRate());
  rescale.f32()[0] = static_cast<float>(trainer_.StepScale(batch_size));
  const auto& specs = s->executable().inputs();
  std::vector<const Tensor*> inputs;
  for (const auto& spec : specs) {
    if (spec.name == "data") {
      inputs.push_back(&data);
    } else if (spec.name == "label") {
      inputs.push_back(&label);
    } else if (spec.name == "lr") {
      inputs.push_back(&lr);
    } else if (spec.name == "rescale_grad") {
      inputs.push_back(&rescale);
    } else {
      return Internal("training graph has an unexpected input '" + spec.name + "'");
    }
  }
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
  int64_t n = shape[0], k = options_.streams;
  // Primitives for one thread: each stream runs on one.
  runtime::ThreadLimit one_thread(1);
  std::map<int64_t, runtime::Session*> by_rows;
  std::vector<std::unique_ptr<runtime::Session>> parts;
  for (int64_t part = 0; part < k; ++part) {
    int64_t rows = n / k + (part < n % k ? 1 : 0);
    if (auto it = by_rows.find(rows); it != by_rows.end()) {
      parts.push_back(it->second->NewSession());
      continue;
    }
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
      return std::unique_ptr<runtime::BatchStreams>();
    }
    RETURN_IF_ERROR(session.status());
    by_rows[rows] = session->get();
    parts.push_back(std::move(session).value());
  }
  return runtime::BatchStreams::Create(std::move(parts));
}

Status Predictor::Forward(const Tensor& data, Tensor* output) {
  if (options_.streams > 1 && !data.shape().empty() && data.shape()[0] >= options_.streams) {
    auto st = streams_.find(data.shape());
    if (st == streams_.end()) {
      net_.CollectParams();
      streams_note_.clear();
      ASSIGN_OR_RETURN(auto streams, CompileStreams(data.shape()));
      st = streams_.emplace(data.shape(), std::move(streams)).first;
      params_.clear();
      for (auto& [name, p] : net_.CollectParams()) params_.push_back(p);
    }
    if (st->second) {
      for (Parameter* p : params_) RETURN_IF_ERROR(p->Sync());
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
    params_.clear();
    for (auto& [name, p] : net_.CollectParams()) params_.push_back(p);
  }
  for (Parameter* p : params_) RETURN_IF_ERROR(p->Sync());
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
