//! Scenes: recorded or generated traffic, in one model whatever the source.
//!
//! A [`Scene`] holds 9.1 s of traffic at 10 Hz ([`NUM_STEPS`] = 91 steps, the current
//! step [`CURRENT_STEP`] = 10): every object's box and state per step, the road map as
//! polylines and polygons, traffic-signal states per step, and the metadata the Waymo
//! Sim Agents Challenge needs (self-driving car, tracks to predict, objects of
//! interest). Units are metres and radians in the source's world frame; values are f32
//! like the official metric code's tensors.
//!
//! Readers: [`womd`] (TFRecord of `Scenario` protobufs), [`gpudrive`] (JSON),
//! [`interaction`] (track CSVs + Lanelet2 map, cut into 9.1 s windows) and [`cache`]
//! (postcard records). [`load`] picks the reader by file name or content, expands
//! directories and runs [`validate`] on every scene, failing or skipping bad ones by
//! [`BadScenePolicy`]; [`convert`] writes any of them into a cache, [`summary`] counts
//! what a scene holds. Every reader streams or reads one file at a time and reports
//! errors with the file, the record and the field. [`synthetic`] generates scenes.

pub mod cache;
pub mod convert;
pub mod dataset;
pub mod gpudrive;
pub mod interaction;
pub mod load;
pub mod summary;
pub mod synthetic;
pub mod validate;
pub mod womd;

pub use load::{
    BadScenePolicy, LoadOptions, LoadedScene, SceneStream, load_scenes, load_scenes_with,
};

use serde::{Deserialize, Serialize};
use spacer_core::agent::AgentKind;

/// Steps per scene (9.1 s at 10 Hz).
pub const NUM_STEPS: usize = 91;
/// The last logged step before simulation starts (history is steps 0..=10).
pub const CURRENT_STEP: usize = 10;
/// Seconds per step.
pub const STEP_SECONDS: f32 = 0.1;

/// Object type, as in WOMD's `Track.ObjectType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ObjectType {
    /// Not set in the source.
    Unset,
    /// Cars, trucks, buses.
    Vehicle,
    /// People on foot.
    Pedestrian,
    /// Bicycles.
    Cyclist,
    /// Anything else.
    Other,
}

impl ObjectType {
    /// The token vocabulary this type uses, if it can be controlled.
    pub fn agent_kind(self) -> Option<AgentKind> {
        match self {
            ObjectType::Vehicle => Some(AgentKind::Vehicle),
            ObjectType::Pedestrian => Some(AgentKind::Pedestrian),
            ObjectType::Cyclist => Some(AgentKind::Cyclist),
            ObjectType::Unset | ObjectType::Other => None,
        }
    }

    /// WOMD's enum value.
    pub fn proto_value(self) -> i32 {
        match self {
            ObjectType::Unset => 0,
            ObjectType::Vehicle => 1,
            ObjectType::Pedestrian => 2,
            ObjectType::Cyclist => 3,
            ObjectType::Other => 4,
        }
    }

    /// From WOMD's enum value (unknown values map to `Other`).
    pub fn from_proto(v: i32) -> Self {
        match v {
            0 => ObjectType::Unset,
            1 => ObjectType::Vehicle,
            2 => ObjectType::Pedestrian,
            3 => ObjectType::Cyclist,
            _ => ObjectType::Other,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            ObjectType::Unset => "unset",
            ObjectType::Vehicle => "vehicle",
            ObjectType::Pedestrian => "pedestrian",
            ObjectType::Cyclist => "cyclist",
            ObjectType::Other => "other",
        }
    }
}

/// One object at one step. Box sizes are per step, as in WOMD.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectState {
    /// Centre x (m).
    pub x: f32,
    /// Centre y (m).
    pub y: f32,
    /// Centre z (m).
    pub z: f32,
    /// Box length (m).
    pub length: f32,
    /// Box width (m).
    pub width: f32,
    /// Box height (m).
    pub height: f32,
    /// Heading (rad).
    pub heading: f32,
    /// Velocity x (m/s).
    pub vx: f32,
    /// Velocity y (m/s).
    pub vy: f32,
    /// Whether the object was observed at this step; other fields are meaningless
    /// when false.
    pub valid: bool,
}

