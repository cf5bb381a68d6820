//! The PPO loss with SPACeR's anchor term, sample by sample, with its gradient with
//! respect to the logits and the value in closed form (so that any learner can use
//! it: [`HeadLoss`] for the native one, the same formulas in tensors for burn).
//!
//! For sample `i` with action `a`, old log-probability `l_old`, normalised advantage
//! `A`, return `R`, and p = softmax(logits):
//!
//! ```text
//! ratio = exp(log p[a] - l_old)
//! pg    = max(-A ratio, -A clip(ratio, 1 - eps, 1 + eps))
//! value = vf_coef * 0.5 * (v - R)^2
//! ent   = -ent_coef * H(p)
//! kl    = beta * KL(p || q)      (q: the anchor's distribution, exact over the K tokens)
//! loss  = (pg + value + ent + kl) / minibatch
//! ```

use super::anchor::AnchorScores;
use crate::late_fusion::native::{HeadLoss, SampleLoss};

/// What a minibatch's loss adds up (sums over samples; divide by `samples`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LossStats {
    /// Samples.
    pub samples: usize,
    /// Policy-gradient loss.
    pub policy: f64,
    /// Value loss (0.5 squared error, before the coefficient).
    pub value: f64,
    /// Entropy (nats).
    pub entropy: f64,
    /// KL to the anchor (nats), over samples with an anchor distribution.
    pub kl: f64,
    /// Samples with an anchor distribution.
    pub kl_samples: usize,
    /// Samples whose ratio was clipped.
    pub clipped: usize,
    /// Approximate KL between the acting and the current policy ((r - 1) - log r).
    pub approx_kl: f64,
}

impl std::ops::AddAssign for LossStats {
    fn add_assign(&mut self, o: Self) {
        self.samples += o.samples;
        self.policy += o.policy;
        self.value += o.value;
        self.entropy += o.entropy;
        self.kl += o.kl;
        self.kl_samples += o.kl_samples;
        self.clipped += o.clipped;
        self.approx_kl += o.approx_kl;
    }
}

/// The loss's weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossWeights {
    /// Ratio clipping.
    pub clip: f32,
    /// Value-loss weight.
    pub vf_coef: f32,
    /// Entropy weight.
    pub ent_coef: f32,
    /// KL weight.
    pub beta: f32,
}

/// The PPO loss over one minibatch.
#[derive(Debug)]
pub struct PpoLoss<'a> {
    /// Weights.
    pub weights: LossWeights,
    /// Action per sample (indexed by sample number in the batch).
    pub actions: &'a [u16],
    /// Old log-probability per sample.
    pub old_logp: &'a [f32],
    /// Advantage per sample, already normalised for this minibatch.
    pub advantages: &'a [f32],
    /// Return per sample.
    pub returns: &'a [f32],
    /// The anchor's distributions (none: no KL term).
    pub anchor: Option<&'a AnchorScores>,
    /// 1 / minibatch size.
    pub scale: f32,
}

