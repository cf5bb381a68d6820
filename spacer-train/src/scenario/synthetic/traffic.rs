//! Traffic on a road network: heterogeneous drivers, cyclists and pedestrians, simulated
//! at the log rate (10 Hz) and recorded.
//!
//! **Longitudinal control** is the Intelligent Driver Model (Treiber et al. 2000) with
//! per-driver desired speed (a factor on the speed limit), time headway, minimum gap,
//! maximum acceleration and comfortable deceleration. Every constraint is a virtual
//! leader and the most restrictive acceleration wins: the vehicle ahead along the
//! driver's route (including a vehicle on a sibling connector that has not yet
//! diverged, a vehicle still half in the lane it is leaving, and a committed vehicle on
//! a lane that converges with the route), a stop line that the driver may not cross
//! yet, and curves (speed for a per-driver lateral acceleration) and speed bumps
//! ahead, braked for at constant deceleration. A slowly varying Ornstein–Uhlenbeck
//! term adds acceleration noise when not braking.
//!
//! **Lateral motion** keeps to the lane centre with a smooth per-driver wander (two
//! sinusoids in distance travelled, so a stopped vehicle stands still) and lane
//! changes: every second a driver weighs the adjacent lanes with MOBIL (Kesting et
//! al. 2007: own advantage plus politeness times the new follower's loss, a keep-right
//! bias, a safety limit on the new follower's braking and minimum gaps); a change is a
//! quintic lateral shift over 3–5.5 s. Heading follows the lane plus the lateral rate;
//! velocity is the derivative of the logged motion, so headings and velocities agree
//! with positions.
//!
//! **Right of way** at intersections uses reservations: a vehicle may enter a connector
//! only when no conflicting connector is held and no pedestrian is on or waiting at a
//! crosswalk it crosses; it holds the connector until its rear has left it. The
//! approach's control adds conditions: a stop sign requires a full stop, a driver's
//! reaction pause and first-come first-served order; a signal requires green (or a
//! yellow the driver cannot stop for; a held reservation is dropped at yellow when a
//! comfortable stop is possible); and a driver gives way (by a personal critical
//! gap) to approaching vehicles on conflicting connectors of higher rank. A vehicle
//! also waits when its exit lane has no room. Merging from an acceleration lane is a
//! mandatory lane change, or, at the taper, a gap-accepted commitment.
//!
//! **Pedestrians** walk sidewalks (keeping right), stand, or cross at crosswalks,
//! waiting for the walk phase and for vehicles to clear; a waiting pedestrian has
//! priority over vehicles that have not yet reserved a conflicting connector.
//!
//! Vehicles enter at the map's boundary lanes during the run and leave at lane ends,
//! so tracks start and end mid-log like real ones.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use spacer_core::geometry::Vec2;

use super::SyntheticConfig;
use super::path::Path;
use super::road::{Control, Network};
use crate::scenario::{NUM_STEPS, ObjectState, ObjectType, STEP_SECONDS, SignalState};

const DT: f32 = STEP_SECONDS;
/// How far ahead drivers look for leaders and slow zones (m).
const LOOKAHEAD: f32 = 160.0;
/// Braking a new follower may be asked for by a lane change (m/s^2).
const SAFE_BRAKE: f32 = 2.5;
/// Physical braking limit (m/s^2).
const MAX_BRAKE: f32 = 8.0;

/// What kind of road user a driver model drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    Car,
    Truck,
    Cyclist,
}

/// One driver (or rider) and their vehicle.
#[derive(Clone, Debug)]
pub(crate) struct Driver {
    pub(crate) class: Class,
    pub(crate) length: f32,
    pub(crate) width: f32,
    pub(crate) height: f32,
    /// Desired speed as a factor of the speed limit.
    v0_factor: f32,
    /// Absolute speed cap (cyclists).
    v_max: f32,
    headway: f32,
    s0: f32,
    a_max: f32,
    b_comf: f32,
    politeness: f32,
    threshold: f32,
    keep_right: f32,
    /// Lateral wander: (amplitude m, wavelength m, phase rad) twice.
    wander: [(f32, f32, f32); 2],
    acc_sigma: f32,
    a_lat: f32,
    bump_speed: f32,
    stop_wait: f32,
    crit_gap: f32,
    lc_time: f32,
}

fn uniform(rng: &mut ChaCha8Rng, lo: f32, hi: f32) -> f32 {
    lo + (hi - lo) * rng.random::<f32>()
}

fn normal(rng: &mut ChaCha8Rng) -> f32 {
    rng.sample::<f32, _>(StandardNormal)
}

impl Driver {
    pub(crate) fn sample(rng: &mut ChaCha8Rng, class: Class) -> Self {
        let u = |rng: &mut ChaCha8Rng, a, b| uniform(rng, a, b);
        let mut wander = [(0.0, 0.0, 0.0); 2];
        let amp = if class == Class::Cyclist {
            (0.08, 0.22)
        } else {
            (0.02, 0.16)
        };
        for w in &mut wander {
            *w = (
                u(rng, amp.0, amp.1),
                u(rng, 35.0, 160.0),
                u(rng, 0.0, std::f32::consts::TAU),
            );
        }
        let base = Driver {
            class,
            length: u(rng, 4.2, 5.3),
            width: u(rng, 1.75, 2.05),
            height: u(rng, 1.4, 1.9),
            v0_factor: (1.0 + 0.08 * normal(rng)).clamp(0.8, 1.25),
            v_max: 45.0,
            headway: u(rng, 0.9, 2.0),
            s0: u(rng, 1.5, 3.0),
            a_max: u(rng, 1.0, 2.5),
            b_comf: u(rng, 1.5, 3.0),
            politeness: u(rng, 0.0, 0.5),
            threshold: u(rng, 0.1, 0.3),
            keep_right: u(rng, 0.05, 0.3),
            wander,
            acc_sigma: u(rng, 0.05, 0.25),
            a_lat: u(rng, 1.5, 3.0),
            bump_speed: u(rng, 2.5, 5.0),
            stop_wait: u(rng, 0.3, 1.8),
            crit_gap: u(rng, 3.5, 6.0),
            lc_time: u(rng, 3.0, 5.5),
        };
        match class {
            Class::Car => base,
            Class::Truck => Driver {
                length: u(rng, 7.0, 10.0),
                width: u(rng, 2.3, 2.55),
                height: u(rng, 2.8, 3.8),
                v0_factor: base.v0_factor * 0.95,
                headway: u(rng, 1.5, 2.5),
                s0: u(rng, 2.5, 4.0),
                a_max: u(rng, 0.6, 1.2),
                b_comf: u(rng, 1.2, 2.0),
                a_lat: u(rng, 1.2, 2.0),
                ..base
            },
            Class::Cyclist => Driver {
                length: u(rng, 1.6, 1.9),
                width: u(rng, 0.6, 0.8),
                height: u(rng, 1.6, 1.9),
                v0_factor: 1.0,
                v_max: u(rng, 4.0, 7.0),
                headway: u(rng, 1.0, 2.0),
                s0: u(rng, 1.0, 2.0),
                a_max: u(rng, 0.8, 1.5),
                b_comf: u(rng, 1.2, 2.0),
                threshold: f32::INFINITY,
                ..base
            },
        }
    }

