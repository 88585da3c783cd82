#include "web/qr.h"

#include <qrencode.h>

namespace kith::web {

std::optional<QrModules> qrEncode(const std::string& text) {
  QRcode* qr = QRcode_encodeString(text.c_str(), 0, QR_ECLEVEL_M, QR_MODE_8, 1);
  if (qr == nullptr) return std::nullopt;
  QrModules m;
  m.width = qr->width;
  m.dark.resize(static_cast<size_t>(qr->width) * static_cast<size_t>(qr->width));
  for (size_t i = 0; i < m.dark.size(); ++i) m.dark[i] = (qr->data[i] & 1) != 0;
  QRcode_free(qr);
  return m;
}

std::string qrSvg(const std::string& text) {
  auto m = qrEncode(text);
  if (!m) return {};
  const int quiet = 4;
  int size = m->width + 2 * quiet;
  std::string path;
  for (int y = 0; y < m->width; ++y) {
    for (int x = 0; x < m->width; ++x) {
      if (!m->at(x, y)) continue;
      int run = 1;
      while (m->at(x + run, y)) ++run;
      path += "M" + std::to_string(x + quiet) + " " + std::to_string(y + quiet) + "h" + std::to_string(run) + "v1h-" +
              std::to_string(run) + "z";
      x += run - 1;
    }
  }
  std::string s = std::to_string(size);
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " + s + " " + s +
         "\" shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"QR code of the invite\">"
         "<rect width=\"" +
         s + "\" height=\"" + s + "\" fill=\"#fff\"/><path fill=\"#000\" d=\"" + path + "\"/></svg>";
}

}  // namespace kith::web
