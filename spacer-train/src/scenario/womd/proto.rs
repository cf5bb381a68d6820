//! The WOMD protobuf messages, written by hand with prost's derives (no protoc, no
//! build script), field numbers and types as in `womd/SCHEMA.md` (the official
//! `scenario.proto` and `map.proto`).
//!
//! Every proto2 `optional` field is an `Option`, so that "absent" and "zero" stay
//! distinguishable; nested enums and the `feature_data` oneof live in modules named
//! after their message, as prost-build would generate them. prost decodes repeated
//! scalars packed or unpacked whatever the attribute says; `packed = "false"` only
//! makes encoding match proto2's default. Sensor fields (`compressed_frame_laser_data`,
//! `frame_camera_tokens`) are not declared, so the decoder skips them.

/// A whole scene: tracks, map, traffic signals and the challenge's metadata.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Scenario {
    /// Unique id of the scene.
    #[prost(string, optional, tag = "5")]
    pub scenario_id: Option<String>,
    /// Timestamp of every step (s).
    #[prost(double, repeated, packed = "false", tag = "1")]
    pub timestamps_seconds: Vec<f64>,
    /// The step at which prediction/simulation starts.
    #[prost(int32, optional, tag = "10")]
    pub current_time_index: Option<i32>,
    /// Every object.
    #[prost(message, repeated, tag = "2")]
    pub tracks: Vec<Track>,
    /// Traffic-signal states, one entry per step.
    #[prost(message, repeated, tag = "7")]
    pub dynamic_map_states: Vec<DynamicMapState>,
    /// The static map.
    #[prost(message, repeated, tag = "8")]
    pub map_features: Vec<MapFeature>,
    /// Index of the autonomous vehicle in `tracks`.
    #[prost(int32, optional, tag = "6")]
    pub sdc_track_index: Option<i32>,
    /// Object ids of interest.
    #[prost(int32, repeated, packed = "false", tag = "4")]
    pub objects_of_interest: Vec<i32>,
    /// Tracks the challenge scores.
    #[prost(message, repeated, tag = "11")]
    pub tracks_to_predict: Vec<RequiredPrediction>,
}

/// One object at one step.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct ObjectState {
    /// Box centre x (m).
    #[prost(double, optional, tag = "2")]
    pub center_x: Option<f64>,
    /// Box centre y (m).
    #[prost(double, optional, tag = "3")]
    pub center_y: Option<f64>,
    /// Box centre z (m).
    #[prost(double, optional, tag = "4")]
    pub center_z: Option<f64>,
    /// Box length (m).
    #[prost(float, optional, tag = "5")]
    pub length: Option<f32>,
    /// Box width (m).
    #[prost(float, optional, tag = "6")]
    pub width: Option<f32>,
    /// Box height (m).
    #[prost(float, optional, tag = "7")]
    pub height: Option<f32>,
    /// Heading (rad).
    #[prost(float, optional, tag = "8")]
    pub heading: Option<f32>,
    /// Velocity x (m/s).
    #[prost(float, optional, tag = "9")]
    pub velocity_x: Option<f32>,
    /// Velocity y (m/s).
    #[prost(float, optional, tag = "10")]
    pub velocity_y: Option<f32>,
    /// Whether the object was observed at this step.
    #[prost(bool, optional, tag = "11")]
    pub valid: Option<bool>,
}

/// One object's log.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Track {
    /// Unique id (within the scene).
    #[prost(int32, optional, tag = "1")]
    pub id: Option<i32>,
    /// `track::ObjectType` value.
    #[prost(enumeration = "track::ObjectType", optional, tag = "2")]
    pub object_type: Option<i32>,
    /// One state per step.
    #[prost(message, repeated, tag = "3")]
    pub states: Vec<ObjectState>,
}

/// Types nested in [`Track`].
pub mod track {
    /// `Track.ObjectType`: the values the official rollouts carry.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum ObjectType {
        /// Not set.
        TypeUnset = 0,
        /// Vehicle.
        TypeVehicle = 1,
        /// Pedestrian.
        TypePedestrian = 2,
        /// Cyclist.
        TypeCyclist = 3,
        /// Other.
        TypeOther = 4,
    }
}

/// Traffic-signal states at one step.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DynamicMapState {
    /// The lanes that have a signal at this step.
    #[prost(message, repeated, tag = "1")]
    pub lane_states: Vec<TrafficSignalLaneState>,
}

/// A track the challenge scores.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct RequiredPrediction {
    /// Index into `Scenario.tracks`.
    #[prost(int32, optional, tag = "1")]
    pub track_index: Option<i32>,
    /// `required_prediction::DifficultyLevel` value.
    #[prost(
        enumeration = "required_prediction::DifficultyLevel",
        optional,
        tag = "2"
    )]
    pub difficulty: Option<i32>,
}