    /// IDM acceleration at speed `v` toward `v0`, with a leader `gap` metres ahead
    /// closing at `dv` m/s.
    fn idm(&self, v: f32, v0: f32, lead: Option<(f32, f32)>) -> f32 {
        let ratio = v / v0.max(0.1);
        let free = (1.0 - ratio * ratio * ratio * ratio).max(-self.b_comf / self.a_max);
        let inter = match lead {
            Some((gap, dv)) => {
                let ss = self.s0
                    + (v * self.headway + v * dv / (2.0 * (self.a_max * self.b_comf).sqrt()))
                        .max(0.0);
                let q = ss / gap.max(0.1);
                q * q
            }
            None => 0.0,
        };
        self.a_max * (free - inter)
    }

    /// Lateral wander and its rate per metre travelled at odometer `odo`.
    fn wander(&self, odo: f32) -> (f32, f32) {
        let mut d = 0.0;
        let mut rate = 0.0;
        for &(a, l, p) in &self.wander {
            let k = std::f32::consts::TAU / l;
            d += a * (k * odo + p).sin();
            rate += a * k * (k * odo + p).cos();
        }
        (d, rate)
    }
}

struct LaneChange {
    /// The lane being left.
    from: usize,
    /// Lateral offset of the old lane's centre in the new lane's frame at the start.
    d0: f32,
    /// Progress, 0 to 1.
    x: f32,
    /// Progress per second: a full change takes the driver's lane-change time at the
    /// starting speed, and slows down with the vehicle.
    rate: f32,
    /// Speed at the start.
    v_start: f32,
}

struct Vehicle {
    d: Driver,
    route: Vec<usize>,
    k: usize,
    s: f32,
    v: f32,
    odo: f32,
    lc: Option<LaneChange>,
    /// The connector held.
    reserved: Option<usize>,
    /// Committed to merge from an acceleration lane.
    committed: bool,
    stop_since: Option<f32>,
    next_lc_check: f32,
    last_lc: f32,
    acc_noise: f32,
    alive: bool,
    /// Distance along the lane being left during a lane change.
    from_s: f32,
    log: Vec<ObjectState>,
}

impl Vehicle {
    fn lane(&self) -> usize {
        self.route[self.k]
    }

    fn half(&self) -> f32 {
        0.5 * self.d.length
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// On the way to the crossing.
    Approach,
    /// At the kerb.
    Waiting,
    /// On the crosswalk.
    Crossing,
    /// Past it, or never crossing.
    Free,
    /// Standing still.
    Standing,
}

struct Pedestrian {
    path: Path,
    s: f32,
    v: f32,
    v_des: f32,
    length: f32,
    width: f32,
    height: f32,
    /// Lateral offset from the path (right of travel is negative).
    lateral: f32,
    state: Walk,
    crossing: Option<(usize, f32, f32)>,
    /// Stand at the end of the path rather than leave.
    stand_at_end: bool,
    heading: f32,
    phase: f32,
    alive: bool,
    log: Vec<ObjectState>,
}

/// The recorded result of a run, in the network's local frame.
pub(crate) struct Logs {
    /// One per agent that was ever recorded: type and [`NUM_STEPS`] states.
    pub(crate) agents: Vec<(ObjectType, Vec<ObjectState>)>,
    /// Index into `agents` of the self-driving car.
    pub(crate) sdc: Option<usize>,
    /// Per recorded step: (connector lane, state, stop point).
    pub(crate) signals: Vec<Vec<(usize, SignalState, Vec2)>>,
}

struct Sim<'a> {
    net: &'a Network,
    rng: ChaCha8Rng,
    vehicles: Vec<Vehicle>,
    peds: Vec<Pedestrian>,
    occ: Vec<Vec<(f32, usize)>>,
    held: Vec<u16>,
    connectors: Vec<usize>,
    crossing_busy: Vec<u16>,
    crossing_waiting: Vec<u16>,
    t: f32,
    density: f32,
    max_agents: usize,
    recorded_gone: usize,
}

/// Runs traffic on `net` and records [`NUM_STEPS`] steps after `config.burn_in_steps`.
pub(crate) fn simulate(net: &Network, config: &SyntheticConfig, mut rng: ChaCha8Rng) -> Logs {
    let (lo, hi) = config.sorted_density();
    let density = uniform(&mut rng, lo, hi) / 1000.0;
    let connectors = (0..net.lanes.len())
        .filter(|&i| net.lanes[i].connector.is_some())
        .collect();
    let mut sim = Sim {
        net,
        rng,
        vehicles: Vec::new(),
        peds: Vec::new(),
        occ: vec![Vec::new(); net.lanes.len()],
        held: vec![0; net.lanes.len()],
        connectors,
        crossing_busy: vec![0; net.crossings.len()],
        crossing_waiting: vec![0; net.crossings.len()],
        t: 0.0,
        density,
        max_agents: config.max_agents.max(1),
        recorded_gone: 0,
    };
    sim.place_vehicles(config);
    sim.place_pedestrians(config);
    let total = config.burn_in_steps + NUM_STEPS;
    let mut signals = Vec::with_capacity(NUM_STEPS);
    for step in 0..total {
        if step >= config.burn_in_steps {
            let r = step - config.burn_in_steps;
            sim.record(r);
            signals.push(sim.signal_states());
        }
        if step + 1 < total {
            sim.step(step >= config.burn_in_steps);
        }
    }
    sim.finish(signals)
}

