//! Logged scenes as token sequences: the form the reference model, behaviour cloning
//! and the tokenization-error report read them in.
//!
//! Tokens sit on a fixed 5 Hz grid: token `t` moves an agent from step `2t` to step
//! `2t + 2` (0.2 s). A 91-step scene has [`decision_steps`]` = 45` tokens, so decision
//! step `t` is the agent's pose at step `2t` and the token it executes next. Two ways
//! to put a log on the grid ([`Tokenization`]):
//!
//! - [`Tokenization::ClosedLoop`]: each maximal run of valid logged steps is encoded
//!   on its own with [`Vocabulary::encode`] (every token starts at the previous
//!   token's end pose), from the run's first even step; the poses after the first are
//!   the *decoded* token end poses, so poses and tokens agree exactly, as they do for
//!   a token-driven agent in the simulator. The targets then also correct the
//!   tokenizer's drift from the log, which nothing in the poses shows.
//! - [`Tokenization::Logged`]: the poses are the logged ones, and token `t` is the
//!   token that best moves the agent from its logged pose at step `2t` to its logged
//!   pose at `2t + 2` ([`Vocabulary::nearest`]). This is how the simulator's history
//!   (steps 0..=10) and every log-replayed object look to a centralized model, and
//!   what a predictor that sees the logged state (constant velocity, say) can match.

use spacer_core::agent::AgentKind;
use spacer_core::geometry::Pose;
use spacer_core::kinematics::STEPS_PER_TOKEN;
use spacer_core::tokenizer::Vocabulary;

use crate::scenario::{ObjectState, Scene, Track};

/// Number of tokens on the 5 Hz grid of a scene with `num_steps` 10 Hz steps
/// (45 for the 91-step scenes).
pub const fn decision_steps(num_steps: usize) -> usize {
    num_steps.saturating_sub(1) / STEPS_PER_TOKEN
}

/// The pose of a logged state.
#[inline]
pub fn logged_pose(s: &ObjectState) -> Pose {
    Pose::new(s.x, s.y, s.heading)
}

/// Whether a state is valid and finite (a pose can be taken from it).
#[inline]
pub fn usable(s: &ObjectState) -> bool {
    s.valid && logged_pose(s).is_finite()
}

/// Maximal runs `[first, last]` (inclusive) of consecutive usable steps of `track`.
pub fn valid_runs(track: &Track) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, s) in track.states.iter().enumerate() {
        match (usable(s), start) {
            (true, None) => start = Some(i),
            (false, Some(a)) => {
                runs.push((a, i - 1));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(a) = start {
        runs.push((a, track.states.len() - 1));
    }
    runs
}

/// One agent's logged motion on the 5 Hz token grid.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenizedAgent {
    /// Index into [`Scene::tracks`].
    pub track: usize,
    /// Vocabulary the tokens index.
    pub kind: AgentKind,
    /// Box length (m), from the first valid state.
    pub length: f32,
    /// Box width (m).
    pub width: f32,
    /// Pose at decision step `t` (step `2t`), `T + 1` entries; meaningful where
    /// `pose_valid`.
    pub poses: Vec<Pose>,
    /// Whether `poses[t]` is known.
    pub pose_valid: Vec<bool>,
    /// Token executed at decision step `t`, `T` entries; meaningful where
    /// `token_valid`.
    pub tokens: Vec<u16>,
    /// Whether `tokens[t]` is known (the agent is valid at steps `2t` and `2t + 2`).
    pub token_valid: Vec<bool>,
}

impl TokenizedAgent {
    /// Decision steps (tokens) this agent's arrays cover.
    pub fn steps(&self) -> usize {
        self.tokens.len()
    }
}

/// How a log is put on the token grid (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Tokenization {
    /// Closed-loop encoding; poses are the decoded tokens.
    ClosedLoop,
    /// Logged poses; each token the one-step nearest between consecutive grid poses.
    #[default]
    Logged,
}

/// A scene's controllable agents as token sequences.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenizedScene {
    /// Decision steps (tokens) per agent.
    pub steps: usize,
    /// Agents of a controllable type with at least one valid pose on the grid, in
    /// track order.
    pub agents: Vec<TokenizedAgent>,
}

/// Tokenizes every vehicle, pedestrian and cyclist of `scene` with `vocab`.
pub fn tokenize_scene(scene: &Scene, vocab: &Vocabulary, mode: Tokenization) -> TokenizedScene {
    let steps = decision_steps(scene.num_steps());
    let agents = scene
        .tracks
        .iter()
        .enumerate()
        .filter_map(|(i, track)| {
            let kind = track.object_type.agent_kind()?;
            match mode {
                Tokenization::ClosedLoop => tokenize_track(i, track, kind, steps, vocab),
                Tokenization::Logged => tokenize_track_logged(i, track, kind, steps, vocab),
            }
        })
        .collect();
    TokenizedScene { steps, agents }
}

