//! The attention graph of a batch of worlds, built on the CPU: node features, and for
//! each attention type every query's neighbours (indices, mask) and the relative pose
//! of each neighbour in the query's frame.
//!
//! All worlds of a batch are flattened into one graph (as PyTorch Geometric batches
//! do): map nodes of all worlds, then agent-step nodes of all worlds; neighbours never
//! cross worlds. Agent-step node `(a, t)` stands for agent `a` at decision step `t`:
//! its pose at step `2t` and the token it executed last (`t - 1`). Its output is the
//! distribution of token `t`. Neighbours:
//!
//! | attention | query | neighbours | relative features |
//! |---|---|---|---|
//! | map self | map token | the `map_neighbours` nearest map tokens within `map_radius` (itself included) | pose |
//! | temporal | `(a, t)` | `(a, t')`, `t - time_window < t' <= t`, valid (causal) | pose, time gap |
//! | agent-map | `(a, t)` | the `agent_map_neighbours` nearest map tokens within `agent_map_radius` | pose, light class of the token at `t` |
//! | agent-agent | `(a, t)` | the `agent_neighbours` nearest other agents `(b, t)` within `agent_radius` | pose |
//!
//! "Pose" features of neighbour `j` seen from query `i`: `j`'s pose in `i`'s frame,
//! `(x / r, y / r, |xy| / r, cos dyaw, sin dyaw)` with `r` the attention's radius.
//! Lists are sorted by distance then index, so the graph is deterministic.

use spacer_core::agent::AgentKind;
use spacer_core::geometry::{Pose, Vec2};
use spacer_core::tokenizer::Vocabulary;

use super::map::{LIGHT_CLASSES, MAP_FEATURES, MapTokens};
use crate::tokenized::TokenizedAgent;

/// Relative pose features.
pub const POSE_FEATURES: usize = 5;
/// Relative features of a temporal neighbour.
pub const TEMPORAL_FEATURES: usize = POSE_FEATURES + 1;
/// Relative features of an agent-to-map neighbour.
pub const AGENT_MAP_FEATURES: usize = POSE_FEATURES + LIGHT_CLASSES;
/// Relative features of an agent-to-agent neighbour.
pub const AGENT_AGENT_FEATURES: usize = POSE_FEATURES;
/// Input features of an agent-step node: the last token's poses (x, y, cos, sin at
/// +0.1 s and +0.2 s), whether there is one, box length and width, kind one-hot, and
/// the previous decision step's pose in this one's frame (x, y, cos, sin; the exact
/// motion of the last 0.2 s, which the token only approximates when the poses are
/// logged ones) with whether it is known.
pub const AGENT_FEATURES: usize = 8 + 1 + 2 + AgentKind::COUNT + 5;

/// Neighbourhood sizes and radii.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GraphConfig {
    /// Neighbours of a map token.
    pub map_neighbours: usize,
    /// Radius of map self-attention (m).
    pub map_radius: f32,
    /// Past steps (itself included) an agent step attends to.
    pub time_window: usize,
    /// Map tokens an agent step attends to.
    pub agent_map_neighbours: usize,
    /// Radius of agent-to-map attention (m).
    pub agent_map_radius: f32,
    /// Other agents an agent step attends to.
    pub agent_neighbours: usize,
    /// Radius of agent-to-agent attention (m).
    pub agent_radius: f32,
}

/// One attention type's neighbour lists: `k` per query.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Neighbours {
    /// Neighbours per query.
    pub k: usize,
    /// Feature width of `rel`.
    pub features: usize,
    /// `[queries * k]` source indices (0 where masked).
    pub index: Vec<i64>,
    /// `[queries * k]` 1.0 for a real neighbour, 0.0 for padding.
    pub mask: Vec<f32>,
    /// `[queries * k * features]` relative features.
    pub rel: Vec<f32>,
}

impl Neighbours {
    fn new(k: usize, features: usize) -> Self {
        Self {
            k,
            features,
            ..Default::default()
        }
    }

    /// Appends one query's list (at most `k` entries used, the rest padded).
    fn push(&mut self, list: &[(usize, [f32; 16])]) {
        for slot in 0..self.k {
            match list.get(slot) {
                Some((j, f)) => {
                    self.index.push(*j as i64);
                    self.mask.push(1.0);
                    self.rel.extend_from_slice(&f[..self.features]);
                }
                None => {
                    self.index.push(0);
                    self.mask.push(0.0);
                    self.rel.extend(std::iter::repeat_n(0.0, self.features));
                }
            }
        }
    }

