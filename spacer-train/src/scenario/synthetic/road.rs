//! Road networks: lanes with connectivity and right-of-way, and the painted and
//! physical map features around them.
//!
//! A network is built in a local frame (the point of interest at the origin) from one
//! of the [`Layout`]s:
//!
//! - **straight / curved road**: one reference line (straights, arcs and linear
//!   curvature transitions), two-way with 1–3 lanes per direction and optional bike
//!   lanes, or one-way multi-lane at freeway speed; speed bumps and driveways on slow
//!   surface streets.
//! - **4-way / T intersection**: straight arms radiating from a centre at jittered
//!   angles; each arm has inbound (approach) and outbound lanes; connector lanes
//!   (cubic Béziers) join every approach lane to the exits its position allows
//!   (straight from every lane, left from the innermost, right from the outermost);
//!   road edges run along the arms and round each corner parallel to its outermost
//!   right turn, so turning vehicles keep their lane's clearance to the kerb;
//!   crosswalks across the arm mouths; control is all-way stop, two-way stop (stop
//!   signs on the minor road) or two-phase signals with permissive left turns.
//! - **merge**: a one-way road whose outer lane is joined by an on-ramp through a
//!   parallel acceleration lane that tapers into it.
//!
//! Conventions follow WOMD: lanes are centre lines in driving direction; road edges
//! keep the road on their left; stop signs are points beside the road that list the
//! lanes they control; a crosswalk is a four-point polygon.
//!
//! Right of way is explicit so that the traffic model can respect it: approach lanes
//! carry a control (free, stop sign, signal, merge yield); connectors list the
//! connectors they conflict with (their swept vehicle boxes come close), the
//! crosswalks they cross, and a rank (major road over minor, straight over right over
//! left) for gap acceptance.

use rand::Rng;
use spacer_core::geometry::{OrientedBox, Pose, Vec2};
use spacer_core::math::wrap_angle;

use super::path::{Path, RefLine, SPACING, connector_curve, min_vertex_distance};
use super::{Layout, SyntheticConfig};
use crate::scenario::{LaneType, MapFeatureKind, RoadEdgeType, RoadLineType, SignalState};

const MPH: f32 = 0.44704;
/// Curvature above which a lane stretch counts as a curve drivers slow down for.
const CURVE_KAPPA: f32 = 1.0 / 250.0;
/// How far before a merge point no vehicle may change into the priority lane (m).
pub(crate) const MERGE_CLEAR: f32 = 70.0;
/// The box swept along connectors to decide whether two of them conflict.
const CONFLICT_BOX: (f32, f32) = (5.6, 2.7);

/// A turn at an intersection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Movement {
    /// Through.
    Straight,
    /// Left turn.
    Left,
    /// Right turn.
    Right,
}

/// What governs the end of a lane.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Control {
    /// Nothing beyond the junction's occupancy rules.
    Free,
    /// A stop sign: stop, then go first-come first-served.
    Stop,
    /// A traffic signal (state by arm from the [`SignalPlan`]).
    Signal,
    /// An acceleration lane: merge by changing lanes, or wait at `yield_s` (the taper
    /// start) for a gap in the priority lanes.
    MergeYield {
        /// Where the taper starts (m along the lane).
        yield_s: f32,
    },
}

/// A lane inside an intersection.
#[derive(Clone, Debug)]
pub(crate) struct Connector {
    /// The arm it comes from.
    pub(crate) arm_in: usize,
    /// The turn.
    pub(crate) movement: Movement,
    /// Higher ranks have right of way over conflicting lower ones.
    pub(crate) rank: u8,
    /// Connectors from the same approach lane, with the distance after which they
    /// have diverged (a vehicle on one still blocks the other until its rear passes).
    pub(crate) siblings: Vec<(usize, f32)>,
    /// Crossings (indices into [`Network::crossings`]) it passes over.
    pub(crate) crossings: Vec<usize>,
}

/// A stretch of lane with a lower safe speed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SlowZone {
    /// Start (m along the lane).
    pub(crate) s0: f32,
    /// End.
    pub(crate) s1: f32,
    /// Largest curvature in it (1/m); 0 for a speed bump.
    pub(crate) kappa: f32,
}

/// One lane.
#[derive(Clone, Debug)]
pub(crate) struct Lane {
    /// Centre line in driving direction.
    pub(crate) path: Path,
    /// Width (m).
    pub(crate) width: f32,
    /// WOMD lane type.
    pub(crate) lane_type: LaneType,
    /// Speed limit (m/s).
    pub(crate) speed_limit: f32,
    /// Predecessors (lane indices).
    pub(crate) entry: Vec<usize>,
    /// Successors.
    pub(crate) exit: Vec<usize>,
    /// Parallel group and slot (0 = leftmost in driving direction) and the station of
    /// the first point on the group's reference line; `None` for connectors and ramps.
    pub(crate) group: Option<(usize, usize, f32)>,
    /// End-of-lane control.
    pub(crate) control: Control,
    /// The arm an approach or exit lane belongs to.
    pub(crate) arm: Option<usize>,
    /// Set for lanes inside an intersection.
    pub(crate) connector: Option<Connector>,
    /// Curves and speed bumps.
    pub(crate) zones: Vec<SlowZone>,
    /// Lane changes out of this lane are allowed for `s` in this range.
    pub(crate) change_range: (f32, f32),
    /// Vehicles may change into it where they would land before this distance along
    /// it (0: never; short of the end where another lane merges in).
    pub(crate) accepts_changes_until: f32,
}

impl Lane {
    fn new(points: Vec<Vec2>, width: f32, lane_type: LaneType, speed_limit: f32) -> Self {
        Self {
            path: Path::new(points),
            width,
            lane_type,
            speed_limit,
            entry: Vec::new(),
            exit: Vec::new(),
            group: None,
            control: Control::Free,
            arm: None,
            connector: None,
            zones: Vec::new(),
            change_range: (0.0, 0.0),
            accepts_changes_until: 0.0,
        }
    }
}

/// A non-lane map feature in local coordinates.
#[derive(Clone, Debug)]
pub(crate) struct Feature {
    /// Kind.
    pub(crate) kind: MapFeatureKind,
    /// Geometry.
    pub(crate) points: Vec<Vec2>,
    /// Controlled lanes (stop signs).
    pub(crate) controlled: Vec<usize>,
}

