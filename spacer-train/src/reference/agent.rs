//! The reference model as a sim agent: closed-loop sampling in the simulator (the
//! imitation-learning baseline, the paper's SMART / CAT-K rows).
//!
//! At each decision (step `s = 2t`, 5 Hz) every world's history is turned into the
//! model's input: every vehicle, pedestrian and cyclist of the scene (controlled or
//! replaying its log) with its poses on the 5 Hz grid from the world's trajectory,
//! and its tokens: the ones a controlled agent executed, and for everything else (the
//! logged history, replayed objects) the token that best moves the object from each
//! grid pose to the next ([`spacer_core::tokenizer::Vocabulary::nearest`]). One batched pass over all worlds
//! gives the next-token logits ([`ReferenceModel::next_logits`], only the receptive
//! window of history is run); each controlled agent's token is drawn with
//! spacer-core's top-k / temperature sampler from a generator derived from the
//! agent's seed, the world's episode seed, the agent's slot and the decision, so
//! runs do not depend on thread timing.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use burn::tensor::backend::Backend;
use spacer_core::geometry::Pose;
use spacer_core::math::Rng;
use spacer_core::policy::{Selection, select};
use spacer_core::tokenizer::{Token, Vocabulary};

use super::graph::WorldInput;
use super::map::MapTokens;
use super::{ReferenceModel, Sampling};
use crate::sim::{
    Action, DecisionBatch, NO_TOKEN, RowIndex, SimAgent, SimError, World, derive_seed,
};
use crate::tokenized::{TokenizedAgent, logged_pose};

/// Drives the controlled agents with a reference model.
#[derive(Debug)]
pub struct ReferenceAgent<B: Backend> {
    model: ReferenceModel<B>,
    sampling: Sampling,
    seed: u64,
    name: String,
    maps: HashMap<String, Arc<MapTokens>>,
    history: HistoryCache,
}

impl<B: Backend> ReferenceAgent<B> {
    /// An agent sampling from `model` with `sampling`, seeded by `seed`.
    pub fn new(
        model: ReferenceModel<B>,
        sampling: Sampling,
        seed: u64,
        name: impl Into<String>,
    ) -> Self {
        Self {
            model,
            sampling,
            seed,
            name: name.into(),
            maps: HashMap::new(),
            history: HistoryCache::default(),
        }
    }

    /// Loads a checkpoint written by `spacer train-ref`; it samples with `sampling`,
    /// or with the checkpoint's stored defaults when `None`.
    ///
    /// # Errors
    /// [`crate::DataError`] naming the file.
    pub fn load(
        path: &Path,
        sampling: Option<Sampling>,
        seed: u64,
        device: &B::Device,
    ) -> Result<Self, crate::DataError> {
        let model = ReferenceModel::load(path, device)?.with_native();
        let sampling = sampling.unwrap_or(model.sampling);
        Ok(Self::new(
            model,
            sampling,
            seed,
            format!("reference({})", path.display()),
        ))
    }

    /// Samples with `sampling` from now on.
    pub fn set_sampling(&mut self, sampling: Sampling) {
        self.sampling = sampling;
    }

    /// How it samples.
    pub fn sampling(&self) -> Sampling {
        self.sampling
    }

    /// The same agent under another name in reports.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The model.
    pub fn model(&self) -> &ReferenceModel<B> {
        &self.model
    }
}

