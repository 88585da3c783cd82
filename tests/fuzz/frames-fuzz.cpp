// Fuzz target: transport frame decoding, as the secure stream does it (node/secure-stream.cpp feeds
// what the socket gives to a FrameReader during the handshake and to a TransportDecoder after). The
// first option byte picks the reader's frame limit, the second how the stream is cut into the
// pieces fed; the rest is the byte stream. The frames are read twice: by a bare FrameReader, then as
// transport messages under the fixed key of fuzz-support.h (the seed corpus is encrypted with it).
// Every failure must be kith::Error(AUTH); every frame taken must respect the limit.
#include <algorithm>
#include <cstdint>
#include <optional>

#include "base/error.h"
#include "crypto/noise.h"
#include "tests/fuzz/fuzz-support.h"

namespace {

using namespace kith;
namespace noise = crypto::noise;

// Feeds `stream` in pieces of `piece` bytes, calling `drain` after each piece.
template <typename Drain>
void feedInPieces(ByteView stream, size_t piece, Drain&& drain) {
  for (size_t at = 0; at < stream.size(); at += piece) drain(stream.subspan(at, std::min(piece, stream.size() - at)));
}

void readFrames(ByteView stream, size_t frameBytesMax, size_t piece) {
  noise::FrameReader reader(frameBytesMax);
  size_t taken = 0;
  feedInPieces(stream, piece, [&](ByteView bytes) {
    reader.feed(bytes);
    while (auto frame = reader.tryNext()) {
      if (frame->size() > frameBytesMax) fuzz::contractBroken("frames", "a frame over the reader's limit");
      taken += noise::FRAME_HEADER_BYTES + frame->size();
    }
  });
  if (taken + reader.bufferedBytes() != stream.size()) fuzz::contractBroken("frames", "bytes lost or made up");
}

void readTransport(ByteView stream, size_t piece) {
  Key32 key = fuzz::fixedKey(fuzz::FRAMES_KEY);
  noise::TransportDecoder decoder{noise::CipherState(key)};
  feedInPieces(stream, piece, [&](ByteView bytes) {
    decoder.feed(bytes);
    while (auto plaintext = decoder.tryNext()) {
      if (plaintext->size() > noise::TRANSPORT_PAYLOAD_BYTES_MAX)
        fuzz::contractBroken("frames", "a plaintext over the limit");
    }
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kith::fuzz::setUp();
  if (size < fuzz::FRAMES_OPTION_BYTES) return 0;
  // A limit from the handshake's small ones up to the transport's, and pieces of 1 to 256 bytes
  // (or, for 0, the whole stream at once).
  size_t frameBytesMax = std::min<size_t>(noise::NOISE_MESSAGE_BYTES_MAX, size_t{data[0]} * 257 + 16);
  size_t piece = data[1] == 0 ? size : size_t{data[1]};
  ByteView stream(data + fuzz::FRAMES_OPTION_BYTES, size - fuzz::FRAMES_OPTION_BYTES);
  try {
    readFrames(stream, frameBytesMax, piece);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::AUTH) fuzz::contractBroken("frames", std::string("not an AUTH error: ") + e.what());
  }
  try {
    readTransport(stream, piece);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::AUTH) fuzz::contractBroken("frames", std::string("not an AUTH error: ") + e.what());
  }
  return 0;
}