/// Types nested in [`RequiredPrediction`].
pub mod required_prediction {
    /// `RequiredPrediction.DifficultyLevel`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum DifficultyLevel {
        /// Not graded.
        None = 0,
        /// Level 1.
        Level1 = 1,
        /// Level 2.
        Level2 = 2,
    }
}

/// A static map (`map.proto`'s `Map`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Map {
    /// Static map features.
    #[prost(message, repeated, tag = "1")]
    pub map_features: Vec<MapFeature>,
    /// Signal states over time.
    #[prost(message, repeated, tag = "2")]
    pub dynamic_states: Vec<DynamicState>,
}

/// Signal states at one time (`map.proto`'s `DynamicState`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct DynamicState {
    /// Time (s).
    #[prost(double, optional, tag = "1")]
    pub timestamp_seconds: Option<f64>,
    /// The lanes that have a signal at this step.
    #[prost(message, repeated, tag = "2")]
    pub lane_states: Vec<TrafficSignalLaneState>,
}

/// One lane's signal.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct TrafficSignalLaneState {
    /// The controlled lane's feature id.
    #[prost(int64, optional, tag = "1")]
    pub lane: Option<i64>,
    /// `traffic_signal_lane_state::State` value.
    #[prost(enumeration = "traffic_signal_lane_state::State", optional, tag = "2")]
    pub state: Option<i32>,
    /// Where the lane's traffic stops.
    #[prost(message, optional, tag = "3")]
    pub stop_point: Option<MapPoint>,
}

/// Types nested in [`TrafficSignalLaneState`].
pub mod traffic_signal_lane_state {
    /// `TrafficSignalLaneState.State`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum State {
        /// Unknown.
        LaneStateUnknown = 0,
        /// Red arrow.
        LaneStateArrowStop = 1,
        /// Yellow arrow.
        LaneStateArrowCaution = 2,
        /// Green arrow.
        LaneStateArrowGo = 3,
        /// Red.
        LaneStateStop = 4,
        /// Yellow.
        LaneStateCaution = 5,
        /// Green.
        LaneStateGo = 6,
        /// Flashing red.
        LaneStateFlashingStop = 7,
        /// Flashing yellow.
        LaneStateFlashingCaution = 8,
    }
}

/// One map feature.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MapFeature {
    /// Unique id (within the scene).
    #[prost(int64, optional, tag = "1")]
    pub id: Option<i64>,
    /// What the feature is, with its geometry.
    #[prost(oneof = "map_feature::FeatureData", tags = "3, 4, 5, 7, 8, 9, 10")]
    pub feature_data: Option<map_feature::FeatureData>,
}

/// Types nested in [`MapFeature`].
pub mod map_feature {
    /// `MapFeature.feature_data`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum FeatureData {
        /// A lane centre line.
        #[prost(message, tag = "3")]
        Lane(super::LaneCenter),
        /// A painted line.
        #[prost(message, tag = "4")]
        RoadLine(super::RoadLine),
        /// A road edge.
        #[prost(message, tag = "5")]
        RoadEdge(super::RoadEdge),
        /// A stop sign.
        #[prost(message, tag = "7")]
        StopSign(super::StopSign),
        /// A crosswalk.
        #[prost(message, tag = "8")]
        Crosswalk(super::Crosswalk),
        /// A speed bump.
        #[prost(message, tag = "9")]
        SpeedBump(super::SpeedBump),
        /// A driveway.
        #[prost(message, tag = "10")]
        Driveway(super::Driveway),
    }
}

/// A map point (m).
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct MapPoint {
    /// x (m).
    #[prost(double, optional, tag = "1")]
    pub x: Option<f64>,
    /// y (m).
    #[prost(double, optional, tag = "2")]
    pub y: Option<f64>,
    /// z (m).
    #[prost(double, optional, tag = "3")]
    pub z: Option<f64>,
}

/// A stretch of a lane's boundary.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct BoundarySegment {
    /// First lane polyline index of the stretch.
    #[prost(int32, optional, tag = "1")]
    pub lane_start_index: Option<i32>,
    /// Last lane polyline index of the stretch.
    #[prost(int32, optional, tag = "2")]
    pub lane_end_index: Option<i32>,
    /// The boundary's feature id.
    #[prost(int64, optional, tag = "3")]
    pub boundary_feature_id: Option<i64>,
    /// `road_line::RoadLineType` value.
    #[prost(enumeration = "road_line::RoadLineType", optional, tag = "4")]
    pub boundary_type: Option<i32>,
}

/// A neighbouring lane.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LaneNeighbor {
    /// The neighbour lane's feature id.
    #[prost(int64, optional, tag = "1")]
    pub feature_id: Option<i64>,
    /// First index on this lane.
    #[prost(int32, optional, tag = "2")]
    pub self_start_index: Option<i32>,
    /// Last index on this lane.
    #[prost(int32, optional, tag = "3")]
    pub self_end_index: Option<i32>,
    /// First index on the neighbour.
    #[prost(int32, optional, tag = "4")]
    pub neighbor_start_index: Option<i32>,
    /// Last index on the neighbour.
    #[prost(int32, optional, tag = "5")]
    pub neighbor_end_index: Option<i32>,
    /// Boundaries between the two lanes.
    #[prost(message, repeated, tag = "6")]
    pub boundaries: Vec<BoundarySegment>,
}

