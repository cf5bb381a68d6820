//! What one scene holds, counted: agents by type, valid states, the self-driving car,
//! tracks to predict, objects of interest, map features by kind, polyline points and
//! traffic-light lanes. `spacer data inspect` prints [`SceneSummary::table`].

use super::{LoadedScene, MapFeatureKind, ObjectType, SceneSource};

/// The counts `inspect` prints for one scene.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SceneSummary {
    /// Scenario id.
    pub id: String,
    /// Source format name.
    pub source: &'static str,
    /// File and record.
    pub origin: String,
    /// Steps per track.
    pub steps: usize,
    /// The current step.
    pub current_step: usize,
    /// Agents by type, in [`ObjectType`] order, types with none left out.
    pub agents: Vec<(ObjectType, usize)>,
    /// Valid object states over all tracks and steps.
    pub valid_states: usize,
    /// The self-driving car: track index and object id.
    pub sdc: Option<(usize, i64)>,
    /// Track indices to predict, in the source's order.
    pub tracks_to_predict: Vec<usize>,
    /// Object ids of interest.
    pub objects_of_interest: Vec<i64>,
    /// Map features by kind name, in a fixed order, kinds with none left out.
    pub features: Vec<(&'static str, usize)>,
    /// Points of the lanes, road lines and road edges.
    pub polyline_points: usize,
    /// Lanes with a signal state at some step.
    pub signal_lanes: usize,
    /// Steps with at least one signal state.
    pub signal_steps: usize,
}

const KIND_ORDER: [&str; 7] = [
    "lane",
    "road_line",
    "road_edge",
    "crosswalk",
    "speed_bump",
    "stop_sign",
    "driveway",
];

impl SceneSummary {
    /// Counts what `inspect` shows.
    pub fn of(loaded: &LoadedScene) -> Self {
        let s = &loaded.scene;
        let types = [
            ObjectType::Vehicle,
            ObjectType::Pedestrian,
            ObjectType::Cyclist,
            ObjectType::Other,
            ObjectType::Unset,
        ];
        let agents = types
            .iter()
            .map(|&t| (t, s.tracks.iter().filter(|x| x.object_type == t).count()))
            .filter(|&(_, n)| n > 0)
            .collect();
        let features = KIND_ORDER
            .iter()
            .map(|&k| (k, s.map.iter().filter(|m| m.kind.name() == k).count()))
            .filter(|&(_, n)| n > 0)
            .collect();
        let polyline_points = s
            .map
            .iter()
            .filter(|m| {
                matches!(
                    m.kind,
                    MapFeatureKind::Lane(_)
                        | MapFeatureKind::RoadLine(_)
                        | MapFeatureKind::RoadEdge(_)
                )
            })
            .map(|m| m.points.len())
            .sum();
        let mut lanes: Vec<i64> = s.signals.iter().flatten().map(|l| l.lane).collect();
        lanes.sort_unstable();
        lanes.dedup();
        let origin = match loaded.record {
            Some(r) => format!("{}, record {r}", loaded.path.display()),
            None => loaded.path.display().to_string(),
        };
        Self {
            id: s.id.clone(),
            source: match s.source {
                SceneSource::Womd => "womd",
                SceneSource::Gpudrive => "gpudrive",
                SceneSource::Interaction => "interaction",
                SceneSource::Synthetic => "synthetic",
            },
            origin,
            steps: s.num_steps(),
            current_step: s.current_step,
            agents,
            valid_states: s
                .tracks
                .iter()
                .map(|t| t.states.iter().filter(|x| x.valid).count())
                .sum(),
            sdc: s.sdc_index.and_then(|i| s.tracks.get(i).map(|t| (i, t.id))),
            tracks_to_predict: s.tracks_to_predict.iter().map(|t| t.track_index).collect(),
            objects_of_interest: s.objects_of_interest.clone(),
            features,
            polyline_points,
            signal_lanes: lanes.len(),
            signal_steps: s.signals.iter().filter(|x| !x.is_empty()).count(),
        }
    }

    /// Number of agents.
    pub fn agent_count(&self) -> usize {
        self.agents.iter().map(|a| a.1).sum()
    }

    /// Number of map features.
    pub fn feature_count(&self) -> usize {
        self.features.iter().map(|a| a.1).sum()
    }

