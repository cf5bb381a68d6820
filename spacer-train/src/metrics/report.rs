//! Scores of several sim agents over a set of scenes: per-scene and dataset-average
//! [`SceneScores`], a terminal table and the JSON document `spacer metrics` and
//! `spacer eval` write.
//!
//! JSON layout (field names of the official protos inside):
//! ```json
//! {"config": "2025",
//!  "agents": [{"name": "constant_velocity",
//!              "average": {"SimAgentMetrics": {...}, "SimAgentsBucketedMetrics": {...}},
//!              "scenes": [{"SimAgentMetrics": {"scenario_id": "...", ...},
//!                          "SimAgentsBucketedMetrics": {...}}, ...]}]}
//! ```

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::config::MetricsConfig;
use super::scene::{SimAgentMetrics, average_metrics};
use super::{MetricsError, SceneScores};

/// One sim agent's scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentScores {
    /// The agent's name (a sim agent kind, a method, a file stem).
    pub name: String,
    /// The average over its scenes (no scenario id).
    pub average: SceneScores,
    /// Per scene, in the order scored.
    pub scenes: Vec<SceneScores>,
}

impl AgentScores {
    /// Buckets every scene's metrics and their average under `config`.
    ///
    /// # Errors
    /// [`MetricsError::Rollouts`] for no scenes; bucketing errors of the config.
    pub fn new(
        name: impl Into<String>,
        config: &MetricsConfig,
        scenes: Vec<SimAgentMetrics>,
    ) -> Result<Self, MetricsError> {
        let name = name.into();
        let average = average_metrics(&scenes).ok_or_else(|| MetricsError::Rollouts {
            scenario_id: String::new(),
            message: format!("agent {name}: no scene was scored"),
        })?;
        Ok(Self {
            average: SceneScores::new(config, average)?,
            scenes: scenes
                .into_iter()
                .map(|m| SceneScores::new(config, m))
                .collect::<Result<_, _>>()?,
            name,
        })
    }
}

/// Several agents scored under one config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsReport {
    /// The config's name (`2024`, `2025` or the file stem).
    pub config: String,
    /// The agents.
    pub agents: Vec<AgentScores>,
}

fn cell(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "-".to_string()
    }
}

impl MetricsReport {
    /// The terminal table: per agent its scenes and average (meta-metric, buckets,
    /// minADE, event rates), then every field of the averages side by side.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let head = [
            "meta", "kinem", "interact", "map", "minADE", "collide", "offroad", "redlight",
        ];
        for a in &self.agents {
            let _ = writeln!(
                s,
                "{} (config {}, {} scenes)",
                a.name,
                self.config,
                a.scenes.len()
            );
            let _ = write!(s, "  {:<18}", "scene");
            for h in head {
                let _ = write!(s, " {h:>9}");
            }
            let _ = writeln!(s);
            let rows = a
                .scenes
                .iter()
                .map(|sc| (sc.metrics.scenario_id.clone().unwrap_or_default(), sc))
                .chain(std::iter::once(("average".to_string(), &a.average)));
            for (id, sc) in rows {
                let b = &sc.bucketed;
                let _ = write!(s, "  {id:<18}");
                for (v, d) in [
                    (b.realism_meta_metric, 4),
                    (b.kinematic_metrics, 4),
                    (b.interactive_metrics, 4),
                    (b.map_based_metrics, 4),
                    (b.min_ade, 3),
                    (b.simulated_collision_rate, 4),
                    (b.simulated_offroad_rate, 4),
                    (b.simulated_traffic_light_violation_rate, 4),
                ] {
                    let _ = write!(s, " {:>9}", cell(v, d));
                }
                let _ = writeln!(s);
            }
            let _ = writeln!(s);
        }
        if self.agents.is_empty() {
            return s;
        }
        let w = self
            .agents
            .iter()
            .map(|a| a.name.chars().count())
            .max()
            .unwrap_or(0)
            .clamp(10, 32);
        let _ = write!(s, "{:<40}", "dataset average");
        for a in &self.agents {
            let name: String = a.name.chars().take(w).collect();
            let _ = write!(s, " {name:>w$}");
        }
        let _ = writeln!(s);
        let fields = self.agents[0].average.metrics.fields();
        for (i, (name, _)) in fields.iter().enumerate() {
            let _ = write!(s, "{name:<40}");
            for a in &self.agents {
                let v = a.average.metrics.fields()[i].1;
                let _ = write!(s, " {:>w$}", cell(v, 5));
            }
            let _ = writeln!(s);
        }
        for (i, (name, _)) in self.agents[0].average.bucketed.fields().iter().enumerate() {
            if matches!(
                *name,
                "realism_meta_metric"
                    | "min_ade"
                    | "simulated_collision_rate"
                    | "simulated_offroad_rate"
                    | "simulated_traffic_light_violation_rate"
            ) {
                continue;
            }
            let _ = write!(s, "{name:<40}");
            for a in &self.agents {
                let v = a.average.bucketed.fields()[i].1;
                let _ = write!(s, " {:>w$}", cell(v, 5));
            }
            let _ = writeln!(s);
        }
        s
    }

    /// The agents' averages, for [`super::chart::bar_chart`].
    pub fn averages(&self) -> Vec<(&str, &SceneScores)> {
        self.agents
            .iter()
            .map(|a| (a.name.as_str(), &a.average))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::config::Feature;
    use crate::metrics::scene::set_likelihood;

    #[test]
    fn table_lists_scenes_averages_and_fields() {
        let config = MetricsConfig::challenge_2025().unwrap();
        let scene = |id: &str, v: f64| {
            let mut m = SimAgentMetrics {
                scenario_id: Some(id.into()),
                metametric: v,
                ..Default::default()
            };
            for f in Feature::ALL {
                set_likelihood(&mut m, f, v);
            }
            m
        };
        let a = AgentScores::new("log", &config, vec![scene("s1", 0.8), scene("s2", 0.6)]).unwrap();
        assert!((a.average.metrics.metametric - 0.7).abs() < 1e-12);
        let r = MetricsReport {
            config: "2025".into(),
            agents: vec![a],
        };
        let t = r.table();
        assert!(t.contains("s1") && t.contains("s2") && t.contains("average"));
        assert!(t.contains("linear_speed_likelihood") && t.contains("kinematic_metrics"));
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(
            j["agents"][0]["scenes"][1]["SimAgentMetrics"]["scenario_id"],
            "s2"
        );
        assert!(
            j["agents"][0]["average"]["SimAgentsBucketedMetrics"]["realism_meta_metric"]
                .is_number()
        );
        assert!(AgentScores::new("none", &config, vec![]).is_err());
    }
}
