#include "node/relay-client.h"

#include "node/limits.h"
#include "node/send-queue.h"
#include "node/uv/uv-stream.h"

namespace kith::node {
namespace {

relayrpc::Relay::Client bootstrapRelay(capnp::RpcSystem<capnp::rpc::twoparty::VatId>& rpc) {
  capnp::MallocMessageBuilder message;
  auto vatId = message.initRoot<capnp::rpc::twoparty::VatId>();
  vatId.setSide(capnp::rpc::twoparty::Side::SERVER);
  return rpc.bootstrap(vatId).castAs<relayrpc::Relay>();
}

}  // namespace

RelayConnection::RelayConnection(SecureConnection connection, crypto::Identity transportKey)
    : connection_(kj::mv(connection)), transportKey_(std::move(transportKey)), relayKey_(connection_.remote),
      network_(*connection_.stream, capnp::rpc::twoparty::Side::CLIENT, connectionReaderOptions(RPC_MESSAGE_WORDS_MAX)),
      rpc_(capnp::makeRpcClient(network_)), relay_(bootstrapRelay(rpc_)) {
  rpc_.setFlowLimit(RPC_FLOW_LIMIT_WORDS);
}

RelayConnection::~RelayConnection() noexcept(false) = default;

kj::Promise<void> RelayConnection::create(const protocol::MailboxKeys& keys, const crypto::Identity& admin,
                                          ByteView token) {
  auto request = relay_.createRequest();
  request.setId(asData(keys.id));
  request.setCredential(asData(keys.credential.publicKey()));
  request.setAdmin(asData(admin.publicKey()));
  request.setToken(asData(token));
  return request.send().ignoreResult();
}

kj::Promise<relayrpc::Mailbox::Client> RelayConnection::open(const protocol::MailboxKeys& keys) {
  auto request = relay_.openRequest();
  request.setId(asData(keys.id));
  auto proof = keys.credential.sign(
      protocol::relayProofMessage(protocol::RelayAction::OPEN, relayKey_, transportKey_.publicKey(), keys.id));
  request.setProof(asData(proof));
  return request.send().then(
      [](capnp::Response<relayrpc::Relay::OpenResults> response) { return response.getMailbox(); });
}

kj::Promise<void> RelayConnection::rotate(const Key32& from, const protocol::MailboxKeys& to,
                                          const crypto::Identity& admin) {
  Bytes subject(from.begin(), from.end());
  subject.insert(subject.end(), to.id.begin(), to.id.end());
  const crypto::PublicKey& credential = to.credential.publicKey();
  subject.insert(subject.end(), credential.begin(), credential.end());
  auto request = relay_.rotateRequest();
  request.setId(asData(from));
  request.setProof(asData(admin.sign(
      protocol::relayProofMessage(protocol::RelayAction::ROTATE, relayKey_, transportKey_.publicKey(), subject))));
  request.setNewId(asData(to.id));
  request.setNewCredential(asData(credential));
  return request.send().ignoreResult();
}

kj::Promise<void> RelayConnection::remove(const Key32& id, const crypto::Identity& admin) {
  auto request = relay_.removeRequest();
  request.setId(asData(id));
  request.setProof(asData(admin.sign(
      protocol::relayProofMessage(protocol::RelayAction::REMOVE, relayKey_, transportKey_.publicKey(), id))));
  return request.send().ignoreResult();
}

kj::Promise<kj::Own<RelayConnection>> connectRelay(UvEventPort& port, kj::Timer& timer, const std::string& host,
                                                   uint16_t portNumber, const crypto::PublicKey& relayKey) {
  // A transport key for this connection alone: the relay sees a new key every time.
  auto key = kj::heap<crypto::Identity>(crypto::Identity::generate());
  return connect(port, host.c_str(), portNumber)
      .then([&timer, relayKey, key = kj::mv(key)](kj::Own<UvStream> stream) mutable {
        const crypto::Identity& me = *key;
        return secureInitiate(kj::mv(stream), me, relayKey, timer)
            .then([key = kj::mv(key)](SecureConnection connection) mutable {
              return kj::heap<RelayConnection>(kj::mv(connection), std::move(*key));
            });
      });
}

}  // namespace kith::node
