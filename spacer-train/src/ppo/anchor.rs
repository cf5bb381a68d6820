//! What the policy is anchored to: the centralized reference model's token
//! distributions for every sample of a batch (SPACeR), or a behaviour-cloned
//! policy's (HR-PPO).
//!
//! **Reference.** Once per batch of finished episodes, each world's whole history
//! becomes the reference's input ([`world_history`]: every vehicle, pedestrian and
//! cyclist, the controlled agents with the tokens they executed, the others with
//! their logged motion tokenized), and one teacher-forced pass without gradients
//! ([`ReferenceModel::score`]) gives log pi_ref(. | s_t) for every agent at every
//! decision. Sample (agent, decision `d`) reads node (agent, `current_step / 2 + d`):
//! the distribution of the token executed from step `current_step + 2d`. Worlds are
//! scored a few at a time to bound memory; map tokens are built once per scene.

use std::collections::HashMap;
use std::sync::Arc;

use burn::tensor::backend::Backend;
use rayon::prelude::*;

use super::rollout::Experience;
use crate::late_fusion::native::NativeNet;
use crate::reference::ReferenceModel;
use crate::reference::agent::world_history;
use crate::reference::graph::WorldInput;
use crate::reference::map::MapTokens;
use crate::sim::Simulator;
use crate::tokenized::TokenizedAgent;

/// Worlds per reference pass.
pub const SCORE_WORLDS: usize = 4;

/// Token distributions of an anchor for every sample.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AnchorScores {
    /// Tokens per distribution.
    pub tokens: usize,
    /// `[samples * tokens]` log-probabilities (0 where not `valid`).
    pub log_probs: Vec<f32>,
    /// Whether the anchor has a distribution for the sample.
    pub valid: Vec<bool>,
}

impl AnchorScores {
    /// The distribution of sample `i`, if known.
    pub fn get(&self, i: usize) -> Option<&[f32]> {
        self.valid
            .get(i)
            .copied()
            .unwrap_or(false)
            .then(|| &self.log_probs[i * self.tokens..(i + 1) * self.tokens])
    }
}

impl AnchorScores {
    /// Replaces every known distribution `log p` by `log_softmax(log p / t)`:
    /// sharper below 1, flatter above; 1 leaves them as they are.
    pub fn tempered(mut self, t: f32) -> Self {
        if t != 1.0 {
            let k = self.tokens;
            self.log_probs
                .par_chunks_mut(k)
                .zip(self.valid.par_iter())
                .filter(|(_, v)| **v)
                .for_each(|(lp, _)| {
                    lp.iter_mut().for_each(|v| *v /= t);
                    log_softmax_in_place(lp);
                });
        }
        self
    }
}

/// The reference model with the map tokens of the scenes it has seen.
#[derive(Debug)]
pub struct Reference<B: Backend> {
    /// The model (frozen).
    pub model: ReferenceModel<B>,
    maps: HashMap<String, Arc<MapTokens>>,
}

impl<B: Backend> Reference<B> {
    /// Wraps a model, inferring with its native CPU pass.
    pub fn new(model: ReferenceModel<B>) -> Self {
        Self {
            model: model.with_native(),
            maps: HashMap::new(),
        }
    }

    fn map(&mut self, scene: &crate::scenario::Scene) -> Arc<MapTokens> {
        Arc::clone(
            self.maps
                .entry(scene.id.clone())
                .or_insert_with(|| Arc::new(MapTokens::from_scene(scene, &self.model.config.map))),
        )
    }

