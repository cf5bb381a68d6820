//! The firmware's scene and decision loop, `no_std` and allocation-free, so that the
//! Cortex-M4F program (`main.rs`) and the host-side test run the very same code.
//!
//! The scene: a 100 m two-lane road with a bend, a crosswalk and a stop sign; three
//! cars and a pedestrian. At every decision (5 Hz) each agent observes the others and
//! the road (spacer-core's observation builder), the policy picks a token (argmax), and
//! every agent moves by its token (spacer-core's kinematics, two 0.1 s sub-steps).

#![no_std]

use spacer_core::agent::{AgentKind, AgentState};
use spacer_core::geometry::{Pose, Vec2};
use spacer_core::kinematics::apply_token;
use spacer_core::observation::{
    self, EgoView, OBS_DIM, PartnerView, RoadKind, RoadSegment, polyline_segments,
};
use spacer_core::policy::{PolicyError, Selection};
use spacer_core::weights::Model;

/// Bytes aligned to 4, so that the blob's parameters are read in place from flash.
#[repr(C, align(4))]
pub struct Aligned<T: ?Sized>(pub T);

/// The weights blob, in flash.
pub static BLOB: &Aligned<[u8]> =
    &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/policy.spw")));

/// Where the blob came from (a file, or the deterministic initialisation).
pub const BLOB_SOURCE: &str = include_str!(concat!(env!("OUT_DIR"), "/policy_source.txt"));

/// The QEMU machine whose memory map the firmware was linked for (`mps2-an386` or
/// `netduinoplus2`, from `SPACER_FIRMWARE_MACHINE` at build time).
pub const MACHINE: &str = include_str!(concat!(env!("OUT_DIR"), "/machine.txt"));

/// Agents in the scene.
pub const AGENTS: usize = 4;
/// Decisions the firmware runs (4 s of driving).
pub const DECISIONS: usize = 20;
/// Road segments the scene can hold.
pub const MAX_SEGMENTS: usize = 64;

/// One agent of the scene.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SceneAgent {
    /// Kind (selects the token table).
    pub kind: AgentKind,
    /// Current state.
    pub state: AgentState,
    /// Box length (m).
    pub length: f32,
    /// Box width (m).
    pub width: f32,
    /// Goal (world).
    pub goal: Vec2,
}

/// The agents at the start.
pub fn initial_agents() -> [SceneAgent; AGENTS] {
    let car = |x: f32, y: f32, yaw: f32, speed: f32, goal: Vec2| SceneAgent {
        kind: AgentKind::Vehicle,
        state: AgentState::new(Pose::new(x, y, yaw), Vec2::from_angle(yaw) * speed),
        length: 4.6,
        width: 1.9,
        goal,
    };
    [
        car(0.0, -1.75, 0.0, 9.0, Vec2::new(95.0, -1.75)),
        car(22.0, -1.75, 0.0, 7.0, Vec2::new(110.0, 8.0)),
        car(
            80.0,
            1.75,
            core::f32::consts::PI,
            8.0,
            Vec2::new(-10.0, 1.75),
        ),
        SceneAgent {
            kind: AgentKind::Pedestrian,
            state: AgentState::new(Pose::new(45.0, 5.5, -1.57), Vec2::new(0.0, -1.3)),
            length: 0.8,
            width: 0.8,
            goal: Vec2::new(45.0, -6.0),
        },
    ]
}

const EDGE_RIGHT: [Vec2; 2] = [Vec2::new(-20.0, -3.5), Vec2::new(70.0, -3.5)];
const EDGE_LEFT: [Vec2; 2] = [Vec2::new(-20.0, 3.5), Vec2::new(70.0, 3.5)];
const CENTER_LINE: [Vec2; 2] = [Vec2::new(-20.0, 0.0), Vec2::new(70.0, 0.0)];
const LANE_EAST: [Vec2; 2] = [Vec2::new(-20.0, -1.75), Vec2::new(70.0, -1.75)];
const LANE_WEST: [Vec2; 2] = [Vec2::new(70.0, 1.75), Vec2::new(-20.0, 1.75)];
/// The bend after x = 70 m: a 40 m radius arc to the left.
const BEND: [Vec2; 7] = [
    Vec2::new(70.0, -1.75),
    Vec2::new(76.9, -1.15),
    Vec2::new(83.6, 0.61),
    Vec2::new(89.8, 3.49),
    Vec2::new(95.5, 7.41),
    Vec2::new(100.4, 12.27),
    Vec2::new(104.3, 17.95),
];
const CROSSWALK: [Vec2; 5] = [
    Vec2::new(43.0, -3.5),
    Vec2::new(47.0, -3.5),
    Vec2::new(47.0, 3.5),
    Vec2::new(43.0, 3.5),
    Vec2::new(43.0, -3.5),
];
const STOP: [Vec2; 1] = [Vec2::new(40.0, -4.0)];

