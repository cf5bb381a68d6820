//! Likelihood estimates of logged features under the distribution of simulated ones,
//! as the official `estimators` module defines them.
//!
//! - **Histogram**: `num_bins` equal bins from `min_val` to `max_val` (edges as
//!   `tf.linspace` makes them in `f32`), values clipped into the range, each bin's
//!   count plus the pseudocount, normalised; a logged value scores the log probability
//!   of its bin. A bin holds `[e_k, e_k+1)`, the last one also its upper edge. NaN
//!   values (the undefined ends of the central differences) fall into the last bin,
//!   exactly as `tfp.stats.histogram` puts them there.
//! - **Bernoulli**: the histogram over `[-0.5, 1.5]` with two bins, of booleans as 0/1.
//! - **Kernel density**: a Gaussian kernel density of the simulated values scaled so
//!   that a Dirac delta scores 1 (log score `log(mean_i exp(-(x - x_i)² / 2h²))`).
//!
//! [`log_likelihood_timeseries`] groups values into populations as a feature's config
//! asks: per object over all rollouts and steps (`independent_timesteps`), per object
//! and step over the rollouts (the default), or the same over all objects together
//! (`aggregate_objects`).

use super::config::{Estimator, FeatureConfig, HistogramEstimate};
use super::features::FeatureArray;

/// A value an estimator can take: a float feature or a boolean indicator.
pub trait FeatureValue: Copy + Send + Sync {
    /// As a float (booleans are 0 or 1).
    fn as_f32(self) -> f32;
    /// As a boolean, if it is one.
    fn as_bool(self) -> Option<bool>;
}

impl FeatureValue for f32 {
    fn as_f32(self) -> f32 {
        self
    }
    fn as_bool(self) -> Option<bool> {
        None
    }
}

impl FeatureValue for bool {
    fn as_f32(self) -> f32 {
        if self { 1.0 } else { 0.0 }
    }
    fn as_bool(self) -> Option<bool> {
        Some(self)
    }
}

/// The `num_bins + 1` edges of a histogram, as `tf.linspace(min, max, n + 1)` computes
/// them in `f32`: `min + k * ((max - min) / n)`, the last edge exactly `max`.
pub fn histogram_edges(min_val: f32, max_val: f32, num_bins: u32) -> Vec<f32> {
    let n = num_bins.max(1) as usize;
    let delta = (max_val - min_val) / n as f32;
    let mut edges = Vec::with_capacity(n + 1);
    edges.push(min_val);
    for k in 1..n {
        edges.push(min_val + delta * k as f32);
    }
    edges.push(max_val);
    edges
}

/// The bin of `v` (clipped into the range first; NaN goes to the last bin).
pub fn histogram_bin(edges: &[f32], v: f32) -> usize {
    let nb = edges.len() - 1;
    let lo = edges[0];
    let hi = edges[nb];
    // `tf.clip_by_value` keeps NaN.
    let v = if v < lo {
        lo
    } else if v > hi {
        hi
    } else {
        v
    };
    // `searchsorted(edges, v, side='right') - 1`, clipped to a valid bin; NaN compares
    // false everywhere and lands at the end.
    let above = edges.partition_point(|&e| v.partial_cmp(&e) != Some(std::cmp::Ordering::Less));
    above.saturating_sub(1).min(nb - 1)
}

/// Log probability of each logged value's bin under the histogram of the simulated
/// values (one population).
pub fn histogram_log_likelihood(h: &HistogramEstimate, log: &[f32], sim: &[f32]) -> Vec<f64> {
    let edges = histogram_edges(h.min_val, h.max_val, h.num_bins);
    let mut counts = vec![h.additive_smoothing_pseudocount as f64; h.num_bins as usize];
    for &v in sim {
        counts[histogram_bin(&edges, v)] += 1.0;
    }
    let total: f64 = counts.iter().sum();
    let log_p: Vec<f64> = counts.iter().map(|c| (c / total).ln()).collect();
    log.iter()
        .map(|&v| log_p[histogram_bin(&edges, v)])
        .collect()
}

