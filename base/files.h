// Small files read whole and files written atomically: what the home (cli/home.h) and the web
// page's sign-in tokens (web/guard.h) keep on disk.
//
// Threading: any thread.
#pragma once
#include <optional>
#include <string>

#include "base/bytes.h"

namespace kith {

// Reads a whole small file, checking its type and size before reading: Error(CORRUPT) naming the
// file (`what`, e.g. "the key file", and its path) for a folder, a device or anything but a
// regular file, or more than `bytesMax` bytes, with `hint` as what to do; Error(IO) when it cannot
// be read. nullopt when the file does not exist.
std::optional<Bytes> readSmallFile(const std::string& what, const std::string& path, size_t bytesMax,
                                   const std::string& hint);
inline std::optional<Bytes> readSmallFile(const std::string& path, size_t bytesMax, const std::string& hint) {
  return readSmallFile("the file", path, bytesMax, hint);
}

// Writes `bytes` to `path` atomically with the given mode: a temporary file, fsync, rename, fsync
// of the folder. Throws Error(IO).
void writeFileAtomic(const std::string& path, ByteView bytes, unsigned mode);

}  // namespace kith