/// A centralized model's input for `world` at decision step `t`: every vehicle,
/// pedestrian and cyclist of the scene (controlled or replaying its log), in track
/// order, with its poses on the 5 Hz grid from the world's trajectory, and its
/// tokens: the ones a controlled agent executed, and for everything else (the logged
/// history, replayed objects) the token that best moves the object from each grid
/// pose to the next. Returns the agents and, for each, the track it stands for.
pub fn world_history(
    world: &World,
    vocab: &Vocabulary,
    t: usize,
) -> (Vec<TokenizedAgent>, Vec<usize>) {
    let scene = world.scene();
    let t0 = scene.current_step / 2;
    let mut agents = Vec::new();
    let mut tracks = Vec::new();
    for (i, track) in scene.tracks.iter().enumerate() {
        let Some(kind) = track.object_type.agent_kind() else {
            continue;
        };
        let traj = world.trajectory(i);
        let grid = |t: usize| traj.get(2 * t).filter(|s| s.valid).map(logged_pose);
        let mut a = TokenizedAgent {
            track: i,
            kind,
            length: 0.0,
            width: 0.0,
            poses: vec![Pose::IDENTITY; t + 1],
            pose_valid: vec![false; t + 1],
            tokens: vec![0; t + 1],
            token_valid: vec![false; t + 1],
        };
        let Some(first) = traj.iter().find(|s| s.valid) else {
            continue;
        };
        a.length = first.length;
        a.width = first.width;
        for s in 0..=t {
            if let Some(p) = grid(s) {
                a.poses[s] = p;
                a.pose_valid[s] = true;
            }
        }
        let executed = world.slot_of(i).map(|slot| world.tokens(slot));
        for s in 0..t {
            let from_sim = executed.and_then(|e| s.checked_sub(t0).and_then(|d| e.get(d)));
            match from_sim {
                Some(&tok) if tok != NO_TOKEN => {
                    a.tokens[s] = tok;
                    a.token_valid[s] = true;
                }
                _ => {
                    if let (Some(p), Some(q)) = (grid(s), grid(s + 1)) {
                        a.tokens[s] = vocab.nearest(kind, p, q).0;
                        a.token_valid[s] = true;
                    }
                }
            }
        }
        agents.push(a);
        tracks.push(i);
    }
    (agents, tracks)
}

/// One world's history, built step by step.
#[derive(Clone, Debug, Default)]
struct WorldHistory {
    agents: Vec<TokenizedAgent>,
    tracks: Vec<usize>,
    /// Decision steps filled (poses `0..filled`).
    filled: usize,
}

/// The histories of a batch of worlds, extended at every decision: what
/// [`world_history`] gives (every agent that has appeared, with its poses and tokens
/// so far), but each step tokenized once instead of at every decision. Agents that
/// have not appeared yet are listed with invalid poses, which the model masks.
#[derive(Clone, Debug, Default)]
pub struct HistoryCache {
    worlds: Vec<WorldHistory>,
}

impl HistoryCache {
    /// Forgets everything (a new episode of `n` worlds).
    pub fn reset(&mut self, n: usize) {
        self.worlds = vec![WorldHistory::default(); n];
    }

    /// Extends every world's history to decision step `t` (poses `0..=t`, tokens
    /// `0..t`).
    pub fn update(&mut self, worlds: &[World], vocab: &Vocabulary, t: usize) {
        use rayon::prelude::*;
        if self.worlds.len() != worlds.len() {
            self.reset(worlds.len());
        }
        self.worlds
            .par_iter_mut()
            .zip(worlds)
            .for_each(|(h, world)| extend(h, world, vocab, t));
    }

    /// World `w`'s agents and the track each stands for.
    pub fn get(&self, w: usize) -> (&[TokenizedAgent], &[usize]) {
        self.worlds
            .get(w)
            .map_or((&[][..], &[][..]), |h| (&h.agents[..], &h.tracks[..]))
    }
}

