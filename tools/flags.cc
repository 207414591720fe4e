#include "tools/flags.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

namespace kiln::tools {

int ParseFlags(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);  // prints help to stdout, 0
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the error and the --help hint to stderr
    return e.get_exit_code() == 0 ? 0 : kExitUsage;
  }
  return -1;
}

int UsageError(const std::string& program, const std::string& message) {
  std::fprintf(stderr, "%s: %s\nRun with --help for more information.\n", program.c_str(), message.c_str());
  return kExitUsage;
}

int Failure(const std::string& program, const Status& status) {
  std::fprintf(stderr, "%s: %s\n", program.c_str(), status.ToString().c_str());
  return kExitFailure;
}

StatusOr<Shape> ParseShape(const std::string& flag, const std::string& text) {
  Shape s;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    try {
      size_t used = 0;
      long long v = std::stoll(part, &used);
      if (used != part.size() || v < 1) throw std::invalid_argument(part);
      s.push_back(v);
    } catch (const std::exception&) {
      return InvalidArgument(flag + " '" + text + "': '" + part + "' is not a positive integer");
    }
  }
  if (s.empty()) return InvalidArgument(flag + " is empty");
  if (!text.empty() && text.back() == ',') return InvalidArgument(flag + " '" + text + "' ends with a comma");
  return s;
}

CLI::Validator PositiveInt() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        try {
          size_t used = 0;
          long long v = std::stoll(value, &used);
          if (used == value.size() && v >= 1) return "";
        } catch (const std::exception&) {
        }
        return "must be an integer >= 1, got '" + value + "'";
      },
      "INT>=1");
}

CLI::Validator FolderExists() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        if (value.empty()) return "";
        std::filesystem::path p(value);
        std::error_code ec;
        if (std::filesystem::is_directory(p, ec)) return "'" + value + "' is a folder, not a file";
        std::filesystem::path dir = p.parent_path();
        if (dir.empty() || std::filesystem::is_directory(dir, ec)) return "";
        return "cannot write '" + value + "': folder '" + dir.string() + "' does not exist";
      },
      "PATH");
}

CLI::Validator ShapeText() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        auto s = ParseShape("shape", value);
        return s.ok() ? "" : s.status().message();
      },
      "N,C,H,W");
}

CLI::Option* AddOptLevelFlag(CLI::App& app, int* level, const std::string& names) {
  return app.add_option(names, *level, "optimization level: 0 none, 1 simplify, 2 fusion, layouts, memory plan")
      ->check(CLI::Range(0, 2))
      ->capture_default_str();
}

CLI::Option* AddCheckNumericsFlag(CLI::App& app, bool* on) {
  return app.add_flag("--check-numerics", *on,
                      "stop at the first input or step that holds a NaN or Inf, naming the step, node, op and index");
}

void AddModelFlags(CLI::App& app, ModelFlags* f, const std::vector<std::string>& extra_models) {
  std::vector<std::string> models{"lenet", "vgg11"};
  models.insert(models.end(), extra_models.begin(), extra_models.end());
  app.add_option("--model", f->model, "lenet | vgg11" + std::string(extra_models.empty() ? "" : " | a zoo model"))
      ->check(CLI::IsMember(models))
      ->capture_default_str();
  app.add_option("--mode", f->mode, "train (forward, loss, backward, SGD) | infer")
      ->check(CLI::IsMember({"train", "infer"}))
      ->capture_default_str();
  app.add_option("--batch", f->batch, "batch size N")->check(PositiveInt())->capture_default_str();
  app.add_option("--image", f->image, "input height = width (0: 28 for lenet, 224 for vgg11)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--fc", f->fc, "VGG fully connected width")->check(PositiveInt())->capture_default_str();
  app.add_option("--channels", f->channels, "input channels C (0: 1 for lenet, 3 for vgg11)")
      ->check(CLI::NonNegativeNumber);
  AddOptLevelFlag(app, &f->opt);
  AddCheckNumericsFlag(app, &f->check_numerics);
}

int CheckPassName(const std::string& program, const std::string& flag, const std::string& wanted,
                  const std::vector<std::string>& ran, bool allow_all) {
  if (wanted.empty() || (allow_all && wanted == "all")) return -1;
  if (std::find(ran.begin(), ran.end(), wanted) != ran.end()) return -1;
  std::vector<std::string> seen;  // in order, each once (dce runs several times)
  std::string list;
  for (const auto& p : ran) {
    if (std::find(seen.begin(), seen.end(), p) != seen.end()) continue;
    seen.push_back(p);
    list += " " + p;
  }
  return UsageError(program, flag + ": no pass named '" + wanted + "' ran; passes that ran:" + list +
                                 (allow_all ? " (or 'all')" : ""));
}

}  // namespace kiln::tools
