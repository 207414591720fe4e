// kiln-serve: the deployable inference server. It links the runtime (runtime/model.h), the
// CPU steps and oneDNN, and none of the compiler (no ir/, passes/, graph/ or LLVM).
//
//   kiln-serve model.kiln --port 8000 --batch-delay-us 2000
//   kiln-serve --model-repository models/ --port 8000     (serve/repository.h)
//
// Same flags and protocol as `kiln serve` (serve/server.h). Stops gracefully on SIGTERM.
// Exit codes: 1 when the artifact does not load or the port cannot be bound, 2 for a bad flag.
#include <CLI/CLI.hpp>

#include "serve/serve_flags.h"
#include "serve/server.h"
#include "tools/flags.h"

int main(int argc, char** argv) {
  CLI::App app{"kiln-serve: serve a kiln artifact over the Open Inference Protocol (KServe v2, HTTP/JSON)"};
  std::string artifact, repository;
  kiln::serve::ServerOptions options;
  kiln::serve::AddServeSource(app, artifact, repository);
  kiln::serve::AddServeFlags(app, options);
  if (int code = kiln::tools::ParseFlags(app, argc, argv); code >= 0) return code;
  return kiln::serve::ServeUntilSignal(artifact, options, repository);
}
