#include "web/assets.h"

namespace kith::web {

const EmbeddedFile* findEmbedded(std::string_view name) {
  for (const auto& f : embeddedFiles()) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

std::string_view contentTypeOf(std::string_view name) {
  auto ends = [&](std::string_view ext) {
    return name.size() >= ext.size() && name.substr(name.size() - ext.size()) == ext;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  return {};
}

}  // namespace kith::web