/// A pedestrian crossing: the crosswalk and the way across it.
#[derive(Clone, Debug)]
pub(crate) struct Crossing {
    /// The arm it crosses.
    pub(crate) arm: usize,
    /// The crosswalk as a box (for conflict tests).
    pub(crate) area: OrientedBox,
    /// Connector lanes crossing it.
    pub(crate) conflicts: Vec<usize>,
    /// Sidewalk indices at its two ends (the sidewalks start at the crossing).
    pub(crate) sidewalks: (usize, usize),
}

/// A sidewalk centre line; at intersections it starts at a crossing.
#[derive(Clone, Debug)]
pub(crate) struct Sidewalk {
    /// Path.
    pub(crate) path: Path,
    /// The crossing at its start.
    pub(crate) crossing: Option<usize>,
}

/// Stage of a signal phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    Green,
    Yellow,
    AllRed,
}

/// A fixed-time plan: phases of arms that go together, each green, yellow, all-red.
#[derive(Clone, Debug)]
pub(crate) struct SignalPlan {
    /// Arms released in each phase.
    pub(crate) phases: Vec<Vec<usize>>,
    /// Green time per phase (s).
    pub(crate) green: Vec<f32>,
    /// Yellow time (s).
    pub(crate) yellow: f32,
    /// All-red clearance (s).
    pub(crate) all_red: f32,
    /// Offset into the cycle at time zero (s).
    pub(crate) offset: f32,
}

impl SignalPlan {
    fn cycle(&self) -> f32 {
        self.green.iter().sum::<f32>() + self.phases.len() as f32 * (self.yellow + self.all_red)
    }

    /// Phase, stage and time left in the stage at time `t`.
    pub(crate) fn locate(&self, t: f32) -> (usize, Stage, f32) {
        let c = self.cycle().max(1.0);
        let mut x = (t + self.offset).rem_euclid(c);
        for (p, &g) in self.green.iter().enumerate() {
            if x < g {
                return (p, Stage::Green, g - x);
            }
            x -= g;
            if x < self.yellow {
                return (p, Stage::Yellow, self.yellow - x);
            }
            x -= self.yellow;
            if x < self.all_red {
                return (p, Stage::AllRed, self.all_red - x);
            }
            x -= self.all_red;
        }
        (0, Stage::Green, 0.0)
    }

    /// The state vehicles from `arm` see at time `t`.
    pub(crate) fn arm_state(&self, arm: usize, t: f32) -> SignalState {
        let (p, stage, _) = self.locate(t);
        if !self.phases[p].contains(&arm) {
            return SignalState::Stop;
        }
        match stage {
            Stage::Green => SignalState::Go,
            Stage::Yellow => SignalState::Caution,
            Stage::AllRed => SignalState::Stop,
        }
    }

    /// Whether a pedestrian may start across `arm` at `t`, needing `need` seconds:
    /// the traffic running parallel to the crosswalk has green long enough.
    pub(crate) fn walk(&self, arm: usize, t: f32, need: f32) -> bool {
        let (p, stage, left) = self.locate(t);
        stage == Stage::Green && !self.phases[p].contains(&arm) && left >= need
    }
}

/// A road network ready for traffic.
#[derive(Clone, Debug)]
pub(crate) struct Network {
    /// Which layout.
    pub(crate) layout: Layout,
    /// Lanes (index = lane index; ids are assigned at export).
    pub(crate) lanes: Vec<Lane>,
    /// Parallel lane groups: `groups[g][slot]` lists the lanes of a slot by station.
    pub(crate) groups: Vec<Vec<Vec<usize>>>,
    /// Connector conflict matrix (`lanes.len()` squared).
    conflict: Vec<bool>,
    /// Lines, edges, crosswalks, stop signs, speed bumps, driveways.
    pub(crate) features: Vec<Feature>,
    /// Pedestrian crossings.
    pub(crate) crossings: Vec<Crossing>,
    /// Sidewalks.
    pub(crate) sidewalks: Vec<Sidewalk>,
    /// The signal plan, if signalised.
    pub(crate) signals: Option<SignalPlan>,
    /// Acceleration lanes and the priority lanes they merge into, nearest first.
    pub(crate) merges: Vec<(usize, Vec<usize>)>,
    /// The point of interest (junction centre, merge point, road middle).
    pub(crate) focus: Vec2,
    /// Whether the sidewalks carry pedestrians and the road cyclists.
    pub(crate) urban: bool,
}

impl Network {
    /// Whether connectors `a` and `b` may not be occupied at the same time.
    pub(crate) fn conflicts(&self, a: usize, b: usize) -> bool {
        let n = self.lanes.len();
        a < n && b < n && self.conflict[a * n + b]
    }

    /// The lane beside `lane` on `side` (-1 left, +1 right) at distance `s`, and the
    /// corresponding distance along it.
    pub(crate) fn neighbour(&self, lane: usize, side: i32, s: f32) -> Option<(usize, f32)> {
        let l = &self.lanes[lane];
        let (g, slot, st0) = l.group?;
        let slot = slot as i32 + side;
        if slot < 0 {
            return None;
        }
        let global = st0 + l.path.station_at(s);
        for &c in self.groups[g].get(slot as usize)? {
            let cl = &self.lanes[c];
            let (_, _, cst0) = cl.group?;
            let local = global - cst0;
            let last = (cl.path.points().len() - 1) as f32;
            if (0.0..=last).contains(&local) {
                return Some((c, cl.path.s_at_station(local)));
            }
        }
        None
    }

    /// Lanes that start at the map boundary (inflow points).
    pub(crate) fn entries(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.lanes.len())
            .filter(|&i| self.lanes[i].entry.is_empty() && self.lanes[i].connector.is_none())
    }
}

/// Builds a network.
pub(crate) fn build(layout: Layout, config: &SyntheticConfig, rng: &mut impl Rng) -> Network {
    let b = match layout {
        Layout::Straight => road(rng, false),
        Layout::Curved => road(rng, true),
        Layout::FourWay => junction(rng, 4, config),
        Layout::TJunction => junction(rng, 3, config),
        Layout::Merge => merge(rng),
    };
    b.finish(layout)
}

/// Accumulates a network.
struct Builder {
    lanes: Vec<Lane>,
    groups: Vec<Vec<Vec<usize>>>,
    features: Vec<Feature>,
    crossings: Vec<Crossing>,
    sidewalks: Vec<Sidewalk>,
    signals: Option<SignalPlan>,
    merges: Vec<(usize, Vec<usize>)>,
    bumps: Vec<OrientedBox>,
    focus: Vec2,
    urban: bool,
}

