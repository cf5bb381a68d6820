//! Hand-built scenes for tests, examples and benchmarks: straight multi-lane roads
//! with road edges, lines and lane centres, and objects driving at constant speed.
//! Real scenes come from the readers in [`crate::scenario`]; these exist so that the
//! simulator can be checked against situations whose outcome is known exactly.

use spacer_core::geometry::Vec2;

use crate::scenario::{
    LaneType, MapFeature, MapFeatureKind, MapPoint, NUM_STEPS, ObjectState, ObjectType,
    PredictionTarget, RoadEdgeType, RoadLineType, Scene, SceneSource, Track,
};

/// Lane width of the hand-built roads (metres).
pub const LANE_WIDTH: f32 = 3.5;
/// Where the hand-built roads start and end along x (metres).
pub const ROAD_SPAN: (f32, f32) = (-100.0, 700.0);

/// A track that moves at constant velocity `(vx, vy)` from `(x, y)` with heading
/// `heading`, valid at every one of the [`NUM_STEPS`] steps.
pub fn constant_track(
    id: i64,
    object_type: ObjectType,
    start: Vec2,
    heading: f32,
    velocity: Vec2,
    size: (f32, f32),
) -> Track {
    let states = (0..NUM_STEPS)
        .map(|t| {
            let s = t as f32 * 0.1;
            ObjectState {
                x: start.x + velocity.x * s,
                y: start.y + velocity.y * s,
                z: 0.0,
                length: size.0,
                width: size.1,
                height: 1.6,
                heading,
                vx: velocity.x,
                vy: velocity.y,
                valid: true,
            }
        })
        .collect();
    Track {
        id,
        object_type,
        states,
    }
}

/// A polyline along x at height `y`, one point every `spacing` metres over
/// [`ROAD_SPAN`], each point's y offset by `wiggle(x)`.
fn line(y: f32, spacing: f32, wiggle: impl Fn(f32) -> f32) -> Vec<MapPoint> {
    let n = ((ROAD_SPAN.1 - ROAD_SPAN.0) / spacing) as usize;
    (0..=n)
        .map(|k| {
            let x = ROAD_SPAN.0 + k as f32 * spacing;
            MapPoint {
                x,
                y: y + wiggle(x),
                z: 0.0,
            }
        })
        .collect()
}

/// The map of a straight road of `lanes` lanes along +x: lane centres at
/// `y = k * LANE_WIDTH`, road lines between lanes, road edges half a lane outside
/// the outer lanes. With `wiggle`, every polyline meanders by up to 0.3 m (points
/// every 2 m), so that it keeps many segments as real maps do.
pub fn straight_road_map(lanes: usize, wiggle: bool) -> Vec<MapFeature> {
    let spacing = if wiggle { 2.0 } else { 10.0 };
    let bend = move |phase: f32| {
        move |x: f32| {
            if wiggle {
                0.3 * (x * 0.31 + phase).sin()
            } else {
                0.0
            }
        }
    };
    let mut map = Vec::new();
    let mut id = 1000;
    let mut push = |kind, points| {
        map.push(MapFeature::new(id, kind, points));
        id += 1;
    };
    for k in 0..lanes {
        let y = k as f32 * LANE_WIDTH;
        push(
            MapFeatureKind::Lane(LaneType::SurfaceStreet),
            line(y, spacing, bend(k as f32)),
        );
        if k + 1 < lanes {
            push(
                MapFeatureKind::RoadLine(RoadLineType::BrokenSingleWhite),
                line(y + 0.5 * LANE_WIDTH, spacing, bend(k as f32 + 0.5)),
            );
        }
    }
    let top = (lanes as f32 - 0.5) * LANE_WIDTH;
    push(
        MapFeatureKind::RoadEdge(RoadEdgeType::Boundary),
        line(-0.5 * LANE_WIDTH, spacing, bend(7.0)),
    );
    push(
        MapFeatureKind::RoadEdge(RoadEdgeType::Boundary),
        line(top, spacing, bend(9.0)),
    );
    map
}

/// A scene on [`straight_road_map`]: `per_lane` vehicles in each of `lanes` lanes,
/// 25 m apart, driving along +x at 8 to 12 m/s, all valid at every step. Track 0 is
/// the self-driving car; tracks 1 and 2 (when they exist) are tracks to predict.
pub fn straight_road(lanes: usize, per_lane: usize) -> Scene {
    let mut tracks = Vec::new();
    for lane in 0..lanes {
        for k in 0..per_lane {
            let id = tracks.len() as i64;
            let speed = 8.0 + ((lane * 7 + k * 3) % 5) as f32;
            tracks.push(constant_track(
                id,
                ObjectType::Vehicle,
                Vec2::new(
                    k as f32 * 25.0 + lane as f32 * 6.0,
                    lane as f32 * LANE_WIDTH,
                ),
                0.0,
                Vec2::new(speed, 0.0),
                (4.5, 2.0),
            ));
        }
    }
    scene("straight-road", tracks, straight_road_map(lanes, false))
}

/// A scene with the given tracks and map, WOMD's timing (current step 10), track 0
/// the self-driving car and tracks 1 and 2 (when they exist) tracks to predict.
pub fn scene(id: &str, tracks: Vec<Track>, map: Vec<MapFeature>) -> Scene {
    let tracks_to_predict = (1..tracks.len().min(3))
        .map(|track_index| PredictionTarget {
            track_index,
            difficulty: 0,
        })
        .collect();
    Scene {
        id: id.to_string(),
        source: SceneSource::Synthetic,
        current_step: 10,
        sdc_index: (!tracks.is_empty()).then_some(0),
        tracks,
        map,
        signals: vec![Vec::new(); NUM_STEPS],
        tracks_to_predict,
        objects_of_interest: Vec::new(),
    }
}

/// A dense scene for benchmarks: a `lanes`-lane meandering road with `agents`
/// vehicles spread over its lanes, 12 m apart, plus a pedestrian on each sidewalk
/// every 40 m. Deterministic.
pub fn dense_road(lanes: usize, agents: usize) -> Scene {
    let mut tracks = Vec::new();
    for k in 0..agents {
        let lane = k % lanes.max(1);
        let along = (k / lanes.max(1)) as f32 * 12.0 + lane as f32 * 4.0;
        let speed = 6.0 + (k % 7) as f32;
        tracks.push(constant_track(
            k as i64,
            ObjectType::Vehicle,
            Vec2::new(along, lane as f32 * LANE_WIDTH),
            0.0,
            Vec2::new(speed, 0.0),
            (4.5, 2.0),
        ));
    }
    let walk_y = [
        -0.5 * LANE_WIDTH - 2.0,
        (lanes as f32 - 0.5) * LANE_WIDTH + 2.0,
    ];
    let mut x = 0.0;
    while x < 300.0 {
        for (side, &y) in walk_y.iter().enumerate() {
            let id = tracks.len() as i64;
            let v = if side == 0 { 1.2 } else { -1.2 };
            tracks.push(constant_track(
                id,
                ObjectType::Pedestrian,
                Vec2::new(x, y),
                if side == 0 { 0.0 } else { std::f32::consts::PI },
                Vec2::new(v, 0.0),
                (0.8, 0.8),
            ));
        }
        x += 40.0;
    }
    scene("dense-road", tracks, straight_road_map(lanes, true))
}
