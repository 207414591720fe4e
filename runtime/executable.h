// Executable and Session: the runtime half of a compiled graph (DESIGN.md runtime/).
//
// An Executable is immutable and shared: an ordered list of steps, the arena size, the
// input/output/parameter signatures and the constants. A Session owns one arena and the
// bindings to a ParameterStore, and runs the steps; many sessions may run one executable
// concurrently.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/tensor.h"
#include "runtime/parameter_store.h"
#include "runtime/step.h"
#include "runtime/target.h"

namespace kiln::runtime {

// Name, element type and shape of one bound tensor (dense row-major: NCHW, OIHW, NC).
struct TensorSpec {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  std::string ToString() const { return name + ": " + std::string(DTypeName(dtype)) + ShapeToString(shape); }
};

class Executable {
 public:
  Executable(std::vector<TensorSpec> inputs, std::vector<TensorSpec> outputs, std::vector<TensorSpec> params,
             std::vector<Tensor> constants, std::vector<std::unique_ptr<Step>> steps, int64_t arena_bytes);

  const std::vector<TensorSpec>& inputs() const { return inputs_; }
  const std::vector<TensorSpec>& outputs() const { return outputs_; }
  // Parameters and optimizer state the steps read (and update in place), by name.
  const std::vector<TensorSpec>& params() const { return params_; }
  const std::vector<Tensor>& constants() const { return constants_; }
  const std::vector<std::unique_ptr<Step>>& steps() const { return steps_; }
  int64_t arena_bytes() const { return arena_bytes_; }
  // Index of the named input/output, or -1.
  int InputIndex(const std::string& name) const;
  int OutputIndex(const std::string& name) const;
  // One line per step: kind, node, operands (for dumps and `kiln inspect`).
  std::string DescribeSteps() const;

  // Prepack steps: reorders of parameters into the layouts the steps want, for executables
  // compiled with constant parameters (codegen::LowerOptions::constant_params). A session
  // runs them once, before its first Run (and again on Session::Repack), into arena
  // buffers that no other step reuses, so the weights are reordered once, not every run.
  const std::vector<std::unique_ptr<Step>>& prepack_steps() const { return prepack_steps_; }
  void SetPrepackSteps(std::vector<std::unique_ptr<Step>> steps) { prepack_steps_ = std::move(steps); }

  // Write-back steps: for executables whose updated parameters and optimizer state stay in
  // the steps' layouts between runs (codegen::LowerOptions::resident_params, training),
  // reorders from those session-resident copies back into the dense bound buffers. The
  // prepack steps fill the resident copies; the steps then read and update only them, so
  // a weight is reordered once per residency period instead of every step. Session::
  // WriteBack runs these.
  const std::vector<std::unique_ptr<Step>>& writeback_steps() const { return writeback_steps_; }
  void SetWritebackSteps(std::vector<std::unique_ptr<Step>> steps) { writeback_steps_ = std::move(steps); }

  // The target whose steps these are (runtime/target.h): sessions allocate their arena on
  // its device. Null: host memory (executables built directly from a StepFactory).
  const Target* target() const { return target_; }
  void SetTarget(const Target* target) { target_ = target; }
  Device device() const { return target_ ? target_->device() : Device::kHost; }

 private:
  std::vector<TensorSpec> inputs_, outputs_, params_;
  std::vector<Tensor> constants_;
  std::vector<std::unique_ptr<Step>> steps_;
  std::vector<std::unique_ptr<Step>> prepack_steps_;
  std::vector<std::unique_ptr<Step>> writeback_steps_;
  int64_t arena_bytes_;
  const Target* target_ = nullptr;
};

class Session final : public ResidencyHolder {
 public:
  // Binds every parameter the executable needs to the entry of the same name in `store`
  // (runtime/parameter_store.h; the entries are shared, the store need not outlive the
  // session). A session bound to entries keeps them coherent by itself: before each run
  // it has another holder write back, and re-reads (prepacks) the dense values when an
  // entry's version moved since it last ran; a run that updates parameters bumps their
  // versions; with resident parameters the session becomes the entries' holder, so that
  // reading or writing an entry writes the newest values back first.
  // Errors: NotFound for a missing parameter, InvalidArgument for a dtype or shape
  // mismatch (naming the parameter and both shapes).
  static StatusOr<std::unique_ptr<Session>> Create(std::shared_ptr<const Executable> exe, ParameterStore* store);
  static StatusOr<std::unique_ptr<Session>> Create(std::shared_ptr<const Executable> exe,
                                                   const std::map<std::string, std::shared_ptr<ParamEntry>>& entries);
  // The same with explicit bindings: parameter name -> tensor (which must outlive the
  // session). No coherence: the caller keeps resident copies and dense tensors in step
  // (WriteBack, Invalidate).
  static StatusOr<std::unique_ptr<Session>> Create(std::shared_ptr<const Executable> exe,
                                                   const std::map<std::string, Tensor*>& bindings);
  // The same with the parameters' addresses, in executable().params() order, each holding a
  // dense tensor of its spec's dtype and shape (e.g. weights used in place from a
  // memory-mapped artifact; runtime/model.h). The memory must outlive the session.
  // Errors: InvalidArgument when the count differs or an address is null.
  static StatusOr<std::unique_ptr<Session>> CreateWithAddresses(std::shared_ptr<const Executable> exe,
                                                                std::vector<void*> param_addresses);