impl Builder {
    fn new() -> Self {
        Self {
            lanes: Vec::new(),
            groups: Vec::new(),
            features: Vec::new(),
            crossings: Vec::new(),
            sidewalks: Vec::new(),
            signals: None,
            merges: Vec::new(),
            bumps: Vec::new(),
            focus: Vec2::ZERO,
            urban: true,
        }
    }

    fn group(&mut self) -> usize {
        self.groups.push(Vec::new());
        self.groups.len() - 1
    }

    fn lane(&mut self, lane: Lane) -> usize {
        self.lanes.push(lane);
        self.lanes.len() - 1
    }

    /// Adds a lane of a parallel group.
    fn grouped(&mut self, mut lane: Lane, group: usize, slot: usize, station0: usize) -> usize {
        lane.group = Some((group, slot, station0 as f32));
        lane.accepts_changes_until = if lane.lane_type == LaneType::BikeLane {
            0.0
        } else {
            f32::INFINITY
        };
        let i = self.lane(lane);
        let g = &mut self.groups[group];
        if g.len() <= slot {
            g.resize(slot + 1, Vec::new());
        }
        g[slot].push(i);
        i
    }

    fn link(&mut self, from: usize, to: usize) {
        self.lanes[from].exit.push(to);
        self.lanes[to].entry.push(from);
    }

    fn feature(&mut self, kind: MapFeatureKind, mut points: Vec<Vec2>) {
        // Pieces joined end to start repeat their shared point.
        points.dedup_by(|b, a| (*a - *b).norm() < 0.2);
        if points.len() >= 2 || kind == MapFeatureKind::StopSign {
            self.features.push(Feature {
                kind,
                points,
                controlled: Vec::new(),
            });
        }
    }

    fn line(&mut self, t: RoadLineType, points: Vec<Vec2>) {
        self.feature(MapFeatureKind::RoadLine(t), points);
    }

    fn edge(&mut self, points: Vec<Vec2>) {
        self.feature(MapFeatureKind::RoadEdge(RoadEdgeType::Boundary), points);
    }

    /// A polygon feature from a box.
    fn polygon(&mut self, kind: MapFeatureKind, b: &OrientedBox) {
        self.feature(kind, b.corners().to_vec());
    }

    fn finish(mut self, layout: Layout) -> Network {
        let n = self.lanes.len();
        // Curves.
        for lane in &mut self.lanes {
            let k = lane.path.curvature();
            let mut i = 0;
            while i < k.len() {
                if k[i] > CURVE_KAPPA {
                    let start = i;
                    let mut kmax = 0.0f32;
                    while i < k.len() && k[i] > CURVE_KAPPA {
                        kmax = kmax.max(k[i]);
                        i += 1;
                    }
                    lane.zones.push(SlowZone {
                        s0: lane.path.s_at_vertex(start),
                        s1: lane.path.s_at_vertex(i.saturating_sub(1)),
                        kappa: kmax,
                    });
                } else {
                    i += 1;
                }
            }
        }
        // Speed bumps: every lane vertex inside a bump (inflated by a metre) slows.
        for bump in &self.bumps {
            let zone = bump.scaled(1.0);
            let inflated = OrientedBox {
                length: zone.length + 2.0,
                width: zone.width + 2.0,
                ..zone
            };
            for lane in &mut self.lanes {
                let inside: Vec<usize> = (0..lane.path.points().len())
                    .filter(|&i| inflated.contains(lane.path.points()[i]))
                    .collect();
                if let (Some(&a), Some(&b)) = (inside.first(), inside.last()) {
                    lane.zones.push(SlowZone {
                        s0: lane.path.s_at_vertex(a),
                        s1: lane.path.s_at_vertex(b),
                        kappa: 0.0,
                    });
                }
            }
        }
        for lane in &mut self.lanes {
            lane.zones
                .sort_by(|a, b| a.s0.partial_cmp(&b.s0).unwrap_or(std::cmp::Ordering::Equal));
        }
        // Connector conflicts and siblings.
        let mut conflict = vec![false; n * n];
        let connectors: Vec<usize> = (0..n)
            .filter(|&i| self.lanes[i].connector.is_some())
            .collect();
        for (ia, &a) in connectors.iter().enumerate() {
            for &b in &connectors[ia + 1..] {
                let (la, lb) = (&self.lanes[a], &self.lanes[b]);
                if la.entry == lb.entry {
                    let da = diverge(&la.path, &lb.path);
                    let db = diverge(&lb.path, &la.path);
                    if let Some(c) = self.lanes[a].connector.as_mut() {
                        c.siblings.push((b, da));
                    }
                    if let Some(c) = self.lanes[b].connector.as_mut() {
                        c.siblings.push((a, db));
                    }
                    continue;
                }
                let hit = la.exit == lb.exit || swept_overlap(&la.path, &lb.path);
                conflict[a * n + b] = hit;
                conflict[b * n + a] = hit;
            }
            // Crossings.
            for (x, crossing) in self.crossings.iter_mut().enumerate() {
                let lane = &self.lanes[a];
                if lane
                    .path
                    .points()
                    .iter()
                    .any(|p| crossing.area.distance_to_point(*p) < 2.0)
                {
                    crossing.conflicts.push(a);
                    if let Some(c) = self.lanes[a].connector.as_mut() {
                        c.crossings.push(x);
                    }
                }
            }
        }
        Network {
            layout,
            lanes: self.lanes,
            groups: self.groups,
            conflict,
            features: self.features,
            crossings: self.crossings,
            sidewalks: self.sidewalks,
            signals: self.signals,
            merges: self.merges,
            focus: self.focus,
            urban: self.urban,
        }
    }
}

/// The distance along `a` after which it is more than a vehicle width from `b`.
fn diverge(a: &Path, b: &Path) -> f32 {
    for (i, p) in a.points().iter().enumerate() {
        if min_vertex_distance(std::slice::from_ref(p), b.points()) > 3.2 {
            return a.s_at_vertex(i);
        }
    }
    a.len()
}

/// Whether vehicle boxes moving along the two paths can touch.
fn swept_overlap(a: &Path, b: &Path) -> bool {
    let (l, w) = CONFLICT_BOX;
    let reach = (l * l + w * w).sqrt() + 0.5;
    let boxes = |p: &Path| -> Vec<OrientedBox> {
        p.points()
            .iter()
            .zip(p.tangents())
            .map(|(q, &h)| OrientedBox::new(Pose::new(q.x, q.y, h), l, w))
            .collect()
    };
    let (ba, bb) = (boxes(a), boxes(b));
    for x in &ba {
        for y in &bb {
            if (x.center - y.center).norm() < reach && x.signed_distance(y) < 0.3 {
                return true;
            }
        }
    }
    false
}