/// A lane centre line and its topology.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LaneCenter {
    /// Speed limit (mph).
    #[prost(double, optional, tag = "1")]
    pub speed_limit_mph: Option<f64>,
    /// Sub-type enum value.
    #[prost(enumeration = "lane_center::LaneType", optional, tag = "2")]
    pub r#type: Option<i32>,
    /// Whether the lane only joins others (inside intersections).
    #[prost(bool, optional, tag = "3")]
    pub interpolating: Option<bool>,
    /// Points in order.
    #[prost(message, repeated, tag = "8")]
    pub polyline: Vec<MapPoint>,
    /// Lanes that lead into this one.
    #[prost(int64, repeated, packed = "false", tag = "9")]
    pub entry_lanes: Vec<i64>,
    /// Lanes this one leads into.
    #[prost(int64, repeated, packed = "false", tag = "10")]
    pub exit_lanes: Vec<i64>,
    /// Boundaries on the left.
    #[prost(message, repeated, tag = "13")]
    pub left_boundaries: Vec<BoundarySegment>,
    /// Boundaries on the right.
    #[prost(message, repeated, tag = "14")]
    pub right_boundaries: Vec<BoundarySegment>,
    /// Neighbours on the left.
    #[prost(message, repeated, tag = "11")]
    pub left_neighbors: Vec<LaneNeighbor>,
    /// Neighbours on the right.
    #[prost(message, repeated, tag = "12")]
    pub right_neighbors: Vec<LaneNeighbor>,
}

/// Types nested in [`LaneCenter`].
pub mod lane_center {
    /// `LaneCenter.LaneType`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum LaneType {
        /// Not given.
        TypeUndefined = 0,
        /// Freeway.
        TypeFreeway = 1,
        /// Surface street.
        TypeSurfaceStreet = 2,
        /// Bike lane.
        TypeBikeLane = 3,
    }
}

/// The edge of the drivable surface.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RoadEdge {
    /// Sub-type enum value.
    #[prost(enumeration = "road_edge::RoadEdgeType", optional, tag = "1")]
    pub r#type: Option<i32>,
    /// Points in order.
    #[prost(message, repeated, tag = "2")]
    pub polyline: Vec<MapPoint>,
}

/// Types nested in [`RoadEdge`].
pub mod road_edge {
    /// `RoadEdge.RoadEdgeType`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum RoadEdgeType {
        /// Unknown.
        TypeUnknown = 0,
        /// Road / non-road boundary.
        TypeRoadEdgeBoundary = 1,
        /// Median.
        TypeRoadEdgeMedian = 2,
    }
}

/// A painted line.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RoadLine {
    /// Sub-type enum value.
    #[prost(enumeration = "road_line::RoadLineType", optional, tag = "1")]
    pub r#type: Option<i32>,
    /// Points in order.
    #[prost(message, repeated, tag = "2")]
    pub polyline: Vec<MapPoint>,
}

/// Types nested in [`RoadLine`].
pub mod road_line {
    /// `RoadLine.RoadLineType`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum RoadLineType {
        /// Unknown.
        TypeUnknown = 0,
        /// Broken single white.
        TypeBrokenSingleWhite = 1,
        /// Solid single white.
        TypeSolidSingleWhite = 2,
        /// Solid double white.
        TypeSolidDoubleWhite = 3,
        /// Broken single yellow.
        TypeBrokenSingleYellow = 4,
        /// Broken double yellow.
        TypeBrokenDoubleYellow = 5,
        /// Solid single yellow.
        TypeSolidSingleYellow = 6,
        /// Solid double yellow.
        TypeSolidDoubleYellow = 7,
        /// Passing double yellow.
        TypePassingDoubleYellow = 8,
    }
}

/// A stop sign.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StopSign {
    /// The controlled lane's feature id.
    #[prost(int64, repeated, packed = "false", tag = "1")]
    pub lane: Vec<i64>,
    /// The sign's position.
    #[prost(message, optional, tag = "2")]
    pub position: Option<MapPoint>,
}

/// A crosswalk polygon.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Crosswalk {
    /// Polygon vertices.
    #[prost(message, repeated, tag = "1")]
    pub polygon: Vec<MapPoint>,
}

/// A speed bump polygon.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SpeedBump {
    /// Polygon vertices.
    #[prost(message, repeated, tag = "1")]
    pub polygon: Vec<MapPoint>,
}

/// A driveway polygon.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Driveway {
    /// Polygon vertices.
    #[prost(message, repeated, tag = "1")]
    pub polygon: Vec<MapPoint>,
}