    /// Queries listed.
    pub fn queries(&self) -> usize {
        self.index.len().checked_div(self.k).unwrap_or(0)
    }
}

/// One world of a batch: its map and the agents to model, at decision steps
/// `first..steps` (`steps` at most the agents' array lengths). Nodes before `first`
/// are left out; their last tokens are still read, so `first > 0` changes nothing for
/// nodes at least `agent_layers * (time_window - 1)` steps after `first` (what
/// closed-loop sampling uses to stay cheap).
#[derive(Clone, Copy, Debug)]
pub struct WorldInput<'a> {
    /// The map.
    pub map: &'a MapTokens,
    /// The agents.
    pub agents: &'a [TokenizedAgent],
    /// First decision step modelled.
    pub first: usize,
    /// One past the last decision step modelled.
    pub steps: usize,
}

impl<'a> WorldInput<'a> {
    /// All decision steps `0..steps`.
    pub fn new(map: &'a MapTokens, agents: &'a [TokenizedAgent], steps: usize) -> Self {
        Self {
            map,
            agents,
            first: 0,
            steps,
        }
    }

    fn span(&self) -> usize {
        self.steps.saturating_sub(self.first)
    }
}

/// A batch, flattened into one graph.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GraphBatch {
    /// Map nodes.
    pub map_nodes: usize,
    /// `[map_nodes * MAP_FEATURES]`.
    pub map_features: Vec<f32>,
    /// Map self-attention.
    pub map_map: Neighbours,
    /// Agent-step nodes.
    pub agent_nodes: usize,
    /// `[agent_nodes * AGENT_FEATURES]`.
    pub agent_features: Vec<f32>,
    /// `[agent_nodes]` row of the token embedding table: `kind * K + token` of the
    /// last executed token, `3 K` when there is none.
    pub last_token: Vec<i64>,
    /// `[agent_nodes]` row of the token embedding table of the *anchor*: the token
    /// that repeats the node's own last 0.2 s of motion (same speed and turn), from
    /// its own poses ([`repeat_last_motion`]); `3 K` when there is no earlier pose.
    pub anchor_token: Vec<i64>,
    /// `[agent_nodes]` the anchor's index among its kind's K tokens, `K` when there
    /// is none: where the network's anchor prior adds to the logits.
    pub anchor_index: Vec<i64>,
    /// Temporal self-attention.
    pub temporal: Neighbours,
    /// Agent-to-map attention.
    pub agent_map: Neighbours,
    /// Agent-to-agent attention.
    pub agent_agent: Neighbours,
    /// `[agent_nodes]` token to predict (0 where unknown).
    pub target: Vec<i64>,
    /// `[agent_nodes]` 1.0 where the target is known.
    pub target_mask: Vec<f32>,
    /// `[agent_nodes]` 1.0 where the node itself is valid.
    pub node_mask: Vec<f32>,
    /// Per world: (first agent node, agents, first step, steps).
    pub worlds: Vec<(usize, usize, usize, usize)>,
}

impl GraphBatch {
    /// Node index of agent `a`, decision step `t` of world `w`.
    pub fn node(&self, w: usize, a: usize, t: usize) -> Option<usize> {
        let &(base, agents, first, steps) = self.worlds.get(w)?;
        (a < agents && (first..steps).contains(&t))
            .then_some(base + a * (steps - first) + (t - first))
    }
}

/// A uniform grid over points, for radius queries.
struct Grid {
    cell: f32,
    cells: std::collections::HashMap<(i32, i32), Vec<usize>>,
}

impl Grid {
    fn new(points: impl Iterator<Item = Vec2>, cell: f32) -> Self {
        let cell = cell.max(1.0);
        let mut cells: std::collections::HashMap<(i32, i32), Vec<usize>> = Default::default();
        for (i, p) in points.enumerate() {
            cells.entry(Self::key(p, cell)).or_default().push(i);
        }
        Self { cell, cells }
    }

    fn key(p: Vec2, cell: f32) -> (i32, i32) {
        ((p.x / cell).floor() as i32, (p.y / cell).floor() as i32)
    }

    /// Candidates within `r` (<= cell) of `p`: the 3 x 3 cells around it.
    fn near(&self, p: Vec2, out: &mut Vec<usize>) {
        out.clear();
        let (cx, cy) = Self::key(p, self.cell);
        for dx in -1..=1 {
            for dy in -1..=1 {
                if let Some(v) = self.cells.get(&(cx + dx, cy + dy)) {
                    out.extend_from_slice(v);
                }
            }
        }
    }
}

