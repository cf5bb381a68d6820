//! The road map as segment tokens, and the traffic-light state each lane token has at
//! each decision step.
//!
//! Every polyline (lanes, road lines, road edges) and polygon outline (crosswalks,
//! speed bumps, driveways; closed) is cut by arc length into pieces of at most
//! [`MapTokenConfig::segment_length`]; stop signs are single-point tokens. A token's
//! pose is the midpoint of its piece (by arc length) and the direction from the
//! piece's first to its last point; its shape is [`SHAPE_POINTS`] points resampled
//! evenly along the piece, in the token's frame. Its kind is spacer-core's 7-way
//! [`RoadKind`] (driveways map to `None`, as in the policy's observation).
//!
//! Only tokens within [`MapTokenConfig::radius`] of some logged position of a
//! controllable agent are kept, at most [`MapTokenConfig::max_tokens`] of them
//! (nearest first), so a scene's map cost stays bounded.

use spacer_core::geometry::{Pose, Vec2};
use spacer_core::observation::RoadKind;

use crate::scenario::{MapFeatureKind, Scene, SignalState};
use crate::tokenized::{decision_steps, logged_pose, usable};

/// Points of a token's shape.
pub const SHAPE_POINTS: usize = 5;
/// Input features of a map token: shape points (x, y), length, kind one-hot.
pub const MAP_FEATURES: usize = 2 * SHAPE_POINTS + 1 + RoadKind::COUNT;
/// Classes of the light state a lane token shows: no signal, unknown, red, yellow,
/// green.
pub const LIGHT_CLASSES: usize = 5;

/// How the map is tokenized.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MapTokenConfig {
    /// Longest piece of polyline one token covers (m).
    pub segment_length: f32,
    /// Tokens farther than this from every logged agent position are dropped (m).
    pub radius: f32,
    /// At most this many tokens per scene (nearest to the agents kept).
    pub max_tokens: usize,
}

/// One map token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MapToken {
    /// Midpoint and direction (world).
    pub pose: Pose,
    /// Arc length covered (m); 0 for a point feature.
    pub length: f32,
    /// Kind.
    pub kind: RoadKind,
    /// Shape points in the token's frame.
    pub shape: [Vec2; SHAPE_POINTS],
    /// The lane's feature id, for lane tokens (traffic lights refer to it).
    pub lane: Option<i64>,
}

/// A scene's map tokens and their light states per decision step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MapTokens {
    /// The tokens.
    pub tokens: Vec<MapToken>,
    /// `lights[t][i]`: light class ([`light_class`]) of token `i` at decision step
    /// `t` (step `2t`); 0 for tokens without a signal.
    pub lights: Vec<Vec<u8>>,
    /// The segment length used (features are normalised by it).
    pub segment_length: f32,
}

/// The light class of a signal state: 1 unknown, 2 red, 3 yellow, 4 green.
pub fn light_class(s: SignalState) -> u8 {
    use SignalState::*;
    match s {
        Unknown => 1,
        Stop | ArrowStop | FlashingStop => 2,
        Caution | ArrowCaution | FlashingCaution => 3,
        Go | ArrowGo => 4,
    }
}