/// The road as polylines.
pub const ROADS: [(RoadKind, &[Vec2]); 8] = [
    (RoadKind::RoadEdge, &EDGE_RIGHT),
    (RoadKind::RoadEdge, &EDGE_LEFT),
    (RoadKind::RoadLine, &CENTER_LINE),
    (RoadKind::Lane, &LANE_EAST),
    (RoadKind::Lane, &LANE_WEST),
    (RoadKind::Lane, &BEND),
    (RoadKind::Crosswalk, &CROSSWALK),
    (RoadKind::StopSign, &STOP),
];

/// The road as segments; returns how many of `out` were filled.
pub fn road_segments(out: &mut [RoadSegment; MAX_SEGMENTS]) -> usize {
    let mut n = 0;
    for (kind, pts) in ROADS {
        n += polyline_segments(pts, kind, &mut out[n..]).unwrap_or(0);
    }
    n
}

/// What one decision did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    /// Decision number (0-based).
    pub index: usize,
    /// The token each agent chose.
    pub tokens: [u16; AGENTS],
    /// Clock units spent building each agent's observation.
    pub observation_cost: [u64; AGENTS],
    /// Clock units spent in each agent's policy inference (forward pass + argmax).
    pub inference_cost: [u64; AGENTS],
    /// Occupied partner and road slots of each agent's observation.
    pub occupied_slots: [usize; AGENTS],
}

/// Runs `decisions` decisions of the scene with `model`, calling `report` after each.
/// `clock` returns a monotonic count (instructions on the firmware, anything on a
/// host); its differences become the costs in [`Decision`]. Returns the final agents.
///
/// # Errors
/// The policy's, should the model not read this crate's observation layout.
pub fn drive(
    model: &Model<'_>,
    decisions: usize,
    clock: impl FnMut() -> u64,
    report: impl FnMut(&Decision),
) -> Result<[SceneAgent; AGENTS], PolicyError> {
    drive_observed(model, decisions, clock, report, |_| {})
}

/// [`drive`], showing every observation to `observe` before the policy acts on it (a
/// host records them, e.g. to calibrate a quantization on this scene).
///
/// # Errors
/// As [`drive`].
pub fn drive_observed(
    model: &Model<'_>,
    decisions: usize,
    mut clock: impl FnMut() -> u64,
    mut report: impl FnMut(&Decision),
    mut observe: impl FnMut(&[f32]),
) -> Result<[SceneAgent; AGENTS], PolicyError> {
    let mut agents = initial_agents();
    let mut segments = [RoadSegment::default(); MAX_SEGMENTS];
    let n_seg = road_segments(&mut segments);
    let roads = &segments[..n_seg];
    let mut obs = [0.0f32; OBS_DIM];
    let obs = obs
        .get_mut(..model.policy.observation_len())
        .ok_or(PolicyError::WrongObservationLength)?;
    let mut rng = spacer_core::math::Rng::new(0);
    for index in 0..decisions {
        let mut d = Decision {
            index,
            tokens: [0; AGENTS],
            observation_cost: [0; AGENTS],
            inference_cost: [0; AGENTS],
            occupied_slots: [0; AGENTS],
        };
        for i in 0..AGENTS {
            let mut partners = [PartnerView::default(); AGENTS - 1];
            let mut k = 0;
            for (j, b) in agents.iter().enumerate() {
                if j != i {
                    partners[k] = PartnerView {
                        pose: b.state.pose,
                        speed: b.state.speed(),
                        length: b.length,
                        width: b.width,
                    };
                    k += 1;
                }
            }
            let a = &agents[i];
            let ego = EgoView {
                pose: a.state.pose,
                speed: a.state.speed(),
                length: a.length,
                width: a.width,
                goal: a.goal,
                collided: false,
                goal_visible: true,
            };
            let t0 = clock();
            let counts = observation::build(&model.observation, &ego, &partners, roads, obs)
                .map_err(|_| PolicyError::WrongObservationLength)?;
            let obs_done = clock();
            observe(obs);
            let t1 = clock();
            let action = model.policy.act(obs, Selection::Argmax, &mut rng)?;
            let t2 = clock();
            d.tokens[i] = action.token;
            d.observation_cost[i] = obs_done.wrapping_sub(t0);
            d.inference_cost[i] = t2.wrapping_sub(t1);
            d.occupied_slots[i] = counts.partners + counts.road_segments;
        }
        for (a, &t) in agents.iter_mut().zip(d.tokens.iter()) {
            let token = model
                .tokens
                .get(a.kind, t as usize)
                .unwrap_or(spacer_core::tokenizer::Token::STILL);
            a.state = apply_token(&a.state, &token)[1];
        }
        report(&d);
    }
    Ok(agents)
}
