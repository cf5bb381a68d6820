//! Synthetic scenes: generated road networks with human-like traffic recorded as logs,
//! so that training and tests can run at any scale on a CPU. Real scenes stay the
//! yardstick.
//!
//! A scene is made in three stages, all driven by one ChaCha8 stream seeded from the
//! scene's seed (the same seed gives the same scene on any machine):
//!
//! 1. **Road network** ([`road`]): a [`Layout`] — straight or curved multi-lane
//!    roads, 4-way and T intersections, an on-ramp merge — with lanes, connectivity,
//!    painted lines, road edges, crosswalks, stop signs, signals, speed bumps and
//!    driveways, in WOMD's conventions.
//! 2. **Traffic** ([`traffic`]): heterogeneous drivers (IDM car following, lane
//!    keeping with wander, MOBIL lane changes, yielding at stop signs, signals,
//!    junction conflicts and merges), cyclists and pedestrians, run for a burn-in
//!    period and then recorded for [`NUM_STEPS`](super::NUM_STEPS) steps at 10 Hz.
//! 3. **Export**: a random rigid transform into a world frame (WOMD scenes sit at
//!    arbitrary map coordinates), then the [`Scene`] model with
//!    [`SceneSource::Synthetic`]. The self-driving car is a car valid for the whole
//!    log that drives through the point of interest; `tracks_to_predict` lists every
//!    other object valid at the current step (what a simulator would control, as the
//!    design notes define it for synthetic scenes).
//!
//! [`generate`] makes one scene, [`generate_many`] a batch in parallel (rayon), with
//! per-scene seeds from [`scene_seed`] so that a batch equals the scenes made one by
//! one.

mod path;
pub mod road;
pub mod traffic;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use spacer_core::geometry::{Pose, Vec2};

use super::{
    CURRENT_STEP, LaneSignal, MapFeature, MapFeatureKind, MapPoint, ObjectState, PredictionTarget,
    Scene, SceneSource, Track,
};

/// The kinds of road network the generator makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Layout {
    /// A straight road section (two-way, or one-way multi-lane at freeway speed).
    Straight,
    /// A road with one or two curves.
    Curved,
    /// A 4-way intersection (all-way stop, two-way stop or signals).
    FourWay,
    /// A T intersection (stop on the minor road, all-way stop or signals).
    TJunction,
    /// A one-way road with an on-ramp merging through an acceleration lane.
    Merge,
}

impl Layout {
    /// Every layout.
    pub const ALL: [Layout; 5] = [
        Layout::Straight,
        Layout::Curved,
        Layout::FourWay,
        Layout::TJunction,
        Layout::Merge,
    ];

    /// Lower-case name (used in scene ids).
    pub fn name(self) -> &'static str {
        match self {
            Layout::Straight => "straight",
            Layout::Curved => "curved",
            Layout::FourWay => "four-way",
            Layout::TJunction => "t-junction",
            Layout::Merge => "merge",
        }
    }

    /// The layout named in a synthetic scene id, if any.
    pub fn of_scene_id(id: &str) -> Option<Layout> {
        let rest = id.strip_prefix("synthetic-")?;
        Layout::ALL
            .into_iter()
            .find(|l| rest.starts_with(l.name()) && rest[l.name().len()..].starts_with('-'))
    }
}

/// Relative frequencies of the layouts (non-negative weights; all zero means 4-way).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayoutMix {
    /// Straight roads.
    pub straight: f32,
    /// Curved roads.
    pub curved: f32,
    /// 4-way intersections.
    pub four_way: f32,
    /// T intersections.
    pub t_junction: f32,
    /// Merges.
    pub merge: f32,
}

impl Default for LayoutMix {
    /// Intersections most often, as in urban driving logs.
    fn default() -> Self {
        Self {
            straight: 0.15,
            curved: 0.15,
            four_way: 0.3,
            t_junction: 0.25,
            merge: 0.15,
        }
    }
}

impl LayoutMix {
    /// Only `layout`.
    pub fn only(layout: Layout) -> Self {
        let mut m = Self {
            straight: 0.0,
            curved: 0.0,
            four_way: 0.0,
            t_junction: 0.0,
            merge: 0.0,
        };
        *m.weight_mut(layout) = 1.0;
        m
    }

    /// Equal weights over `layouts` (a layout named twice counts twice); the
    /// standard mix when `layouts` is empty.
    pub fn of(layouts: &[Layout]) -> Self {
        let Some((&first, rest)) = layouts.split_first() else {
            return Self::default();
        };
        let mut m = Self::only(first);
        for &l in rest {
            *m.weight_mut(l) += 1.0;
        }
        m
    }

    fn weight_mut(&mut self, layout: Layout) -> &mut f32 {
        match layout {
            Layout::Straight => &mut self.straight,
            Layout::Curved => &mut self.curved,
            Layout::FourWay => &mut self.four_way,
            Layout::TJunction => &mut self.t_junction,
            Layout::Merge => &mut self.merge,
        }
    }