impl MapTokens {
    /// Tokenizes `scene`'s map (see the module docs).
    pub fn from_scene(scene: &Scene, cfg: &MapTokenConfig) -> Self {
        let seg = cfg.segment_length.max(0.5);
        let mut tokens = Vec::new();
        for f in &scene.map {
            let mut pts: Vec<Vec2> = f
                .points
                .iter()
                .map(|p| Vec2::new(p.x, p.y))
                .filter(|p| p.is_finite())
                .collect();
            let closed = matches!(
                f.kind,
                MapFeatureKind::Crosswalk | MapFeatureKind::SpeedBump | MapFeatureKind::Driveway
            );
            if closed && pts.len() > 2 {
                pts.push(pts[0]);
            }
            let lane = matches!(f.kind, MapFeatureKind::Lane(_)).then_some(f.id);
            cut_polyline(&pts, seg, f.kind.road_kind(), lane, &mut tokens);
        }
        // Keep tokens near the agents' logged positions.
        let anchors: Vec<Vec2> = scene
            .tracks
            .iter()
            .filter(|t| t.object_type.agent_kind().is_some())
            .flat_map(|t| t.states.iter().step_by(5).filter(|s| usable(s)))
            .map(|s| logged_pose(s).position())
            .collect();
        let r2 = cfg.radius * cfg.radius;
        let mut keep: Vec<(f32, usize)> = tokens
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let d = anchors
                    .iter()
                    .map(|a| (*a - t.pose.position()).norm_sq())
                    .fold(f32::INFINITY, f32::min);
                (d <= r2).then_some((d, i))
            })
            .collect();
        if keep.len() > cfg.max_tokens {
            keep.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            keep.truncate(cfg.max_tokens);
            keep.sort_by_key(|k| k.1);
        }
        let tokens: Vec<MapToken> = keep.iter().map(|&(_, i)| tokens[i]).collect();
        let steps = decision_steps(scene.num_steps());
        let lights = (0..steps)
            .map(|t| {
                let signals = scene.signals.get(2 * t).map(Vec::as_slice).unwrap_or(&[]);
                tokens
                    .iter()
                    .map(|tok| {
                        tok.lane
                            .and_then(|id| signals.iter().find(|s| s.lane == id))
                            .map_or(0, |s| light_class(s.state))
                    })
                    .collect()
            })
            .collect();
        Self {
            tokens,
            lights,
            segment_length: seg,
        }
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// True when the scene has no map near its agents.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The light class of token `i` at decision step `t` (0 when unknown).
    pub fn light(&self, t: usize, i: usize) -> u8 {
        self.lights
            .get(t)
            .and_then(|l| l.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// The input features of token `i` ([`MAP_FEATURES`] floats).
    pub fn features(&self, i: usize, out: &mut [f32]) {
        out.fill(0.0);
        let Some(t) = self.tokens.get(i) else {
            return;
        };
        let half = 0.5 * self.segment_length;
        for (k, p) in t.shape.iter().enumerate() {
            out[2 * k] = p.x / half;
            out[2 * k + 1] = p.y / half;
        }
        out[2 * SHAPE_POINTS] = t.length / self.segment_length;
        out[2 * SHAPE_POINTS + 1 + t.kind as usize] = 1.0;
    }
}

/// Cuts a polyline into tokens of at most `seg` metres.
fn cut_polyline(
    pts: &[Vec2],
    seg: f32,
    kind: RoadKind,
    lane: Option<i64>,
    out: &mut Vec<MapToken>,
) {
    let Some(&first) = pts.first() else {
        return;
    };
    let mut cum = vec![0.0f32];
    for w in pts.windows(2) {
        let last = *cum.last().unwrap_or(&0.0);
        cum.push(last + (w[1] - w[0]).norm());
    }
    let total = *cum.last().unwrap_or(&0.0);
    if total < 1e-3 {
        out.push(MapToken {
            pose: Pose::new(first.x, first.y, 0.0),
            length: 0.0,
            kind,
            shape: [Vec2::ZERO; SHAPE_POINTS],
            lane,
        });
        return;
    }
    let pieces = (total / seg).ceil().max(1.0) as usize;
    let step = total / pieces as f32;
    let at = |s: f32| -> Vec2 {
        let j = cum.partition_point(|&c| c < s).clamp(1, pts.len() - 1);
        let (a, b) = (pts[j - 1], pts[j]);
        let span = cum[j] - cum[j - 1];
        let f = if span > 1e-6 {
            ((s - cum[j - 1]) / span).clamp(0.0, 1.0)
        } else {
            0.0
        };
        a + (b - a) * f
    };
    for p in 0..pieces {
        let (s0, s1) = (p as f32 * step, (p + 1) as f32 * step);
        let (a, b) = (at(s0), at(s1));
        let d = b - a;
        let yaw = if d.norm_sq() > 1e-8 { d.angle() } else { 0.0 };
        let mid = at(0.5 * (s0 + s1));
        let pose = Pose::new(mid.x, mid.y, yaw);
        let mut shape = [Vec2::ZERO; SHAPE_POINTS];
        for (k, q) in shape.iter_mut().enumerate() {
            let s = s0 + (s1 - s0) * k as f32 / (SHAPE_POINTS - 1) as f32;
            *q = pose.to_local(at(s));
        }
        out.push(MapToken {
            pose,
            length: s1 - s0,
            kind,
            shape,
            lane,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{LaneSignal, LaneType, MapFeature, MapPoint, ObjectType};
    use crate::tokenized::tests::{scene_of, straight_track};

    fn line(x0: f32, x1: f32, y: f32, n: usize) -> Vec<MapPoint> {
        (0..n)
            .map(|i| MapPoint {
                x: x0 + (x1 - x0) * i as f32 / (n - 1) as f32,
                y,
                z: 0.0,
            })
            .collect()
    }

    #[test]
    fn polylines_become_pieces_with_lights() {
        let mut s = scene_of(
            "m",
            vec![straight_track(
                0,
                ObjectType::Vehicle,
                (0.0, 0.0, 0.0),
                5.0,
                |_| true,
            )],
        );
        s.map.push(MapFeature::new(
            7,
            MapFeatureKind::Lane(LaneType::SurfaceStreet),
            line(0.0, 22.0, 0.0, 23),
        ));
        s.map.push(MapFeature::new(
            8,
            MapFeatureKind::StopSign,
            line(5.0, 5.0, 3.0, 2),
        ));
        // Far away: dropped.
        s.map.push(MapFeature::new(
            9,
            MapFeatureKind::RoadEdge(crate::scenario::RoadEdgeType::Boundary),
            line(900.0, 950.0, 0.0, 3),
        ));
        s.signals[4] = vec![LaneSignal {
            lane: 7,
            state: SignalState::Stop,
            stop_point: MapPoint::default(),
        }];
        let cfg = MapTokenConfig {
            segment_length: 5.0,
            radius: 60.0,
            max_tokens: 100,
        };
        let m = MapTokens::from_scene(&s, &cfg);
        // 22 m of lane in 5 pieces of 4.4 m, plus the stop sign.
        assert_eq!(m.len(), 6);
        let lane: Vec<&MapToken> = m
            .tokens
            .iter()
            .filter(|t| t.kind == RoadKind::Lane)
            .collect();
        assert_eq!(lane.len(), 5);
        assert!((lane[0].length - 4.4).abs() < 1e-4 && (lane[0].pose.x - 2.2).abs() < 1e-4);
        assert!((lane[0].shape[0].x + 2.2).abs() < 1e-4 && lane[0].shape[4].y.abs() < 1e-5);
        assert_eq!(m.tokens[5].kind, RoadKind::StopSign);
        assert_eq!(m.tokens[5].length, 0.0);
        assert_eq!((m.light(2, 0), m.light(1, 0), m.light(2, 5)), (2, 0, 0));
        let mut f = [0.0f32; MAP_FEATURES];
        m.features(0, &mut f);
        assert!((f[0] + 0.88).abs() < 1e-4 && f[2 * SHAPE_POINTS + 1 + 3] == 1.0);
        let few = MapTokens::from_scene(
            &s,
            &MapTokenConfig {
                max_tokens: 2,
                ..cfg
            },
        );
        assert_eq!(few.len(), 2);
    }
}
