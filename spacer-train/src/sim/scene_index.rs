//! What the simulator precomputes once per scene and shares between all worlds (and
//! rollouts) of that scene: agent kinds, goals, the road-segment grid of the
//! observation, the road-edge grid of the off-road test, and the object grid's extent.

use std::sync::Arc;

use spacer_core::agent::AgentKind;
use spacer_core::geometry::{Segment, Vec2};
use spacer_core::observation::{RoadSegment, polyline_segments};

use super::SimError;
use super::config::SimConfig;
use super::grid::{EdgeGrid, GridShape, RoadGrid};
use crate::scenario::{MapFeatureKind, ObjectState, Scene};

/// Margin (metres) added around a scene's content for the object grid: agents that
/// leave it are still found (clamped to the border cells), only less efficiently.
const OBJECT_GRID_MARGIN: f32 = 100.0;

/// A scene prepared for simulation; immutable and shared.
#[derive(Debug)]
pub struct SceneIndex {
    scene: Arc<Scene>,
    current_step: usize,
    total_steps: usize,
    kinds: Vec<Option<AgentKind>>,
    goals: Vec<Option<Vec2>>,
    roads: RoadGrid,
    edges: EdgeGrid,
    object_shape: GridShape,
}

impl SceneIndex {
    /// Prepares `scene` for `config`.
    ///
    /// # Errors
    /// [`SimError::Scene`] when the scene has no tracks, tracks of different lengths,
    /// or a current step outside its tracks.
    pub fn new(scene: Arc<Scene>, config: &SimConfig) -> Result<Self, SimError> {
        let steps = scene.num_steps();
        let scene_error = |message: String| SimError::Scene {
            scene: scene.id.clone(),
            message,
        };
        if scene.tracks.is_empty() {
            return Err(scene_error("the scene has no tracks".into()));
        }
        if let Some((i, t)) = scene
            .tracks
            .iter()
            .enumerate()
            .find(|(_, t)| t.states.len() != steps)
        {
            return Err(scene_error(format!(
                "track {i} (id {}) has {} states, track 0 has {steps}",
                t.id,
                t.states.len()
            )));
        }
        if scene.current_step >= steps {
            return Err(scene_error(format!(
                "current step {} is beyond the {steps} logged steps",
                scene.current_step
            )));
        }
        let kinds = scene
            .tracks
            .iter()
            .map(|t| t.object_type.agent_kind())
            .collect();
        let goals = scene
            .tracks
            .iter()
            .map(|t| t.last_valid().map(|s| Vec2::new(s.x, s.y)))
            .collect();

        let mut road_segments = Vec::new();
        let mut edge_segments = Vec::new();
        let mut points: Vec<Vec2> = Vec::new();
        let (mut min, mut max) = (
            Vec2::new(f32::INFINITY, f32::INFINITY),
            Vec2::new(f32::NEG_INFINITY, f32::NEG_INFINITY),
        );
        let mut grow = |p: Vec2| {
            if p.is_finite() {
                min = Vec2::new(min.x.min(p.x), min.y.min(p.y));
                max = Vec2::new(max.x.max(p.x), max.y.max(p.y));
            }
        };
        for feature in &scene.map {
            points.clear();
            points.extend(feature.points.iter().map(|p| Vec2::new(p.x, p.y)));
            points.iter().for_each(|&p| grow(p));
            if let MapFeatureKind::RoadEdge(_) = feature.kind {
                edge_segments.extend(points.windows(2).map(|w| Segment::new(w[0], w[1])));
            }
            // Polygons are closed so that their whole outline is observed.
            let polygon = matches!(
                feature.kind,
                MapFeatureKind::Crosswalk | MapFeatureKind::SpeedBump | MapFeatureKind::Driveway
            );
            if polygon && points.len() >= 3 && points.first() != points.last() {
                points.push(points[0]);
            }
            let mut out = vec![RoadSegment::default(); points.len().max(1)];
            // The output holds at least one segment per point: cannot be too short.
            let n = polyline_segments(&points, feature.kind.road_kind(), &mut out)
                .map_err(|e| scene_error(format!("map feature {}: {e}", feature.id)))?;
            road_segments.extend_from_slice(&out[..n]);
        }
        for t in &scene.tracks {
            for s in t.states.iter().filter(|s| s.valid) {
                grow(Vec2::new(s.x, s.y));
            }
        }
        let margin = Vec2::new(OBJECT_GRID_MARGIN, OBJECT_GRID_MARGIN);
        let object_shape = GridShape::covering(min - margin, max + margin, config.object_cell);
        Ok(Self {
            current_step: scene.current_step,
            total_steps: config.total_steps(scene.current_step),
            kinds,
            goals,
            roads: RoadGrid::new(
                road_segments,
                config.observation.radius,
                config.observation.max_road_segments,
                config.road_cell,
            ),
            edges: EdgeGrid::new(edge_segments, config.edge_cell),
            object_shape,
            scene,
        })
    }

    /// The scene.
    pub fn scene(&self) -> &Scene {
        &self.scene
    }

    /// The shared scene.
    pub fn scene_arc(&self) -> &Arc<Scene> {
        &self.scene
    }

    /// The last logged step of the history.
    pub fn current_step(&self) -> usize {
        self.current_step
    }

    /// Steps in a run (history plus simulated steps).
    pub fn total_steps(&self) -> usize {
        self.total_steps
    }

    /// Objects (tracks) in the scene.
    pub fn num_objects(&self) -> usize {
        self.kinds.len()
    }

    /// The token vocabulary kind of track `i`, if it can be controlled.
    pub fn kind(&self, i: usize) -> Option<AgentKind> {
        self.kinds.get(i).copied().flatten()
    }

    /// The goal of track `i`: its last valid logged position (GPUDrive's convention).
    pub fn goal(&self, i: usize) -> Option<Vec2> {
        self.goals.get(i).copied().flatten()
    }

    /// The logged state of track `i` at `step`; `None` beyond the log.
    #[inline]
    pub fn log(&self, i: usize, step: usize) -> Option<&ObjectState> {
        self.scene.tracks.get(i)?.states.get(step)
    }

    /// The observation's road segments, indexed.
    pub fn roads(&self) -> &RoadGrid {
        &self.roads
    }

    /// The road edges, indexed.
    pub fn edges(&self) -> &EdgeGrid {
        &self.edges
    }

    /// The extent and cells of the per-step object grid.
    pub fn object_shape(&self) -> &GridShape {
        &self.object_shape
    }
}