fn mph(rng: &mut impl Rng, choices: &[f32]) -> f32 {
    choices[rng.random_range(0..choices.len())] * MPH
}

fn lanes_per_direction(rng: &mut impl Rng, max: usize) -> usize {
    let x: f32 = rng.random();
    let n = if x < 0.45 {
        1
    } else if x < 0.85 {
        2
    } else {
        3
    };
    n.min(max)
}

fn centre_line_type(rng: &mut impl Rng) -> RoadLineType {
    let x: f32 = rng.random();
    if x < 0.5 {
        RoadLineType::SolidDoubleYellow
    } else if x < 0.7 {
        RoadLineType::BrokenSingleYellow
    } else if x < 0.8 {
        RoadLineType::PassingDoubleYellow
    } else {
        RoadLineType::SolidSingleYellow
    }
}

/// A straight or curved road section.
fn road(rng: &mut impl Rng, curved: bool) -> Builder {
    let mut b = Builder::new();
    let one_way = rng.random_bool(0.2);
    let w: f32 = rng.random_range(3.3..3.8);
    let sh: f32 = rng.random_range(0.4..2.0);
    let (n_f, n_b, speed, length) = if one_way {
        let n = rng.random_range(2..=4);
        (
            n,
            0,
            mph(rng, &[55.0, 60.0, 65.0]),
            rng.random_range(620.0..700.0),
        )
    } else {
        let n = lanes_per_direction(rng, 3);
        let nb = if rng.random_bool(0.15) {
            (n % 3) + 1
        } else {
            n
        };
        (
            n,
            nb,
            mph(rng, &[25.0, 30.0, 35.0, 40.0, 45.0]),
            rng.random_range(380.0..480.0),
        )
    };
    b.urban = !one_way;
    let bike = !one_way && speed <= 40.0 * MPH && rng.random_bool(0.3);
    let bw = if bike {
        rng.random_range(1.6..2.0)
    } else {
        0.0
    };
    let pieces: Vec<(f32, f32)> = if curved {
        let mut v = Vec::new();
        let mut used = 0.0;
        let lead: f32 = rng.random_range(40.0..120.0);
        v.push((lead, 0.0));
        used += lead;
        let turns = rng.random_range(1..=2);
        for _ in 0..turns {
            let r: f32 = if one_way {
                rng.random_range(250.0..600.0)
            } else {
                rng.random_range(60.0..250.0)
            };
            let k = if rng.random_bool(0.5) {
                1.0 / r
            } else {
                -1.0 / r
            };
            let angle: f32 = rng.random_range(0.4..1.6);
            let trans: f32 = rng.random_range(15.0..35.0);
            let arc = (angle * r - trans).max(10.0);
            v.push((trans, k));
            v.push((arc, k));
            v.push((trans, 0.0));
            used += 2.0 * trans + arc;
            let gap: f32 = rng.random_range(20.0..60.0);
            v.push((gap, 0.0));
            used += gap;
            if used > length * 0.8 {
                break;
            }
        }
        v.push(((length - used).max(60.0), 0.0));
        v
    } else {
        let k = rng.random_range(-1.0..1.0) / 3000.0;
        vec![(length, k)]
    };
    let refl = RefLine::integrate(Vec2::ZERO, 0.0, &pieces);
    let n = refl.len();
    // Centre the road on its middle.
    let mid = refl.pts[n / 2];
    let refl = RefLine {
        pts: refl.pts.iter().map(|p| *p - mid).collect(),
        normals: refl.normals,
    };
    b.focus = Vec2::ZERO;
    let all = 0..n;
    let lane_type = if one_way {
        LaneType::Freeway
    } else {
        LaneType::SurfaceStreet
    };
    // Forward direction: right of the reference line.
    let gf = b.group();
    for i in 0..n_f {
        let off = -(i as f32 + 0.5) * w;
        let mut lane = Lane::new(refl.offset(all.clone(), |_| off), w, lane_type, speed);
        lane.change_range = (10.0, lane.path.len() - 20.0);
        b.grouped(lane, gf, i, 0);
    }
    if bike {
        let off = -(n_f as f32 * w + 0.5 * bw);
        let lane = Lane::new(
            refl.offset(all.clone(), |_| off),
            bw,
            LaneType::BikeLane,
            speed.min(8.0),
        );
        b.grouped(lane, gf, n_f, 0);
    }
    // Backward direction: left of the reference line, points reversed.
    if n_b > 0 {
        let gb = b.group();
        for i in 0..n_b {
            let off = (i as f32 + 0.5) * w;
            let mut pts = refl.offset(all.clone(), |_| off);
            pts.reverse();
            let mut lane = Lane::new(pts, w, lane_type, speed);
            lane.change_range = (10.0, lane.path.len() - 20.0);
            b.grouped(lane, gb, i, 0);
        }
        if bike {
            let off = n_b as f32 * w + 0.5 * bw;
            let mut pts = refl.offset(all.clone(), |_| off);
            pts.reverse();
            let lane = Lane::new(pts, bw, LaneType::BikeLane, speed.min(8.0));
            b.grouped(lane, gb, n_b, 0);
        }
    }
    // Lines.
    if one_way {
        b.line(
            RoadLineType::SolidSingleYellow,
            refl.offset(all.clone(), |_| 0.0),
        );
        b.line(
            RoadLineType::SolidSingleWhite,
            refl.offset(all.clone(), |_| -(n_f as f32) * w),
        );
    } else {
        let t = centre_line_type(rng);
        b.line(t, refl.offset(all.clone(), |_| 0.0));
    }
    for i in 1..n_f {
        b.line(
            RoadLineType::BrokenSingleWhite,
            refl.offset(all.clone(), |_| -(i as f32) * w),
        );
    }
    for i in 1..n_b {
        let mut pts = refl.offset(all.clone(), |_| i as f32 * w);
        pts.reverse();
        b.line(RoadLineType::BrokenSingleWhite, pts);
    }
    // Outer lane borders: beside a bike lane, or a wide shoulder of a two-way road.
    if bike || (!one_way && sh > 1.0) {
        b.line(
            RoadLineType::SolidSingleWhite,
            refl.offset(all.clone(), |_| -(n_f as f32) * w),
        );
        let mut pts = refl.offset(all.clone(), |_| n_b as f32 * w);
        pts.reverse();
        b.line(RoadLineType::SolidSingleWhite, pts);
    }
    // Edges (road on their left).
    let right = -(n_f as f32 * w + bw + sh);
    let left = if one_way {
        sh
    } else {
        n_b as f32 * w + bw + sh
    };
    b.edge(refl.offset(all.clone(), |_| right));
    let mut pts = refl.offset(all.clone(), |_| left);
    pts.reverse();
    b.edge(pts);
    if !one_way {
        // Speed bumps on slow streets.
        if speed <= 30.0 * MPH && rng.random_bool(0.35) {
            let count = rng.random_range(1..=2);
            for _ in 0..count {
                let st = rng.random_range(n / 4..3 * n / 4);
                let depth: f32 = rng.random_range(1.0..3.7);
                let c = refl.offset_point(st, 0.5 * (left + right));
                let bump = OrientedBox::new(
                    Pose::new(c.x, c.y, refl.heading(st)),
                    depth,
                    left - right - 0.4,
                );
                b.polygon(MapFeatureKind::SpeedBump, &bump);
                b.bumps.push(bump);
            }
        }
        // Driveways beyond the edges.
        let count = rng.random_range(0..=4);
        for _ in 0..count {
            let st = rng.random_range(20..n - 20);
            let side = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
            let base = if side > 0.0 { left } else { right };
            let depth: f32 = rng.random_range(5.0..9.0);
            let width: f32 = rng.random_range(4.0..7.0);
            let c = refl.offset_point(st, base + side * 0.5 * depth);
            let dw = OrientedBox::new(Pose::new(c.x, c.y, refl.heading(st)), width, depth);
            b.polygon(MapFeatureKind::Driveway, &dw);
        }
        // Sidewalks.
        let sw: f32 = rng.random_range(1.5..2.5);
        b.sidewalks.push(Sidewalk {
            path: Path::new(refl.offset(all.clone(), |_| right - sw)),
            crossing: None,
        });
        let mut pts = refl.offset(all, |_| left + sw);
        pts.reverse();
        b.sidewalks.push(Sidewalk {
            path: Path::new(pts),
            crossing: None,
        });
    }
    b
}

