// The "cpu" target (runtime/target.h): host memory, the steps of backends/cpu (oneDNN
// primitives and native loops), and oneDNN's effective ISA as the instruction set artifacts
// record. Registered when this library is linked.
#pragma once

#include <string>
#include <string_view>

#include "runtime/target.h"

namespace kiln::backends::cpu {

// The process-wide CPU target (also found as runtime::FindTarget("cpu")).
const runtime::Target& CpuTarget();

// oneDNN's name of an ISA ("avx512_core_bf16") and its bit mask (dnnl_cpu_isa_t: an ISA's
// mask contains the masks of the ISAs it includes). -1 for an unknown name.
// Source: oneDNN v2.6 dnnl_types.h, dnnl_cpu_isa_t; "CPU Dispatcher Control".
int64_t IsaMask(std::string_view isa);

}  // namespace kiln::backends::cpu
