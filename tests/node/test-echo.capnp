# Test-only interface for the Cap'n Proto RPC round trip over UvStream (uv-stream-test.cpp).
@0xbf2d02f159675175;

$import "/capnp/c++.capnp".namespace("kith::node::test");

interface TestEcho {
  echo @0 (text :Text, delayMs :UInt32) -> (text :Text);
  # Returns `text`. With delayMs > 0 the server answers after that long, so that calls overlap.
}
