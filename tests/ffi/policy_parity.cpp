// Drives a small scene through the C ABI of spacer-core and prints every decision,
// so that tests/ffi_cpp.rs can compare it with the same loop written in Rust.
//
// Usage: policy_parity INPUT   (format: see tests/ffi_cpp.rs)
#include "spacer.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Agent {
  int kind;
  SpacerAgentState state;
  float length, width, goal_x, goal_y;
  SpacerSelection selection;
  uint64_t rng;
};

int failures = 0;

void expect(SpacerStatus got, SpacerStatus want, const char* what) {
  if (got != want) {
    std::fprintf(stderr, "FAIL %s: got %d (%s), want %d\n", what, static_cast<int>(got),
                 spacer_status_message(static_cast<int32_t>(got)), static_cast<int>(want));
    ++failures;
  }
}

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

std::vector<uint32_t> read_aligned(const std::string& path, size_t* len) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  *len = bytes.size();
  std::vector<uint32_t> words((bytes.size() + 3) / 4);
  std::memcpy(words.data(), bytes.data(), bytes.size());
  return words;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s INPUT\n", argv[0]);
    return 2;
  }
  std::ifstream input(argv[1]);
  std::string blob_path;
  int decisions = 0;
  std::vector<Agent> agents;
  std::vector<SpacerRoadSegment> roads;
  std::string line;
  while (std::getline(input, line)) {
    std::istringstream ls(line);
    std::string tag;
    ls >> tag;
    if (tag == "blob") {
      ls >> blob_path;
    } else if (tag == "decisions") {
      ls >> decisions;
    } else if (tag == "agent") {
      Agent a{};
      int mode = 0, top_k = 0;
      ls >> a.kind >> a.state.x >> a.state.y >> a.state.yaw >> a.state.vx >> a.state.vy >>
          a.length >> a.width >> a.goal_x >> a.goal_y >> mode >> top_k >>
          a.selection.temperature >> a.rng;
      a.selection.mode = static_cast<uint8_t>(mode);
      a.selection.top_k = static_cast<uint16_t>(top_k);
      agents.push_back(a);
    } else if (tag == "polyline") {
      int kind = 0;
      size_t n = 0;
      ls >> kind >> n;
      std::vector<SpacerPoint> pts(n);
      for (auto& p : pts) ls >> p.x >> p.y;
      std::vector<SpacerRoadSegment> segs(n + 1);
      size_t written = 0;
      expect(spacer_polyline_segments(pts.data(), n, static_cast<uint8_t>(kind), segs.data(),
                                      segs.size(), &written),
             SPACER_STATUS_OK, "polyline");
      roads.insert(roads.end(), segs.begin(), segs.begin() + static_cast<long>(written));
    }
  }

  size_t blob_len = 0;
  std::vector<uint32_t> blob = read_aligned(blob_path, &blob_len);
  const uint8_t* blob_bytes = reinterpret_cast<const uint8_t*>(blob.data());

  // The library is the one this program was compiled against.
  if (spacer_abi_version() != SPACER_ABI_VERSION) {
    std::fprintf(stderr, "FAIL abi version %u, header %u\n", spacer_abi_version(),
                 static_cast<unsigned>(SPACER_ABI_VERSION));
    ++failures;
  }

  // Error paths: nothing is undefined behaviour, everything is a status.
  SpacerPolicy policy;
  std::memset(&policy, 0, sizeof policy);
  SpacerPolicyInfo info;
  expect(spacer_policy_info(&policy, &info), SPACER_STATUS_NOT_LOADED, "info before load");
  expect(spacer_policy_info(nullptr, &info), SPACER_STATUS_NULL_POINTER, "info null");
  expect(spacer_policy_load(&policy, nullptr, blob_len), SPACER_STATUS_NULL_POINTER, "load null");
  expect(spacer_policy_load(&policy, blob_bytes, 100), SPACER_STATUS_BLOB_TRUNCATED, "load short");
  std::vector<uint8_t> shifted(blob_len + 1);
  std::memcpy(shifted.data() + 1, blob_bytes, blob_len);
  expect(spacer_policy_load(&policy, shifted.data() + 1, blob_len), SPACER_STATUS_MISALIGNED,
         "load misaligned");
  std::vector<uint8_t> corrupt(blob_bytes, blob_bytes + blob_len);
  corrupt[0] = 'X';
  std::vector<uint32_t> corrupt_words((blob_len + 3) / 4);
  std::memcpy(corrupt_words.data(), corrupt.data(), blob_len);
  expect(spacer_policy_load(&policy, reinterpret_cast<const uint8_t*>(corrupt_words.data()),
                            blob_len),
         SPACER_STATUS_BLOB_BAD_MAGIC, "load bad magic");

  // One flipped bit in the middle of the parameters: the checksum catches it.
  std::vector<uint32_t> flipped(blob.begin(), blob.end());
  reinterpret_cast<uint8_t*>(flipped.data())[blob_len / 2] ^= 0x10;
  expect(spacer_policy_load(&policy, reinterpret_cast<const uint8_t*>(flipped.data()), blob_len),
         SPACER_STATUS_BLOB_CHECKSUM, "load flipped bit");

  expect(spacer_policy_load(&policy, blob_bytes, blob_len), SPACER_STATUS_OK, "load");
  expect(spacer_policy_info(&policy, &info), SPACER_STATUS_OK, "info");
  std::printf("info %u %u %u format %u version %u\n", info.actions, info.observation_len,
              info.param_count, info.format, info.blob_version);

  std::vector<float> obs(info.observation_len);
  std::vector<float> logits(info.actions);
  float value = 0;
  expect(spacer_policy_forward(&policy, obs.data(), obs.size(), logits.data(), logits.size(),
                               &value),
         SPACER_STATUS_OK, "forward");
  std::vector<float> batch_obs(3 * obs.size()), batch_logits(3 * logits.size()), values(3);
  expect(spacer_policy_forward_batch(&policy, 3, batch_obs.data(), batch_obs.size(),
                                     batch_logits.data(), batch_logits.size(), values.data()),
         SPACER_STATUS_OK, "forward batch");
  expect(spacer_policy_forward_batch(&policy, 3, batch_obs.data(), batch_obs.size() - 1,
                                     batch_logits.data(), batch_logits.size(), values.data()),
         SPACER_STATUS_BUFFER_LENGTH, "forward batch short");
  SpacerEgo probe{};
  expect(spacer_observation_build(&policy, &probe, nullptr, 0, nullptr, 0, obs.data(),
                                  obs.size() - 1),
         SPACER_STATUS_BUFFER_LENGTH, "short observation");
  expect(spacer_policy_forward(&policy, obs.data(), obs.size(), logits.data(), logits.size(),
                               nullptr),
         SPACER_STATUS_NULL_POINTER, "forward null value");
  SpacerAgentState two[2];
  SpacerAgentState from{};
  expect(spacer_apply_token(&policy, 7, 0, &from, two, 2), SPACER_STATUS_BAD_ARGUMENT,
         "bad kind");
  expect(spacer_apply_token(&policy, 0, static_cast<uint16_t>(info.actions), &from, two, 2),
         SPACER_STATUS_BAD_ARGUMENT, "bad token");

  // The closed loop: every agent observes the others, acts, then all move.
  std::vector<SpacerPartner> partners;
  std::vector<uint16_t> tokens(agents.size());
  for (int d = 0; d < decisions; ++d) {
    for (size_t i = 0; i < agents.size(); ++i) {
      const Agent& a = agents[i];
      partners.clear();
      for (size_t j = 0; j < agents.size(); ++j) {
        if (j == i) continue;
        const Agent& b = agents[j];
        float speed = std::sqrt(b.state.vx * b.state.vx + b.state.vy * b.state.vy);
        partners.push_back({b.state.x, b.state.y, b.state.yaw, speed, b.length, b.width});
      }
      SpacerEgo ego{a.state.x, a.state.y, a.state.yaw,
                    std::sqrt(a.state.vx * a.state.vx + a.state.vy * a.state.vy),
                    a.length, a.width, a.goal_x, a.goal_y, 0, 1};
      expect(spacer_observation_build(&policy, &ego, partners.data(), partners.size(),
                                      roads.data(), roads.size(), obs.data(), obs.size()),
             SPACER_STATUS_OK, "observation");
      SpacerAction action{};
      expect(spacer_policy_act(&policy, obs.data(), obs.size(), &a.selection, &agents[i].rng,
                               &action),
             SPACER_STATUS_OK, "act");
      tokens[i] = action.token;
      std::printf("token %d %zu %u %08x\n", d, i, action.token, bits(action.log_prob));
    }
    for (size_t i = 0; i < agents.size(); ++i) {
      expect(spacer_apply_token(&policy, static_cast<uint8_t>(agents[i].kind), tokens[i],
                                &agents[i].state, two, 2),
             SPACER_STATUS_OK, "apply");
      agents[i].state = two[1];
    }
  }
  for (size_t i = 0; i < agents.size(); ++i) {
    const SpacerAgentState& s = agents[i].state;
    std::printf("state %zu %08x %08x %08x\n", i, bits(s.x), bits(s.y), bits(s.yaw));
  }
  if (failures) {
    std::fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  return 0;
}
