// Writing a file so that a crash or a kill never leaves it half-written: the bytes go to
// "<path>.tmp.<pid>" in the same folder, are flushed and fsync'ed, the temp file is renamed
// over `path` (rename is atomic within a file system), and the folder is fsync'ed so the
// rename itself survives a power loss. Temp files that earlier writers of `path` left
// behind when they were killed (their process no longer runs) are removed first.
// Source: POSIX rename(2), fsync(2); "Ensuring data reaches disk" (LWN 457667).
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace kiln {

// Errors: InvalidArgument naming `what` (e.g. "parameter file"), the path and the OS error
// when the temp file cannot be created, written, synced or renamed (the temp file is
// removed then).
Status WriteFileAtomically(const std::string& path, std::string_view bytes, std::string_view what);

// The number of "<path>.tmp.<pid>" files of processes that no longer run, removed.
int RemoveStaleTempFiles(const std::string& path);

}  // namespace kiln
