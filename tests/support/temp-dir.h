// A temporary directory removed (recursively) when the object goes away.
#pragma once
#include <string>

namespace kith::test {

class TempDir {
public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

private:
  std::string path_;
};

// Reads a whole file; throws if it cannot be read.
std::string readFile(const std::string& path);
// Writes `bytes` as the whole of the file at `path` (created or truncated); throws if it cannot.
void writeFile(const std::string& path, const std::string& bytes);
// True when `needle` occurs in any regular file under `dir` (a `grep -r` that also reads binary files).
bool anyFileContains(const std::string& dir, const std::string& needle);

}  // namespace kith::test
