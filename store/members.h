// A journal's members as the store holds them: one record per key that was ever added, with its
// tenures (protocol/roles.h): the role each ADD_MEMBER gave it, the epoch it took effect in, and the
// cut-off of each REMOVE_MEMBER that ended one. The records are derived from the journal's control
// entries on append (store/append.cpp); who may add or remove whom, and which tenure an entry
// belongs to, is protocol/roles.h. Read them with Store::members and Store::member.
//
// Threading: values only.
#pragma once
#include <cstdint>
#include <vector>

#include "protocol/roles.h"

namespace kith::store {

struct Member {
  protocol::PublicKey key{};
  protocol::Role role = protocol::Role::SUBSCRIBER;  // the latest tenure's
  bool active = true;                                // false once removed (the latest tenure is closed)
  uint32_t sinceEpoch = 0;                           // the epoch in force when last added
  std::vector<protocol::Tenure> tenures;             // oldest first; at least one, only the last open

  // A member in its first tenure, open.
  static Member added(const protocol::PublicKey& key, protocol::Role role, uint32_t epoch) {
    return Member{key, role, true, epoch, {protocol::Tenure{role, epoch, std::nullopt}}};
  }
};

}  // namespace kith::store
