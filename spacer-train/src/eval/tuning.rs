//! Policy sampling chosen on the validation split: each policy's temperature is the
//! one of a grid with the best WOSAC realism on the validation scenes (never the
//! test scenes), and the policy is then evaluated at that temperature. Every policy
//! gets the same treatment, so methods are compared at their best sampling rather
//! than at one temperature that suits some of them; `ref:` agents already carry
//! their own validated sampling in their checkpoint.

use std::fmt::Write;
use std::sync::Arc;

use super::registry::{AgentOptions, AgentSource, AgentSpec};
use super::{AgentEvaluation, EvalConfig, EvalError, evaluate_specs, policy_selection};
use crate::scenario::Scene;

/// The sampling temperatures `spacer eval --choose-temperature` tries by default.
pub const DEFAULT_TEMPERATURE_GRID: [f32; 6] = [0.5, 0.65, 0.8, 1.0, 1.25, 1.6];

/// One policy's validation realism at each temperature of the grid.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TemperatureChoice {
    /// The agent's name.
    pub agent: String,
    /// The grid.
    pub temperatures: Vec<f32>,
    /// Mean realism meta-metric on the validation scenes at each temperature.
    pub realism: Vec<f64>,
    /// The temperature with the best realism (the first of equals).
    pub chosen: f32,
}

/// Whether an agent samples from a policy (so that its temperature can be chosen).
pub fn is_policy(spec: &AgentSpec) -> bool {
    matches!(
        spec.source,
        AgentSource::Policy(_) | AgentSource::InitialPolicy
    )
}

/// Evaluates every policy of `specs` on `validation` at each temperature of `grid`
/// (top-k `top_k`) and picks the best; other agents are left out.
///
/// # Errors
/// An empty or invalid grid, no validation scene, an agent that cannot be evaluated.
pub fn choose_temperatures(
    specs: &[AgentSpec],
    validation: &[Arc<Scene>],
    options: &AgentOptions,
    config: &EvalConfig,
    grid: &[f32],
    top_k: u16,
    progress: bool,
) -> Result<Vec<TemperatureChoice>, EvalError> {
    if grid.is_empty() || grid.iter().any(|&t| !(t.is_finite() && t > 0.0)) {
        return Err(EvalError::Settings(format!(
            "temperature grid {grid:?}: expected finite positive temperatures"
        )));
    }
    if validation.is_empty() {
        return Err(EvalError::Nothing(
            "no validation scenes to choose the temperatures on".into(),
        ));
    }
    let policies: Vec<AgentSpec> = specs.iter().filter(|s| is_policy(s)).cloned().collect();
    let mut realism = vec![Vec::with_capacity(grid.len()); policies.len()];
    for &t in grid {
        let mut o = options.clone();
        o.policy_selection = policy_selection(t, top_k)?;
        for (i, (_, e)) in evaluate_specs(&policies, validation, &o, config, progress)?
            .into_iter()
            .enumerate()
        {
            realism[i].push(e.scores.average.bucketed.realism_meta_metric);
        }
    }
    Ok(policies
        .iter()
        .zip(realism)
        .map(|(spec, r)| {
            let best = (0..r.len()).fold(0, |b, i| if r[i] > r[b] { i } else { b });
            TemperatureChoice {
                agent: spec.name.clone(),
                temperatures: grid.to_vec(),
                chosen: grid[best],
                realism: r,
            }
        })
        .collect())
}

/// Evaluates every agent of `specs` on `scenes`, each policy at its chosen
/// temperature (top-k `top_k`), the others with `options`.
///
/// # Errors
/// As [`evaluate_specs`].
pub fn evaluate_at_chosen(
    specs: &[AgentSpec],
    scenes: &[Arc<Scene>],
    options: &AgentOptions,
    config: &EvalConfig,
    choices: &[TemperatureChoice],
    top_k: u16,
    progress: bool,
) -> Result<Vec<(String, AgentEvaluation)>, EvalError> {
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs {
        let mut o = options.clone();
        if let Some(c) = choices.iter().find(|c| c.agent == spec.name) {
            o.policy_selection = policy_selection(c.chosen, top_k)?;
        }
        out.extend(evaluate_specs(
            std::slice::from_ref(spec),
            scenes,
            &o,
            config,
            progress,
        )?);
    }
    Ok(out)
}

/// The validation realism of every policy at every temperature, the chosen one
/// starred.
pub fn choices_table(choices: &[TemperatureChoice]) -> String {
    let mut t = String::new();
    let Some(first) = choices.first() else {
        return t;
    };
    let _ = write!(t, "{:<20}", "validation realism");
    for x in &first.temperatures {
        let _ = write!(t, " {:>8}", format!("T {x}"));
    }
    let _ = writeln!(t, "   chosen");
    for c in choices {
        let _ = write!(t, "{:<20}", c.agent);
        for (x, r) in c.temperatures.iter().zip(&c.realism) {
            let mark = if *x == c.chosen { "*" } else { " " };
            let _ = write!(t, " {:>7.4}{mark}", r);
        }
        let _ = writeln!(t, "   {}", c.chosen);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricsConfig;
    use crate::scenario::dataset::synthetic;
    use spacer_core::tokenizer::{DEFAULT_TOKENS, Vocabulary};

    #[test]
    fn each_policy_is_evaluated_at_the_temperature_it_scored_best_on_validation() {
        let scenes: Vec<Arc<Scene>> = synthetic(2, 5, true).into_iter().map(Arc::new).collect();
        let config = EvalConfig::new(MetricsConfig::challenge_2025().unwrap(), 2, 0);
        let options = AgentOptions::new(Vocabulary::kinematic_grid(DEFAULT_TOKENS).unwrap());
        let specs: Vec<AgentSpec> = ["policy", "const-vel"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let grid = [0.3, 3.0];
        let choices =
            choose_temperatures(&specs, &scenes[..1], &options, &config, &grid, 0, false).unwrap();
        assert_eq!(choices.len(), 1, "const-vel does not sample");
        let c = &choices[0];
        assert_eq!((c.agent.as_str(), c.realism.len()), ("policy", 2));
        let best = if c.realism[1] > c.realism[0] {
            3.0
        } else {
            0.3
        };
        assert_eq!(c.chosen, best);
        // The policy's rollouts at the chosen temperature are those of a plain
        // evaluation at that temperature.
        let results =
            evaluate_at_chosen(&specs, &scenes[1..], &options, &config, &choices, 0, false)
                .unwrap();
        let mut o = options.clone();
        o.policy_selection = policy_selection(best, 0).unwrap();
        let plain = evaluate_specs(&specs[..1], &scenes[1..], &o, &config, false).unwrap();
        assert_eq!(results[0].1.scores, plain[0].1.scores);
        assert_eq!(results[1].0, "const-vel");
        let table = choices_table(&choices);
        assert!(table.contains("policy") && table.contains('*'), "{table}");
        for bad in [&[][..], &[0.0][..], &[f32::NAN][..]] {
            let e = choose_temperatures(&specs, &scenes, &options, &config, bad, 0, false);
            assert!(matches!(e, Err(EvalError::Settings(_))), "{bad:?}");
        }
    }
}