/// `other` seen from `frame`, normalised by `r`.
fn pose_features(frame: Pose, other: Pose, r: f32, out: &mut [f32; 16]) {
    let rel = frame.relative(other);
    let d = rel.position().norm();
    out[0] = rel.x / r;
    out[1] = rel.y / r;
    out[2] = d / r;
    out[3] = rel.yaw.cos();
    out[4] = rel.yaw.sin();
}

/// Keeps the `k` nearest of `cands` (distance, index, features), sorted.
fn nearest_k(cands: &mut Vec<(f32, usize, [f32; 16])>, k: usize) -> Vec<(usize, [f32; 16])> {
    // (distance, index) is a total order: selecting the k smallest first, then
    // sorting them, gives the same list as sorting everything.
    let order = |a: &(f32, usize, [f32; 16]), b: &(f32, usize, [f32; 16])| {
        a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
    };
    if k == 0 {
        return Vec::new();
    }
    if cands.len() > k {
        cands.select_nth_unstable_by(k - 1, order);
        cands.truncate(k);
    }
    cands.sort_unstable_by(order);
    cands.iter().map(|c| (c.1, c.2)).collect()
}

/// The token that repeats the motion from `prev` to `now` (0.2 s earlier): the
/// pose `now ∘ (prev⁻¹ ∘ now)`, same speed and turn rate, tokenized from `now`.
pub fn repeat_last_motion(vocab: &Vocabulary, kind: AgentKind, prev: Pose, now: Pose) -> u16 {
    let next = now.compose(prev.relative(now));
    vocab.nearest(kind, now, next).0
}

/// The embedding row of the "no last token" entry for a vocabulary of `k`.
pub fn no_token_row(k: usize) -> i64 {
    (AgentKind::COUNT * k) as i64
}