/// [`Tokenization::Logged`] of one track; `None` when no grid step is valid.
pub fn tokenize_track_logged(
    index: usize,
    track: &Track,
    kind: AgentKind,
    steps: usize,
    vocab: &Vocabulary,
) -> Option<TokenizedAgent> {
    let first = track.states.iter().find(|s| usable(s))?;
    let at = |t: usize| {
        track
            .states
            .get(STEPS_PER_TOKEN * t)
            .filter(|s| usable(s))
            .map(logged_pose)
    };
    let mut a = TokenizedAgent {
        track: index,
        kind,
        length: finite_or(first.length, 4.5),
        width: finite_or(first.width, 2.0),
        poses: vec![Pose::IDENTITY; steps + 1],
        pose_valid: vec![false; steps + 1],
        tokens: vec![0; steps],
        token_valid: vec![false; steps],
    };
    for t in 0..=steps {
        if let Some(p) = at(t) {
            a.poses[t] = p;
            a.pose_valid[t] = true;
        }
    }
    for t in 0..steps {
        if let (Some(p), Some(q)) = (at(t), at(t + 1)) {
            a.tokens[t] = vocab.nearest(kind, p, q).0;
            a.token_valid[t] = true;
        }
    }
    a.pose_valid.iter().any(|&v| v).then_some(a)
}

/// Tokenizes one track on a grid of `steps` tokens; `None` when no grid step is valid.
pub fn tokenize_track(
    index: usize,
    track: &Track,
    kind: AgentKind,
    steps: usize,
    vocab: &Vocabulary,
) -> Option<TokenizedAgent> {
    let mut a = TokenizedAgent {
        track: index,
        kind,
        length: 0.0,
        width: 0.0,
        poses: vec![Pose::IDENTITY; steps + 1],
        pose_valid: vec![false; steps + 1],
        tokens: vec![0; steps],
        token_valid: vec![false; steps],
    };
    let first = track.states.iter().find(|s| usable(s))?;
    a.length = finite_or(first.length, 4.5);
    a.width = finite_or(first.width, 2.0);
    let mut out = vec![0u16; steps];
    let mut decoded = vec![Pose::IDENTITY; 2 * steps];
    for (lo, hi) in valid_runs(track) {
        let e0 = lo.next_multiple_of(STEPS_PER_TOKEN);
        if e0 > hi || e0 / STEPS_PER_TOKEN > steps {
            continue;
        }
        let t0 = e0 / STEPS_PER_TOKEN;
        let hi = hi.min(steps * STEPS_PER_TOKEN);
        let traj: Vec<Pose> = track.states[e0..=hi].iter().map(logged_pose).collect();
        let n = vocab.encode(kind, &traj, &mut out).unwrap_or(0);
        let start = traj[0];
        let m = vocab
            .decode(kind, start, &out[..n], &mut decoded)
            .unwrap_or(0);
        a.poses[t0] = start;
        a.pose_valid[t0] = true;
        for i in 0..n.min(m / STEPS_PER_TOKEN) {
            a.tokens[t0 + i] = out[i];
            a.token_valid[t0 + i] = true;
            a.poses[t0 + i + 1] = decoded[STEPS_PER_TOKEN * (i + 1) - 1];
            a.pose_valid[t0 + i + 1] = true;
        }
    }
    a.pose_valid.iter().any(|&v| v).then_some(a)
}

/// Fraction of moving vehicle steps (more than 0.2 m between consecutive valid steps)
/// whose logged heading agrees with the direction of motion within 45 degrees
/// (forwards or backwards); `None` when no vehicle moves. Real logs score above 0.9;
/// headings in another unit or frame score far lower.
pub fn heading_agreement(scene: &Scene) -> Option<f64> {
    let (mut n, mut ok) = (0usize, 0usize);
    for t in &scene.tracks {
        if t.object_type != crate::scenario::ObjectType::Vehicle {
            continue;
        }
        for w in t.states.windows(2) {
            if !(usable(&w[0]) && usable(&w[1])) {
                continue;
            }
            let d = logged_pose(&w[1]).position() - logged_pose(&w[0]).position();
            if d.norm() < 0.2 {
                continue;
            }
            let diff = spacer_core::math::wrap_angle(d.angle() - w[0].heading).abs();
            n += 1;
            ok += (!(std::f32::consts::FRAC_PI_4..=3.0 * std::f32::consts::FRAC_PI_4)
                .contains(&diff)) as usize;
        }
    }
    (n > 0).then(|| ok as f64 / n as f64)
}