impl Sim<'_> {
    fn agents(&self) -> usize {
        self.vehicles.iter().filter(|v| v.alive).count()
            + self.peds.iter().filter(|p| p.alive).count()
            + self.recorded_gone
    }

    /// Extends `route` from its last lane to the map boundary.
    fn extend_route(&mut self, route: &mut Vec<usize>) {
        for _ in 0..8 {
            let Some(&last) = route.last() else { return };
            let exits = &self.net.lanes[last].exit;
            if exits.is_empty() {
                return;
            }
            let weights: Vec<f32> = exits
                .iter()
                .map(|&e| match &self.net.lanes[e].connector {
                    Some(c) => match c.movement {
                        super::road::Movement::Straight => 0.6,
                        _ => 0.2,
                    },
                    None => 1.0,
                })
                .collect();
            let total: f32 = weights.iter().sum();
            let mut x = self.rng.random::<f32>() * total;
            let mut pick = exits[exits.len() - 1];
            for (e, w) in exits.iter().zip(&weights) {
                if x < *w {
                    pick = *e;
                    break;
                }
                x -= w;
            }
            route.push(pick);
        }
    }

    /// Route length left from `s` on `route[0]`.
    fn remaining(&self, route: &[usize], s: f32) -> f32 {
        route
            .iter()
            .map(|&l| self.net.lanes[l].path.len())
            .sum::<f32>()
            - s
    }

    fn new_vehicle(&mut self, d: Driver, route: Vec<usize>, s: f32, v: f32) -> Vehicle {
        let phase = self.rng.random::<f32>();
        Vehicle {
            d,
            route,
            k: 0,
            s,
            v,
            odo: self.rng.random_range(0.0..500.0),
            lc: None,
            reserved: None,
            committed: false,
            stop_since: None,
            next_lc_check: self.t + phase,
            last_lc: -10.0,
            acc_noise: 0.0,
            alive: true,
            from_s: 0.0,
            log: vec![ObjectState::default(); NUM_STEPS],
        }
    }

    fn car_class(&mut self) -> Class {
        if self.rng.random_bool(0.08) {
            Class::Truck
        } else {
            Class::Car
        }
    }

    fn desired_speed(&self, d: &Driver, lane: usize) -> f32 {
        (self.net.lanes[lane].speed_limit * d.v0_factor)
            .min(d.v_max)
            .max(1.0)
    }

    /// The self-driving car, then vehicles along every lane at the scene's density,
    /// then cyclists.
    fn place_vehicles(&mut self, config: &SyntheticConfig) {
        let net = self.net;
        let car_lane = |i: usize| {
            let l = &net.lanes[i];
            l.connector.is_none() && l.lane_type != crate::scenario::LaneType::BikeLane
        };
        // The self-driving car: on a lane that leads through the point of interest.
        let approach: Vec<usize> = (0..net.lanes.len())
            .filter(|&i| {
                car_lane(i)
                    && match net.layout {
                        super::Layout::FourWay | super::Layout::TJunction => net.lanes[i]
                            .exit
                            .iter()
                            .any(|&e| net.lanes[e].connector.is_some()),
                        _ => net.lanes[i].entry.is_empty(),
                    }
            })
            .collect();
        let mut placed: Vec<Vec<(f32, f32)>> = vec![Vec::new(); net.lanes.len()];
        let horizon = (config.burn_in_steps + NUM_STEPS) as f32 * DT + 1.0;
        if !approach.is_empty() {
            let lane = approach[self.rng.random_range(0..approach.len())];
            let class = Class::Car;
            let d = Driver::sample(&mut self.rng, class);
            let len = net.lanes[lane].path.len();
            let s = match net.layout {
                super::Layout::FourWay | super::Layout::TJunction => {
                    (len - self.rng.random_range(15.0..60.0)).max(d.length)
                }
                _ => self.rng.random_range(30.0..100.0f32).min(0.4 * len),
            };
            let mut route = vec![lane];
            self.extend_route(&mut route);
            let v0 = self.desired_speed(&d, lane);
            // Keep the car on the map for the whole log.
            let room = self.remaining(&route, s);
            let v = (v0 * uniform(&mut self.rng, 0.6, 0.95)).min(room / horizon);
            placed[lane].push((s, d.length));
            let veh = self.new_vehicle(d, route, s, v);
            self.vehicles.push(veh);
        }
        // Everyone else, from each lane's downstream end backwards.
        let mean_gap = (1.0 / self.density - 5.0).max(2.0);
        let mut candidates: Vec<(usize, f32, Driver)> = Vec::new();
        for (lane, taken) in placed.iter().enumerate() {
            if !car_lane(lane) {
                continue;
            }
            // Start from the lane's end, or from a merge's yield point.
            let len = match net.lanes[lane].control {
                Control::MergeYield { yield_s } => yield_s - 2.0,
                _ => net.lanes[lane].path.len(),
            };
            let mut front = len - uniform(&mut self.rng, 1.0, mean_gap.min(40.0));
            loop {
                let class = self.car_class();
                let d = Driver::sample(&mut self.rng, class);
                let s = front - 0.5 * d.length;
                if s < 0.5 * d.length + 1.0 {
                    break;
                }
                let clear = taken
                    .iter()
                    .all(|&(ps, pl)| (ps - s).abs() > 0.5 * (pl + d.length) + 4.0);
                let gap = d.s0 + mean_gap * -(1.0 - self.rng.random::<f32>()).ln();
                front = s - 0.5 * d.length - gap;
                if clear {
                    candidates.push((lane, s, d));
                }
            }
        }
        let (_, cap_hi) = config.sorted_cyclists();
        let room = self.max_agents.saturating_sub(self.vehicles.len() + cap_hi);
        while candidates.len() > room {
            let i = self.rng.random_range(0..candidates.len());
            candidates.swap_remove(i);
        }
        candidates.sort_by(|a, b| {
            (a.0, a.1)
                .partial_cmp(&(b.0, b.1))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        for (lane, s, d) in candidates {
            let mut route = vec![lane];
            self.extend_route(&mut route);
            let v0 = self.desired_speed(&d, lane);
            let v = v0 * uniform(&mut self.rng, 0.6, 1.0);
            placed[lane].push((s, d.length));
            let veh = self.new_vehicle(d, route, s, v);
            self.vehicles.push(veh);
        }
        // Cyclists: bike lanes, else the outermost lane of a group.
        if net.urban {
            let (lo, hi) = config.sorted_cyclists();
            let count = self.rng.random_range(lo..=hi);
            let mut bike_lanes: Vec<usize> = (0..net.lanes.len())
                .filter(|&i| net.lanes[i].lane_type == crate::scenario::LaneType::BikeLane)
                .collect();
            if bike_lanes.is_empty() {
                bike_lanes = net
                    .groups
                    .iter()
                    .filter_map(|g| g.last().and_then(|slot| slot.first().copied()))
                    .filter(|&l| car_lane(l))
                    .collect();
            }
            for _ in 0..count {
                if bike_lanes.is_empty() || self.agents() >= self.max_agents {
                    break;
                }
                let lane = bike_lanes[self.rng.random_range(0..bike_lanes.len())];
                let d = Driver::sample(&mut self.rng, Class::Cyclist);
                let len = net.lanes[lane].path.len();
                let s = uniform(&mut self.rng, 5.0, (len - 5.0).max(6.0));
                let clear = self.vehicles.iter().all(|v| {
                    v.lane() != lane || (v.s - s).abs() > 0.5 * (v.d.length + d.length) + 8.0
                });
                if !clear {
                    continue;
                }
                let mut route = vec![lane];
                self.extend_route(&mut route);
                let v = d.v_max * uniform(&mut self.rng, 0.7, 1.0);
                let veh = self.new_vehicle(d, route, s, v);
                self.vehicles.push(veh);
            }
        }
        // Initial speeds that allow a comfortable stop behind the leader and before any
        // stop line.
        self.build_occupancy();
        for i in 0..self.vehicles.len() {
            let limit = {
                let me = &self.vehicles[i];
                let mut room = f32::INFINITY;
                for (gap, vl) in self.leaders(i) {
                    room = room.min((gap - me.d.s0).max(0.0) + vl * vl / (2.0 * me.d.b_comf));
                }
                let lane = &net.lanes[me.lane()];
                let stop_at = match lane.control {
                    Control::MergeYield { yield_s } => Some(yield_s),
                    _ if me
                        .route
                        .get(me.k + 1)
                        .is_some_and(|&n| net.lanes[n].connector.is_some()) =>
                    {
                        Some(lane.path.len())
                    }
                    _ => None,
                };
                if let Some(at) = stop_at {
                    room = room.min((at - me.s - me.half() - me.d.s0).max(0.0));
                }
                (2.0 * me.d.b_comf * room).sqrt()
            };
            let me = &mut self.vehicles[i];
            me.v = me.v.min(limit);
        }
    }

    fn place_pedestrians(&mut self, config: &SyntheticConfig) {
        let net = self.net;
        if !net.urban || net.sidewalks.is_empty() {
            return;
        }
        let (lo, hi) = config.sorted_pedestrians();
        let count = self.rng.random_range(lo..=hi);
        for _ in 0..count {
            if self.agents() >= self.max_agents {
                break;
            }
            let length = uniform(&mut self.rng, 0.5, 0.95);
            let width = uniform(&mut self.rng, 0.5, 0.9);
            let height = uniform(&mut self.rng, 1.5, 1.9);
            let v_des = uniform(&mut self.rng, 0.9, 1.6);
            let x: f32 = self.rng.random();
            let phase = uniform(&mut self.rng, 0.0, std::f32::consts::TAU);
            let mut ped = Pedestrian {
                path: Path::new(vec![Vec2::ZERO, Vec2::new(1.0, 0.0)]),
                s: 0.0,
                v: v_des,
                v_des,
                length,
                width,
                height,
                lateral: -0.5,
                state: Walk::Free,
                crossing: None,
                stand_at_end: false,
                heading: 0.0,
                phase,
                alive: true,
                log: vec![ObjectState::default(); NUM_STEPS],
            };
            if !net.crossings.is_empty() && x < 0.45 {
                // Walk to a crosswalk, cross, walk on.
                let xi = self.rng.random_range(0..net.crossings.len());
                let c = &net.crossings[xi];
                let (sa, sb) = if self.rng.random_bool(0.5) {
                    c.sidewalks
                } else {
                    (c.sidewalks.1, c.sidewalks.0)
                };
                let pa = &net.sidewalks[sa].path;
                let pb = &net.sidewalks[sb].path;
                let before = uniform(&mut self.rng, 3.0, 25.0).min(pa.len());
                let after = uniform(&mut self.rng, 15.0, 60.0).min(pb.len());
                let shift = uniform(&mut self.rng, -0.3, 0.3) * c.area.width;
                // Along the first sidewalk to the crossing point (shifted along the
                // crosswalk's depth), across, and out along the other sidewalk.
                let mut pts: Vec<Vec2> = Vec::new();
                let n_before = (before - shift).ceil().max(1.0) as usize;
                for j in 0..=n_before {
                    pts.push(pa.point_at(before - (before - shift) * j as f32 / n_before as f32));
                }
                let cross_start = Path::new(pts.clone()).len();
                let start = pa.point_at(shift);
                let far = pb.point_at(shift);
                let across = (far - start).norm();
                let n_across = across.ceil().max(1.0) as usize;
                for j in 1..=n_across {
                    pts.push(start + (far - start) * (j as f32 / n_across as f32));
                }
                let n_after = (after - shift).ceil().max(1.0) as usize;
                for j in 1..=n_after {
                    pts.push(pb.point_at(shift + (after - shift) * j as f32 / n_after as f32));
                }
                ped.path = Path::new(pts);
                let margin = 0.5 * (across - c.area.length) - 0.6 - 0.5 * length;
                let enter = cross_start + margin.max(0.3);
                let exit = cross_start + across - margin.max(0.3);
                ped.crossing = Some((xi, enter, exit));
                ped.lateral = 0.0;
                if self.rng.random_bool(0.3) {
                    ped.s = uniform(&mut self.rng, enter, exit);
                    ped.state = Walk::Crossing;
                    self.crossing_busy[xi] += 1;
                } else {
                    ped.s = uniform(&mut self.rng, 0.0, (enter - 1.0).max(0.0));
                    ped.state = Walk::Approach;
                }
            } else {
                let si = self.rng.random_range(0..net.sidewalks.len());
                let sw = &net.sidewalks[si];
                let mut pts = sw.path.points().to_vec();
                let toward_start = self.rng.random_bool(0.5);
                if toward_start {
                    pts.reverse();
                }
                ped.path = Path::new(pts);
                ped.stand_at_end = toward_start && sw.crossing.is_some();
                ped.s = uniform(&mut self.rng, 0.0, ped.path.len());
                ped.lateral = -uniform(&mut self.rng, 0.3, 0.8);
                if x > 0.8 {
                    ped.state = Walk::Standing;
                    ped.v = 0.0;
                    ped.lateral = uniform(&mut self.rng, -1.0, 1.0);
                }
            }
            ped.heading = ped.path.heading_at(ped.s);
            if ped.state == Walk::Standing {
                ped.heading += uniform(&mut self.rng, -1.5, 1.5);
            }
            self.peds.push(ped);
        }
    }

    fn build_occupancy(&mut self) {
        for o in &mut self.occ {
            o.clear();
        }
        for i in 0..self.vehicles.len() {
            let v = &self.vehicles[i];
            if !v.alive {
                continue;
            }
            self.occ[v.lane()].push((v.s, i));
            if let Some(lc) = &v.lc {
                self.occ[lc.from].push((v.from_s, i));
            }
        }
        for o in &mut self.occ {
            o.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
        }
    }

    /// The constraints ahead from other vehicles, as (gap, leader speed): the nearest
    /// vehicle along the route (which shields those behind it), vehicles on sibling
    /// connectors that have not diverged, committed mergers and merge partners on
    /// converging lanes (which shield nothing, so the search goes on past them), and
    /// the vehicle ahead in a lane being left. The caller takes the most restrictive.
    fn leaders(&self, i: usize) -> Vec<(f32, f32)> {
        let net = self.net;
        let me = &self.vehicles[i];
        let mut found: Vec<(f32, f32)> = Vec::new();
        let take = |found: &mut Vec<(f32, f32)>, gap: f32, v: f32| found.push((gap, v));
        let mut offset = -me.s;
        for kk in me.k..me.route.len() {
            let lane = me.route[kk];
            let l = &net.lanes[lane];
            let mut physical = false;
            for &(sj, j) in &self.occ[lane] {
                if j == i {
                    continue;
                }
                let rel = offset + sj;
                if rel <= 0.0 {
                    continue;
                }
                let o = &self.vehicles[j];
                take(&mut found, rel - o.half() - me.half(), o.v);
                physical = true;
                break;
            }
            if let Some(c) = &l.connector {
                for &(sib, div) in &c.siblings {
                    for &(sj, j) in &self.occ[sib] {
                        let o = &self.vehicles[j];
                        let rel = offset + sj;
                        if j != i && rel > 0.0 && sj - o.half() < div {
                            take(&mut found, rel - o.half() - me.half(), o.v);
                            physical = true;
                        }
                    }
                }
            }
            // Converging lanes outside intersections (merges): a committed merger is a
            // leader to the priority lane as soon as it is ahead in distance to the
            // merge point; a committed merger follows the priority lane's vehicles.
            // Before committing, a merger is held by its yield line instead.
            let me_yields = matches!(l.control, Control::MergeYield { .. });
            if l.connector.is_none()
                && (!me_yields || me.committed)
                && let Some(&next) = me.route.get(kk + 1)
            {
                let to_merge = offset + l.path.len();
                if to_merge > 0.0 {
                    for &p in &net.lanes[next].entry {
                        if p == lane || net.lanes[p].connector.is_some() {
                            continue;
                        }
                        let yielding = matches!(net.lanes[p].control, Control::MergeYield { .. });
                        let plen = net.lanes[p].path.len();
                        for &(sj, j) in &self.occ[p] {
                            let o = &self.vehicles[j];
                            if j == i
                                || (yielding && !o.committed)
                                || o.route.get(o.k + 1) != Some(&next)
                            {
                                continue;
                            }
                            let rel = to_merge - (plen - sj);
                            if rel > 0.0 {
                                take(&mut found, rel - o.half() - me.half(), o.v);
                            }
                        }
                    }
                }
            }
            if physical {
                break;
            }
            offset += l.path.len();
            if offset > LOOKAHEAD {
                break;
            }
        }
        // Still half in the lane being left.
        if let Some(lc) = &me.lc {
            for &(sj, j) in &self.occ[lc.from] {
                if j == i {
                    continue;
                }
                let rel = sj - me.from_s;
                if rel > 0.0 {
                    let o = &self.vehicles[j];
                    take(&mut found, rel - o.half() - me.half(), o.v);
                    break;
                }
            }
        }
        found
    }

    fn step(&mut self, recording: bool) {
        self.build_occupancy();
        self.update_waiting();
        let n = self.vehicles.len();
        let mut acc = vec![0.0f32; n];
        for (i, a) in acc.iter_mut().enumerate() {
            if self.vehicles[i].alive {
                *a = self.decide(i);
            }
        }
        self.pedestrians_decide();
        for (i, &a) in acc.iter().enumerate() {
            if self.vehicles[i].alive {
                self.integrate(i, a, recording);
            }
        }
        self.move_pedestrians(recording);
        self.inflow();
        self.t += DT;
    }

    /// Pedestrians at a kerb who may walk now block new reservations.
    fn update_waiting(&mut self) {
        for w in &mut self.crossing_waiting {
            *w = 0;
        }
        for p in &self.peds {
            if p.alive
                && p.state == Walk::Waiting
                && let Some((x, enter, exit)) = p.crossing
                && self.walk_allowed(x, (exit - enter) / p.v_des)
            {
                self.crossing_waiting[x] += 1;
            }
        }
    }

    fn walk_allowed(&self, x: usize, need: f32) -> bool {
        match &self.net.signals {
            Some(plan) => plan.walk(self.net.crossings[x].arm, self.t, 0.6 * need),
            None => true,
        }
    }

    fn signal_state(&self, lane: usize) -> SignalState {
        match (&self.net.signals, self.net.lanes[lane].arm) {
            (Some(plan), Some(arm)) => plan.arm_state(arm, self.t),
            _ => SignalState::Unknown,
        }
    }

    /// The acceleration vehicle `i` chooses now (may reserve or release connectors and
    /// start lane changes).
    fn decide(&mut self, i: usize) -> f32 {
        let net = self.net;
        let (lane, s, v, k) = {
            let me = &self.vehicles[i];
            (me.lane(), me.s, me.v, me.k)
        };
        let d = self.vehicles[i].d.clone();
        let half = 0.5 * d.length;
        let l = &net.lanes[lane];
        let v0 = self.desired_speed(&d, lane);
        // Curves and bumps.
        let mut v0_eff = v0;
        let mut a_zone = f32::INFINITY;
        {
            let me = &self.vehicles[i];
            let mut offset = -s;
            for &ln in &me.route[k..] {
                let lz = &net.lanes[ln];
                for z in &lz.zones {
                    let start = offset + z.s0 - half;
                    let end = offset + z.s1 + half;
                    let vlim = if z.kappa > 0.0 {
                        (d.a_lat / z.kappa).sqrt()
                    } else {
                        d.bump_speed
                    };
                    if start <= 0.0 && end >= 0.0 {
                        v0_eff = v0_eff.min(vlim);
                    } else if start > 0.0 && v > vlim {
                        let need = (v * v - vlim * vlim) / (2.0 * start);
                        if need > 0.4 {
                            a_zone = a_zone.min(-need);
                        }
                    }
                }
                offset += lz.path.len();
                if offset > LOOKAHEAD {
                    break;
                }
            }
        }
        let a_lead = self
            .leaders(i)
            .into_iter()
            .map(|(g, vl)| d.idm(v, v0_eff, Some((g, v - vl))))
            .fold(d.idm(v, v0_eff, None), f32::min);
        let mut a = a_lead.min(a_zone);
        // Intersection approach.
        let next = self.vehicles[i].route.get(k + 1).copied();
        if let Some(next) = next.filter(|&n| net.lanes[n].connector.is_some()) {
            let dist = l.path.len() - s - half;
            if l.control == Control::Stop
                && v < 0.3
                && dist < d.s0 + 2.5
                && self.vehicles[i].stop_since.is_none()
            {
                self.vehicles[i].stop_since = Some(self.t);
            }
            if self.vehicles[i].reserved == Some(next)
                && l.control == Control::Signal
                && self.signal_state(lane) != SignalState::Go
                && dist > 0.5
                && v * v / (2.0 * dist) < d.b_comf
            {
                self.release(i);
            }
            if self.vehicles[i].reserved != Some(next) {
                let horizon = v * v / (2.0 * d.b_comf) + 2.0 * v + 8.0;
                if (dist <= horizon && self.may_enter(i, next, dist)) || dist < -0.5 {
                    self.vehicles[i].reserved = Some(next);
                    self.held[next] += 1;
                }
            }
            if self.vehicles[i].reserved != Some(next) {
                a = a.min(d.idm(v, v0_eff, Some((dist - 0.3, v))));
            }
        }
        // Acceleration lane.
        if let Control::MergeYield { yield_s } = l.control
            && !self.vehicles[i].committed
        {
            let dist = yield_s - s - half;
            if dist < 60.0 && (self.may_merge(i) || dist < -0.5) {
                self.vehicles[i].committed = true;
            }
            if !self.vehicles[i].committed {
                a = a.min(d.idm(v, v0_eff, Some((dist, v))));
            }
        }
        // Lane changes.
        if self.t >= self.vehicles[i].next_lc_check {
            self.vehicles[i].next_lc_check = self.t + 1.0;
            self.consider_lane_change(i, a_lead, v0);
        }
        // Noise.
        let noise = {
            let me = &mut self.vehicles[i];
            let tau = 1.5;
            me.acc_noise += -me.acc_noise * DT / tau
                + d.acc_sigma * (2.0 * DT / tau).sqrt() * normal(&mut self.rng);
            me.acc_noise
        };
        if a > -0.5 && v > 0.5 {
            a += noise;
        }
        a.clamp(-MAX_BRAKE, d.a_max)
    }

    fn release(&mut self, i: usize) {
        if let Some(c) = self.vehicles[i].reserved.take() {
            self.held[c] = self.held[c].saturating_sub(1);
        }
    }

    /// Whether vehicle `i`, `dist` metres before its stop line, may enter connector
    /// `c` now.
    fn may_enter(&self, i: usize, c: usize, dist: f32) -> bool {
        let net = self.net;
        let me = &self.vehicles[i];
        let Some(conn) = &net.lanes[c].connector else {
            return true;
        };
        if self
            .connectors
            .iter()
            .any(|&o| self.held[o] > 0 && net.conflicts(c, o))
        {
            return false;
        }
        if conn
            .crossings
            .iter()
            .any(|&x| self.crossing_busy[x] > 0 || self.crossing_waiting[x] > 0)
        {
            return false;
        }
        let approach = &net.lanes[me.lane()];
        match approach.control {
            Control::Signal => match self.signal_state(me.lane()) {
                SignalState::Go => {}
                SignalState::Caution => {
                    if me.v * me.v / (2.0 * dist.max(0.1)) <= me.d.b_comf {
                        return false;
                    }
                }
                _ => return false,
            },
            Control::Stop => {
                let Some(since) = me.stop_since else {
                    return false;
                };
                if self.t - since < me.d.stop_wait {
                    return false;
                }
                // First come, first served.
                for (j, o) in self.vehicles.iter().enumerate() {
                    if j == i || !o.alive || o.reserved.is_some() {
                        continue;
                    }
                    if let (Some(os), Some(&oc)) = (o.stop_since, o.route.get(o.k + 1))
                        && os < since
                        && net.conflicts(c, oc)
                    {
                        return false;
                    }
                }
            }
            Control::Free | Control::MergeYield { .. } => {}
        }
        // Give way to approaching traffic of higher rank.
        for (j, o) in self.vehicles.iter().enumerate() {
            if j == i || !o.alive || o.reserved.is_some() {
                continue;
            }
            let Some(&oc) = o.route.get(o.k + 1) else {
                continue;
            };
            let Some(oconn) = &net.lanes[oc].connector else {
                continue;
            };
            if oconn.rank <= conn.rank || !net.conflicts(c, oc) {
                continue;
            }
            let ol = &net.lanes[o.lane()];
            if ol.control == Control::Stop && approach.control == Control::Stop {
                continue;
            }
            let odist = ol.path.len() - o.s - o.half();
            let goes = match ol.control {
                Control::Signal => match self.signal_state(o.lane()) {
                    SignalState::Go => true,
                    SignalState::Caution => o.v * o.v / (2.0 * odist.max(0.1)) > o.d.b_comf,
                    _ => false,
                },
                Control::Stop => o.stop_since.is_some(),
                _ => true,
            };
            if goes && odist.max(0.0) / o.v.max(1.0) < me.d.crit_gap {
                return false;
            }
        }
        // Room on the exit lane.
        if let Some(&exit) = me.route.get(me.k + 2)
            && let Some(&(sf, f)) = self.occ[exit].first()
        {
            let o = &self.vehicles[f];
            if sf - o.half() < me.d.length + me.d.s0 + 1.0 && o.v < 3.0 {
                return false;
            }
        }
        true
    }

    /// Whether vehicle `i` on an acceleration lane may commit to the merge now.
    fn may_merge(&self, i: usize) -> bool {
        let net = self.net;
        let me = &self.vehicles[i];
        let Some((_, prio)) = net.merges.iter().find(|(r, _)| *r == me.lane()) else {
            return true;
        };
        let mine = net.lanes[me.lane()].path.len() - me.s;
        let mut offset = 0.0;
        let mut others: Vec<(f32, usize)> = Vec::new();
        for &p in prio {
            let plen = net.lanes[p].path.len();
            for &(sj, j) in &self.occ[p] {
                others.push((offset + plen - sj, j));
            }
            offset += plen;
        }
        if let Some(&down) = net.lanes[me.lane()].exit.first() {
            for &(sj, j) in &self.occ[down] {
                if sj < 40.0 {
                    others.push((-sj, j));
                }
            }
        }
        for (theirs, j) in others {
            if j == i {
                continue;
            }
            let o = &self.vehicles[j];
            let gap = (theirs - mine).abs() - o.half() - me.half();
            if theirs <= mine {
                if gap < 1.0 {
                    return false;
                }
            } else {
                let v0 = self.desired_speed(&o.d, o.lane());
                if gap < 2.0 || o.d.idm(o.v, v0, Some((gap, o.v - me.v))) < -SAFE_BRAKE {
                    return false;
                }
            }
        }
        true
    }

    /// Leader and follower of a slot at `s` on `lane` (ignoring `i`): ((gap, v, j) ahead,
    /// (gap, j) behind).
    #[allow(clippy::type_complexity)]
    fn gaps_at(
        &self,
        i: usize,
        lane: usize,
        s: f32,
        half: f32,
    ) -> (Option<(f32, f32, usize)>, Option<(f32, usize)>) {
        let net = self.net;
        let mut ahead: Option<(f32, f32, usize)> = None;
        let mut behind: Option<(f32, usize)> = None;
        let len = net.lanes[lane].path.len();
        // Occupants, and committed mergers projected onto the lane by their distance
        // to the merge point.
        let mut occupants: Vec<(f32, usize)> = self.occ[lane].clone();
        for &next in &net.lanes[lane].exit {
            for &p in &net.lanes[next].entry {
                if p == lane || !matches!(net.lanes[p].control, Control::MergeYield { .. }) {
                    continue;
                }
                let plen = net.lanes[p].path.len();
                for &(sj, j) in &self.occ[p] {
                    if self.vehicles[j].committed {
                        occupants.push((len - (plen - sj), j));
                    }
                }
            }
        }
        for &(sj, j) in &occupants {
            if j == i {
                continue;
            }
            let o = &self.vehicles[j];
            if sj >= s {
                let g = sj - o.half() - s - half;
                if ahead.is_none_or(|(ag, _, _)| g < ag) {
                    ahead = Some((g, o.v, j));
                }
            } else {
                let g = s - half - sj - o.half();
                if behind.is_none_or(|(bg, _)| g < bg) {
                    behind = Some((g, j));
                }
            }
        }
        if ahead.is_none() {
            for &e in &net.lanes[lane].exit {
                if let Some(&(sj, j)) = self.occ[e].iter().find(|&&(_, j)| j != i) {
                    let o = &self.vehicles[j];
                    let g = len - s + sj - o.half() - half;
                    if ahead.is_none_or(|(ag, _, _)| g < ag) {
                        ahead = Some((g, o.v, j));
                    }
                }
            }
        }
        if behind.is_none() {
            for &p in &net.lanes[lane].entry {
                let plen = net.lanes[p].path.len();
                if let Some(&(sj, j)) = self.occ[p].iter().rev().find(|&&(_, j)| j != i) {
                    let o = &self.vehicles[j];
                    let g = s - half + plen - sj - o.half();
                    if behind.is_none_or(|(bg, _)| g < bg) {
                        behind = Some((g, j));
                    }
                }
            }
        }
        (ahead, behind)
    }

    /// MOBIL: change lanes when it pays and is safe.
    fn consider_lane_change(&mut self, i: usize, a_now: f32, v0: f32) {
        let net = self.net;
        let me = &self.vehicles[i];
        let d = &me.d;
        if d.class == Class::Cyclist
            || me.lc.is_some()
            || me.reserved.is_some()
            || me.committed
            || me.v < 4.0
            || self.t - me.last_lc < 5.0
        {
            return;
        }
        let lane = me.lane();
        let l = &net.lanes[lane];
        let travel = me.v * d.lc_time + 5.0;
        if l.group.is_none() || me.s < l.change_range.0 || me.s + travel > l.change_range.1 {
            return;
        }
        let mandatory = matches!(l.control, Control::MergeYield { .. });
        let mut best: Option<(f32, usize, f32)> = None;
        for side in [-1, 1] {
            let Some((nl, ns)) = net.neighbour(lane, side, me.s) else {
                continue;
            };
            let target = &net.lanes[nl];
            if ns + travel > target.accepts_changes_until
                || (target.path.len() - ns < travel + 10.0 && target.exit.is_empty())
            {
                continue;
            }
            let (ahead, behind) = self.gaps_at(i, nl, ns, me.half());
            if ahead.is_some_and(|(g, _, _)| g < d.s0) {
                continue;
            }
            let a_new = d.idm(me.v, v0, ahead.map(|(g, vl, _)| (g, me.v - vl)));
            let mut courtesy = 0.0;
            if let Some((gb, f)) = behind {
                let o = &self.vehicles[f];
                if gb < 2.0 + 0.3 * o.v {
                    continue;
                }
                let fv0 = self.desired_speed(&o.d, o.lane());
                let after = o.d.idm(o.v, fv0, Some((gb, o.v - me.v)));
                if after < -SAFE_BRAKE {
                    continue;
                }
                let before = match ahead {
                    Some((ga, vl, _)) => o.d.idm(o.v, fv0, Some((ga + gb + d.length, o.v - vl))),
                    None => o.d.idm(o.v, fv0, None),
                };
                courtesy = after - before;
            }
            let bias = if side > 0 {
                d.keep_right
            } else {
                -d.keep_right
            };
            let mut gain = a_new - a_now + d.politeness * courtesy + bias;
            if mandatory && side < 0 {
                gain += 3.0;
            }
            if gain > d.threshold && best.is_none_or(|(g, _, _)| gain > g) {
                best = Some((gain, nl, ns));
            }
        }
        let Some((_, nl, ns)) = best else {
            return;
        };
        let old = &net.lanes[lane].path;
        let new = &net.lanes[nl].path;
        let p_old = old.point_at(me.s);
        let h = new.heading_at(ns);
        let normal = Vec2::from_angle(h + std::f32::consts::FRAC_PI_2);
        let d0 = (p_old - new.point_at(ns)).dot(normal);
        let from_s = me.s;
        // Keep the turn the driver meant to make, if the new lane offers it.
        let movement = me
            .route
            .get(me.k + 1)
            .and_then(|&c| net.lanes[c].connector.as_ref().map(|c| c.movement));
        let mut route = vec![nl];
        if let Some(m) = movement
            && let Some(&c) = net.lanes[nl].exit.iter().find(|&&e| {
                net.lanes[e]
                    .connector
                    .as_ref()
                    .is_some_and(|c| c.movement == m)
            })
        {
            route.push(c);
        }
        self.extend_route(&mut route);
        let me = &mut self.vehicles[i];
        me.route = route;
        me.k = 0;
        me.s = ns;
        me.from_s = from_s;
        me.stop_since = None;
        me.lc = Some(LaneChange {
            from: lane,
            d0,
            x: 0.0,
            rate: 0.0,
            v_start: me.v.max(1.0),
        });
        me.last_lc = self.t;
    }

    fn integrate(&mut self, i: usize, a: f32, recording: bool) {
        let net = self.net;
        let me = &mut self.vehicles[i];
        let v1 = me.v + a * DT;
        let ds = if v1 < 0.0 {
            if a < 0.0 {
                me.v * me.v / (-2.0 * a)
            } else {
                0.0
            }
        } else {
            me.v * DT + 0.5 * a * DT * DT
        };
        me.v = v1.max(0.0);
        me.s += ds;
        me.odo += ds;
        if let Some(lc) = &mut me.lc {
            lc.rate = (me.v / lc.v_start).min(1.0) / me.d.lc_time;
            lc.x += lc.rate * DT;
            let from = lc.from;
            if lc.x >= 1.0 {
                me.lc = None;
            } else {
                let side = if lc.d0 > 0.0 { -1 } else { 1 };
                match net.neighbour(me.route[me.k], side, me.s) {
                    Some((f, fs)) if f == from => me.from_s = fs,
                    _ => me.from_s += ds,
                }
            }
        }
        while me.s > net.lanes[me.route[me.k]].path.len() {
            if me.k + 1 < me.route.len() {
                me.s -= net.lanes[me.route[me.k]].path.len();
                me.k += 1;
                me.stop_since = None;
                if matches!(
                    net.lanes[me.route[me.k]].control,
                    Control::MergeYield { .. }
                ) {
                    me.committed = false;
                }
            } else {
                me.alive = false;
                break;
            }
        }
        let release = match me.reserved {
            Some(c) if !me.alive => Some(c),
            Some(c) => match me.route[..=me.k].iter().rposition(|&l| l == c) {
                Some(kc) if kc < me.k && (me.k > kc + 1 || me.s - me.half() > 0.5) => Some(c),
                _ => None,
            },
            None => None,
        };
        if let Some(c) = release {
            me.reserved = None;
            self.held[c] = self.held[c].saturating_sub(1);
        }
        let me = &mut self.vehicles[i];
        if me.committed && !matches!(net.lanes[me.lane()].control, Control::MergeYield { .. }) {
            me.committed = me.s - me.half() < 0.5;
        }
        if !me.alive && recording {
            self.recorded_gone += 1;
        }
    }

    fn pedestrians_decide(&mut self) {
        for p in 0..self.peds.len() {
            let ped = &self.peds[p];
            if !ped.alive || ped.state != Walk::Waiting {
                continue;
            }
            let Some((x, enter, exit)) = ped.crossing else {
                continue;
            };
            let clear = self.net.crossings[x]
                .conflicts
                .iter()
                .all(|&c| self.held[c] == 0);
            if clear && self.walk_allowed(x, (exit - enter) / ped.v_des) {
                self.peds[p].state = Walk::Crossing;
                self.crossing_busy[x] += 1;
            }
        }
    }

    fn move_pedestrians(&mut self, recording: bool) {
        let n = self.peds.len();
        for p in 0..n {
            if !self.peds[p].alive {
                continue;
            }
            // Slow behind someone close ahead.
            let (pos, dir) = {
                let ped = &self.peds[p];
                (self.ped_position(ped), Vec2::from_angle(ped.heading))
            };
            let mut cap = f32::INFINITY;
            for q in 0..n {
                if q == p || !self.peds[q].alive {
                    continue;
                }
                let other = &self.peds[q];
                let rel = self.ped_position(other) - pos;
                let ahead = rel.dot(dir);
                if ahead > 0.0 && ahead < 1.2 && rel.cross(dir).abs() < 0.7 {
                    cap = cap.min(other.v * 0.9);
                }
            }
            let t = self.t;
            let ped = &mut self.peds[p];
            let mut target = match ped.state {
                Walk::Standing | Walk::Waiting => 0.0,
                _ => ped.v_des * (1.0 + 0.08 * (0.3 * t + ped.phase).sin()),
            }
            .min(cap);
            // Slow down towards the kerb (and the end of a path where one stands).
            let stop_at = match (ped.state, ped.crossing) {
                (Walk::Approach, Some((_, enter, _))) => Some(enter - 0.3),
                _ if ped.stand_at_end => Some(ped.path.len()),
                _ => None,
            };
            if let Some(at) = stop_at {
                target = target.min((2.0 * 1.2 * (at - ped.s).max(0.0)).sqrt() + 0.15);
            }
            let dv = (target - ped.v).clamp(-1.5 * DT, 1.0 * DT);
            ped.v = (ped.v + dv).max(0.0);
            let mut ds = ped.v * DT;
            if let Some((x, enter, exit)) = ped.crossing {
                match ped.state {
                    Walk::Approach if ped.s + ds >= enter - 0.3 => {
                        ds = (enter - 0.3 - ped.s).max(0.0);
                        ped.state = Walk::Waiting;
                    }
                    Walk::Waiting => ds = 0.0,
                    Walk::Crossing if ped.s + ds > exit => {
                        ped.state = Walk::Free;
                        self.crossing_busy[x] = self.crossing_busy[x].saturating_sub(1);
                    }
                    _ => {}
                }
            }
            ped.s += ds;
            // The logged speed is the speed moved at.
            ped.v = ds / DT;
            if ped.s >= ped.path.len() {
                if ped.stand_at_end {
                    ped.s = ped.path.len();
                    ped.state = Walk::Standing;
                    ped.v = 0.0;
                } else {
                    ped.alive = false;
                    if recording {
                        self.recorded_gone += 1;
                    }
                }
            }
            let ped = &mut self.peds[p];
            if ped.state != Walk::Standing && ped.v > 0.05 {
                let h = ped.path.heading_at(ped.s);
                ped.heading += spacer_core::math::wrap_angle(h - ped.heading) * 0.5;
                ped.heading = spacer_core::math::wrap_angle(ped.heading);
            }
        }
    }

    fn ped_position(&self, p: &Pedestrian) -> Vec2 {
        let h = p.path.heading_at(p.s);
        p.path.point_at(p.s) + Vec2::from_angle(h + std::f32::consts::FRAC_PI_2) * p.lateral
    }

    /// New vehicles at the boundary lanes.
    fn inflow(&mut self) {
        let net = self.net;
        let entries: Vec<usize> = net
            .entries()
            .filter(|&l| net.lanes[l].lane_type != crate::scenario::LaneType::BikeLane)
            .collect();
        for lane in entries {
            if self.agents() >= self.max_agents {
                return;
            }
            let limit = net.lanes[lane].speed_limit;
            let p = (self.density * limit * DT).min(0.5) as f64;
            if !self.rng.random_bool(p) {
                continue;
            }
            let class = self.car_class();
            let d = Driver::sample(&mut self.rng, class);
            let v0 = self.desired_speed(&d, lane);
            let s = 0.5 * d.length + 0.5;
            let mut v = v0 * uniform(&mut self.rng, 0.7, 1.0);
            if let Some(&(sj, j)) = self.occ[lane].first() {
                let o = &self.vehicles[j];
                let gap = sj - o.half() - s - 0.5 * d.length;
                if gap < d.s0 + v * d.headway * 0.5 {
                    continue;
                }
                let stop = ((gap - d.s0).max(0.0) * 2.0 * d.b_comf).sqrt();
                v = v.min(o.v + stop);
            }
            let mut route = vec![lane];
            self.extend_route(&mut route);
            let veh = self.new_vehicle(d, route, s, v);
            self.vehicles.push(veh);
            let i = self.vehicles.len() - 1;
            self.occ[lane].insert(0, (s, i));
        }
    }

    fn record(&mut self, r: usize) {
        let net = self.net;
        for v in self.vehicles.iter_mut().filter(|v| v.alive) {
            let path = &net.lanes[v.lane()].path;
            let w = net.lanes[v.lane()].width;
            let room = ((w - v.d.width) * 0.5 - 0.15).max(0.0);
            let (mut lat, mut rate) = v.d.wander(v.odo);
            if v.d.class == Class::Cyclist {
                lat = lat * 0.4 - 0.6 * room;
                rate *= 0.4;
            }
            if lat.abs() > room {
                lat = lat.clamp(-room, room);
                rate = 0.0;
            }
            let mut lat_rate = rate * v.v;
            if let Some(lc) = &v.lc {
                let x = lc.x.clamp(0.0, 1.0);
                let smooth = x * x * x * (10.0 - 15.0 * x + 6.0 * x * x);
                let rate_now = (v.v / lc.v_start).min(1.0) / v.d.lc_time;
                let dsmooth = 30.0 * x * x * (1.0 - x) * (1.0 - x) * rate_now;
                lat += lc.d0 * (1.0 - smooth);
                lat_rate -= lc.d0 * dsmooth;
            }
            let h_lane = path.heading_at(v.s);
            let normal = Vec2::from_angle(h_lane + std::f32::consts::FRAC_PI_2);
            let p = path.point_at(v.s) + normal * lat;
            let heading = h_lane + lat_rate.atan2(v.v.max(0.5));
            let vel = Vec2::new(v.v, lat_rate).rotate(h_lane);
            v.log[r] = ObjectState {
                x: p.x,
                y: p.y,
                z: 0.5 * v.d.height,
                length: v.d.length,
                width: v.d.width,
                height: v.d.height,
                heading: spacer_core::math::wrap_angle(heading),
                vx: vel.x,
                vy: vel.y,
                valid: true,
            };
        }
        let t = self.t;
        for i in 0..self.peds.len() {
            if !self.peds[i].alive {
                continue;
            }
            let pos = self.ped_position(&self.peds[i]);
            let ped = &mut self.peds[i];
            let mut heading = ped.heading;
            if ped.state == Walk::Standing || ped.state == Walk::Waiting {
                heading += 0.15 * (0.4 * t + ped.phase).sin();
            }
            // Velocity along the path; the body may face a little elsewhere.
            let vel = Vec2::from_angle(ped.path.heading_at(ped.s)) * ped.v;
            ped.log[r] = ObjectState {
                x: pos.x,
                y: pos.y,
                z: 0.5 * ped.height,
                length: ped.length,
                width: ped.width,
                height: ped.height,
                heading: spacer_core::math::wrap_angle(heading),
                vx: vel.x,
                vy: vel.y,
                valid: true,
            };
        }
    }

    fn signal_states(&self) -> Vec<(usize, SignalState, Vec2)> {
        let Some(plan) = &self.net.signals else {
            return Vec::new();
        };
        self.connectors
            .iter()
            .filter_map(|&c| {
                let conn = self.net.lanes[c].connector.as_ref()?;
                Some((
                    c,
                    plan.arm_state(conn.arm_in, self.t),
                    self.net.lanes[c].path.point_at(0.0),
                ))
            })
            .collect()
    }

    fn finish(self, signals: Vec<Vec<(usize, SignalState, Vec2)>>) -> Logs {
        let mut agents = Vec::new();
        let mut sdc = None;
        for (i, v) in self.vehicles.into_iter().enumerate() {
            if v.log.iter().any(|s| s.valid) {
                if i == 0 && v.log.iter().all(|s| s.valid) && v.d.class != Class::Cyclist {
                    sdc = Some(agents.len());
                }
                let t = if v.d.class == Class::Cyclist {
                    ObjectType::Cyclist
                } else {
                    ObjectType::Vehicle
                };
                agents.push((t, v.log));
            }
        }
        for p in self.peds {
            if p.log.iter().any(|s| s.valid) {
                agents.push((ObjectType::Pedestrian, p.log));
            }
        }
        Logs {
            agents,
            sdc,
            signals,
        }
    }
}