    /// The weight of `layout` (negative and non-finite weights count as zero).
    pub fn weight(&self, layout: Layout) -> f32 {
        let w = match layout {
            Layout::Straight => self.straight,
            Layout::Curved => self.curved,
            Layout::FourWay => self.four_way,
            Layout::TJunction => self.t_junction,
            Layout::Merge => self.merge,
        };
        if w.is_finite() { w.max(0.0) } else { 0.0 }
    }

    pub(crate) fn pick(&self, rng: &mut impl Rng) -> Layout {
        let total: f32 = Layout::ALL.iter().map(|&l| self.weight(l)).sum();
        if total <= 0.0 {
            return Layout::FourWay;
        }
        let mut x = rng.random::<f32>() * total;
        for l in Layout::ALL {
            let w = self.weight(l);
            if x < w {
                return l;
            }
            x -= w;
        }
        Layout::Merge
    }
}

/// What the generator makes. Every field is sanitised before use (ranges are sorted,
/// probabilities clamped), so any value gives a scene; [`SyntheticConfig::validate`]
/// reports values a user most likely did not mean.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticConfig {
    /// Layout frequencies.
    pub layouts: LayoutMix,
    /// Cap on the objects of a scene, counting every one ever recorded (GPUDrive
    /// simulates at most 64 per scene).
    pub max_agents: usize,
    /// Traffic density drawn per scene from this range (vehicles per km per lane).
    pub vehicle_density: (f32, f32),
    /// Pedestrians per urban scene (inclusive range).
    pub pedestrians: (usize, usize),
    /// Cyclists per urban scene (inclusive range).
    pub cyclists: (usize, usize),
    /// Probability that an intersection is signalised.
    pub signal_probability: f32,
    /// Steps simulated before recording starts, so queues and gaps look settled.
    pub burn_in_steps: usize,
    /// Scenes are moved to a random world position within this many metres of the
    /// origin (and rotated at random); 0 keeps the local frame.
    pub world_extent: f32,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            layouts: LayoutMix::default(),
            max_agents: 64,
            vehicle_density: (8.0, 45.0),
            pedestrians: (0, 8),
            cyclists: (0, 2),
            signal_probability: 0.4,
            burn_in_steps: 50,
            world_extent: 2000.0,
        }
    }
}

impl SyntheticConfig {
    /// Checks for values that are valid but almost certainly mistakes.
    ///
    /// # Errors
    /// A message naming the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_agents == 0 {
            return Err("max_agents must be at least 1".into());
        }
        let (a, b) = self.vehicle_density;
        if !(a.is_finite() && b.is_finite() && a >= 0.0 && b >= 0.0) {
            return Err(format!(
                "vehicle_density ({a}, {b}) must be finite and >= 0"
            ));
        }
        if !(0.0..=1.0).contains(&self.signal_probability) {
            return Err(format!(
                "signal_probability {} must lie in [0, 1]",
                self.signal_probability
            ));
        }
        if Layout::ALL.iter().all(|&l| self.layouts.weight(l) <= 0.0) {
            return Err("every layout weight is zero".into());
        }
        if !self.world_extent.is_finite() || self.world_extent < 0.0 {
            return Err(format!("world_extent {} must be >= 0", self.world_extent));
        }
        Ok(())
    }

    fn sorted_density(&self) -> (f32, f32) {
        let fix = |x: f32| {
            if x.is_finite() {
                x.clamp(0.5, 150.0)
            } else {
                20.0
            }
        };
        let (a, b) = (fix(self.vehicle_density.0), fix(self.vehicle_density.1));
        (a.min(b), a.max(b) + 1e-3)
    }

    fn sorted_pedestrians(&self) -> (usize, usize) {
        let (a, b) = self.pedestrians;
        (a.min(b), a.max(b))
    }

    fn sorted_cyclists(&self) -> (usize, usize) {
        let (a, b) = self.cyclists;
        (a.min(b), a.max(b))
    }
}

/// The seed of scene `index` of a batch seeded with `seed` (SplitMix64 mixing, so
/// neighbouring indices give unrelated scenes).
pub fn scene_seed(seed: u64, index: usize) -> u64 {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    mix(seed ^ mix(index as u64 ^ 0x5EED_5CE7_E000_0000))
}

/// Generates one scene. Deterministic in `(config, seed)`.
pub fn generate(config: &SyntheticConfig, seed: u64) -> Scene {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let layout = config.layouts.pick(&mut rng);
    let net = road::build(layout, config, &mut rng);
    let traffic_rng = ChaCha8Rng::seed_from_u64(rng.random());
    let logs = traffic::simulate(&net, config, traffic_rng);
    export(&net, logs, config, seed, &mut rng)
}

