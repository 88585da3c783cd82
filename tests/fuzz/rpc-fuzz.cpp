// Fuzz target: Cap'n Proto RPC messages into a node's bootstrap. The input is the byte stream a
// peer sends after the handshake: two-party RPC messages, as make-corpus captured them from real
// sessions. A Replicator over a throwaway store (made once per process, fuzz-support.h) serves
// Node to the fixed peer over an in-memory pipe, exactly as a PeerSession sets it up; the input is
// written, then the peer's side shuts down. The node must only drop the connection: an exception
// escaping the event loop, an assertion or a sanitizer report is a finding.
#include <capnp/rpc-twoparty.h>

#include <cstdint>

#include <kj/async-io.h>
#include <kj/async.h>

#include "node/limits.h"
#include "node/replicator.h"
#include "tests/fuzz/fuzz-support.h"
#include "tests/fuzz/rpc-node.h"

namespace {

using namespace kith;

struct Process {
  kj::EventLoop loop;
  kj::WaitScope waitScope{loop};
  fuzz::RpcNode node;
};

Process& process() {
  static Process* p = new Process();  // never destroyed: libFuzzer exits without unwinding
  return *p;
}

kj::Promise<void> drain(kj::AsyncInputStream& in, kj::Array<kj::byte>& buffer) {
  return in.tryRead(buffer.begin(), 1, buffer.size()).then([&in, &buffer](size_t n) -> kj::Promise<void> {
    if (n == 0) return kj::READY_NOW;
    return drain(in, buffer);
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kith::fuzz::setUp();
  Process& p = process();
  {
    auto pipe = kj::newTwoWayPipe();
    capnp::ReaderOptions options;
    options.traversalLimitInWords = node::RPC_MESSAGE_WORDS_MAX;
    options.nestingLimit = node::RPC_NESTING_MAX;
    capnp::TwoPartyVatNetwork network(*pipe.ends[0], capnp::rpc::twoparty::Side::SERVER, options);
    auto rpc = capnp::makeRpcServer(network, p.node.replicator().nodeFor(p.node.peer().publicKey()));
    rpc.setFlowLimit(node::RPC_FLOW_LIMIT_WORDS);

    kj::AsyncIoStream& peer = *pipe.ends[1];
    auto buffer = kj::heapArray<kj::byte>(4096);
    auto reading = drain(peer, buffer).eagerlyEvaluate(nullptr);
    auto writing = peer.write(data, size).then([&peer]() { peer.shutdownWrite(); }).eagerlyEvaluate(nullptr);
    network.onDisconnect().wait(p.waitScope);
  }
  // Let whatever the connection's end cancelled run down before the next input.
  p.waitScope.poll();
  return 0;
}