/// Builds the graph of `worlds` (see the module docs).
pub fn build_graph(worlds: &[WorldInput<'_>], vocab: &Vocabulary, cfg: &GraphConfig) -> GraphBatch {
    let k_vocab = vocab.len();
    let mut g = GraphBatch {
        map_map: Neighbours::new(cfg.map_neighbours, POSE_FEATURES),
        temporal: Neighbours::new(cfg.time_window.max(1), TEMPORAL_FEATURES),
        agent_map: Neighbours::new(cfg.agent_map_neighbours, AGENT_MAP_FEATURES),
        agent_agent: Neighbours::new(cfg.agent_neighbours, AGENT_AGENT_FEATURES),
        ..Default::default()
    };
    // Map nodes and map self-attention.
    let mut map_offsets = Vec::with_capacity(worlds.len());
    let mut grids = Vec::with_capacity(worlds.len());
    let mut feat = [0.0f32; MAP_FEATURES];
    let mut near = Vec::new();
    let mut cands = Vec::new();
    for w in worlds {
        let off = g.map_nodes;
        map_offsets.push(off);
        let map = w.map;
        for i in 0..map.len() {
            map.features(i, &mut feat);
            g.map_features.extend_from_slice(&feat);
        }
        let grid_cell = cfg.map_radius.max(cfg.agent_map_radius);
        let grid = Grid::new(map.tokens.iter().map(|t| t.pose.position()), grid_cell);
        let r2 = cfg.map_radius * cfg.map_radius;
        for t in &map.tokens {
            grid.near(t.pose.position(), &mut near);
            cands.clear();
            for &j in &near {
                let o = map.tokens[j].pose;
                let d2 = (o.position() - t.pose.position()).norm_sq();
                if d2 <= r2 {
                    let mut f = [0.0; 16];
                    pose_features(t.pose, o, cfg.map_radius, &mut f);
                    cands.push((d2, off + j, f));
                }
            }
            g.map_map.push(&nearest_k(&mut cands, cfg.map_neighbours));
        }
        g.map_nodes += map.len();
        grids.push(grid);
    }
    if g.map_nodes == 0 {
        // A placeholder source so that gathers have something to index; never
        // unmasked.
        g.map_nodes = 1;
        g.map_features
            .extend(std::iter::repeat_n(0.0, MAP_FEATURES));
    }
    // Agent-step nodes.
    for (wi, w) in worlds.iter().enumerate() {
        let base = g.agent_nodes;
        let (first, steps, span) = (w.first, w.steps, w.span());
        g.worlds.push((base, w.agents.len(), first, steps));
        let node = |a: usize, t: usize| base + a * span + (t - first);
        let valid = |a: &TokenizedAgent, t: usize| a.pose_valid.get(t).copied().unwrap_or(false);
        for (ai, a) in w.agents.iter().enumerate() {
            for t in first..steps {
                let pose = a.poses.get(t).copied().unwrap_or(Pose::IDENTITY);
                let ok = valid(a, t);
                g.node_mask.push(if ok { 1.0 } else { 0.0 });
                // Last token.
                let last = (t > 0 && a.token_valid.get(t - 1).copied().unwrap_or(false))
                    .then(|| a.tokens[t - 1]);
                let mut f = [0.0f32; AGENT_FEATURES];
                match last.and_then(|tok| vocab.get(a.kind, tok as usize).map(|x| (tok, *x))) {
                    Some((tok, token)) => {
                        for (s, p) in token.poses.iter().enumerate() {
                            f[4 * s] = p.x / 5.0;
                            f[4 * s + 1] = p.y / 5.0;
                            f[4 * s + 2] = p.yaw.cos();
                            f[4 * s + 3] = p.yaw.sin();
                        }
                        f[8] = 1.0;
                        g.last_token
                            .push((a.kind.index() * k_vocab + tok as usize) as i64);
                    }
                    None => g.last_token.push(no_token_row(k_vocab)),
                }
                let anchor = (ok && t > 0 && valid(a, t - 1))
                    .then(|| repeat_last_motion(vocab, a.kind, a.poses[t - 1], pose));
                g.anchor_token.push(match anchor {
                    Some(tok) => (a.kind.index() * k_vocab + tok as usize) as i64,
                    None => no_token_row(k_vocab),
                });
                g.anchor_index
                    .push(anchor.map_or(k_vocab as i64, i64::from));
                f[9] = a.length / 10.0;
                f[10] = a.width / 5.0;
                f[11 + a.kind.index()] = 1.0;
                let k0 = 11 + AgentKind::COUNT;
                if ok && t > 0 && valid(a, t - 1) {
                    let prev = pose.relative(a.poses[t - 1]);
                    f[k0] = prev.x / 5.0;
                    f[k0 + 1] = prev.y / 5.0;
                    f[k0 + 2] = prev.yaw.cos();
                    f[k0 + 3] = prev.yaw.sin();
                    f[k0 + 4] = 1.0;
                }
                g.agent_features.extend_from_slice(&f);
                // Target.
                let tv = ok && a.token_valid.get(t).copied().unwrap_or(false);
                g.target.push(if tv { a.tokens[t] as i64 } else { 0 });
                g.target_mask.push(if tv { 1.0 } else { 0.0 });
                // Temporal neighbours (causal), nearest in time first.
                let mut list = Vec::new();
                if ok {
                    for dt in 0..g.temporal.k {
                        let Some(t2) = t.checked_sub(dt).filter(|&t2| t2 >= first) else {
                            break;
                        };
                        if !valid(a, t2) {
                            continue;
                        }
                        let mut f = [0.0; 16];
                        pose_features(pose, a.poses[t2], 10.0, &mut f);
                        f[POSE_FEATURES] = dt as f32 / g.temporal.k as f32;
                        list.push((node(ai, t2), f));
                    }
                }
                g.temporal.push(&list);
                // Agent-to-map neighbours.
                cands.clear();
                if ok {
                    let r2 = cfg.agent_map_radius * cfg.agent_map_radius;
                    grids[wi].near(pose.position(), &mut near);
                    for &j in &near {
                        let o = w.map.tokens[j].pose;
                        let d2 = (o.position() - pose.position()).norm_sq();
                        if d2 <= r2 {
                            let mut f = [0.0; 16];
                            pose_features(pose, o, cfg.agent_map_radius, &mut f);
                            let light = w.map.light(t, j) as usize;
                            f[POSE_FEATURES + light.min(LIGHT_CLASSES - 1)] = 1.0;
                            cands.push((d2, map_offsets[wi] + j, f));
                        }
                    }
                }
                g.agent_map
                    .push(&nearest_k(&mut cands, cfg.agent_map_neighbours));
                // Agent-to-agent neighbours at the same step.
                cands.clear();
                if ok {
                    let r2 = cfg.agent_radius * cfg.agent_radius;
                    for (bi, b) in w.agents.iter().enumerate() {
                        if bi == ai || !valid(b, t) {
                            continue;
                        }
                        let o = b.poses[t];
                        let d2 = (o.position() - pose.position()).norm_sq();
                        if d2 <= r2 {
                            let mut f = [0.0; 16];
                            pose_features(pose, o, cfg.agent_radius, &mut f);
                            cands.push((d2, node(bi, t), f));
                        }
                    }
                }
                g.agent_agent
                    .push(&nearest_k(&mut cands, cfg.agent_neighbours));
            }
        }
        g.agent_nodes += w.agents.len() * span;
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::map::MapTokenConfig;
    use crate::scenario::{LaneType, MapFeature, MapFeatureKind, MapPoint, ObjectType};
    use crate::tokenized::tests::{scene_of, straight_track};
    use crate::tokenized::tokenize_scene;

    pub(crate) fn cfg() -> GraphConfig {
        GraphConfig {
            map_neighbours: 4,
            map_radius: 20.0,
            time_window: 3,
            agent_map_neighbours: 4,
            agent_radius: 30.0,
            agent_map_radius: 30.0,
            agent_neighbours: 2,
        }
    }

    #[test]
    fn graph_is_causal_and_local() {
        let mut s = scene_of(
            "g",
            vec![
                straight_track(0, ObjectType::Vehicle, (0.0, 0.0, 0.0), 5.0, |_| true),
                straight_track(1, ObjectType::Vehicle, (0.0, 4.0, 0.0), 5.0, |i| i >= 20),
                straight_track(2, ObjectType::Pedestrian, (500.0, 0.0, 0.0), 1.0, |_| true),
            ],
        );
        let pts = (0..30)
            .map(|i| MapPoint {
                x: i as f32 * 2.0,
                y: 0.0,
                z: 0.0,
            })
            .collect();
        s.map.push(MapFeature::new(
            1,
            MapFeatureKind::Lane(LaneType::SurfaceStreet),
            pts,
        ));
        let v = Vocabulary::kinematic_grid(200).unwrap();
        let tok = tokenize_scene(&s, &v, crate::tokenized::Tokenization::ClosedLoop);
        let map = MapTokens::from_scene(
            &s,
            &MapTokenConfig {
                segment_length: 5.0,
                radius: 50.0,
                max_tokens: 64,
            },
        );
        let w = [WorldInput::new(&map, &tok.agents, 45)];
        let g = build_graph(&w, &v, &cfg());
        assert_eq!(g.agent_nodes, 3 * 45);
        assert_eq!(g.map_nodes, map.len());
        assert_eq!(g.temporal.queries(), g.agent_nodes);
        let k = g.temporal.k;
        for n in 0..g.agent_nodes {
            let t = n % 45;
            for s in 0..k {
                if g.temporal.mask[n * k + s] > 0.0 {
                    let src = g.temporal.index[n * k + s] as usize;
                    assert_eq!(src / 45, n / 45, "same agent");
                    assert!(src % 45 <= t && t - src % 45 < k, "causal window");
                }
            }
        }
        // Agent 1 is invalid before step 20 (decision step 10): no neighbours, no
        // target; agent 0 sees it from then on.
        let n1 = g.node(0, 1, 5).unwrap();
        assert_eq!((g.node_mask[n1], g.target_mask[n1]), (0.0, 0.0));
        let n0 = g.node(0, 0, 12).unwrap();
        let k = g.agent_agent.k;
        assert_eq!(g.agent_agent.mask[n0 * k], 1.0);
        assert_eq!(
            g.agent_agent.index[n0 * k] as usize,
            g.node(0, 1, 12).unwrap()
        );
        // The far pedestrian has no map neighbours and no agent neighbours.
        let n2 = g.node(0, 2, 12).unwrap();
        let km = g.agent_map.k;
        assert!(
            g.agent_map.mask[n2 * km..(n2 + 1) * km]
                .iter()
                .all(|&m| m == 0.0)
        );
        assert!(g.agent_map.mask[n0 * km] == 1.0);
        // First step has no last token; later ones do.
        assert_eq!(g.last_token[g.node(0, 0, 0).unwrap()], no_token_row(200));
        assert!(g.last_token[g.node(0, 0, 3).unwrap()] < 200);
        assert!(g.last_token[g.node(0, 2, 3).unwrap()] >= 200);
        // The anchor of straight constant-speed motion is the motion's own token.
        let n = g.node(0, 0, 20).unwrap();
        assert_eq!(g.anchor_token[n], g.last_token[n]);
        assert_eq!(g.anchor_token[g.node(0, 0, 0).unwrap()], no_token_row(200));
        assert_eq!(g.anchor_index[g.node(0, 0, 0).unwrap()], 200);
        assert_eq!(g.anchor_index[n], g.last_token[n]);
    }
}