  // Runs one step of the graph. `inputs` follow executable().inputs() order and must match
  // each spec's dtype and shape; `outputs` are resized to the output specs if they differ.
  // Parameters and state in the store are updated in place when the graph has updates.
  // Errors: InvalidArgument naming the input and both shapes; errors from the steps.
  Status Run(const std::vector<const Tensor*>& inputs, const std::vector<Tensor*>& outputs);
  // Run on raw buffers: `inputs` and `outputs` hold the addresses of dense tensors of the
  // specs' dtypes and shapes, in spec order (e.g. slices of a larger batch; runtime/
  // streams.h). Nothing but the counts is checked. Errors: InvalidArgument for a count
  // mismatch; errors from the steps.
  Status RunWithAddresses(const std::vector<void*>& inputs, const std::vector<void*>& outputs);

  const Executable& executable() const { return *exe_; }
  // Another session of the same executable bound to the same parameter buffers, with its
  // own arena (and its own prepacked or resident copies), e.g. one per batch stream.
  std::unique_ptr<Session> NewSession() const {
    auto s = std::unique_ptr<Session>(new Session(exe_, params_));
    s->BindEntries(entries_);
    s->SetCheckNumerics(check_numerics_);
    return s;
  }
  // Writes resident copies back (when this session holds entries); errors go to stderr.
  ~Session() override;
  // Runs the executable's prepack steps again (Run does it before the first step): call it
  // after changing bound parameters of an executable compiled with constant parameters.
  // With resident parameters (Executable::writeback_steps) this drops updates not yet
  // written back: call WriteBack first. Errors: from the steps.
  Status Repack();
  // Resident parameters (Executable::writeback_steps non-empty): after Run the newest
  // parameter and optimizer-state values are in the session's resident copies, and the
  // bound dense buffers are stale until WriteBack copies them back (a no-op when nothing
  // ran since the last write-back). Errors: from the steps.
  Status WriteBack();
  // Marks the resident copies stale: the next Run re-reads the bound dense buffers
  // (prepack) first. Call it after the dense values changed; pending updates are dropped
  // unless WriteBack ran first.
  void Invalidate() { prepacked_ = false; resident_newer_ = false; }
  // True while the resident copies hold updates the bound buffers do not have yet.
  bool resident_newer() const { return resident_newer_; }
  // Sessions bound to entries: has another holder of them write back, and marks this
  // session's prepacked and resident copies stale when an entry changed since its last
  // run. Run does it first; call it before running several sessions of the same entries
  // concurrently (runtime/streams.h), which must not update them. Errors: the holder's.
  Status SyncBindings();
  // ResidencyHolder: WriteBack, then stop holding the entries (the copies stay valid
  // until an entry's version moves). Errors: from the write-back steps.
  Status Release() override;
  // True while this session is the holder of its entries.
  bool holding() const { return holding_; }
  // When on, Run records the wall time of each step (seconds), summed over runs.
  void SetProfiling(bool on) { profiling_ = on; }
  const std::vector<double>& step_seconds() const { return step_seconds_; }
  // When on (off by default), Run checks its f32 inputs before the first step and every
  // f32 output of each step right after it, and stops at the first NaN or Inf with an
  // InvalidArgument naming the input, or the step (index, kind, node), the output, the
  // parameter it is bound to and the first bad index (runtime/check_numerics.h;
  // TensorFlow's check_numerics, PyTorch's anomaly mode). Steps before the bad one have
  // run: an optimizer update that overflowed has written its parameter. Costs one read of
  // every byte the steps write. NewSession copies the setting.
  void SetCheckNumerics(bool on);
  bool check_numerics() const { return check_numerics_; }

 private:
  Session(std::shared_ptr<const Executable> exe, std::vector<void*> params);
  void BindEntries(std::vector<std::shared_ptr<ParamEntry>> entries);
  std::shared_ptr<const Executable> exe_;
  std::vector<void*> params_;
  // Bound entries (params order; empty for raw bindings), and their versions as of this
  // session's last prepack or run.
  std::vector<std::shared_ptr<ParamEntry>> entries_;
  std::vector<uint64_t> seen_versions_;
  bool writes_params_ = false;  // some step writes a bound parameter (an update)
  bool holding_ = false;
  // Frees the arena on the executable's target (host memory without one).
  struct ArenaDeleter {
    const Target* target = nullptr;
    void operator()(uint8_t* p) const {
      if (target) {
        target->FreeArena(p);
      } else {
        AlignedFree(p);
      }
    }
  };
  std::unique_ptr<uint8_t, ArenaDeleter> arena_;
  std::vector<const void*> constants_;
  bool profiling_ = false;
  bool check_numerics_ = false;
  std::vector<std::string> param_names_;  // executable().params() names, for numerics errors
  bool prepacked_ = false;
  bool resident_newer_ = false;
  std::vector<double> step_seconds_;
};

}  // namespace kiln::runtime