/// Log probability of each logged boolean under the Bernoulli distribution of the
/// simulated ones (a two-bin histogram with the pseudocount added to both).
pub fn bernoulli_log_likelihood(pseudocount: f32, log: &[bool], sim: &[bool]) -> Vec<f64> {
    let h = HistogramEstimate {
        min_val: -0.5,
        max_val: 1.5,
        num_bins: 2,
        additive_smoothing_pseudocount: pseudocount,
    };
    let as_f = |v: &[bool]| v.iter().map(|&b| b.as_f32()).collect::<Vec<_>>();
    histogram_log_likelihood(&h, &as_f(log), &as_f(sim))
}

/// Log score of each logged value under the Gaussian kernel density of the simulated
/// values, scaled so that a Dirac delta scores 0 (the official normalisation).
///
/// # Errors
/// When a value is NaN (the official estimator, scikit-learn's, rejects those).
pub fn kernel_density_log_likelihood(
    bandwidth: f32,
    log: &[f32],
    sim: &[f32],
) -> Result<Vec<f64>, String> {
    if log.iter().chain(sim).any(|v| v.is_nan()) {
        return Err(
            "kernel density estimates cannot take NaN values; use a histogram for \
                    kinematic features, whose series ends are undefined"
                .into(),
        );
    }
    let h = bandwidth as f64;
    let n = sim.len() as f64;
    Ok(log
        .iter()
        .map(|&x| {
            let x = x as f64;
            let exps: Vec<f64> = sim
                .iter()
                .map(|&s| -0.5 * ((x - s as f64) / h).powi(2))
                .collect();
            let m = exps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = exps.iter().map(|e| (e - m).exp()).sum();
            m + sum.ln() - n.ln()
        })
        .collect())
}

/// One population's log-likelihoods under `estimator`.
///
/// # Errors
/// A Bernoulli estimator on a float feature, or a NaN under a kernel density.
pub fn estimate<V: FeatureValue>(
    estimator: &Estimator,
    log: &[V],
    sim: &[V],
) -> Result<Vec<f64>, String> {
    let floats = |v: &[V]| v.iter().map(|x| x.as_f32()).collect::<Vec<_>>();
    match estimator {
        Estimator::Histogram(h) => Ok(histogram_log_likelihood(h, &floats(log), &floats(sim))),
        Estimator::KernelDensity(k) => {
            kernel_density_log_likelihood(k.bandwidth, &floats(log), &floats(sim))
        }
        Estimator::Bernoulli(b) => {
            let bools = |v: &[V]| v.iter().map(|x| x.as_bool()).collect::<Option<Vec<_>>>();
            match (bools(log), bools(sim)) {
                (Some(l), Some(s)) => Ok(bernoulli_log_likelihood(
                    b.additive_smoothing_pseudocount,
                    &l,
                    &s,
                )),
                _ => Err("a Bernoulli estimate needs a boolean feature".into()),
            }
        }
    }
}

