// A process-wide table of named, immortal objects (targets, backends), safe to use from
// static initializers and from several threads. Used by runtime/target.h and
// compiler/target.h.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

template <typename T>
class NamedRegistry {
 public:
  // Adds `item` (which must live for the process) as `name`; false when the name is taken
  // (the first registration stays).
  bool Register(std::string name, const T* item) {
    std::lock_guard<std::mutex> lock(mu_);
    return items_.emplace(std::move(name), item).second;
  }
  // The item registered as `name`, or null.
  const T* Find(std::string_view name) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = items_.find(name);
    return it == items_.end() ? nullptr : it->second;
  }
  // Registered names, sorted.
  std::vector<std::string> Names() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> names;
    for (const auto& [n, item] : items_) names.push_back(n);
    return names;
  }
  // "cpu, cuda" (or "none"), for error messages.
  std::string NamesText() const {
    std::string text;
    for (const std::string& n : Names()) text += (text.empty() ? "" : ", ") + n;
    return text.empty() ? "none" : text;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, const T*, std::less<>> items_;
};

}  // namespace kiln