/// One arm of an intersection.
struct Arm {
    theta: f32,
    d: Vec2,
    n: Vec2,
    lanes: usize,
    width: f32,
    shoulder: f32,
    length: f32,
    speed: f32,
    control: Control,
    major: bool,
    /// Radius where the kerb fillets end (the arm's mouth).
    mouth: f32,
    /// Radius where its lanes start (after the crosswalk).
    lane_start: f32,
    /// Where kerb fillets on the left / right side would end (sizes the mouth).
    edge_start: (f32, f32),
}

impl Arm {
    /// Point at radius `r`, lateral offset `lat` (left of the outward direction).
    fn at(&self, r: f32, lat: f32) -> Vec2 {
        self.d * r + self.n * lat
    }

    fn half(&self) -> f32 {
        self.lanes as f32 * self.width
    }

    fn left(&self) -> f32 {
        self.half() + self.shoulder
    }

    fn right(&self) -> f32 {
        -(self.half() + self.shoulder)
    }

    /// Points at radii from `r0` to `r1` (either order) at `lat`.
    fn radial(&self, r0: f32, r1: f32, lat: f32) -> Vec<Vec2> {
        let steps = ((r1 - r0).abs() / SPACING).ceil().max(1.0) as usize;
        (0..=steps)
            .map(|i| self.at(r0 + (r1 - r0) * i as f32 / steps as f32, lat))
            .collect()
    }
}