/// One object's whole log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Track {
    /// The source's object id (unique within a scene).
    pub id: i64,
    /// Type.
    pub object_type: ObjectType,
    /// [`NUM_STEPS`] states.
    pub states: Vec<ObjectState>,
}

impl Track {
    /// The last valid state, if any (GPUDrive's goal is its position).
    pub fn last_valid(&self) -> Option<&ObjectState> {
        self.states.iter().rev().find(|s| s.valid)
    }

    /// Whether the object is valid at `step`.
    pub fn valid_at(&self, step: usize) -> bool {
        self.states.get(step).is_some_and(|s| s.valid)
    }
}

/// Lane type (WOMD `LaneCenter.LaneType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LaneType {
    /// Not given.
    Undefined,
    /// Freeway.
    Freeway,
    /// Surface street.
    SurfaceStreet,
    /// Bike lane.
    BikeLane,
}

/// Road line type (WOMD `RoadLine.RoadLineType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RoadLineType {
    /// Not given.
    Unknown,
    /// Broken single white.
    BrokenSingleWhite,
    /// Solid single white.
    SolidSingleWhite,
    /// Solid double white.
    SolidDoubleWhite,
    /// Broken single yellow.
    BrokenSingleYellow,
    /// Broken double yellow.
    BrokenDoubleYellow,
    /// Solid single yellow.
    SolidSingleYellow,
    /// Solid double yellow.
    SolidDoubleYellow,
    /// Passing double yellow.
    PassingDoubleYellow,
}

/// Road edge type (WOMD `RoadEdge.RoadEdgeType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RoadEdgeType {
    /// Not given.
    Unknown,
    /// Boundary between the road and something else.
    Boundary,
    /// A median.
    Median,
}

/// What a map feature is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MapFeatureKind {
    /// A lane centre line (polyline in driving direction).
    Lane(LaneType),
    /// A painted line (polyline).
    RoadLine(RoadLineType),
    /// The edge of the drivable surface (polyline; the road lies on its left in WOMD).
    RoadEdge(RoadEdgeType),
    /// A stop sign (one point).
    StopSign,
    /// A crosswalk (polygon).
    Crosswalk,
    /// A speed bump (polygon).
    SpeedBump,
    /// A driveway (polygon).
    Driveway,
}

impl MapFeatureKind {
    /// The observation's road kind (spacer-core's 7-way one-hot).
    pub fn road_kind(self) -> spacer_core::observation::RoadKind {
        use spacer_core::observation::RoadKind;
        match self {
            MapFeatureKind::Lane(_) => RoadKind::Lane,
            MapFeatureKind::RoadLine(_) => RoadKind::RoadLine,
            MapFeatureKind::RoadEdge(_) => RoadKind::RoadEdge,
            MapFeatureKind::StopSign => RoadKind::StopSign,
            MapFeatureKind::Crosswalk => RoadKind::Crosswalk,
            MapFeatureKind::SpeedBump => RoadKind::SpeedBump,
            MapFeatureKind::Driveway => RoadKind::None,
        }
    }

    /// Short name for tables and legends.
    pub fn name(self) -> &'static str {
        match self {
            MapFeatureKind::Lane(_) => "lane",
            MapFeatureKind::RoadLine(_) => "road_line",
            MapFeatureKind::RoadEdge(_) => "road_edge",
            MapFeatureKind::StopSign => "stop_sign",
            MapFeatureKind::Crosswalk => "crosswalk",
            MapFeatureKind::SpeedBump => "speed_bump",
            MapFeatureKind::Driveway => "driveway",
        }
    }
}

/// A map point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MapPoint {
    /// x (m).
    pub x: f32,
    /// y (m).
    pub y: f32,
    /// z (m).
    pub z: f32,
}

/// One map feature: a polyline (lanes, lines, edges), a polygon (crosswalks, speed
/// bumps, driveways) or a point (stop signs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MapFeature {
    /// The source's feature id (lanes are referenced by it).
    pub id: i64,
    /// Kind.
    pub kind: MapFeatureKind,
    /// Geometry.
    pub points: Vec<MapPoint>,
    /// Lanes that lead into this lane (lanes only).
    pub entry_lanes: Vec<i64>,
    /// Lanes this lane leads into (lanes only).
    pub exit_lanes: Vec<i64>,
    /// Lanes a stop sign controls (stop signs only).
    pub controlled_lanes: Vec<i64>,
    /// Speed limit in mph where known (lanes only).
    pub speed_limit_mph: Option<f32>,
}