    /// The table `inspect` prints.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let list = |v: &[String]| {
            if v.is_empty() {
                String::new()
            } else {
                format!(" ({})", v.join(", "))
            }
        };
        let agents: Vec<String> = self
            .agents
            .iter()
            .map(|(t, n)| format!("{n} {}", t.name()))
            .collect();
        let features: Vec<String> = self
            .features
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        let ttp: Vec<String> = self
            .tracks_to_predict
            .iter()
            .map(|i| i.to_string())
            .collect();
        let ooi: Vec<String> = self
            .objects_of_interest
            .iter()
            .map(|i| i.to_string())
            .collect();
        let mut t = String::new();
        let _ = writeln!(t, "scene {} [{}] {}", self.id, self.source, self.origin);
        let mut row = |k: &str, v: String| {
            let _ = writeln!(t, "  {k:<20} {v}");
        };
        row(
            "steps",
            format!("{} (current {})", self.steps, self.current_step),
        );
        row("agents", format!("{}{}", self.agent_count(), list(&agents)));
        row("valid states", self.valid_states.to_string());
        row(
            "self-driving car",
            match self.sdc {
                Some((i, id)) => format!("track {i} (id {id})"),
                None => "none".into(),
            },
        );
        row("tracks to predict", format!("{}{}", ttp.len(), list(&ttp)));
        row(
            "objects of interest",
            format!("{}{}", ooi.len(), list(&ooi)),
        );
        row(
            "map features",
            format!("{}{}", self.feature_count(), list(&features)),
        );
        row("polyline points", self.polyline_points.to_string());
        row(
            "traffic-light lanes",
            if self.signal_lanes == 0 {
                "0".into()
            } else {
                format!(
                    "{} (states at {} of {} steps)",
                    self.signal_lanes, self.signal_steps, self.steps
                )
            },
        );
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::shared_data;
    use crate::scenario::validate::StepRule;
    use crate::scenario::{BadScenePolicy, LoadOptions, SceneStream};

    fn summaries(relative: &str) -> Vec<SceneSummary> {
        let mut o = LoadOptions::new(BadScenePolicy::Fail);
        o.steps = StepRule::Any;
        SceneStream::open(&[shared_data(relative)], o)
            .unwrap()
            .map(|s| SceneSummary::of(&s.unwrap()))
            .collect()
    }

    fn one(relative: &str) -> SceneSummary {
        let mut v = summaries(relative);
        assert_eq!(v.len(), 1, "{relative}");
        v.remove(0)
    }

    fn features(s: &SceneSummary) -> Vec<(&'static str, usize)> {
        s.features.clone()
    }

    use ObjectType::{Cyclist as C, Pedestrian as P, Vehicle as V};

    /// Every number data/README.md lists, for every shipped file.
    #[test]
    fn inspect_prints_the_readme_counts_for_every_shipped_file() {
        // womd/637f20cafde22ff8.tfrecord and its GPUDrive copy.
        for f in [
            "womd/637f20cafde22ff8.tfrecord",
            "gpudrive/637f20cafde22ff8.json",
        ] {
            let s = one(f);
            assert_eq!(s.id, "637f20cafde22ff8");
            assert_eq!(s.agents, [(V, 70), (P, 10), (C, 3)], "{f}");
            assert_eq!(
                (s.steps, s.current_step, s.valid_states),
                (91, 10, 4596),
                "{f}"
            );
            assert_eq!(s.sdc.map(|x| x.0), Some(82), "{f}");
            assert_eq!(
                features(&s),
                [
                    ("lane", 199),
                    ("road_line", 59),
                    ("road_edge", 28),
                    ("crosswalk", 4),
                    ("speed_bump", 3),
                    ("stop_sign", 8)
                ],
                "{f}"
            );
            assert_eq!(s.feature_count(), 301);
            assert_eq!(s.polyline_points, 19_596, "{f}");
            assert_eq!((s.signal_lanes, s.signal_steps), (12, 91), "{f}");
            assert_eq!(s.tracks_to_predict, [72, 43, 42], "{f}");
            let t = s.table();
            assert!(
                t.contains("agents               83 (70 vehicle, 10 pedestrian, 3 cyclist)"),
                "{t}"
            );
            assert!(t.contains("steps                91 (current 10)"), "{t}");
            assert!(t.contains("valid states         4596"), "{t}");
            assert!(t.contains("self-driving car     track 82"), "{t}");
            assert!(t.contains("map features         301 (199 lane, 59 road_line, 28 road_edge, 4 crosswalk, 3 speed_bump, 8 stop_sign)"), "{t}");
            assert!(t.contains("polyline points      19596"), "{t}");
            assert!(
                t.contains("traffic-light lanes  12 (states at 91 of 91 steps)"),
                "{t}"
            );
            assert!(t.contains("tracks to predict    3 (72, 43, 42)"), "{t}");
        }
        // womd/ee519cf571686d19.tfrecord and its GPUDrive copy.
        for f in [
            "womd/ee519cf571686d19.tfrecord",
            "gpudrive/ee519cf571686d19.json",
        ] {
            let s = one(f);
            assert_eq!(s.agents, [(V, 189), (P, 68)], "{f}");
            assert_eq!(s.sdc.map(|x| x.0), Some(256), "{f}");
            assert_eq!(
                features(&s),
                [
                    ("lane", 114),
                    ("road_line", 12),
                    ("road_edge", 75),
                    ("crosswalk", 4),
                    ("speed_bump", 6),
                    ("stop_sign", 4)
                ],
                "{f}"
            );
            assert_eq!(s.signal_lanes, 0, "{f}");
            assert!(s.table().contains("traffic-light lanes  0"), "{f}");
        }
        // GPUDrive files: (objects, roads, light lanes).
        for (f, objects, roads, lights) in [
            ("gpudrive/tfrecord-00000-of-01000_4.json", 81, 102, 0),
            ("gpudrive/tfrecord-00000-of-01000_325.json", 62, 157, 0),
            ("gpudrive/tfrecord-00000-of-01000_402.json", 91, 225, 0),
            ("gpudrive/tfrecord-00002-of-01000_407.json", 15, 177, 0),
            ("gpudrive/1c365f15b70ebdbf.json", 25, 118, 0),
            (
                "gpudrive/tl_tfrecord-00000-of-00150_2af8a17d6cee3f8.json",
                100,
                174,
                14,
            ),
            (
                "gpudrive/tl_tfrecord-00000-of-00150_2a173b334be3d32c.json",
                15,
                213,
                12,
            ),
            (
                "gpudrive/dense_tfrecord-00000-of-00150_238786b3cccc4a0e.json",
                87,
                297,
                19,
            ),
        ] {
            let s = one(f);
            assert_eq!(
                (s.agent_count(), s.feature_count(), s.signal_lanes),
                (objects, roads, lights),
                "{f}"
            );
            assert_eq!(s.steps, 91, "{f}");
            assert!(
                s.table()
                    .contains(&format!("agents               {objects}")),
                "{f}"
            );
            assert!(
                s.table().contains(&format!("map features         {roads}")),
                "{f}"
            );
        }
        let s = one("gpudrive/tl_tfrecord-00000-of-00150_2a173b334be3d32c.json");
        assert_eq!(s.agents, [(V, 12), (P, 3)]);
        let s = one("gpudrive/dense_tfrecord-00000-of-00150_238786b3cccc4a0e.json");
        assert_eq!(s.sdc, None);
        assert!(s.tracks_to_predict.is_empty());
        assert!(s.table().contains("self-driving car     none"));
        // The one-step collision fixtures.
        for f in [
            "gpudrive/agent-agent-collision.json",
            "gpudrive/agent-road-edge-collision.json",
        ] {
            let s = one(f);
            assert_eq!(s.steps, 1, "{f}");
        }
        assert_eq!(one("gpudrive/agent-agent-collision.json").agent_count(), 2);
        assert_eq!(
            one("gpudrive/agent-road-edge-collision.json").agent_count(),
            1
        );
        // INTERACTION: 3,007 frames cut every second into 9.1 s windows, 74 vehicles.
        let v = summaries("interaction");
        assert_eq!(v.len(), 292);
        assert!(
            v.iter()
                .all(|s| s.steps == 91 && s.current_step == 10 && s.sdc.is_none())
        );
        assert!(
            v[0].table().contains(
                "map features         102 (59 lane, 13 road_line, 24 road_edge, 6 stop_sign)"
            ),
            "{}",
            v[0].table()
        );
        // Every shipped directory at once.
        let all: usize = ["womd", "gpudrive"]
            .iter()
            .map(|d| summaries(d).len())
            .sum();
        assert_eq!(all, 14);
    }
}