/// A 4-way (`arms` = 4) or T (`arms` = 3) intersection.
fn junction(rng: &mut impl Rng, arms: usize, config: &SyntheticConfig) -> Builder {
    let mut b = Builder::new();
    let w: f32 = rng.random_range(3.3..3.8);
    let base: f32 = rng.random_range(0.0..std::f32::consts::TAU);
    let half_pi = std::f32::consts::FRAC_PI_2;
    let angles: Vec<f32> = if arms == 4 {
        (0..4)
            .map(|k| base + k as f32 * half_pi + rng.random_range(-0.15..0.15))
            .collect()
    } else {
        vec![
            base,
            base + half_pi + rng.random_range(-0.3..0.3),
            base + 2.0 * half_pi + rng.random_range(-0.08..0.08),
        ]
    };
    // Road A: arms 0 and 2; road B: arms 1 (and 3).
    let lanes_a = lanes_per_direction(rng, 3);
    let lanes_b = lanes_per_direction(rng, 2);
    let speed_a = mph(rng, &[25.0, 30.0, 35.0, 40.0, 45.0]);
    let speed_b = mph(rng, &[25.0, 30.0, 35.0]);
    let sh_a: f32 = rng.random_range(0.3..1.5);
    let sh_b: f32 = rng.random_range(0.3..1.5);
    let signalised = rng.random_bool(config.signal_probability.clamp(0.0, 1.0) as f64);
    let x: f32 = rng.random();
    // Stop control: all-way, or the minor road (B) only.
    let all_way = if arms == 4 { x < 0.55 } else { x < 0.25 };
    let mut arm: Vec<Arm> = angles
        .iter()
        .enumerate()
        .map(|(k, &theta)| {
            let major = k % 2 == 0;
            let control = if signalised {
                Control::Signal
            } else if all_way || !major {
                Control::Stop
            } else {
                Control::Free
            };
            Arm {
                theta,
                d: Vec2::from_angle(theta),
                n: Vec2::from_angle(theta + half_pi),
                lanes: if major { lanes_a } else { lanes_b },
                width: w,
                shoulder: if major { sh_a } else { sh_b },
                length: rng.random_range(160.0..210.0),
                speed: if major { speed_a } else { speed_b },
                control,
                major,
                mouth: 6.0,
                lane_start: 7.0,
                edge_start: (6.0, 6.0),
            }
        })
        .collect();
    let k = arm.len();
    // Kerb corners between consecutive arms (counter-clockwise) size the junction: an
    // arm's mouth is where a kerb fillet of a random radius would end.
    for a in 0..k {
        let bi = (a + 1) % k;
        let alpha = (arm[bi].theta - arm[a].theta).rem_euclid(std::f32::consts::TAU);
        let p = arm[a].n * arm[a].left();
        let q = arm[bi].n * arm[bi].right();
        let (da, db) = (arm[a].d, arm[bi].d);
        let denom = da.cross(db);
        if alpha < 2.6 && denom.abs() > 1e-3 {
            let t = (q - p).cross(db) / denom;
            let u = (q - p).cross(da) / denom;
            if t > 0.0 && u > 0.0 {
                let radius: f32 = rng.random_range(4.0..10.0);
                let tangent = radius * ((std::f32::consts::PI - alpha) * 0.5).tan();
                let (ra, rb) = (t + tangent, u + tangent);
                arm[a].edge_start.0 = ra;
                arm[bi].edge_start.1 = rb;
            }
        }
    }
    let crosswalks = signalised || rng.random_bool(0.7);
    let depth: f32 = rng.random_range(3.0..4.5);
    for a in arm.iter_mut() {
        a.mouth = a.edge_start.0.max(a.edge_start.1).max(6.0);
        a.lane_start = a.mouth + if crosswalks { 0.5 + depth + 1.0 } else { 1.0 };
    }
    // Lanes.
    let mut inbound: Vec<Vec<usize>> = Vec::with_capacity(k);
    let mut outbound: Vec<Vec<usize>> = Vec::with_capacity(k);
    for (ai, a) in arm.iter().enumerate() {
        let gi = b.group();
        let go = b.group();
        let mut ins = Vec::new();
        let mut outs = Vec::new();
        for i in 0..a.lanes {
            let lat = (i as f32 + 0.5) * w;
            let mut lane = Lane::new(
                a.radial(a.length, a.lane_start, lat),
                w,
                LaneType::SurfaceStreet,
                a.speed,
            );
            lane.control = a.control;
            lane.arm = Some(ai);
            lane.change_range = (0.0, lane.path.len() - 35.0);
            ins.push(b.grouped(lane, gi, i, 0));
            let mut lane = Lane::new(
                a.radial(a.lane_start, a.length, -lat),
                w,
                LaneType::SurfaceStreet,
                a.speed,
            );
            lane.arm = Some(ai);
            lane.change_range = (20.0, lane.path.len() - 15.0);
            outs.push(b.grouped(lane, go, i, 0));
        }
        inbound.push(ins);
        outbound.push(outs);
    }
    // The right turn between the outermost lanes of each corner shapes its kerb.
    let mut kerb_turns: Vec<Option<Vec<Vec2>>> = vec![None; k];
    // Connectors.
    for a in 0..k {
        for bi in 0..k {
            if a == bi {
                continue;
            }
            let rel = wrap_angle(arm[bi].theta - (arm[a].theta + std::f32::consts::PI));
            let movement = if rel.abs() < 0.6 {
                Movement::Straight
            } else if rel > 0.0 {
                Movement::Left
            } else {
                Movement::Right
            };
            let n_in = arm[a].lanes;
            let n_out = arm[bi].lanes;
            let pairs: Vec<(usize, usize)> = match movement {
                Movement::Straight => (0..n_in).map(|i| (i, i.min(n_out - 1))).collect(),
                Movement::Left => vec![(0, 0)],
                Movement::Right => vec![(n_in - 1, n_out - 1)],
            };
            for (i, j) in pairs {
                let from = inbound[a][i];
                let to = outbound[bi][j];
                let p0 = arm[a].at(arm[a].lane_start, (i as f32 + 0.5) * w);
                let p3 = arm[bi].at(arm[bi].lane_start, -(j as f32 + 0.5) * w);
                let (h0, h3) = (arm[a].theta + std::f32::consts::PI, arm[bi].theta);
                // Right turns hug the kerb a little more than other movements.
                let reach = if movement == Movement::Right {
                    0.7
                } else {
                    0.6
                };
                let pts = connector_curve(p0, h0, p3, h3, reach);
                if movement == Movement::Right && bi == (a + 1) % k {
                    kerb_turns[a] = Some(pts.clone());
                }
                let prio = match arm[a].control {
                    Control::Stop => 0u8,
                    _ => 1,
                };
                let mv = match movement {
                    Movement::Straight => 2u8,
                    Movement::Right => 1,
                    Movement::Left => 0,
                };
                let mut lane = Lane::new(
                    pts,
                    w,
                    LaneType::SurfaceStreet,
                    arm[a].speed.min(arm[bi].speed),
                );
                lane.connector = Some(Connector {
                    arm_in: a,
                    movement,
                    rank: prio * 4 + mv,
                    siblings: Vec::new(),
                    crossings: Vec::new(),
                });
                let c = b.lane(lane);
                b.link(from, c);
                b.link(c, to);
            }
        }
    }
    // Road lines.
    for a in &arm {
        let (r0, r1) = (a.lane_start, a.length);
        let centre = if a.major {
            RoadLineType::SolidDoubleYellow
        } else {
            centre_line_type(rng)
        };
        b.line(centre, a.radial(r0, r1, 0.0));
        for i in 1..a.lanes {
            let lat = i as f32 * w;
            let solid_to = (r0 + 25.0).min(r1);
            b.line(RoadLineType::SolidSingleWhite, a.radial(solid_to, r0, lat));
            b.line(RoadLineType::BrokenSingleWhite, a.radial(r1, solid_to, lat));
            b.line(RoadLineType::BrokenSingleWhite, a.radial(r0, r1, -lat));
        }
    }
    // Road edges: along an arm's left side inwards, round the corner parallel to the
    // outermost right turn (so every turning vehicle keeps the clearance it had in its
    // lane), and out along the next arm's right side. Where no right turn joins two
    // arms (the back of a T), the edge runs straight across.
    for a in 0..k {
        let bi = (a + 1) % k;
        let mut pts = arm[a].radial(arm[a].length, arm[a].lane_start, arm[a].left());
        if let Some(turn) = &kerb_turns[a] {
            let path = Path::new(turn.clone());
            let d0 = arm[a].left() - (arm[a].lanes as f32 - 0.5) * w;
            let d1 = -arm[bi].right() - (arm[bi].lanes as f32 - 0.5) * w;
            let n = path.points().len();
            for (i, (q, &h)) in path
                .points()
                .iter()
                .zip(path.tangents())
                .enumerate()
                .skip(1)
            {
                if i + 1 == n {
                    break;
                }
                let f = i as f32 / (n - 1) as f32;
                let d = d0 + (d1 - d0) * f;
                pts.push(*q - Vec2::from_angle(h + half_pi) * d);
            }
        }
        pts.extend(arm[bi].radial(arm[bi].lane_start, arm[bi].length, arm[bi].right()));
        b.edge(pts);
    }
    // Crosswalks, sidewalks, crossings.
    let sw: f32 = rng.random_range(1.8..2.6);
    for (ai, a) in arm.iter().enumerate() {
        let r_mid = a.mouth + 0.5 + 0.5 * depth;
        let left_sw = b.sidewalks.len();
        b.sidewalks.push(Sidewalk {
            path: Path::new(a.radial(r_mid, a.length, a.left() + sw)),
            crossing: None,
        });
        b.sidewalks.push(Sidewalk {
            path: Path::new(a.radial(r_mid, a.length, a.right() - sw)),
            crossing: None,
        });
        if crosswalks {
            let c = a.at(r_mid, 0.5 * (a.left() + a.right()));
            let area = OrientedBox::new(
                Pose::new(c.x, c.y, a.theta + half_pi),
                a.left() - a.right() + 0.6,
                depth,
            );
            b.polygon(MapFeatureKind::Crosswalk, &area);
            let x = b.crossings.len();
            b.crossings.push(Crossing {
                arm: ai,
                area,
                conflicts: Vec::new(),
                sidewalks: (left_sw, left_sw + 1),
            });
            b.sidewalks[left_sw].crossing = Some(x);
            b.sidewalks[left_sw + 1].crossing = Some(x);
        }
        // Stop sign beside the approach, on the inbound traffic's right.
        if a.control == Control::Stop {
            let p = a.at(a.lane_start + 0.5, a.left() + 0.8);
            b.features.push(Feature {
                kind: MapFeatureKind::StopSign,
                points: vec![p],
                controlled: inbound[ai].clone(),
            });
        }
        // A driveway or two along the arm.
        let count = rng.random_range(0..=2);
        for _ in 0..count {
            let r: f32 = rng.random_range(a.lane_start + 25.0..a.length - 15.0);
            let side = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
            let base = if side > 0.0 { a.left() } else { a.right() };
            let ddepth: f32 = rng.random_range(5.0..8.0);
            let c = a.at(r, base + side * 0.5 * ddepth);
            let dw = OrientedBox::new(
                Pose::new(c.x, c.y, a.theta),
                rng.random_range(4.0..7.0),
                ddepth,
            );
            b.polygon(MapFeatureKind::Driveway, &dw);
        }
    }
    if signalised {
        let phases = if k == 4 {
            vec![vec![0, 2], vec![1, 3]]
        } else {
            vec![vec![0, 2], vec![1]]
        };
        let green = phases
            .iter()
            .map(|_| rng.random_range(8.0..20.0))
            .collect::<Vec<f32>>();
        let mut plan = SignalPlan {
            phases,
            green,
            yellow: rng.random_range(3.0..4.0),
            all_red: rng.random_range(1.0..2.0),
            offset: 0.0,
        };
        plan.offset = rng.random_range(0.0..plan.cycle());
        b.signals = Some(plan);
    }
    b.focus = Vec2::ZERO;
    b
}