impl MapFeature {
    /// A feature with geometry only.
    pub fn new(id: i64, kind: MapFeatureKind, points: Vec<MapPoint>) -> Self {
        Self {
            id,
            kind,
            points,
            entry_lanes: Vec::new(),
            exit_lanes: Vec::new(),
            controlled_lanes: Vec::new(),
            speed_limit_mph: None,
        }
    }
}

/// Traffic signal state (WOMD `TrafficSignalLaneState.State`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SignalState {
    /// Unknown.
    Unknown,
    /// Red arrow.
    ArrowStop,
    /// Yellow arrow.
    ArrowCaution,
    /// Green arrow.
    ArrowGo,
    /// Red.
    Stop,
    /// Yellow.
    Caution,
    /// Green.
    Go,
    /// Flashing red.
    FlashingStop,
    /// Flashing yellow.
    FlashingCaution,
}

impl SignalState {
    /// WOMD's enum value.
    pub fn proto_value(self) -> i32 {
        self as i32
    }

    /// From WOMD's enum value (unknown values map to `Unknown`).
    pub fn from_proto(v: i32) -> Self {
        use SignalState::*;
        match v {
            1 => ArrowStop,
            2 => ArrowCaution,
            3 => ArrowGo,
            4 => Stop,
            5 => Caution,
            6 => Go,
            7 => FlashingStop,
            8 => FlashingCaution,
            _ => Unknown,
        }
    }

    /// True for the states an agent must stop at (red, red arrow, flashing red).
    pub fn is_red(self) -> bool {
        matches!(
            self,
            SignalState::Stop | SignalState::ArrowStop | SignalState::FlashingStop
        )
    }
}

/// One lane's signal at one step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LaneSignal {
    /// The controlled lane's feature id.
    pub lane: i64,
    /// State.
    pub state: SignalState,
    /// Where the lane's traffic must stop.
    pub stop_point: MapPoint,
}

/// A prediction target of the challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredictionTarget {
    /// Index into [`Scene::tracks`].
    pub track_index: usize,
    /// Difficulty level (0 none, 1, 2).
    pub difficulty: u8,
}

/// Which format a scene came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SceneSource {
    /// WOMD `Scenario` protobuf in a TFRecord.
    Womd,
    /// GPUDrive JSON.
    Gpudrive,
    /// INTERACTION CSV tracks + Lanelet2 map.
    Interaction,
    /// spacer's generator.
    Synthetic,
}

/// One scene.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scene {
    /// Scenario id.
    pub id: String,
    /// Where it came from.
    pub source: SceneSource,
    /// The current step (10 for WOMD).
    pub current_step: usize,
    /// Objects, each with [`NUM_STEPS`] states.
    pub tracks: Vec<Track>,
    /// Road map.
    pub map: Vec<MapFeature>,
    /// Traffic-signal states per step ([`NUM_STEPS`] entries, possibly empty ones).
    pub signals: Vec<Vec<LaneSignal>>,
    /// Index of the self-driving car in `tracks`, if known.
    pub sdc_index: Option<usize>,
    /// Tracks the challenge scores besides the self-driving car.
    pub tracks_to_predict: Vec<PredictionTarget>,
    /// Object ids the source marks as interesting.
    pub objects_of_interest: Vec<i64>,
}

impl Scene {
    /// Number of steps (the length of every track's states).
    pub fn num_steps(&self) -> usize {
        self.tracks.first().map_or(NUM_STEPS, |t| t.states.len())
    }

    /// Tracks the WOSAC metrics score: the self-driving car plus the tracks to predict
    /// (deduplicated, in track order). For synthetic scenes, every track to predict.
    pub fn evaluated_tracks(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .tracks_to_predict
            .iter()
            .map(|t| t.track_index)
            .collect();
        if let Some(s) = self.sdc_index {
            v.push(s);
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Whether any lane has a signal state at any step.
    pub fn has_signals(&self) -> bool {
        self.signals.iter().any(|s| !s.is_empty())
    }
}