fn extend(h: &mut WorldHistory, world: &World, vocab: &Vocabulary, t: usize) {
    let scene = world.scene();
    let t0 = scene.current_step / 2;
    if h.filled == 0 && h.agents.is_empty() {
        for (i, track) in scene.tracks.iter().enumerate() {
            let Some(kind) = track.object_type.agent_kind() else {
                continue;
            };
            let Some(first) = track.states.iter().find(|s| s.valid) else {
                continue;
            };
            h.agents.push(TokenizedAgent {
                track: i,
                kind,
                length: first.length,
                width: first.width,
                poses: Vec::new(),
                pose_valid: Vec::new(),
                tokens: Vec::new(),
                token_valid: Vec::new(),
            });
            h.tracks.push(i);
        }
    }
    if t < h.filled {
        return;
    }
    for a in &mut h.agents {
        let i = a.track;
        let traj = world.trajectory(i);
        let grid = |s: usize| traj.get(2 * s).filter(|x| x.valid).map(logged_pose);
        for s in h.filled..=t {
            let p = grid(s);
            a.poses.push(p.unwrap_or(Pose::IDENTITY));
            a.pose_valid.push(p.is_some());
            a.tokens.push(0);
            a.token_valid.push(false);
        }
        let executed = world.slot_of(i).map(|slot| world.tokens(slot));
        for s in h.filled.saturating_sub(1)..t {
            let from_sim = executed.and_then(|e| s.checked_sub(t0).and_then(|d| e.get(d)));
            match from_sim {
                Some(&tok) if tok != NO_TOKEN => {
                    a.tokens[s] = tok;
                    a.token_valid[s] = true;
                }
                _ => {
                    if let (Some(p), Some(q)) = (grid(s), grid(s + 1)) {
                        a.tokens[s] = vocab.nearest(a.kind, p, q).0;
                        a.token_valid[s] = true;
                    }
                }
            }
        }
    }
    h.filled = t + 1;
}