/// Generates scenes `range` of the batch seeded with `seed`, in parallel; scene `i`
/// is `generate(config, scene_seed(seed, i))`.
pub fn generate_range(
    config: &SyntheticConfig,
    seed: u64,
    range: std::ops::Range<usize>,
) -> Vec<Scene> {
    range
        .into_par_iter()
        .map(|i| generate(config, scene_seed(seed, i)))
        .collect()
}

/// Generates `count` scenes in parallel (see [`generate_range`]).
pub fn generate_many(config: &SyntheticConfig, count: usize, seed: u64) -> Vec<Scene> {
    generate_range(config, seed, 0..count)
}

/// What [`write_cache`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct GenReport {
    /// The cache.
    pub path: std::path::PathBuf,
    /// Scenes written.
    pub scenes: usize,
    /// Scenes per layout, in [`Layout::ALL`] order.
    pub layouts: [usize; Layout::ALL.len()],
    /// Tracks over all scenes.
    pub agents: usize,
    /// Map features over all scenes.
    pub features: usize,
    /// Size of the cache.
    pub bytes: u64,
    /// Seconds spent generating and writing.
    pub seconds: f64,
    /// Rayon threads.
    pub threads: usize,
}

impl GenReport {
    /// The lines `spacer data gen` prints.
    pub fn text(&self) -> String {
        let mix: Vec<String> = Layout::ALL
            .iter()
            .zip(self.layouts)
            .filter(|(_, c)| *c > 0)
            .map(|(l, c)| format!("{} {c}", l.name()))
            .collect();
        let n = self.scenes.max(1) as f64;
        format!(
            "wrote {} scenes to {} ({:.1} MB): {}\n\
             mean {:.1} agents and {:.0} map features per scene\n\
             generated {} scenes in {:.2} s on {} threads: {:.0} scenes/minute\n",
            self.scenes,
            self.path.display(),
            self.bytes as f64 / 1e6,
            mix.join(", "),
            self.agents as f64 / n,
            self.features as f64 / n,
            self.scenes,
            self.seconds,
            self.threads,
            self.scenes as f64 / self.seconds.max(1e-9) * 60.0
        )
    }
}