    /// log pi_ref for every sample of `exp`, from the worlds of `sim` after their
    /// episode.
    pub fn score(&mut self, sim: &Simulator, exp: &Experience) -> AnchorScores {
        let k = self.model.vocab.len();
        let n = exp.len();
        let mut out = AnchorScores {
            tokens: k,
            log_probs: vec![0.0; n * k],
            valid: vec![false; n],
        };
        let worlds = sim.worlds();
        // Samples of each world.
        let mut by_world: Vec<Vec<usize>> = vec![Vec::new(); worlds.len()];
        for i in 0..n {
            by_world[exp.world[i] as usize].push(i);
        }
        for chunk in (0..worlds.len()).collect::<Vec<_>>().chunks(SCORE_WORLDS) {
            let maps: Vec<Arc<MapTokens>> =
                chunk.iter().map(|&w| self.map(worlds[w].scene())).collect();
            let vocab = &self.model.vocab;
            let histories: Vec<(Vec<TokenizedAgent>, Vec<usize>, usize)> = chunk
                .par_iter()
                .map(|&w| {
                    let world = &worlds[w];
                    let t_end = world.step() / 2;
                    let (agents, tracks) = world_history(world, vocab, t_end);
                    (agents, tracks, t_end)
                })
                .collect();
            let inputs: Vec<WorldInput<'_>> = histories
                .iter()
                .zip(&maps)
                .map(|((agents, _, t_end), map)| WorldInput::new(map, agents, *t_end))
                .collect();
            let scores = self.model.score(&inputs);
            for (ci, &w) in chunk.iter().enumerate() {
                let world = &worlds[w];
                let t0 = world.index().current_step() / 2;
                let tracks = &histories[ci].1;
                for &i in &by_world[w] {
                    let track = world.agent_track(exp.slot[i] as usize);
                    let Some(ai) = tracks.iter().position(|&t| t == track) else {
                        continue;
                    };
                    let t = t0 + exp.decision[i] as usize;
                    if let Some(lp) = scores.get(ci, ai, t) {
                        out.log_probs[i * k..(i + 1) * k].copy_from_slice(lp);
                        out.valid[i] = true;
                    }
                }
            }
        }
        out
    }
}

/// A behaviour-cloned policy's log-probabilities for every sample of `exp` (HR-PPO).
pub fn score_cloned(net: &NativeNet, exp: &Experience) -> AnchorScores {
    let n = exp.len();
    let k = net.layout().actions();
    let rows: Vec<usize> = (0..n).collect();
    let mut logits = vec![0.0f32; n * k];
    let mut values = vec![0.0f32; n];
    net.forward(&exp.obs, &rows, &mut logits, &mut values);
    logits.par_chunks_mut(k).for_each(log_softmax_in_place);
    AnchorScores {
        tokens: k,
        log_probs: logits,
        valid: vec![true; n],
    }
}

/// Replaces logits by their log-softmax.
pub fn log_softmax_in_place(l: &mut [f32]) {
    let max = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let z: f32 = l.iter().map(|&v| (v - max).exp()).sum();
    let lz = z.ln() + max;
    l.iter_mut().for_each(|v| *v -= lz);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tempering_sharpens_renormalises_and_leaves_unknown_samples() {
        let p = [0.7f32, 0.2, 0.1];
        let mut log_probs: Vec<f32> = p.iter().map(|x| x.ln()).collect();
        log_probs.extend([0.0; 3]);
        let s = AnchorScores {
            tokens: 3,
            log_probs,
            valid: vec![true, false],
        };
        assert_eq!(s.clone().tempered(1.0), s);
        let t = s.clone().tempered(0.5);
        // p^2 / sum p^2
        let z: f32 = p.iter().map(|x| x * x).sum();
        for (j, x) in p.iter().enumerate() {
            assert!((t.log_probs[j] - (x * x / z).ln()).abs() < 1e-5);
        }
        assert_eq!(
            &t.log_probs[3..],
            &[0.0; 3],
            "unknown samples stay as they are"
        );
        let total: f32 = t.get(0).unwrap().iter().map(|l| l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-5);
        // Flatter above 1.
        let f = s.tempered(4.0);
        assert!(f.get(0).unwrap()[0] < t.get(0).unwrap()[0]);
    }
}