impl HeadLoss for PpoLoss<'_> {
    type Stats = LossStats;

    fn loss(
        &self,
        i: usize,
        logits: &[f32],
        value: f32,
        dlogits: &mut [f32],
        stats: &mut LossStats,
    ) -> SampleLoss {
        let w = self.weights;
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        // dlogits holds p first.
        let mut z = 0.0f32;
        for (d, &l) in dlogits.iter_mut().zip(logits) {
            *d = (l - max).exp();
            z += *d;
        }
        let lz = z.ln();
        let inv = 1.0 / z;
        let mut entropy = 0.0f32;
        for (d, &l) in dlogits.iter_mut().zip(logits) {
            *d *= inv;
            entropy -= *d * (l - max - lz);
        }
        let a = self.actions[i] as usize;
        let logp_a = logits[a] - max - lz;
        let adv = self.advantages[i];
        let ratio = (logp_a - self.old_logp[i]).exp();
        let clipped_ratio = ratio.clamp(1.0 - w.clip, 1.0 + w.clip);
        let (u, c) = (-adv * ratio, -adv * clipped_ratio);
        let pg = u.max(c);
        // d pg / d log p[a]: -A ratio when the unclipped term is the max.
        let dlogp_a = if u >= c { -adv * ratio } else { 0.0 };
        let is_clipped = (ratio - clipped_ratio).abs() > 0.0;
        // KL(p || q) and its gradient p_j ((log p_j - log q_j) - KL).
        let (mut kl, mut have_kl) = (0.0f32, false);
        let anchor = self
            .anchor
            .filter(|_| w.beta != 0.0)
            .and_then(|s| s.get(i))
            .filter(|q| q.len() == logits.len());
        if let Some(q) = anchor {
            have_kl = true;
            for ((p, &l), &lq) in dlogits.iter().zip(logits).zip(q) {
                kl += p * ((l - max - lz) - lq);
            }
        }
        // Assemble d loss / d logits.
        let s = self.scale;
        for (j, (d, &l)) in dlogits.iter_mut().zip(logits).enumerate() {
            let p = *d;
            let logp = l - max - lz;
            let onehot = if j == a { 1.0 } else { 0.0 };
            let mut g = dlogp_a * (onehot - p);
            // d(-c H)/dz_j = c p_j (log p_j + H).
            g += w.ent_coef * p * (logp + entropy);
            if let Some(q) = anchor {
                g += w.beta * p * ((logp - q[j]) - kl);
            }
            *d = g * s;
        }
        let dv = value - self.returns[i];
        stats.samples += 1;
        stats.policy += pg as f64;
        stats.value += 0.5 * (dv * dv) as f64;
        stats.entropy += entropy as f64;
        if have_kl {
            stats.kl += kl as f64;
            stats.kl_samples += 1;
        }
        stats.clipped += usize::from(is_clipped);
        stats.approx_kl += ((ratio - 1.0) - (logp_a - self.old_logp[i])) as f64;
        let loss = pg + w.vf_coef * 0.5 * dv * dv - w.ent_coef * entropy + w.beta * kl;
        SampleLoss {
            loss: (loss * s) as f64,
            dvalue: w.vf_coef * dv * s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss_of(l: &PpoLoss<'_>, logits: &[f32], v: f32) -> f64 {
        let mut d = vec![0.0; logits.len()];
        l.loss(0, logits, v, &mut d, &mut LossStats::default()).loss
    }

    #[test]
    fn gradients_match_finite_differences() {
        let anchor = AnchorScores {
            tokens: 4,
            log_probs: [-1.0, -2.0, -0.5, -3.0f32]
                .iter()
                .map(|&x| x - 0.3)
                .collect(),
            valid: vec![true],
        };
        for (adv, old) in [(1.3f32, -1.2f32), (-0.7, -1.5), (2.0, -3.0), (-2.0, -0.2)] {
            let l = PpoLoss {
                weights: LossWeights {
                    clip: 0.2,
                    vf_coef: 0.3,
                    ent_coef: 0.01,
                    beta: 0.1,
                },
                actions: &[2],
                old_logp: &[old],
                advantages: &[adv],
                returns: &[0.4],
                anchor: Some(&anchor),
                scale: 0.5,
            };
            let logits = [0.3f32, -0.2, 0.8, 0.1];
            let mut d = [0.0f32; 4];
            let out = l.loss(0, &logits, 1.1, &mut d, &mut LossStats::default());
            let h = 1e-3f32;
            for j in 0..4 {
                let (mut up, mut dn) = (logits, logits);
                up[j] += h;
                dn[j] -= h;
                let fd = (loss_of(&l, &up, 1.1) - loss_of(&l, &dn, 1.1)) / (2.0 * h as f64);
                assert!(
                    (fd - d[j] as f64).abs() < 2e-3,
                    "adv {adv} j {j}: fd {fd} vs {}",
                    d[j]
                );
            }
            let fd =
                (loss_of(&l, &logits, 1.1 + h) - loss_of(&l, &logits, 1.1 - h)) / (2.0 * h as f64);
            assert!((fd - out.dvalue as f64).abs() < 1e-3);
        }
    }

    #[test]
    fn kl_to_itself_is_zero_and_clipping_is_counted() {
        let logits = [0.5f32, -1.0, 2.0];
        let mut q = logits.to_vec();
        crate::ppo::anchor::log_softmax_in_place(&mut q);
        let anchor = AnchorScores {
            tokens: 3,
            log_probs: q.clone(),
            valid: vec![true],
        };
        let l = PpoLoss {
            weights: LossWeights {
                clip: 0.2,
                vf_coef: 0.0,
                ent_coef: 0.0,
                beta: 1.0,
            },
            actions: &[2],
            // The acting policy gave the action much less probability: ratio > 1.2.
            old_logp: &[q[2] - 1.0],
            advantages: &[1.0],
            returns: &[0.0],
            anchor: Some(&anchor),
            scale: 1.0,
        };
        let mut stats = LossStats::default();
        let mut d = [0.0f32; 3];
        l.loss(0, &logits, 0.0, &mut d, &mut stats);
        assert!(stats.kl.abs() < 1e-6, "{stats:?}");
        assert_eq!((stats.clipped, stats.kl_samples), (1, 1));
        // Clipped with a positive advantage: no policy gradient, no KL gradient.
        assert!(d.iter().all(|g| g.abs() < 1e-6), "{d:?}");
    }
}
