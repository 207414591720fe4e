#include "base/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace kiln {
namespace {

std::string Folder(const std::string& path) {
  std::filesystem::path p(path);
  return p.has_parent_path() ? p.parent_path().string() : std::string(".");
}

}  // namespace

int RemoveStaleTempFiles(const std::string& path) {
  std::error_code ec;
  std::string folder = Folder(path);
  std::string prefix = std::filesystem::path(path).filename().string() + ".tmp.";
  int removed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    std::string pid_text = name.substr(prefix.size());
    if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    long pid = std::strtol(pid_text.c_str(), nullptr, 10);
    if (pid <= 0 || pid == static_cast<long>(::getpid())) continue;
    // kill(pid, 0) fails with ESRCH when no such process runs: its writer died mid-write.
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    if (std::filesystem::remove(entry.path(), ec)) ++removed;
  }
  return removed;
}

Status WriteFileAtomically(const std::string& path, std::string_view bytes, std::string_view what) {
  RemoveStaleTempFiles(path);
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  auto fail = [&](const std::string& step) {
    std::string err = std::strerror(errno);
    std::remove(tmp.c_str());
    return InvalidArgument("cannot write " + std::string(what) + " '" + path + "': " + step + ": " + err);
  };
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return InvalidArgument("cannot write " + std::string(what) + " '" + path + "': cannot create " + tmp +
                                     ": " + std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return fail("writing " + tmp);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return fail("fsync of " + tmp);
  }
  if (::close(fd) != 0) return fail("closing " + tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return fail("renaming " + tmp);
  // The rename is durable once the folder's entry is on disk.
  int dir = ::open(Folder(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return OkStatus();
}

}  // namespace kiln