/// A one-way road with an on-ramp merging through an acceleration lane.
fn merge(rng: &mut impl Rng) -> Builder {
    let mut b = Builder::new();
    b.urban = false;
    let w: f32 = rng.random_range(3.4..3.8);
    let sh_l: f32 = rng.random_range(0.5..2.0);
    let sh_r: f32 = rng.random_range(1.0..2.5);
    let n_main = rng.random_range(2..=3);
    let freeway = rng.random_bool(0.6);
    let speed = if freeway {
        mph(rng, &[55.0, 60.0, 65.0])
    } else {
        mph(rng, &[35.0, 40.0, 45.0])
    };
    let lane_type = if freeway {
        LaneType::Freeway
    } else {
        LaneType::SurfaceStreet
    };
    let length: f32 = rng.random_range(560.0..650.0);
    let k = rng.random_range(-1.0..1.0) / 1500.0;
    let refl = RefLine::integrate(Vec2::ZERO, 0.0, &[(length, k)]);
    let n = refl.len();
    let a = rng.random_range(170..230usize).min(n - 200);
    let acc = rng.random_range(90..150usize);
    let m = a + acc;
    let taper = rng.random_range(35..50usize);
    let ts = m - taper;
    let mid = refl.pts[m];
    let refl = RefLine {
        pts: refl.pts.iter().map(|p| *p - mid).collect(),
        normals: refl.normals,
    };
    b.focus = Vec2::ZERO;
    let g = b.group();
    let nm = n_main as f32;
    let mut outer = (0, 0, 0);
    for i in 0..n_main {
        let off = -(i as f32 + 0.5) * w;
        let mk = |r: std::ops::Range<usize>| {
            let mut lane = Lane::new(refl.offset(r, |_| off), w, lane_type, speed);
            lane.change_range = (10.0, lane.path.len() - 10.0);
            lane
        };
        if i + 1 < n_main {
            b.grouped(mk(0..n), g, i, 0);
        } else {
            let u0 = b.grouped(mk(0..a + 1), g, i, 0);
            let u = b.grouped(mk(a..m + 1), g, i, a);
            let d = b.grouped(mk(m..n), g, i, m);
            b.link(u0, u);
            b.link(u, d);
            outer = (u0, u, d);
        }
    }
    let (u0, u, d) = outer;
    // Acceleration lane: parallel, then a smooth taper into the outer lane.
    let accel_off = |i: usize| {
        let base = -(nm + 0.5) * w;
        if i <= ts {
            base
        } else {
            let x = (i - ts) as f32 / taper as f32;
            let sm = x * x * (3.0 - 2.0 * x);
            base + sm * w
        }
    };
    let mut lane = Lane::new(refl.offset(a..m + 1, accel_off), w, lane_type, speed);
    let yield_s = lane.path.s_at_vertex(ts - a);
    lane.control = Control::MergeYield { yield_s };
    lane.change_range = (0.0, yield_s);
    let r2 = b.grouped(lane, g, n_main, a);
    b.lanes[r2].accepts_changes_until = 0.0;
    // No lane changes into the outer lane beside the taper.
    let u_len = b.lanes[u].path.len();
    b.lanes[u].accepts_changes_until = (u_len - MERGE_CLEAR).max(0.0);
    b.lanes[u0].accepts_changes_until = (b.lanes[u0].path.len() + u_len - MERGE_CLEAR).max(0.0);
    b.link(r2, d);
    // The ramp.
    let l_r = rng.random_range(110.0..150.0f32).min(a as f32 - 20.0);
    let d_r: f32 = rng.random_range(22.0..36.0);
    let start_st = a - l_r as usize;
    let s = refl.offset_point(start_st, -(nm * w) - d_r);
    let e = refl.offset_point(a, -(nm + 0.5) * w);
    let he = refl.heading(a);
    // Aim the ramp's start at its end, tilted a little further towards the road, with
    // control arms of a third of its length so that it joins the lane without a kink.
    let to_end = e - s;
    let hs = to_end.angle() + rng.random_range(0.0..0.08);
    let arm_len = to_end.norm() / 3.0;
    let ramp_pts = super::path::resample(
        &super::path::cubic_bezier(
            s,
            s + Vec2::from_angle(hs) * arm_len,
            e - Vec2::from_angle(he) * arm_len,
            e,
        ),
        SPACING,
    );
    let ramp_speed = speed.min(45.0 * MPH);
    let ramp = Lane::new(ramp_pts, w, lane_type, ramp_speed);
    let r1 = b.lane(ramp);
    b.link(r1, r2);
    b.merges.push((r2, vec![u, u0]));
    // Lines.
    b.line(RoadLineType::SolidSingleYellow, refl.offset(0..n, |_| 0.0));
    for i in 1..n_main {
        b.line(
            RoadLineType::BrokenSingleWhite,
            refl.offset(0..n, |_| -(i as f32) * w),
        );
    }
    b.line(
        RoadLineType::BrokenSingleWhite,
        refl.offset(a..ts + 1, |_| -nm * w),
    );
    b.line(
        RoadLineType::SolidSingleWhite,
        refl.offset(m..n, |_| -nm * w),
    );
    // Edges: the main right edge to the gore, back along the ramp's left side.
    let ramp_path = b.lanes[r1].path.clone();
    let ramp_left: Vec<Vec2> = ramp_path
        .points()
        .iter()
        .zip(ramp_path.tangents())
        .map(|(p, &h)| *p + Vec2::from_angle(h + std::f32::consts::FRAC_PI_2) * (0.5 * w + 0.6))
        .collect();
    let ramp_right: Vec<Vec2> = ramp_path
        .points()
        .iter()
        .zip(ramp_path.tangents())
        .map(|(p, &h)| *p - Vec2::from_angle(h + std::f32::consts::FRAC_PI_2) * (0.5 * w + sh_r))
        .collect();
    let main_path = Path::new(refl.pts.clone());
    let edge_line = -(nm * w + sh_r);
    let gore = ramp_left
        .iter()
        .position(|p| main_path.project(*p).1 >= edge_line);
    match gore {
        Some(gi) if gi > 0 => {
            let (gs, _) = main_path.project(ramp_left[gi]);
            let gst = main_path.station_at(gs) as usize;
            let mut e1 = refl.offset(0..gst + 1, |_| edge_line);
            e1.push(ramp_left[gi]);
            e1.extend(ramp_left[..gi].iter().rev());
            b.edge(e1);
            b.line(
                RoadLineType::SolidSingleWhite,
                refl.offset(0..gst.min(a) + 1, |_| -nm * w),
            );
        }
        _ => {
            b.edge(refl.offset(0..a + 1, |_| edge_line));
            let mut back = ramp_left.clone();
            back.reverse();
            b.edge(back);
        }
    }
    let mut e2 = ramp_right;
    e2.extend(refl.offset(a..n, |i| {
        let base = -(nm + 1.0) * w - sh_r;
        if i <= ts {
            base
        } else if i >= m {
            edge_line
        } else {
            let x = (i - ts) as f32 / taper as f32;
            base + x * x * (3.0 - 2.0 * x) * w
        }
    }));
    b.edge(e2);
    let mut e3 = refl.offset(0..n, |_| sh_l);
    e3.reverse();
    b.edge(e3);
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn junction_connectors_conflict_sensibly() {
        let config = SyntheticConfig::default();
        for seed in 0..6 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let net = build(Layout::FourWay, &config, &mut rng);
            let conns: Vec<usize> = (0..net.lanes.len())
                .filter(|&i| net.lanes[i].connector.is_some())
                .collect();
            assert!(conns.len() >= 12, "{}", conns.len());
            for &a in &conns {
                let ca = net.lanes[a].connector.as_ref().unwrap();
                for &b in &conns {
                    let cb = net.lanes[b].connector.as_ref().unwrap();
                    // Opposing straights never conflict; a left turn always conflicts
                    // with the opposing straight.
                    let opposite = (ca.arm_in + 2) % 4 == cb.arm_in;
                    if opposite
                        && ca.movement == Movement::Straight
                        && cb.movement == Movement::Straight
                    {
                        assert!(!net.conflicts(a, b), "seed {seed}");
                    }
                    if opposite
                        && ca.movement == Movement::Left
                        && cb.movement == Movement::Straight
                    {
                        assert!(net.conflicts(a, b), "seed {seed}");
                    }
                    assert_eq!(net.conflicts(a, b), net.conflicts(b, a));
                }
            }
        }
    }

    #[test]
    fn neighbours_map_across_split_lanes() {
        let config = SyntheticConfig::default();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let net = build(Layout::Merge, &config, &mut rng);
        let (r2, prio) = &net.merges[0];
        let (left, s) = net.neighbour(*r2, -1, 5.0).unwrap();
        assert_eq!(left, prio[0]);
        let p = net.lanes[*r2].path.point_at(5.0);
        let q = net.lanes[left].path.point_at(s);
        assert!(((p - q).norm() - net.lanes[*r2].width).abs() < 0.05);
        // Nothing to the right of the acceleration lane.
        assert!(net.neighbour(*r2, 1, 5.0).is_none());
    }

    #[test]
    fn signal_plan_cycles() {
        let plan = SignalPlan {
            phases: vec![vec![0, 2], vec![1, 3]],
            green: vec![10.0, 12.0],
            yellow: 3.0,
            all_red: 1.0,
            offset: 0.0,
        };
        assert_eq!(plan.arm_state(0, 5.0), SignalState::Go);
        assert_eq!(plan.arm_state(1, 5.0), SignalState::Stop);
        assert_eq!(plan.arm_state(2, 11.0), SignalState::Caution);
        assert_eq!(plan.arm_state(0, 13.5), SignalState::Stop);
        assert_eq!(plan.arm_state(3, 15.0), SignalState::Go);
        assert!(plan.walk(1, 2.0, 5.0) && !plan.walk(0, 2.0, 5.0));
        assert!(!plan.walk(1, 8.0, 5.0));
        assert_eq!(plan.arm_state(0, 31.0), SignalState::Go);
    }
}
