#include "runtime/training.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>

namespace kiln::runtime {

namespace {

constexpr char kNumUpdate[] = "kiln:num_update";
constexpr char kLearningRate[] = "kiln:learning_rate";
constexpr char kDropoutSeed[] = "kiln:dropout_seed";

// A 64-bit value as s32[2], low word first (the .params format has no 64-bit ints here).
Tensor Pack64(uint64_t bits) {
  Tensor t(DType::kS32, {2});
  auto lo = static_cast<uint32_t>(bits), hi = static_cast<uint32_t>(bits >> 32);
  std::memcpy(&t.s32()[0], &lo, 4);
  std::memcpy(&t.s32()[1], &hi, 4);
  return t;
}

uint64_t Unpack64(const Tensor& t) {
  uint32_t lo = 0, hi = 0;
  std::memcpy(&lo, &t.s32()[0], 4);
  std::memcpy(&hi, &t.s32()[1], 4);
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

}  // namespace

StatusOr<std::vector<const Tensor*>> BindTrainingInputs(const Executable& executable, const TrainingStepInputs& in) {
  std::vector<const Tensor*> out;
  for (const auto& spec : executable.inputs()) {
    if (spec.name == "data") {
      out.push_back(in.data);
    } else if (spec.name == "label") {
      out.push_back(in.label);
    } else if (spec.name == "lr") {
      out.push_back(in.lr);
    } else if (spec.name == "rescale_grad") {
      out.push_back(in.rescale_grad);
    } else if (spec.name == "dropout_seed") {
      out.push_back(in.dropout_seed);
    } else {
      return InvalidArgument("the training step has an input '" + spec.name +
                             "' that is not fed (data, label, lr, rescale_grad, dropout_seed)");
    }
  }
  return out;
}

double AdamStepLearningRate(double learning_rate, double beta1, double beta2, int64_t t) {
  auto step = static_cast<double>(t);
  return learning_rate * std::sqrt(1.0 - std::pow(beta2, step)) / (1.0 - std::pow(beta1, step));
}

StatusOr<std::unique_ptr<TrainingSession>> TrainingSession::Create(std::shared_ptr<const Model> model) {
  const ModelInfo& info = model->info();
  if (!info.training) {
    return FailedPrecondition("model '" + info.name +
                              "' is an inference artifact: training needs one written by kiln compile --train");
  }
  std::unique_ptr<TrainingSession> s(new TrainingSession());
  s->model_ = model;
  s->num_update_ = info.training->num_update;
  s->learning_rate_ = info.training->Option("learning_rate", info.training->optimizer == "adam" ? 0.001 : 0.01);
  std::map<std::string, std::shared_ptr<ParamEntry>> entries;
  const std::vector<TensorSpec>& params = model->executable().params();
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor value(params[i].dtype, params[i].shape);
    if (value.size_bytes() > 0) std::memcpy(value.data(), model->weight_data(i), static_cast<size_t>(value.size_bytes()));
    auto entry = std::make_shared<ParamEntry>(std::move(value));
    entries[params[i].name] = entry;
    s->store_.Add(params[i].name, entry);
    if (i < info.param_info.size() && !info.param_info[i].state) s->weight_names_.push_back(params[i].name);
  }
  ASSIGN_OR_RETURN(s->train_, Session::Create(model->shared_executable(), entries));
  if (model->eval_executable()) {
    ASSIGN_OR_RETURN(s->eval_, Session::Create(model->eval_executable(), entries));
  }
  return s;
}

TrainingSession::~TrainingSession() {
  // The eval session first: it may hold prepacked copies only; the training session holds
  // the entries and writes back in its destructor.
  eval_.reset();
  train_.reset();
}

const Shape& TrainingSession::input_shape() const { return model_->inputs().at(0).shape; }

Shape TrainingSession::eval_input_shape() const {
  return eval_ && !eval_->executable().inputs().empty() ? eval_->executable().inputs()[0].shape : Shape{};
}

double TrainingSession::NextStepLearningRate() const {
  const TrainingInfo& t = optimizer();
  if (t.optimizer != "adam") return learning_rate_;
  return AdamStepLearningRate(learning_rate_, t.Option("beta1", 0.9), t.Option("beta2", 0.999), num_update_ + 1);
}

Status TrainingSession::Step(const Tensor& data, const Tensor& label, Tensor* loss, Tensor* output,
                             int64_t batch_size) {
  if (batch_size < 0) return InvalidArgument("TrainingSession: batch_size must be >= 0, got " + std::to_string(batch_size));
  if (data.shape().empty() || data.shape()[0] < 1) {
    return InvalidArgument("TrainingSession: data " + ShapeToString(data.shape()) + " has no batch rows");
  }
  if (batch_size == 0) batch_size = data.shape()[0];
  Tensor lr(DType::kF32, {}), rescale(DType::kF32, {}), seed(DType::kS32, {});
  lr.f32()[0] = static_cast<float>(NextStepLearningRate());
  rescale.f32()[0] =
      static_cast<float>(optimizer().Option("rescale_grad", 1.0) / static_cast<double>(batch_size));
  seed.s32()[0] = static_cast<int32_t>(dropout_seed_);
  const Executable& exe = train_->executable();
  auto inputs = BindTrainingInputs(exe, {&data, &label, &lr, &rescale, &seed});
  if (!inputs.ok()) return inputs.status().WithContext("training artifact '" + model_->name() + "'");
  bool uses_seed = exe.InputIndex("dropout_seed") >= 0;
  std::vector<Tensor*> outputs;
  std::map<std::string, Tensor> extra;
  for (const auto& spec : train_->executable().outputs()) {
    if (spec.name == "loss") {
      outputs.push_back(loss);
    } else if (spec.name == "output") {
      outputs.push_back(output);
    } else {
      outputs.push_back(&extra[spec.name]);
    }
  }
  RETURN_IF_ERROR(train_->Run(*inputs, outputs));
  ++num_update_;
  if (uses_seed) ++dropout_seed_;
  return OkStatus();
}

Status TrainingSession::Predict(const Tensor& data, Tensor* output) {
  if (!eval_) return Unimplemented("training artifact '" + model_->name() + "' has no eval program");
  return eval_->Run({&data}, {output});
}

Status TrainingSession::SaveParameters(const std::string& path) { return store_.Save(path, weight_names_); }

Status TrainingSession::SaveCheckpoint(const std::string& path) {
  std::vector<std::pair<std::string, const Tensor*>> entries;
  for (const std::string& name : store_.Names()) {
    ASSIGN_OR_RETURN(const Tensor* t, store_.entry(name)->Read());
    entries.emplace_back(name, t);
  }
  double lr = learning_rate_;
  uint64_t lr_bits = 0;
  std::memcpy(&lr_bits, &lr, 8);
  Tensor steps = Pack64(static_cast<uint64_t>(num_update_)), rate = Pack64(lr_bits), seed(DType::kS32, {1});
  seed.s32()[0] = static_cast<int32_t>(dropout_seed_);
  entries.emplace_back(kNumUpdate, &steps);
  entries.emplace_back(kLearningRate, &rate);
  entries.emplace_back(kDropoutSeed, &seed);
  return WriteParamsFile(path, entries);
}

Status TrainingSession::LoadCheckpoint(const std::string& path) {
  ASSIGN_OR_RETURN(auto file, ReadParamsFile(path));
  auto fail = [&](const std::string& why) { return InvalidArgument("checkpoint '" + path + "': " + why); };
  // Everything is checked before anything changes.
  for (const auto& spec : model_->executable().params()) {
    auto it = file.find(spec.name);
    if (it == file.end()) return fail("has no tensor '" + spec.name + "' (" + spec.ToString() + ")");
    if (it->second.dtype() != spec.dtype || it->second.shape() != spec.shape) {
      return fail("'" + spec.name + "' is " + std::string(DTypeName(it->second.dtype())) +
                  ShapeToString(it->second.shape()) + ", the artifact has " + spec.ToString());
    }
  }
  auto scalar = [&](const char* name, int64_t count) -> StatusOr<const Tensor*> {
    auto it = file.find(name);
    if (it == file.end()) return fail(std::string("has no '") + name + "' (not a kiln training checkpoint)");
    if (it->second.dtype() != DType::kS32 || it->second.shape() != Shape{count}) {
      return fail(std::string("'") + name + "' must be s32[" + std::to_string(count) + "]");
    }
    return &it->second;
  };
  ASSIGN_OR_RETURN(const Tensor* steps, scalar(kNumUpdate, 2));
  ASSIGN_OR_RETURN(const Tensor* rate, scalar(kLearningRate, 2));
  ASSIGN_OR_RETURN(const Tensor* seed, scalar(kDropoutSeed, 1));
  uint64_t count = Unpack64(*steps), lr_bits = Unpack64(*rate);
  double lr = 0;
  std::memcpy(&lr, &lr_bits, 8);
  if (count > (uint64_t{1} << 62)) return fail("step count " + std::to_string(count) + " is out of range");
  if (!std::isfinite(lr) || lr < 0) return fail("learning rate is not a finite non-negative number");
  std::set<std::string> known = {kNumUpdate, kLearningRate, kDropoutSeed};
  for (const auto& spec : model_->executable().params()) known.insert(spec.name);
  for (const auto& [name, t] : file) {
    if (!known.count(name)) return fail("has '" + name + "', which is not a tensor of this artifact");
  }
  for (const auto& spec : model_->executable().params()) {
    RETURN_IF_ERROR(store_.entry(spec.name)->Write(std::move(file.at(spec.name))));
  }
  num_update_ = static_cast<int64_t>(count);
  learning_rate_ = lr;
  dropout_seed_ = static_cast<uint32_t>(seed->s32()[0]);
  return OkStatus();
}

}  // namespace kiln::runtime
