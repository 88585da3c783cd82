// A journal's members as the store holds them: one record per key that was ever added, with the
// role the owner's ADD_MEMBER entry gave it and whether a REMOVE_MEMBER entry has since removed it.
// The records are derived from the journal's control entries on append (store/append.cpp); who
// may add or remove whom is protocol/roles.h. Read them with Store::members and Store::member.
//
// Threading: values only.
#pragma once
#include <cstdint>

#include "protocol/entry.h"

namespace kith::store {

struct Member {
  protocol::PublicKey key{};
  protocol::Role role = protocol::Role::SUBSCRIBER;
  bool active = true;       // false once removed
  uint32_t sinceEpoch = 0;  // the epoch in force when added
};

}  // namespace kith::store
