// Progress claimed without a payload (trainer/node/claim_watch.h): "no snapshot yet" at two
// claimed outer steps of one process is a false claim; anything an honest process can do is not.
#include <catch2/catch.hpp>

#include "trainer/node/claim_watch.h"

using namespace noloco::node;

TEST_CASE("claim watch: no payload at two claimed steps of one epoch is proof, once per move of the claim",
          "[claims]") {
  ClaimWatch w;
  CHECK_FALSE(w.refused_without_payload(1, 100, 7));  // the first refusal: nothing to compare yet
  CHECK_FALSE(w.refused_without_payload(1, 100, 7));  // same claim again: an honest fresh node
  const auto proof = w.refused_without_payload(1, 100, 9);
  REQUIRE(proof);
  CHECK(proof->find("claims outer step 9") != std::string::npos);
  CHECK(proof->find("none at 7") != std::string::npos);
  CHECK_FALSE(w.refused_without_payload(1, 100, 9));  // the reference moved with the proof
  CHECK(w.refused_without_payload(1, 100, 10));       // and the next move is the next proof
  // A claim seen lower than before (a lagging view of the same process) is still two claims.
  CHECK(w.refused_without_payload(1, 100, 8));
}

TEST_CASE("claim watch: a restarted process starts afresh, and peers are judged apart", "[claims]") {
  ClaimWatch w;
  // Before a crash at outer step 30 the view held (epoch 100, 30); the restarted process (epoch
  // 200) claims 0 until its first payload; calls during the restart see either record.
  CHECK_FALSE(w.refused_without_payload(1, 100, 30));
  CHECK_FALSE(w.refused_without_payload(1, 200, 0));
  CHECK_FALSE(w.refused_without_payload(1, 200, 0));
  CHECK_FALSE(w.refused_without_payload(1, 100, 30));  // an old record still in a view: a new reference
  CHECK_FALSE(w.refused_without_payload(1, 200, 0));
  // Another peer's refusals never count against this one.
  CHECK_FALSE(w.refused_without_payload(2, 100, 5));
  CHECK_FALSE(w.refused_without_payload(3, 100, 6));
}

TEST_CASE("claim watch: a peer is due a recheck once its claim moves past its last no-payload answer until it serves",
          "[claims]") {
  ClaimWatch w;
  CHECK_FALSE(w.recheck_due(1, 7));  // never refused: nothing to recheck
  CHECK_FALSE(w.refused_without_payload(1, 100, 7));
  CHECK_FALSE(w.recheck_due(1, 7));  // the claim has not moved: an honest fresh node may still be training
  CHECK(w.recheck_due(1, 8));
  CHECK(w.refused_without_payload(1, 100, 8));  // the recheck's answer: proof
  CHECK_FALSE(w.recheck_due(1, 8));
  CHECK(w.recheck_due(1, 9));  // and due again at the next move
  // An honest fresh node answers the recheck with a payload: nothing is due any more.
  CHECK_FALSE(w.refused_without_payload(2, 100, 3));
  CHECK(w.recheck_due(2, 4));
  w.served(2);
  CHECK_FALSE(w.recheck_due(2, 4));
  CHECK_FALSE(w.refused_without_payload(2, 100, 3));  // and its next refusal starts afresh
}
