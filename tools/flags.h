// Command-line flags shared by kiln's programs (kiln, kiln_opt, kiln_bench, kiln-serve and
// the examples), declared once with CLI11 (Debian's libcli11-dev 2.1) with their ranges and
// checks, so that every program rejects the same bad values the same way.
//
// Exit codes: 0 success (and --help), 1 a failure while running (a file that does not
// load, a model that does not compile), 2 a usage error (a bad flag value, an unknown flag,
// a missing argument, a pass name that names no pass), as GNU's and Python argparse's
// convention.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/status.h"

namespace kiln::tools {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// Parses argv into `app`. Returns -1 when the program should go on; otherwise the exit
// code to return at once: 0 after --help (printed to stdout), kExitUsage after a parse or
// validation error (printed to stderr with "Run with --help for more information.").
int ParseFlags(CLI::App& app, int argc, char** argv);

// Prints "<program>: <message>" to stderr and returns kExitUsage: for usage errors CLI11
// cannot see at parse time (a pass name that no pass of the compile had).
int UsageError(const std::string& program, const std::string& message);
// Prints "<program>: <status>" to stderr and returns kExitFailure.
int Failure(const std::string& program, const Status& status);

// "N,C,H,W" with every value a positive integer. Errors: InvalidArgument naming the flag
// and the bad part.
StatusOr<Shape> ParseShape(const std::string& flag, const std::string& text);

// Validators. PositiveInt: an integer >= 1 (batch, iterations, streams). FolderExists: a
// path whose folder exists (a file the program writes; the write itself may still fail).
// ShapeText: what ParseShape accepts.
CLI::Validator PositiveInt();
CLI::Validator FolderExists();
CLI::Validator ShapeText();

// -O / --opt / --opt-level (names as given): the optimization level, 0, 1 or 2
// (passes/pipeline.h).
CLI::Option* AddOptLevelFlag(CLI::App& app, int* level, const std::string& names = "-O,--opt");
// --check-numerics: stop at the first step that writes a NaN or Inf, naming it
// (graph::CompileOptions::check_numerics).
CLI::Option* AddCheckNumericsFlag(CLI::App& app, bool* on);

// The benchmark models of kiln_bench and kiln_opt (bench/models.h), with the flags both
// take: --model, --mode, --batch, --image, --fc, --channels, -O/--opt, --check-numerics.
struct ModelFlags {
  std::string model = "lenet";  // lenet | vgg11
  std::string mode = "train";   // train | infer
  int64_t batch = 64;           // N >= 1
  int64_t image = 0;            // H = W; 0 = the model's default (28 lenet, 224 vgg11)
  int64_t fc = 4096;            // VGG fully connected width >= 1
  int64_t channels = 0;         // C; 0 = the model's default (1 lenet, 3 vgg11)
  int opt = 2;
  bool check_numerics = false;
};
// `extra_models`: further --model names the caller builds (kiln_bench: the zoo, graph/zoo.h).
void AddModelFlags(CLI::App& app, ModelFlags* flags, const std::vector<std::string>& extra_models = {});

// Checks that `wanted` (a --dump-ir-after / --dot-stage / --print-program-after value) is
// "all" (when `allow_all`) or one of `ran`, the passes the compile ran. Returns -1 when it
// is, else prints "no <what> named '<wanted>' ran; <what>es that ran: a b c" and returns
// kExitUsage.
int CheckPassName(const std::string& program, const std::string& flag, const std::string& wanted,
                  const std::vector<std::string>& ran, bool allow_all);

}  // namespace kiln::tools