/// Log-likelihoods of the logged series of every object and step.
///
/// # Shapes
/// `log`: one sample, `[1][objects][steps]`; `sim`: `[rollouts][objects][steps]`.
/// Returns `[objects * steps]`, object-major.
///
/// # Errors
/// A feature without an estimator, mismatched shapes, or an estimator that does not fit
/// the values (see [`estimate`]).
pub fn log_likelihood_timeseries<V: FeatureValue>(
    config: &FeatureConfig,
    log: &FeatureArray<V>,
    sim: &FeatureArray<V>,
) -> Result<Vec<f64>, String> {
    let estimator = config.estimator.as_ref().ok_or(
        "the feature config contains no estimator (histogram, kernel_density or bernoulli)",
    )?;
    let (n_obj, n_steps, n_roll) = (sim.n_objects, sim.n_steps, sim.n_samples);
    if log.n_samples != 1 || log.n_objects != n_obj || log.n_steps != n_steps {
        return Err(format!(
            "log values must be [1][{n_obj}][{n_steps}], found [{}][{}][{}]",
            log.n_samples, log.n_objects, log.n_steps
        ));
    }
    let mut out = vec![0.0f64; n_obj * n_steps];
    match (config.aggregate_objects, config.independent_timesteps) {
        (false, true) => {
            for o in 0..n_obj {
                let pool: Vec<V> = (0..n_roll)
                    .flat_map(|r| sim.series(r, o).iter().copied())
                    .collect();
                let ll = estimate(estimator, log.series(0, o), &pool)?;
                out[o * n_steps..(o + 1) * n_steps].copy_from_slice(&ll);
            }
        }
        (false, false) => {
            for o in 0..n_obj {
                for t in 0..n_steps {
                    let pool: Vec<V> = (0..n_roll).map(|r| sim.get(r, o, t)).collect();
                    let ll = estimate(estimator, &[log.get(0, o, t)], &pool)?;
                    out[o * n_steps + t] = ll[0];
                }
            }
        }
        (true, true) => {
            let pool: Vec<V> = sim.data.clone();
            let ll = estimate(estimator, &log.data, &pool)?;
            out.copy_from_slice(&ll);
        }
        (true, false) => {
            for t in 0..n_steps {
                let pool: Vec<V> = (0..n_obj)
                    .flat_map(|o| (0..n_roll).map(move |r| (o, r)))
                    .map(|(o, r)| sim.get(r, o, t))
                    .collect();
                let logs: Vec<V> = (0..n_obj).map(|o| log.get(0, o, t)).collect();
                let ll = estimate(estimator, &logs, &pool)?;
                for o in 0..n_obj {
                    out[o * n_steps + t] = ll[o];
                }
            }
        }
    }
    Ok(out)
}