/// Generates scenes `0..count` of the batch seeded with `seed` in parallel chunks and
/// streams them into the scene cache `path` (written through a temporary file,
/// renamed when complete), with a progress bar if `progress`.
///
/// # Errors
/// Invalid settings, no scene asked for, a failed write.
pub fn write_cache(
    config: &SyntheticConfig,
    count: usize,
    seed: u64,
    path: &std::path::Path,
    progress: bool,
) -> Result<GenReport, crate::DataError> {
    use crate::error::{DataError, Location};
    use indicatif::{ProgressBar, ProgressStyle};
    config.validate().map_err(|e| {
        DataError::invalid(
            path,
            Location::file(),
            format!("invalid generator settings: {e}"),
        )
    })?;
    if count == 0 {
        return Err(DataError::invalid(
            path,
            Location::file(),
            "--count must be at least 1",
        ));
    }
    let started = std::time::Instant::now();
    let mut writer = super::cache::CacheWriter::create(path)?;
    let bar = if progress {
        ProgressBar::new(count as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} generating [{bar:40}] {pos}/{len} scenes ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let threads = rayon::current_num_threads();
    let chunk = (threads * 32).max(64);
    let (mut agents, mut features) = (0usize, 0usize);
    let mut layouts = [0usize; Layout::ALL.len()];
    let mut begin = 0;
    while begin < count {
        let end = (begin + chunk).min(count);
        for s in &generate_range(config, seed, begin..end) {
            writer.push(s)?;
            agents += s.tracks.len();
            features += s.map.len();
            if let Some(l) = Layout::of_scene_id(&s.id) {
                layouts[l as usize] += 1;
            }
        }
        bar.inc((end - begin) as u64);
        begin = end;
    }
    let scenes = writer.finish()?;
    bar.finish_and_clear();
    Ok(GenReport {
        path: path.to_path_buf(),
        scenes,
        layouts,
        agents,
        features,
        bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        seconds: started.elapsed().as_secs_f64(),
        threads,
    })
}

/// Moves the local network and logs into a world frame and builds the [`Scene`].
fn export(
    net: &road::Network,
    logs: traffic::Logs,
    config: &SyntheticConfig,
    seed: u64,
    rng: &mut ChaCha8Rng,
) -> Scene {
    let extent = if config.world_extent.is_finite() {
        config.world_extent.max(0.0)
    } else {
        0.0
    };
    let yaw = if extent > 0.0 {
        rng.random_range(-std::f32::consts::PI..std::f32::consts::PI)
    } else {
        0.0
    };
    let (ox, oy, z0) = if extent > 0.0 {
        (
            rng.random_range(-extent..=extent),
            rng.random_range(-extent..=extent),
            rng.random_range(-20.0..60.0f32),
        )
    } else {
        (0.0, 0.0, 0.0)
    };
    let frame = Pose::new(ox, oy, yaw);
    let point = |p: Vec2| {
        let q = frame.to_world(p - net.focus);
        MapPoint {
            x: q.x,
            y: q.y,
            z: z0,
        }
    };
    // Lanes first (id = index + 1), then the other features.
    let lane_id = |i: usize| i as i64 + 1;
    let mut map: Vec<MapFeature> = Vec::with_capacity(net.lanes.len() + net.features.len());
    for (i, lane) in net.lanes.iter().enumerate() {
        let mut f = MapFeature::new(
            lane_id(i),
            MapFeatureKind::Lane(lane.lane_type),
            lane.path.points().iter().map(|&p| point(p)).collect(),
        );
        f.entry_lanes = lane.entry.iter().map(|&e| lane_id(e)).collect();
        f.exit_lanes = lane.exit.iter().map(|&e| lane_id(e)).collect();
        f.speed_limit_mph = Some((lane.speed_limit / 0.44704).round());
        map.push(f);
    }
    for (j, feat) in net.features.iter().enumerate() {
        let mut f = MapFeature::new(
            (net.lanes.len() + j) as i64 + 1,
            feat.kind,
            feat.points.iter().map(|&p| point(p)).collect(),
        );
        f.controlled_lanes = feat.controlled.iter().map(|&l| lane_id(l)).collect();
        map.push(f);
    }
    let signals = logs
        .signals
        .iter()
        .map(|step| {
            step.iter()
                .map(|&(lane, state, stop)| LaneSignal {
                    lane: lane_id(lane),
                    state,
                    stop_point: point(stop),
                })
                .collect()
        })
        .collect();
    let id_base: i64 = rng.random_range(100..5000);
    let tracks: Vec<Track> = logs
        .agents
        .into_iter()
        .enumerate()
        .map(|(i, (object_type, states))| Track {
            id: id_base + i as i64,
            object_type,
            states: states
                .into_iter()
                .map(|s| {
                    if !s.valid {
                        return ObjectState::default();
                    }
                    let p = frame.to_world(Vec2::new(s.x, s.y) - net.focus);
                    let v = Vec2::new(s.vx, s.vy).rotate(yaw);
                    ObjectState {
                        x: p.x,
                        y: p.y,
                        z: z0 + s.z,
                        heading: spacer_core::math::wrap_angle(s.heading + yaw),
                        vx: v.x,
                        vy: v.y,
                        ..s
                    }
                })
                .collect(),
        })
        .collect();
    let sdc_index = choose_sdc(&tracks, logs.sdc, frame.to_world(Vec2::ZERO));
    let tracks_to_predict = tracks
        .iter()
        .enumerate()
        .filter(|&(i, t)| Some(i) != sdc_index && t.valid_at(CURRENT_STEP))
        .map(|(track_index, _)| PredictionTarget {
            track_index,
            difficulty: 0,
        })
        .collect();
    Scene {
        id: format!("synthetic-{}-{seed:016x}", net.layout.name()),
        source: SceneSource::Synthetic,
        current_step: CURRENT_STEP,
        tracks,
        map,
        signals,
        sdc_index,
        tracks_to_predict,
        objects_of_interest: Vec::new(),
    }
}

/// The planned self-driving car if it stayed on the map for the whole log, else the
/// vehicle valid throughout nearest the point of interest, else the vehicle valid at
/// the current step with the longest log.
fn choose_sdc(tracks: &[Track], planned: Option<usize>, focus: Vec2) -> Option<usize> {
    use super::ObjectType;
    if planned.is_some() {
        return planned;
    }
    let vehicles = || {
        tracks
            .iter()
            .enumerate()
            .filter(|(_, t)| t.object_type == ObjectType::Vehicle && t.valid_at(CURRENT_STEP))
    };
    let dist = |t: &Track| {
        let s = &t.states[CURRENT_STEP];
        (Vec2::new(s.x, s.y) - focus).norm()
    };
    vehicles()
        .filter(|(_, t)| t.states.iter().all(|s| s.valid))
        .min_by(|a, b| dist(a.1).total_cmp(&dist(b.1)))
        .map(|(i, _)| i)
        .or_else(|| {
            vehicles()
                .max_by_key(|(_, t)| t.states.iter().filter(|s| s.valid).count())
                .map(|(i, _)| i)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{NUM_STEPS, ObjectType, RoadEdgeType};
    use proptest::prelude::*;
    use spacer_core::geometry::{OrientedBox, Segment};

    macro_rules! ensure {
        ($c:expr) => {{
            let ok: bool = $c;
            if !ok {
                return Err(format!("line {}: {}", line!(), stringify!($c)));
            }
        }};
        ($c:expr, $($arg:tt)+) => {{
            let ok: bool = $c;
            if !ok {
                return Err(format!($($arg)+));
            }
        }};
    }

    macro_rules! ensure_eq {
        ($a:expr, $b:expr $(,)?) => {
            ensure!($a == $b)
        };
        ($a:expr, $b:expr, $($arg:tt)+) => {
            ensure!($a == $b, $($arg)+)
        };
    }

    macro_rules! ensure_ne {
        ($a:expr, $b:expr $(,)?) => {
            ensure!($a != $b)
        };
    }

    fn test_config() -> SyntheticConfig {
        SyntheticConfig {
            max_agents: 48,
            burn_in_steps: 40,
            ..SyntheticConfig::default()
        }
    }

    fn obox(s: &ObjectState) -> OrientedBox {
        OrientedBox::new(Pose::new(s.x, s.y, s.heading), s.length, s.width)
    }

    fn is_vehicle(t: &Track) -> bool {
        matches!(t.object_type, ObjectType::Vehicle | ObjectType::Cyclist)
    }

    /// Road-edge segments hashed on a 10 m grid.
    struct EdgeGrid {
        cells: std::collections::HashMap<(i32, i32), Vec<Segment>>,
    }

    impl EdgeGrid {
        fn new(scene: &Scene) -> Self {
            let mut cells: std::collections::HashMap<(i32, i32), Vec<Segment>> = Default::default();
            for f in &scene.map {
                if !matches!(f.kind, MapFeatureKind::RoadEdge(_)) {
                    continue;
                }
                for w in f.points.windows(2) {
                    let seg = Segment::new(Vec2::new(w[0].x, w[0].y), Vec2::new(w[1].x, w[1].y));
                    let m = seg.midpoint();
                    let key = ((m.x / 10.0).floor() as i32, (m.y / 10.0).floor() as i32);
                    cells.entry(key).or_default().push(seg);
                }
            }
            Self { cells }
        }

        fn distance(&self, b: &OrientedBox) -> f32 {
            let (cx, cy) = (
                (b.center.x / 10.0).floor() as i32,
                (b.center.y / 10.0).floor() as i32,
            );
            let mut best = f32::INFINITY;
            for dx in -2..=2 {
                for dy in -2..=2 {
                    if let Some(segs) = self.cells.get(&(cx + dx, cy + dy)) {
                        for s in segs {
                            best = best.min(b.distance_to_segment(s));
                        }
                    }
                }
            }
            best
        }
    }

    /// Every physical and structural invariant a synthetic scene must meet.
    fn check_scene(scene: &Scene) -> Result<(), String> {
        let id = &scene.id;
        // What every loaded scene must pass.
        crate::scenario::validate::validate_scene(
            scene,
            crate::scenario::validate::StepRule::Full,
            std::path::Path::new("synthetic"),
            None,
        )
        .map_err(|e| e.to_string())?;
        ensure_eq!(scene.source, SceneSource::Synthetic);
        ensure_eq!(scene.current_step, CURRENT_STEP);
        ensure_eq!(scene.signals.len(), NUM_STEPS, "{id}");
        ensure!(!scene.tracks.is_empty(), "{id}: no tracks");
        let Some(sdc) = scene.sdc_index else {
            return Err(format!("{id}: no self-driving car"));
        };
        ensure_eq!(scene.tracks[sdc].object_type, ObjectType::Vehicle);
        ensure!(
            scene.tracks[sdc].states.iter().all(|s| s.valid),
            "{id}: sdc must be valid throughout"
        );
        let mut ids = std::collections::HashSet::new();
        for (ti, t) in scene.tracks.iter().enumerate() {
            ensure!(ids.insert(t.id), "{id}: duplicate track id");
            ensure_eq!(t.states.len(), NUM_STEPS);
            // Valid over one contiguous interval.
            let valid: Vec<usize> = (0..NUM_STEPS).filter(|&k| t.states[k].valid).collect();
            ensure!(!valid.is_empty(), "{id}: track {ti} never valid");
            ensure_eq!(
                valid.len(),
                valid[valid.len() - 1] - valid[0] + 1,
                "{id}: track {ti} has gaps"
            );
            for s in t.states.iter().filter(|s| s.valid) {
                ensure!(s.x.is_finite() && s.y.is_finite() && s.heading.is_finite());
                let (l, w) = (s.length, s.width);
                match t.object_type {
                    ObjectType::Vehicle => {
                        ensure!((3.5..12.5).contains(&l) && (1.6..2.7).contains(&w))
                    }
                    ObjectType::Cyclist => {
                        ensure!((1.4..2.1).contains(&l) && (0.5..1.0).contains(&w))
                    }
                    ObjectType::Pedestrian => {
                        ensure!((0.3..1.1).contains(&l) && (0.3..1.1).contains(&w))
                    }
                    _ => return Err(format!("{id}: unexpected type")),
                }
            }
            // Kinematics: speed, acceleration, yaw rate and consistency of heading and
            // velocity with the motion.
            for k in 0..NUM_STEPS - 1 {
                let (a, b) = (&t.states[k], &t.states[k + 1]);
                if !(a.valid && b.valid) {
                    continue;
                }
                let va = a.vx.hypot(a.vy);
                let vb = b.vx.hypot(b.vy);
                ensure!(va < 35.0, "{id}: track {ti} speed {va}");
                let acc = (vb - va) / 0.1;
                if is_vehicle(t) {
                    ensure!(
                        (-8.5..=4.5).contains(&acc),
                        "{id}: track {ti} step {k} acceleration {acc}"
                    );
                    let yaw_rate = spacer_core::math::wrap_angle(b.heading - a.heading) / 0.1;
                    ensure!(
                        yaw_rate.abs() < 1.2,
                        "{id}: track {ti} ({:?}) step {k} yaw rate {yaw_rate} at {va} m/s",
                        t.object_type
                    );
                }
                let disp = Vec2::new(b.x - a.x, b.y - a.y);
                let pred = Vec2::new(a.vx, a.vy) * 0.1;
                ensure!(
                    (disp - pred).norm() < 0.15,
                    "{id}: track {ti} ({:?}) step {k} moved {disp:?}, velocity says {pred:?}",
                    t.object_type
                );
                if is_vehicle(t) && va > 1.0 {
                    let dh = spacer_core::math::wrap_angle(a.vy.atan2(a.vx) - a.heading);
                    ensure!(
                        dh.abs() < 0.02,
                        "{id}: track {ti} step {k} heading off velocity by {dh}"
                    );
                }
            }
        }
        for p in &scene.tracks_to_predict {
            ensure!(scene.tracks[p.track_index].valid_at(CURRENT_STEP));
            ensure_ne!(Some(p.track_index), scene.sdc_index);
        }
        // No overlaps between vehicles (cyclists included), nor with pedestrians.
        for k in 0..NUM_STEPS {
            let live: Vec<(usize, OrientedBox, bool)> = scene
                .tracks
                .iter()
                .enumerate()
                .filter(|(_, t)| t.states[k].valid)
                .map(|(i, t)| (i, obox(&t.states[k]), is_vehicle(t)))
                .collect();
            for (x, (i, bi, vi)) in live.iter().enumerate() {
                for (j, bj, vj) in &live[x + 1..] {
                    if !(vi | vj) || (bi.center - bj.center).norm() > 15.0 {
                        continue;
                    }
                    let d = bi.signed_distance(bj);
                    ensure!(
                        d > -0.02,
                        "{id}: tracks {i} and {j} overlap by {d} at step {k}"
                    );
                }
            }
        }
        // Vehicles stay within the road edges (5 cm tolerance).
        let grid = EdgeGrid::new(scene);
        for (ti, t) in scene
            .tracks
            .iter()
            .enumerate()
            .filter(|(_, t)| is_vehicle(t))
        {
            for (k, s) in t.states.iter().enumerate().filter(|(_, s)| s.valid) {
                let b = obox(s);
                let b = OrientedBox {
                    length: b.length - 0.1,
                    width: b.width - 0.1,
                    ..b
                };
                let d = grid.distance(&b);
                ensure!(d > 0.0, "{id}: track {ti} touches a road edge at step {k}");
            }
        }
        // Map: connected lanes, valid references, proper polygons.
        let by_id: std::collections::HashMap<i64, &MapFeature> =
            scene.map.iter().map(|f| (f.id, f)).collect();
        ensure_eq!(by_id.len(), scene.map.len(), "{id}: duplicate feature ids");
        for f in &scene.map {
            match f.kind {
                MapFeatureKind::Lane(_) => {
                    ensure!(f.points.len() >= 2);
                    for e in &f.exit_lanes {
                        let next = by_id[e];
                        ensure!(matches!(next.kind, MapFeatureKind::Lane(_)));
                        ensure!(next.entry_lanes.contains(&f.id), "{id}: one-way link");
                        let a = f.points[f.points.len() - 1];
                        let b = next.points[0];
                        let gap = (a.x - b.x).hypot(a.y - b.y);
                        ensure!(gap < 0.05, "{id}: lane {} ends {gap} m from {}", f.id, e);
                    }
                    for e in &f.entry_lanes {
                        ensure!(by_id[e].exit_lanes.contains(&f.id));
                    }
                    ensure!(f.speed_limit_mph.is_some_and(|v| v > 0.0));
                }
                MapFeatureKind::StopSign => {
                    ensure_eq!(f.points.len(), 1);
                    ensure!(!f.controlled_lanes.is_empty());
                    for l in &f.controlled_lanes {
                        ensure!(matches!(by_id[l].kind, MapFeatureKind::Lane(_)));
                    }
                }
                MapFeatureKind::Crosswalk
                | MapFeatureKind::SpeedBump
                | MapFeatureKind::Driveway => {
                    ensure_eq!(f.points.len(), 4)
                }
                MapFeatureKind::RoadEdge(t) => {
                    assert_eq!(t, RoadEdgeType::Boundary);
                    ensure!(f.points.len() >= 2);
                }
                MapFeatureKind::RoadLine(_) => ensure!(f.points.len() >= 2),
            }
        }
        for step in &scene.signals {
            for s in step {
                ensure!(matches!(by_id[&s.lane].kind, MapFeatureKind::Lane(_)));
            }
        }
        // Road edges keep the road on their left (WOMD): 1.5 m to the left of a sample
        // of edge segments is nearer a lane centre than 1.5 m to the right (where
        // lanes lie on both sides, as at a merge's gore, the sample is skipped).
        let lane_pts: Vec<Vec2> = scene
            .map
            .iter()
            .filter(|f| matches!(f.kind, MapFeatureKind::Lane(_)))
            .flat_map(|f| f.points.iter().map(|p| Vec2::new(p.x, p.y)))
            .collect();
        let nearest = |q: Vec2| {
            lane_pts
                .iter()
                .map(|p| (*p - q).norm())
                .fold(f32::INFINITY, f32::min)
        };
        for f in scene
            .map
            .iter()
            .filter(|f| matches!(f.kind, MapFeatureKind::RoadEdge(_)))
        {
            for w in f.points.windows(2).step_by(25) {
                let a = Vec2::new(w[0].x, w[0].y);
                let b = Vec2::new(w[1].x, w[1].y);
                let m = (a + b) * 0.5;
                let len = (b - a).norm();
                ensure!(
                    len > 1e-3,
                    "{id}: road edge {} repeats a point at {m:?}",
                    f.id
                );
                let left = Vec2::new(a.y - b.y, b.x - a.x) * (1.5 / len);
                let (dl, dr) = (nearest(m + left), nearest(m - left));
                ensure!(
                    dl < dr || (dl < 4.0 && dr < 4.0),
                    "{id}: road edge {} has the road on its right ({dl} m left, {dr} m right) at {m:?}",
                    f.id
                );
            }
        }
        Ok(())
    }

    #[test]
    fn same_seed_same_scene_and_batches_match() {
        let config = test_config();
        let a = generate(&config, 42);
        let b = generate(&config, 42);
        assert_eq!(a, b);
        assert_ne!(a, generate(&config, 43));
        let batch = generate_many(&config, 3, 9);
        for (i, s) in batch.iter().enumerate() {
            assert_eq!(*s, generate(&config, scene_seed(9, i)));
        }
    }

    #[test]
    fn every_layout_is_plausible() {
        let config = test_config();
        for layout in Layout::ALL {
            let cfg = SyntheticConfig {
                layouts: LayoutMix::only(layout),
                ..config.clone()
            };
            for seed in 0..3 {
                let scene = generate(&cfg, scene_seed(seed, layout as usize));
                assert_eq!(Layout::of_scene_id(&scene.id), Some(layout), "{}", scene.id);
                if let Err(e) = check_scene(&scene) {
                    panic!("{e}");
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
        #[test]
        fn random_scenes_are_plausible(seed in any::<u64>()) {
            let r = check_scene(&generate(&test_config(), seed));
            prop_assert!(r.is_ok(), "{}", r.unwrap_err());
        }
    }

    #[test]
    fn scenes_vary_across_seeds() {
        let config = test_config();
        let scenes = generate_many(&config, 24, 1);
        let layouts: std::collections::HashSet<_> = scenes
            .iter()
            .filter_map(|s| Layout::of_scene_id(&s.id))
            .collect();
        assert!(layouts.len() >= 4, "{layouts:?}");
        let counts: std::collections::HashSet<usize> =
            scenes.iter().map(|s| s.tracks.len()).collect();
        assert!(counts.len() >= 8, "{counts:?}");
        let kinds = |t: ObjectType| {
            scenes
                .iter()
                .filter(|s| s.tracks.iter().any(|x| x.object_type == t))
                .count()
        };
        assert!(kinds(ObjectType::Pedestrian) > 0 && kinds(ObjectType::Cyclist) > 0);
        assert!(scenes.iter().any(|s| s.has_signals()));
        assert!(
            scenes
                .iter()
                .any(|s| s.map.iter().any(|f| f.kind == MapFeatureKind::StopSign))
        );
        // Drivers differ: speeds at the current step are spread, not copies.
        let speeds: Vec<f32> = scenes
            .iter()
            .flat_map(|s| s.tracks.iter())
            .filter(|t| t.object_type == ObjectType::Vehicle && t.valid_at(CURRENT_STEP))
            .map(|t| {
                let s = &t.states[CURRENT_STEP];
                s.vx.hypot(s.vy)
            })
            .collect();
        let mean = speeds.iter().sum::<f32>() / speeds.len() as f32;
        let var = speeds.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / speeds.len() as f32;
        assert!(var.sqrt() > 2.0, "speed spread {}", var.sqrt());
        // Some vehicles change lanes or turn: heading changes over the log.
        let turning = scenes
            .iter()
            .flat_map(|s| s.tracks.iter())
            .filter(|t| {
                t.object_type == ObjectType::Vehicle
                    && t.states[0].valid
                    && t.states[NUM_STEPS - 1].valid
                    && spacer_core::math::wrap_angle(
                        t.states[NUM_STEPS - 1].heading - t.states[0].heading,
                    )
                    .abs()
                        > 0.5
            })
            .count();
        assert!(turning > 0);
    }

    /// Every scene of a larger survey passes the checks (`SURVEY_N` scenes, default
    /// 100; `LAYOUT` restricts the layout; `--nocapture` prints the failures).
    #[test]
    fn survey() {
        let n: usize = std::env::var("SURVEY_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100);
        let mut config = test_config();
        if let Some(l) = std::env::var("LAYOUT")
            .ok()
            .and_then(|l| Layout::ALL.into_iter().find(|x| x.name() == l))
        {
            config.layouts = LayoutMix::only(l);
        }
        let scenes = generate_many(&config, n, 77);
        let mut fails = 0;
        for s in &scenes {
            if let Err(e) = check_scene(s) {
                fails += 1;
                println!("{e}");
            }
        }
        println!("{fails} of {n} scenes fail");
        assert_eq!(fails, 0, "{fails} of {n} synthetic scenes fail the checks");
    }

    /// Behaviour per layout (`--nocapture` prints it): no layout leaves a scene
    /// frozen, parks its vehicles, or drives them at implausible speeds.
    #[test]
    fn survey_stats() {
        let n: usize = std::env::var("SURVEY_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100);
        let config = SyntheticConfig::default();
        let scenes = generate_many(&config, n, 123);
        for layout in Layout::ALL {
            let group: Vec<&Scene> = scenes
                .iter()
                .filter(|s| Layout::of_scene_id(&s.id) == Some(layout))
                .collect();
            if group.is_empty() {
                continue;
            }
            let (mut veh, mut moving_end, mut stopped_all, mut total_v, mut vsamples, mut frozen) =
                (0usize, 0usize, 0usize, 0.0f64, 0usize, 0usize);
            let mut agents = 0;
            for s in &group {
                agents += s.tracks.len();
                let mut any_moving_late = false;
                for t in s
                    .tracks
                    .iter()
                    .filter(|t| t.object_type == ObjectType::Vehicle)
                {
                    veh += 1;
                    let speeds: Vec<f32> = t
                        .states
                        .iter()
                        .filter(|x| x.valid)
                        .map(|x| x.vx.hypot(x.vy))
                        .collect();
                    total_v += speeds.iter().map(|&v| v as f64).sum::<f64>();
                    vsamples += speeds.len();
                    if speeds.iter().all(|&v| v < 0.3) {
                        stopped_all += 1;
                    }
                    if t.states[90].valid && t.states[90].vx.hypot(t.states[90].vy) > 1.0 {
                        moving_end += 1;
                        any_moving_late = true;
                    }
                }
                if !any_moving_late {
                    frozen += 1;
                }
            }
            println!(
                "{:<11} scenes {:>3} agents/scene {:>5.1} vehicles {:>5} mean speed {:>5.2} never-moving {:>5.1}% moving-at-end {:>5.1}% frozen scenes {}",
                layout.name(),
                group.len(),
                agents as f64 / group.len() as f64,
                veh,
                total_v / vsamples as f64,
                100.0 * stopped_all as f64 / veh as f64,
                100.0 * moving_end as f64 / veh as f64,
                frozen
            );
            let mean_speed = total_v / vsamples as f64;
            let name = layout.name();
            assert_eq!(frozen, 0, "{name}: {frozen} scenes without late motion");
            assert!(
                (stopped_all as f64) < 0.05 * veh as f64,
                "{name}: {stopped_all} of {veh} vehicles never move"
            );
            assert!(
                (3.0..20.0).contains(&mean_speed),
                "{name}: mean vehicle speed {mean_speed:.2} m/s"
            );
        }
    }

    #[test]
    fn scenes_survive_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("syn.spc");
        let scenes = generate_many(&test_config(), 2, 5);
        crate::scenario::cache::write_cache(&p, &scenes).unwrap();
        assert_eq!(crate::scenario::cache::read_cache(&p).unwrap(), scenes);
    }

    #[test]
    fn configs_are_checked_and_sanitised() {
        assert!(SyntheticConfig::default().validate().is_ok());
        let bad = SyntheticConfig {
            max_agents: 0,
            ..SyntheticConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("max_agents"));
        let odd = SyntheticConfig {
            vehicle_density: (f32::NAN, -3.0),
            pedestrians: (5, 1),
            cyclists: (3, 0),
            layouts: LayoutMix::only(Layout::FourWay),
            world_extent: 0.0,
            ..test_config()
        };
        assert!(odd.validate().is_err());
        let s = generate(&odd, 1);
        assert!(!s.tracks.is_empty());
        assert_eq!(Layout::of_scene_id(&s.id), Some(Layout::FourWay));
        assert_eq!(Layout::of_scene_id("637f20cafde22ff8"), None);
    }
}
