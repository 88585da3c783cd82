#include "tests/fuzz/rpc-node.h"

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>
#include <stdlib.h>

#include <filesystem>
#include <vector>

#include "crypto/aead.h"
#include "node/replicator.h"
#include "protocol/invite.h"
#include "store/store.h"
#include "tests/fuzz/fuzz-support.h"

namespace kith::fuzz {

namespace {

constexpr int64_t RPC_JOURNAL_CREATED_MS = 1'700'000'000'000;
// The invite stays open for as long as anyone runs these targets.
constexpr int64_t RPC_INVITE_EXPIRES_MS = 4'000'000'000'000;

std::string makeTempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "kith-fuzz-rpc-XXXXXX").string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) contractBroken("rpc", "cannot make a temp folder");
  return std::string(buffer.data());
}

protocol::KeyWrap wrapTo(const crypto::Identity& member, ByteView epochKey) {
  return {member.publicKey(), 0, crypto::sealTo(member.boxPublicKey(), epochKey)};
}

}  // namespace

RpcNode::RpcNode()
    : dir_(makeTempDir()), owner_(fixedIdentity(RPC_OWNER)), peer_(fixedIdentity(RPC_PEER)),
      storageKey_(owner_.deriveKey("kithstor", 1)), epochKey_(crypto::AEAD_KEY_BYTES),
      log_(std::make_shared<spdlog::logger>("fuzz", std::make_shared<spdlog::sinks::null_sink_mt>())) {
  Key32 epochKey = fixedKey(RPC_EPOCH_KEY);
  std::copy(epochKey.begin(), epochKey.end(), epochKey_.data());
  store_ = store::Store::open(dir_);
  store::Keyring keyring{owner_, storageKey_.view()};

  Bytes salt(protocol::JOURNAL_SALT_BYTES, RPC_JOURNAL_SALT);
  journal_ = protocol::journalIdFor(owner_.publicKey(), salt);
  protocol::EntryDraft draft;
  draft.journal = journal_;
  draft.seq = 1;
  draft.timestampMs = RPC_JOURNAL_CREATED_MS;
  draft.control.type = protocol::Control::Type::CREATE;
  draft.control.salt = salt;
  draft.control.wraps.push_back(wrapTo(owner_, epochKey_.view()));
  draft.body = protocol::Body{protocol::Kind::JOURNAL_INFO, "fuzz journal", {}};
  std::vector<protocol::Entry> entries;
  entries.push_back(protocol::signEntry(owner_, draft, epochKey_.view()));

  auto next = [&]() {
    draft.seq += 1;
    draft.prev = entries.back().id;
    draft.timestampMs += 1000;
    draft.control = {};
    draft.body.reset();
  };
  next();
  draft.control.type = protocol::Control::Type::ADD_MEMBER;
  draft.control.member = peer_.publicKey();
  draft.control.role = protocol::Role::COAUTHOR;
  draft.control.wraps.push_back(wrapTo(peer_, epochKey_.view()));
  entries.push_back(protocol::signEntry(owner_, draft, std::nullopt));
  for (int i = 0; i < 2; ++i) {
    next();
    draft.body = protocol::Body{protocol::Kind::UPDATE, "update " + std::to_string(i), {}};
    entries.push_back(protocol::signEntry(owner_, draft, epochKey_.view()));
  }
  next();
  draft.body = protocol::Body{protocol::Kind::COMMENT, "a comment", {entries.back().id}};
  entries.push_back(protocol::signEntry(owner_, draft, epochKey_.view()));

  for (const auto& outcome : store_->appendBatch(entries, &keyring)) {
    if (outcome.status != store::AppendStatus::ADDED) contractBroken("rpc", outcome.message);
  }
  if (!store_->epochKey(journal_, 0, storageKey_.view())) {
    store_->putEpochKey(journal_, 0, epochKey_.view(), storageKey_.view());
  }

  store::Invite invite;
  invite.id = protocol::inviteId(Bytes(protocol::INVITE_SECRET_BYTES, RPC_INVITE_SECRET));
  invite.journal = journal_;
  invite.role = protocol::Role::SUBSCRIBER;
  invite.createdMs = RPC_JOURNAL_CREATED_MS;
  invite.expiresMs = RPC_INVITE_EXPIRES_MS;
  store_->putInvite(invite);

  replicator_ =
      std::make_unique<node::Replicator>(*store_, owner_, storageKey_.view(), *log_,
                                         [](const protocol::JournalId&, const protocol::PublicKey&) { return false; });
}

RpcNode::~RpcNode() {
  replicator_.reset();
  store_.reset();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

}  // namespace kith::fuzz