/// Log-likelihoods of per-object values (one per object, no time axis), such as the
/// "ever collided" indicators.
///
/// # Shapes
/// `log`: `[objects]`; `sim`: `[rollouts][objects]` flattened rollout-major. Returns
/// `[objects]`.
///
/// # Errors
/// As [`log_likelihood_timeseries`].
pub fn log_likelihood_per_object<V: FeatureValue>(
    config: &FeatureConfig,
    log: &[V],
    sim: &[V],
) -> Result<Vec<f64>, String> {
    let n_obj = log.len();
    if n_obj == 0 || !sim.len().is_multiple_of(n_obj) {
        return Err(format!(
            "{} simulated values do not divide into {n_obj} objects",
            sim.len()
        ));
    }
    let log_a = FeatureArray {
        n_samples: 1,
        n_objects: n_obj,
        n_steps: 1,
        data: log.to_vec(),
    };
    let sim_a = FeatureArray {
        n_samples: sim.len() / n_obj,
        n_objects: n_obj,
        n_steps: 1,
        data: sim.to_vec(),
    };
    log_likelihood_timeseries(config, &log_a, &sim_a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::config::{BernoulliEstimate, KernelDensityEstimate};

    fn hist(min: f32, max: f32, n: u32, p: f32) -> HistogramEstimate {
        HistogramEstimate {
            min_val: min,
            max_val: max,
            num_bins: n,
            additive_smoothing_pseudocount: p,
        }
    }

    #[test]
    fn edges_and_bins() {
        let e = histogram_edges(-12.0, 12.0, 11);
        assert_eq!(e.len(), 12);
        assert_eq!((e[0], e[11]), (-12.0, 12.0));
        assert_eq!(histogram_bin(&e, -100.0), 0);
        assert_eq!(histogram_bin(&e, -12.0), 0);
        assert_eq!(histogram_bin(&e, 12.0), 10);
        assert_eq!(histogram_bin(&e, 1e9), 10);
        assert_eq!(histogram_bin(&e, f32::NAN), 10);
        assert_eq!(histogram_bin(&e, e[3]), 3);
        assert_eq!(histogram_bin(&e, 0.0), 5);
    }

    #[test]
    fn histogram_probabilities() {
        let h = hist(0.0, 2.0, 2, 0.5);
        // Sim: 3 in [0,1), 1 in [1,2]: probabilities 3.5/5 and 1.5/5.
        let ll = histogram_log_likelihood(&h, &[0.2, 1.7, 5.0], &[0.1, 0.5, 0.9, 1.5]);
        assert!((ll[0] - (3.5f64 / 5.0).ln()).abs() < 1e-7);
        assert!((ll[1] - (1.5f64 / 5.0).ln()).abs() < 1e-7);
        assert_eq!(ll[1], ll[2]);
    }

    #[test]
    fn bernoulli_counts_with_pseudocount() {
        let ll = bernoulli_log_likelihood(0.001, &[false, true], &[false; 32]);
        let p = 0.001f32 as f64;
        assert!((ll[0] - ((32.0 + p) / (32.0 + 2.0 * p)).ln()).abs() < 1e-12);
        assert!((ll[1] - (p / (32.0 + 2.0 * p)).ln()).abs() < 1e-12);
        let b = Estimator::Bernoulli(BernoulliEstimate {
            additive_smoothing_pseudocount: 0.1,
        });
        assert!(estimate(&b, &[1.0f32], &[0.0]).is_err());
    }

    #[test]
    fn kernel_density_of_a_dirac_scores_zero() {
        let ll = kernel_density_log_likelihood(0.5, &[1.0, 1.5], &[1.0, 1.0]).unwrap();
        assert!(ll[0].abs() < 1e-12);
        assert!((ll[1] - (-0.5)).abs() < 1e-9);
        let k = Estimator::KernelDensity(KernelDensityEstimate { bandwidth: 0.5 });
        assert!(estimate(&k, &[f32::NAN], &[0.0]).is_err());
    }

    fn array(
        n_samples: usize,
        n_objects: usize,
        n_steps: usize,
        data: Vec<f32>,
    ) -> FeatureArray<f32> {
        FeatureArray {
            n_samples,
            n_objects,
            n_steps,
            data,
        }
    }

    #[test]
    fn populations_follow_the_config() {
        let h = Estimator::Histogram(hist(0.0, 4.0, 4, 0.1));
        // 2 rollouts x 2 objects x 2 steps.
        let sim = array(2, 2, 2, vec![0.5, 1.5, 2.5, 3.5, 0.5, 0.5, 2.5, 2.5]);
        let log = array(1, 2, 2, vec![0.5, 1.5, 2.5, 3.5]);
        let mut cfg = FeatureConfig {
            estimator: Some(h),
            independent_timesteps: true,
            metametric_weight: 1.0,
            aggregate_objects: false,
        };
        // Per object over rollouts and steps: object 0 pool {0.5,1.5,0.5,0.5}.
        let ll = log_likelihood_timeseries(&cfg, &log, &sim).unwrap();
        assert!((ll[0] - (3.1f64 / 4.4).ln()).abs() < 1e-7);
        assert!((ll[1] - (1.1f64 / 4.4).ln()).abs() < 1e-7);
        // Per object and step over rollouts: object 0 step 1 pool {1.5, 0.5}.
        cfg.independent_timesteps = false;
        let ll = log_likelihood_timeseries(&cfg, &log, &sim).unwrap();
        assert!((ll[1] - (1.1f64 / 2.4).ln()).abs() < 1e-7);
        assert!((ll[0] - (2.1f64 / 2.4).ln()).abs() < 1e-7);
        // All objects pooled.
        cfg.aggregate_objects = true;
        cfg.independent_timesteps = true;
        let ll = log_likelihood_timeseries(&cfg, &log, &sim).unwrap();
        assert!((ll[0] - (3.1f64 / 8.4).ln()).abs() < 1e-7);
        cfg.independent_timesteps = false;
        let ll = log_likelihood_timeseries(&cfg, &log, &sim).unwrap();
        // Step 0 pool over objects and rollouts: {0.5, 2.5, 0.5, 2.5}.
        assert!((ll[0] - (2.1f64 / 4.4).ln()).abs() < 1e-7);
        cfg.estimator = None;
        assert!(log_likelihood_timeseries(&cfg, &log, &sim).is_err());
    }
}