impl<B: Backend> SimAgent for ReferenceAgent<B>
where
    ReferenceModel<B>: Send,
{
    fn name(&self) -> String {
        self.name.clone()
    }

    fn reset(&mut self, worlds: &[World], _: &RowIndex) -> Result<(), SimError> {
        self.history.reset(worlds.len());
        for w in worlds {
            let scene = w.scene();
            if scene.current_step % 2 != 0 {
                return Err(SimError::Agent {
                    agent: self.name(),
                    message: format!(
                        "scene {} starts at step {}: the model decides on even steps",
                        scene.id, scene.current_step
                    ),
                });
            }
            self.maps
                .entry(scene.id.clone())
                .or_insert_with(|| Arc::new(MapTokens::from_scene(scene, &self.model.config.map)));
        }
        Ok(())
    }

    fn act(&mut self, batch: &DecisionBatch<'_>, actions: &mut [Action]) -> Result<(), SimError> {
        let Some(first) = batch.worlds.first() else {
            return Ok(());
        };
        let t = first.step() / 2;
        self.history.update(batch.worlds, &self.model.vocab, t);
        let histories: Vec<(&[TokenizedAgent], &[usize])> = (0..batch.worlds.len())
            .map(|w| self.history.get(w))
            .collect();
        let maps: Vec<Arc<MapTokens>> = batch
            .worlds
            .iter()
            .map(|w| {
                self.maps.get(&w.scene().id).cloned().unwrap_or_else(|| {
                    Arc::new(MapTokens::from_scene(w.scene(), &self.model.config.map))
                })
            })
            .collect();
        let inputs: Vec<WorldInput<'_>> = histories
            .iter()
            .zip(&maps)
            .map(|((agents, _), map)| WorldInput::new(map, agents, t + 1))
            .collect();
        let logits = self.model.next_logits(&inputs, t);
        let selection = Selection::Sample {
            temperature: self.sampling.temperature,
            top_k: self.sampling.top_k,
        };
        for (row, action) in actions.iter_mut().enumerate() {
            let (w, slot) = batch.rows.locate(row);
            let world = &batch.worlds[w];
            let track = world.agent_track(slot);
            let Some(ai) = histories[w].1.iter().position(|&i| i == track) else {
                continue;
            };
            let Some(l) = logits[w].get(ai).and_then(Option::as_ref) else {
                continue;
            };
            let mut rng = Rng::new(derive_seed(
                self.seed,
                &[world.seed(), slot as u64, batch.decision as u64],
            ));
            let index = select(l, selection, &mut rng).map_err(SimError::Policy)?;
            let token = self
                .model
                .vocab
                .get(world.agent_kind(slot), index as usize)
                .copied()
                .unwrap_or(Token::STILL);
            *action = Action::Token { index, token };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::ReferenceConfig;
    use crate::sim::{SimConfig, Simulator};
    use crate::training::Cpu;
    use spacer_core::tokenizer::Vocabulary;

    /// Random tokens, checking at every decision that the incremental history equals
    /// the one built from scratch.
    struct Checker {
        random: crate::sim::RandomTokens,
        cache: HistoryCache,
        vocab: Vocabulary,
        checked: usize,
    }

    impl SimAgent for Checker {
        fn name(&self) -> String {
            "checker".into()
        }
        fn reset(&mut self, worlds: &[World], _: &RowIndex) -> Result<(), SimError> {
            self.cache.reset(worlds.len());
            Ok(())
        }
        fn act(
            &mut self,
            batch: &DecisionBatch<'_>,
            actions: &mut [Action],
        ) -> Result<(), SimError> {
            let t = batch.worlds[0].step() / 2;
            self.cache.update(batch.worlds, &self.vocab, t);
            for (w, world) in batch.worlds.iter().enumerate() {
                let (full, tracks) = world_history(world, &self.vocab, t);
                let (inc, inc_tracks) = self.cache.get(w);
                for (a, track) in full.iter().zip(&tracks) {
                    let j = inc_tracks.iter().position(|x| x == track).unwrap();
                    assert_eq!(&inc[j], a, "track {track} at step {t}");
                    self.checked += 1;
                }
                // Listed but not yet appeared: no valid pose.
                for (b, track) in inc.iter().zip(inc_tracks) {
                    if !tracks.contains(track) {
                        assert!(b.pose_valid.iter().all(|v| !v));
                    }
                }
            }
            self.random.act(batch, actions)
        }
    }

    #[test]
    fn the_incremental_history_equals_the_full_one() {
        let scene = Arc::new(crate::late_fusion::tests::womd_scene());
        let v = Vocabulary::kinematic_grid(200).unwrap();
        let cfg = SimConfig {
            sim_steps: 20,
            max_controlled: 8,
            ..SimConfig::default()
        };
        let mut agent = Checker {
            random: crate::sim::RandomTokens::new(v.clone(), 3),
            cache: HistoryCache::default(),
            vocab: v,
            checked: 0,
        };
        let mut sim = Simulator::new(&[Arc::clone(&scene), scene], cfg).unwrap();
        sim.run(&mut agent, 1).unwrap();
        assert!(agent.checked > 500, "{}", agent.checked);
    }

    #[test]
    fn drives_every_controlled_agent_deterministically() {
        let scene = Arc::new(crate::reference::tests::small_scene("sim", 5.0));
        let v = Vocabulary::kinematic_grid(200).unwrap();
        let model =
            ReferenceModel::<Cpu>::new(ReferenceConfig::tiny(200), v, &Default::default(), 0)
                .unwrap();
        let cfg = SimConfig {
            sim_steps: 6,
            ..SimConfig::default()
        };
        let run = |seed| {
            let mut agent = ReferenceAgent::new(model.clone(), Sampling::default(), seed, "ref");
            let mut sim = Simulator::new(&[Arc::clone(&scene)], cfg).unwrap();
            sim.run(&mut agent, 1).unwrap();
            sim.rollouts()
        };
        let (a, b, c) = (run(3), run(3), run(4));
        let tokens = |r: &Vec<crate::sim::Rollout>| format!("{:?}", r[0].agents);
        assert_eq!(tokens(&a), tokens(&b));
        assert_ne!(tokens(&a), tokens(&c));
        assert!(!a[0].agents.is_empty());
    }
}
