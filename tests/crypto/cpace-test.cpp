// CPace (crypto/cpace.h) against draft-irtf-cfrg-cpace's published ristretto255/SHA-512 vectors,
// byte for byte, and its refusals of invalid shares.
#include <sodium.h>
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>

#include "crypto/cpace.h"
#include "tests/support/hex.h"

using namespace kith;
using namespace kith::crypto;
using kith::test::unhex;

namespace {

nlohmann::json loadVectors() {
  std::ifstream in(std::string(KITH_SOURCE_DIR) + "/tests/crypto/vectors/cpace-ristretto255.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

Bytes hexOf(const nlohmann::json& v) { return unhex(v.get<std::string>()); }
Bytes viewBytes(ByteView v) { return Bytes(v.begin(), v.end()); }

}  // namespace

TEST_CASE("prepend_len, lv_cat and transcript_ir give the draft's bytes", "[crypto][cpace]") {
  auto v = loadVectors();
  for (const auto& c : v["prepend_len"]) CHECK(cpacePrependLen(hexOf(c["input"])) == hexOf(c["output"]));
  Bytes all(128);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint8_t>(i);
  Bytes long128 = cpacePrependLen(all);
  CHECK(long128.size() == 130);
  CHECK(long128[0] == 0x80);
  CHECK(long128[1] == 0x01);
  Bytes short127 = cpacePrependLen(ByteView(all).first(127));
  CHECK(short127.size() == 128);
  CHECK(short127[0] == 0x7f);
  const auto& lv = v["lv_cat"];
  CHECK(cpaceLvCat({hexOf(lv["inputs"][0]), hexOf(lv["inputs"][1]), hexOf(lv["inputs"][2]), hexOf(lv["inputs"][3])}) ==
        hexOf(lv["output"]));
  const auto& t = v["transcript_ir"];
  Bytes ir = cpaceLvCat({hexOf(t["Ya"]), hexOf(t["ADa"])});
  Bytes b = cpaceLvCat({hexOf(t["Yb"]), hexOf(t["ADb"])});
  ir.insert(ir.end(), b.begin(), b.end());
  CHECK(ir == hexOf(t["output"]));
}

TEST_CASE("the generator is the draft's for its PRS, CI and sid", "[crypto][cpace]") {
  REQUIRE(sodium_init() >= 0);
  auto v = loadVectors();
  const auto& r = v["ristretto255"];
  SecretBuffer genStr = cpaceGeneratorString(asBytes(CPACE_DSI), hexOf(r["PRS"]), hexOf(r["CI"]), hexOf(r["sid"]),
                                             CPACE_HASH_BLOCK_BYTES);
  CHECK(viewBytes(genStr.view()) == hexOf(r["generator_string"]));
  Bytes digest(crypto_hash_sha512_BYTES);
  crypto_hash_sha512(digest.data(), genStr.data(), genStr.size());
  CHECK(digest == hexOf(r["generator_hash"]));
  Key32 g = cpaceGenerator(hexOf(r["PRS"]), hexOf(r["CI"]), hexOf(r["sid"]));
  CHECK(Bytes(g.begin(), g.end()) == hexOf(r["g"]));
}

TEST_CASE("Ya, Yb, K and the initiator/responder ISK are the draft's", "[crypto][cpace]") {
  REQUIRE(sodium_init() >= 0);
  auto v = loadVectors();
  const auto& r = v["ristretto255"];
  Bytes prs = hexOf(r["PRS"]), ci = hexOf(r["CI"]), sid = hexOf(r["sid"]);
  Bytes ada = hexOf(r["ADa"]), adb = hexOf(r["ADb"]);
  CPaceParty a = CPaceParty::withScalar(true, prs, ci, sid, ada, hexOf(r["ya"]));
  CPaceParty b = CPaceParty::withScalar(false, prs, ci, sid, adb, hexOf(r["yb"]));
  CHECK(Bytes(a.share().begin(), a.share().end()) == hexOf(r["Ya"]));
  CHECK(Bytes(b.share().begin(), b.share().end()) == hexOf(r["Yb"]));
  auto iskA = a.finish(b.share(), adb);
  auto iskB = b.finish(a.share(), ada);
  REQUIRE(iskA);
  REQUIRE(iskB);
  CHECK(viewBytes(a.secretPointForTest()) == hexOf(r["K"]));
  CHECK(viewBytes(b.secretPointForTest()) == hexOf(r["K"]));
  CHECK(viewBytes(iskA->view()) == hexOf(r["ISK_IR"]));
  CHECK(viewBytes(iskB->view()) == hexOf(r["ISK_IR"]));
}

TEST_CASE("scalar_mult_vfy gives the draft's point and refuses its invalid encodings", "[crypto][cpace]") {
  REQUIRE(sodium_init() >= 0);
  auto v = loadVectors();
  const auto& s = v["scalar_mult_vfy"];
  Bytes none;
  CPaceParty valid = CPaceParty::withScalar(true, none, none, none, none, hexOf(s["valid"]["s"]));
  REQUIRE(valid.finish(hexOf(s["valid"]["X"]), none));
  CHECK(viewBytes(valid.secretPointForTest()) == hexOf(s["valid"]["result"]));
  for (const auto& bad : s["invalid"]) {
    CPaceParty p = CPaceParty::withScalar(true, none, none, none, none, hexOf(s["valid"]["s"]));
    CHECK_FALSE(p.finish(hexOf(bad), none));
  }
  CPaceParty shortShare = CPaceParty::initiator(none, none, none, none);
  CHECK_FALSE(shortShare.finish(Bytes(31, 1), none));
}

TEST_CASE("a wrong password gives another ISK, and key confirmation tells", "[crypto][cpace]") {
  REQUIRE(sodium_init() >= 0);
  Bytes ci = {1, 2, 3}, sid(16, 7), ada = {'A'}, adb = {'B'};
  Bytes right = {'1', '2', '3', '4'}, wrong = {'1', '2', '3', '5'};
  for (bool samePassword : {true, false}) {
    CPaceParty a = CPaceParty::initiator(right, ci, sid, ada);
    CPaceParty b = CPaceParty::responder(samePassword ? right : wrong, ci, sid, adb);
    auto iskA = a.finish(b.share(), adb);
    auto iskB = b.finish(a.share(), ada);
    REQUIRE(iskA);
    REQUIRE(iskB);
    CHECK((sodium_memcmp(iskA->data(), iskB->data(), CPACE_ISK_BYTES) == 0) == samePassword);
    SecretBuffer macA = CPaceParty::macKey(sid, iskA->view());
    SecretBuffer macB = CPaceParty::macKey(sid, iskB->view());
    Bytes tb = CPaceParty::tag(macB.view(), b.share(), adb);
    CHECK(CPaceParty::checkTag(macA.view(), b.share(), adb, tb) == samePassword);
    Bytes ta = CPaceParty::tag(macA.view(), a.share(), ada);
    CHECK(CPaceParty::checkTag(macB.view(), a.share(), ada, ta) == samePassword);
    // A tag is bound to the share it covers.
    CHECK_FALSE(CPaceParty::checkTag(macA.view(), a.share(), ada, tb));
  }
}
