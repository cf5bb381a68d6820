// A small traffic simulation driven by spacer's C ABI: several agents on a two-lane road
// with a bend, a crosswalk and a stop sign. At every decision (5 Hz) each agent's
// observation is built through the ABI from the others and the road, the policy picks a
// token, and every agent moves by its token with the core's kinematics
// (spacer_apply_token: two 0.1 s sub-steps).
//
// Usage: spacer_sim POLICY.spw [DECISIONS]
#include "spacer.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

namespace {

struct Agent {
  uint8_t kind;  // 0 vehicle, 1 pedestrian, 2 cyclist
  SpacerAgentState state;
  float length, width, goal_x, goal_y;
  uint64_t rng;  // the agent's own sampling state
};

bool ok(SpacerStatus s, const char* what) {
  if (s == SPACER_STATUS_OK) return true;
  std::fprintf(stderr, "%s: %s\n", what, spacer_status_message(static_cast<int32_t>(s)));
  return false;
}

float speed(const SpacerAgentState& s) { return std::sqrt(s.vx * s.vx + s.vy * s.vy); }

// The blob in 4-aligned storage (the policy uses it in place).
std::vector<uint32_t> read_blob(const char* path, size_t* len) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  *len = bytes.size();
  std::vector<uint32_t> words((bytes.size() + 3) / 4);
  if (!bytes.empty()) std::memcpy(words.data(), bytes.data(), bytes.size());
  return words;
}

// Road polylines to segments through the ABI.
bool add_polyline(std::vector<SpacerRoadSegment>& roads, uint8_t kind,
                  const std::vector<SpacerPoint>& pts) {
  std::vector<SpacerRoadSegment> segs(pts.size() + 1);
  size_t written = 0;
  if (!ok(spacer_polyline_segments(pts.data(), pts.size(), kind, segs.data(), segs.size(),
                                   &written),
          "polyline"))
    return false;
  roads.insert(roads.end(), segs.begin(), segs.begin() + static_cast<long>(written));
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s POLICY.spw [DECISIONS]\n", argv[0]);
    return 2;
  }
  const int decisions = argc > 2 ? std::atoi(argv[2]) : 40;
  if (spacer_abi_version() != SPACER_ABI_VERSION) {
    std::fprintf(stderr, "library ABI %u, header ABI %u\n", spacer_abi_version(),
                 static_cast<unsigned>(SPACER_ABI_VERSION));
    return 1;
  }
  size_t len = 0;
  std::vector<uint32_t> blob = read_blob(argv[1], &len);
  SpacerPolicy policy;
  if (!ok(spacer_policy_load(&policy, reinterpret_cast<const uint8_t*>(blob.data()), len),
          argv[1]))
    return 1;
  SpacerPolicyInfo info;
  if (!ok(spacer_policy_info(&policy, &info), "info")) return 1;
  std::printf("policy %s: %s weights, blob format v%u, %u tokens, %u floats per observation\n",
              argv[1], info.format == 1 ? "int8" : "f32", info.blob_version, info.actions,
              info.observation_len);

  // The road: edges, a centre line, two lanes bending left after x = 60 m, a crosswalk
  // and a stop sign.
  std::vector<SpacerRoadSegment> roads;
  auto line = [](float y) {
    std::vector<SpacerPoint> p;
    for (int i = 0; i <= 30; ++i) p.push_back({-30.0f + 3.0f * static_cast<float>(i), y});
    return p;
  };
  std::vector<SpacerPoint> bend;
  for (int i = 0; i <= 20; ++i) {
    float a = 0.06f * static_cast<float>(i);
    bend.push_back({60.0f + 30.0f * std::sin(a), -1.75f + 30.0f * (1.0f - std::cos(a))});
  }
  bool roads_ok = add_polyline(roads, 1, line(-3.5f)) && add_polyline(roads, 1, line(3.5f)) &&
                  add_polyline(roads, 2, line(0.0f)) && add_polyline(roads, 3, line(-1.75f)) &&
                  add_polyline(roads, 3, line(1.75f)) && add_polyline(roads, 3, bend) &&
                  add_polyline(roads, 4, {{30, -3.5f}, {34, -3.5f}, {34, 3.5f}, {30, 3.5f}}) &&
                  add_polyline(roads, 6, {{28, -4.0f}});
  if (!roads_ok) return 1;

  auto car = [](float x, float y, float yaw, float v, float gx, float gy, uint64_t seed) {
    return Agent{0, {x, y, yaw, v * std::cos(yaw), v * std::sin(yaw)}, 4.6f, 1.9f, gx, gy, seed};
  };
  std::vector<Agent> agents = {
      car(-20, -1.75f, 0, 9, 85, 25, 1),
      car(0, -1.75f, 0, 7, 85, 25, 2),
      car(15, 1.75f, 3.14159f, 8, -30, 1.75f, 3),
      car(45, 1.75f, 3.14159f, 6, -30, 1.75f, 4),
      Agent{1, {32, 6, -1.57f, 0, -1.3f}, 0.8f, 0.8f, 32, -6, 5},
      Agent{2, {-10, -3.0f, 0, 4, 0}, 1.8f, 0.7f, 60, -3.0f, 6},
  };

  std::vector<float> obs(info.observation_len);
  std::vector<SpacerPartner> partners;
  std::vector<uint16_t> tokens(agents.size());
  std::vector<float> travelled(agents.size(), 0.0f);
  // Vehicles take the most likely token; the pedestrian and the cyclist sample.
  const SpacerSelection argmax = {0, 0, 1.0f};
  const SpacerSelection sample = {1, 20, 1.0f};
  for (int d = 0; d < decisions; ++d) {
    for (size_t i = 0; i < agents.size(); ++i) {
      partners.clear();
      for (size_t j = 0; j < agents.size(); ++j) {
        if (j == i) continue;
        const Agent& b = agents[j];
        partners.push_back(
            {b.state.x, b.state.y, b.state.yaw, speed(b.state), b.length, b.width});
      }
      const Agent& a = agents[i];
      SpacerEgo ego{a.state.x, a.state.y, a.state.yaw, speed(a.state), a.length,
                    a.width,   a.goal_x,  a.goal_y,    0,              1};
      if (!ok(spacer_observation_build(&policy, &ego, partners.data(), partners.size(),
                                       roads.data(), roads.size(), obs.data(), obs.size()),
              "observation"))
        return 1;
      SpacerAction action{};
      if (!ok(spacer_policy_act(&policy, obs.data(), obs.size(), a.kind == 0 ? &argmax : &sample,
                                &agents[i].rng, &action),
              "act"))
        return 1;
      tokens[i] = action.token;
    }
    std::printf("decision %2d tokens", d);
    for (size_t i = 0; i < agents.size(); ++i) {
      SpacerAgentState next[2];
      if (!ok(spacer_apply_token(&policy, agents[i].kind, tokens[i], &agents[i].state, next, 2),
              "apply"))
        return 1;
      travelled[i] += std::hypot(next[1].x - agents[i].state.x, next[1].y - agents[i].state.y);
      agents[i].state = next[1];
      std::printf(" %u", tokens[i]);
    }
    std::printf("\n");
  }
  for (size_t i = 0; i < agents.size(); ++i) {
    const SpacerAgentState& s = agents[i].state;
    std::printf("agent %zu kind %u at (%.3f, %.3f) heading %.3f speed %.3f travelled %.3f m\n", i,
                agents[i].kind, s.x, s.y, s.yaw, speed(s), travelled[i]);
  }
  return 0;
}