/// Why a scene cannot teach motion, if it cannot: fewer than 3 steps, or headings
/// that disagree with the motion ([`heading_agreement`] below 0.8).
pub fn motion_problem(scene: &Scene) -> Option<String> {
    if scene.num_steps() < 3 {
        return Some(format!("only {} steps", scene.num_steps()));
    }
    match heading_agreement(scene) {
        Some(a) if a < 0.8 => Some(format!(
            "headings agree with the direction of motion for only {:.0}% of moving vehicle \
             steps (degrees instead of radians?)",
            100.0 * a
        )),
        _ => None,
    }
}

fn finite_or(v: f32, default: f32) -> f32 {
    if v.is_finite() && v > 0.0 { v } else { default }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::scenario::{ObjectType, SceneSource};

    /// A straight track at `speed` m/s along `yaw` from `(x, y)`, valid on `valid`.
    pub(crate) fn straight_track(
        id: i64,
        object_type: ObjectType,
        (x, y, yaw): (f32, f32, f32),
        speed: f32,
        valid: impl Fn(usize) -> bool,
    ) -> Track {
        let states = (0..91)
            .map(|i| {
                let d = speed * 0.1 * i as f32;
                ObjectState {
                    x: x + d * yaw.cos(),
                    y: y + d * yaw.sin(),
                    z: 0.0,
                    length: 4.5,
                    width: 2.0,
                    height: 1.5,
                    heading: yaw,
                    vx: speed * yaw.cos(),
                    vy: speed * yaw.sin(),
                    valid: valid(i),
                }
            })
            .collect();
        Track {
            id,
            object_type,
            states,
        }
    }

    /// A small scene: given tracks, no map.
    pub(crate) fn scene_of(id: &str, tracks: Vec<Track>) -> Scene {
        Scene {
            id: id.into(),
            source: SceneSource::Synthetic,
            current_step: 10,
            tracks,
            map: Vec::new(),
            signals: vec![Vec::new(); 91],
            sdc_index: Some(0),
            tracks_to_predict: Vec::new(),
            objects_of_interest: Vec::new(),
        }
    }

    #[test]
    fn runs_and_grid() {
        let t = straight_track(1, ObjectType::Vehicle, (0.0, 0.0, 0.0), 5.0, |i| {
            !(20..25).contains(&i) && i != 3
        });
        assert_eq!(valid_runs(&t), vec![(0, 2), (4, 19), (25, 90)]);
        assert_eq!(decision_steps(91), 45);
        let v = Vocabulary::kinematic_grid(200).unwrap();
        let a = tokenize_track(0, &t, AgentKind::Vehicle, 45, &v).unwrap();
        // Run 0..=2: pose 0, token 0, pose 1. Run 4..=19: poses 2..=9, tokens 2..=8.
        // Run 25..=90: first even step 26, poses 13..=45, tokens 13..=44.
        assert!(a.pose_valid[0] && a.pose_valid[1] && a.token_valid[0]);
        assert!(!a.token_valid[1] && a.pose_valid[2] && a.pose_valid[9]);
        assert!(!a.token_valid[9] && !a.pose_valid[10] && !a.pose_valid[12]);
        assert!(a.pose_valid[13] && a.token_valid[44] && a.pose_valid[45]);
        // Decoded poses follow the log closely.
        let log = logged_pose(&t.states[90]);
        assert!(
            (a.poses[45].x - log.x).abs() < 0.5,
            "{:?} {log:?}",
            a.poses[45]
        );
        let mut scene = scene_of("s", vec![t]);
        let s = tokenize_scene(&scene, &v, Tokenization::ClosedLoop);
        assert_eq!((s.steps, s.agents.len()), (45, 1));
        // Logged: the poses are the log's; the tokens the one-step nearest.
        let l = tokenize_scene(&scene, &v, Tokenization::Logged);
        let la = &l.agents[0];
        assert_eq!(la.poses[13], logged_pose(&scene.tracks[0].states[26]));
        assert!(la.token_valid[13] && !la.token_valid[9] && !la.pose_valid[10]);
        let want = v.nearest(AgentKind::Vehicle, la.poses[13], la.poses[14]).0;
        assert_eq!(la.tokens[13], want);
        assert_eq!(heading_agreement(&scene), Some(1.0));
        assert_eq!(motion_problem(&scene), None);
        for st in &mut scene.tracks[0].states {
            st.heading = st.heading.to_degrees() + 1.0;
        }
        assert!(motion_problem(&scene).unwrap().contains("degrees"));
    }
}
