// QR codes of invite codes: the modules (libqrencode), drawn as text by `kith invite` on a
// terminal and as an SVG document by the web page.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace kith::web {

struct QrModules {
  int width = 0;
  std::vector<bool> dark;  // width * width, row by row
  bool at(int x, int y) const { return x >= 0 && y >= 0 && x < width && y < width && dark[y * width + x]; }
};

// The modules of `text` (error correction M), or nullopt when it does not fit a QR code.
std::optional<QrModules> qrEncode(const std::string& text);

// `text` as a QR code, an SVG document (dark modules on white, a quiet zone of 4); empty when it
// does not fit one.
std::string qrSvg(const std::string& text);

}  // namespace kith::web
