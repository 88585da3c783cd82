// The page's own files (web/page/), compiled into the binary by web/embed.cmake.
#pragma once
#include <cstddef>
#include <string_view>
#include <vector>

namespace kith::web {

struct EmbeddedFile {
  const char* name;  // "app.js"
  const unsigned char* data;
  size_t size;
};

const std::vector<EmbeddedFile>& embeddedFiles();

// The embedded file `name`, or nullptr.
const EmbeddedFile* findEmbedded(std::string_view name);

// The Content-Type for a file name's extension (.html, .js, .css, .svg); empty for others.
std::string_view contentTypeOf(std::string_view name);

}  // namespace kith::web
