// The "cuda" target's runtime half (runtime/target.h): device memory through the driver API
// (backends/cuda/cuda_driver.h, loaded with dlopen, so linking this library never requires
// a GPU or the CUDA toolkit), the SM versions steps are compiled for as the ISA, and the
// step factory. Registered when this library is linked.
//
// STATUS (issue 16): NOT TESTED ON A GPU, and the GPU kernels are not written. What exists
// and is tested without a device: the driver loader and its errors, the ISA names and
// checks, the lowering of whole networks for this target (dense NCHW layouts, memory plan),
// and artifacts that record it. Creating any step needs a driver (FailedPrecondition "no
// CUDA driver: ..." without one) and then answers Unimplemented naming the step kind.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "runtime/step.h"
#include "runtime/target.h"

namespace kiln::backends::cuda {

// The process-wide target (also runtime::FindTarget("cuda")).
const runtime::Target& CudaTarget();
// Its step factory: dense layouts, no scratch; Create as the status above says.
const runtime::StepFactory& CudaSteps();

// The SM versions the compile side builds for (cubins from ptxas where installed, PTX as
// the fallback the driver JIT-compiles for newer GPUs), in the artifact's ISA form.
inline constexpr char kCompiledSms[] = "sm_80,sm_90";

// "sm_80,sm_90" -> {80, 90}. Errors: InvalidArgument naming an entry that is not sm_<NN>
// with NN in 50..199, or an empty list.
StatusOr<std::vector<int>> ParseSmList(std::string_view isa);

// Whether a device of compute capability `device_sm` (e.g. 90) runs code compiled for
// `compiled` (ParseSmList): a cubin runs on its major version at an equal or higher minor,
// PTX of a lower version is JIT-compiled by the driver for any newer device; so OK when
// some entry is <= device_sm. Errors: FailedPrecondition naming both.
Status CheckSm(int device_sm, const std::vector<int>& compiled);

}  // namespace kiln::backends::cuda
