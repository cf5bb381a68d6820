//! The centralized reference motion model: a SMART / CAT-K style tokenized
//! autoregressive decoder that sees the map and every agent's token history and
//! outputs, for every agent at every 5 Hz decision step, a distribution over the same
//! K motion tokens the policy uses (docs/design.md section 1.5).
//!
//! - [`map`]: the road map as segment tokens with their kind, and traffic-light
//!   states per decision step.
//! - [`graph`]: the attention graph of a batch (neighbour lists within radii, relative
//!   poses in each query's frame), built on the CPU.
//! - [`model`]: the burn network (map self-attention, then per agent layer causal
//!   temporal self-attention, agent-to-map and agent-to-agent attention).
//! - [`agent`]: the model as a sim agent (closed-loop sampling in
//!   [`crate::sim`]).
//! - [`train`]: teacher-forced next-token training (label smoothing 0.1, AdamW,
//!   cosine schedule with warm-up, global gradient clipping), resumable atomic
//!   checkpoints, curves, the fixed held-out split and the baselines.
//!
//! Closed-loop evaluation with the official Waymo Sim Agents metrics is
//! [`crate::eval`]'s: `spacer eval --agents ref:CKPT`.
//!
//! The interfaces others call live here on [`ReferenceModel`]:
//! [`ReferenceModel::score`] (log pi_ref for every agent, step and token of a batch of
//! worlds, one teacher-forced pass, no gradients: what PPO calls once per rollout)
//! and [`ReferenceModel::sample`] (the next tokens of every agent, top-k and
//! temperature: what the simulator calls to run the model as a sim agent).

pub mod agent;
pub mod catk;
pub mod graph;
pub mod map;
pub mod model;
pub mod native;
pub mod recipe;
pub mod train;

use std::path::Path;

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};
use spacer_core::math::Rng;
use spacer_core::policy::{Selection, select};
use spacer_core::tokenizer::Vocabulary;

use crate::error::{DataError, Location};
use crate::scenario::Scene;
use crate::tokenized::{Tokenization, TokenizedAgent, TokenizedScene, tokenize_scene};
use crate::training::checkpoint::{Checkpoint, record_from_bytes, record_to_bytes};
use crate::training::to_vec;
use graph::{GraphBatch, GraphConfig, WorldInput, build_graph};
use map::{MapTokenConfig, MapTokens};
use model::{GraphTensors, NetworkConfig, ReferenceNet};

/// The checkpoint kind of a reference model.
pub const CHECKPOINT_KIND: &str = "reference";
/// The attachment name of the vocabulary inside a checkpoint.
pub const VOCABULARY_FILE: &str = "vocabulary";
/// The attachment name of the sampling defaults (JSON [`Sampling`]) inside a
/// checkpoint: chosen on the validation split, used by `ref:` sim agents unless
/// overridden.
pub const SAMPLING_FILE: &str = "sampling";

/// Everything that defines a reference model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReferenceConfig {
    /// `nano`, `mini`, or a custom name.
    pub name: String,
    /// Network sizes.
    pub network: NetworkConfig,
    /// Neighbourhoods.
    pub graph: GraphConfig,
    /// Map tokens.
    pub map: MapTokenConfig,
    /// How logs become the training sequences (default: logged poses, the way the
    /// simulator's history and replayed objects look to the model).
    #[serde(default)]
    pub tokenization: Tokenization,
}

impl ReferenceConfig {
    /// 359,049 parameters at K = 200: hidden 64, 4 heads, 1 map layer, 2 agent
    /// layers, 8 neighbours per attention. Trains on a CPU in minutes.
    pub fn nano(tokens: usize) -> Self {
        Self {
            name: "nano".into(),
            network: NetworkConfig::new(64, 4, 1, 2, 128, tokens),
            graph: GraphConfig {
                map_neighbours: 8,
                map_radius: 20.0,
                time_window: 5,
                agent_map_neighbours: 8,
                agent_map_radius: 30.0,
                agent_neighbours: 8,
                agent_radius: 30.0,
            },
            map: MapTokenConfig {
                segment_length: 8.0,
                radius: 60.0,
                max_tokens: 768,
            },
            tokenization: Tokenization::Logged,
        }
    }

    /// 3,082,953 parameters at K = 200 (the paper's size): hidden 128, 4 heads, 2 map
    /// layers, 4 agent layers. For a GPU.
    pub fn mini(tokens: usize) -> Self {
        Self {
            name: "mini".into(),
            network: NetworkConfig::new(128, 4, 2, 4, 512, tokens),
            graph: GraphConfig {
                map_neighbours: 32,
                map_radius: 30.0,
                time_window: 10,
                agent_map_neighbours: 32,
                agent_map_radius: 40.0,
                agent_neighbours: 32,
                agent_radius: 50.0,
            },
            map: MapTokenConfig {
                segment_length: 5.0,
                radius: 80.0,
                max_tokens: 2048,
            },
            tokenization: Tokenization::Logged,
        }
    }

    /// A tiny configuration for tests (a few thousand parameters).
    pub fn tiny(tokens: usize) -> Self {
        let mut c = Self::nano(tokens);
        c.name = "tiny".into();
        c.network = NetworkConfig::new(16, 2, 1, 1, 32, tokens);
        c.graph.map_neighbours = 4;
        c.graph.agent_map_neighbours = 4;
        c.graph.agent_neighbours = 4;
        c.graph.time_window = 3;
        c
    }

    /// `nano` or `mini` by name.
    ///
    /// # Errors
    /// A message naming the known configurations.
    pub fn by_name(name: &str, tokens: usize) -> Result<Self, String> {
        match name {
            "nano" => Ok(Self::nano(tokens)),
            "mini" => Ok(Self::mini(tokens)),
            "tiny" => Ok(Self::tiny(tokens)),
            _ => Err(format!("unknown config '{name}' (nano, mini)")),
        }
    }

    /// Decision steps of history that can influence a node's output: nodes more than
    /// this many steps before it can be left out without changing it.
    pub fn receptive_steps(&self) -> usize {
        self.network.agent_layers * self.graph.time_window.saturating_sub(1)
    }
}

/// A scene made ready for the model: tokens and map tokens.
#[derive(Clone, Debug)]
pub struct PreparedScene {
    /// The scene.
    pub scene: Scene,
    /// Its agents as token sequences.
    pub tokens: TokenizedScene,
    /// Its map tokens.
    pub map: MapTokens,
}

impl PreparedScene {
    /// Tokenizes `scene`'s agents and map.
    pub fn new(scene: Scene, vocab: &Vocabulary, cfg: &ReferenceConfig) -> Self {
        let tokens = tokenize_scene(&scene, vocab, cfg.tokenization);
        let map = MapTokens::from_scene(&scene, &cfg.map);
        Self { scene, tokens, map }
    }

    /// All agents, all decision steps.
    pub fn world(&self) -> WorldInput<'_> {
        WorldInput::new(&self.map, &self.tokens.agents, self.tokens.steps)
    }
}

/// log pi_ref of a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Scores {
    /// Worlds.
    pub worlds: usize,
    /// Agents per world (the largest world; smaller ones are padded).
    pub agents: usize,
    /// Decision steps per agent (the longest world; shorter ones are padded).
    pub steps: usize,
    /// Tokens.
    pub tokens: usize,
    /// `[worlds, agents, steps, tokens]` log-probabilities; 0 where `valid` is false.
    pub log_probs: Vec<f32>,
    /// `[worlds, agents, steps]`: whether the agent's pose at that step was valid
    /// (padding and invalid steps are false).
    pub valid: Vec<bool>,
}

impl Scores {
    /// The K log-probabilities of agent `a` at step `t` of world `w`, if valid.
    pub fn get(&self, w: usize, a: usize, t: usize) -> Option<&[f32]> {
        if w >= self.worlds || a >= self.agents || t >= self.steps {
            return None;
        }
        let i = (w * self.agents + a) * self.steps + t;
        self.valid
            .get(i)
            .copied()
            .unwrap_or(false)
            .then(|| &self.log_probs[i * self.tokens..(i + 1) * self.tokens])
    }
}

/// How [`ReferenceModel::sample`] draws tokens.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// Softmax temperature (> 0).
    pub temperature: f32,
    /// Sample among the `top_k` most likely tokens (0 = all).
    pub top_k: u16,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: 40,
        }
    }
}

/// A reference model: network, configuration and vocabulary.
#[derive(Debug)]
pub struct ReferenceModel<B: Backend> {
    /// The network.
    pub net: ReferenceNet<B>,
    /// Its configuration.
    pub config: ReferenceConfig,
    /// The vocabulary its outputs index.
    pub vocab: Vocabulary,
    /// Where it runs.
    pub device: B::Device,
    /// How it samples as a sim agent by default (chosen on the validation split).
    pub sampling: Sampling,
    /// The CPU inference pass of the same weights ([`Self::with_native`]); when set,
    /// [`Self::score`] and [`Self::next_logits`] use it instead of burn.
    pub native: Option<std::sync::Arc<native::NativeReference>>,
}

impl<B: Backend> Clone for ReferenceModel<B> {
    fn clone(&self) -> Self {
        Self {
            net: self.net.clone(),
            config: self.config.clone(),
            vocab: self.vocab.clone(),
            device: self.device.clone(),
            sampling: self.sampling,
            native: self.native.clone(),
        }
    }
}

impl<B: Backend> ReferenceModel<B> {
    /// A freshly initialised model (deterministic for `seed`).
    ///
    /// # Errors
    /// A message when the config is inconsistent or its token count differs from the
    /// vocabulary's.
    pub fn new(
        config: ReferenceConfig,
        vocab: Vocabulary,
        device: &B::Device,
        seed: u64,
    ) -> Result<Self, String> {
        config.network.validate()?;
        if config.network.tokens != vocab.len() {
            return Err(format!(
                "config has {} tokens, the vocabulary {}",
                config.network.tokens,
                vocab.len()
            ));
        }
        B::seed(device, seed);
        let net = config.network.init(device);
        crate::training::materialize(&net);
        Ok(Self {
            net,
            config,
            vocab,
            device: device.clone(),
            sampling: Sampling::default(),
            native: None,
        })
    }

    /// Parameters.
    pub fn num_params(&self) -> usize {
        self.net.num_params()
    }

    /// The graph of `worlds` with this model's neighbourhoods.
    pub fn graph(&self, worlds: &[WorldInput<'_>]) -> GraphBatch {
        build_graph(worlds, &self.vocab, &self.config.graph)
    }

    /// Logits `[agent_nodes, K]` of a graph (burn).
    pub fn logits(&self, g: &GraphBatch) -> Tensor<B, 2> {
        self.net.forward(&GraphTensors::new(g, &self.device))
    }

    /// The same model, inferring with the native CPU pass
    /// ([`native::NativeReference`], several times faster than burn's ndarray
    /// backend); the weights are copied once.
    pub fn with_native(mut self) -> Self {
        self.native = Some(std::sync::Arc::new(native::NativeReference::new(
            self.net.plain(),
        )));
        self
    }

    /// Logits `[agent_nodes * K]` of a graph, row-major: native when
    /// [`Self::with_native`] was called, else burn.
    pub fn logits_vec(&self, g: &GraphBatch) -> Vec<f32> {
        match &self.native {
            Some(n) => n.logits(g),
            None => to_vec(self.logits(g)),
        }
    }

    /// Log-softmax of [`Self::logits_vec`].
    pub fn log_probs_vec(&self, g: &GraphBatch) -> Vec<f32> {
        match &self.native {
            Some(n) => {
                let mut l = n.logits(g);
                let k = self.vocab.len().max(1);
                for row in l.chunks_exact_mut(k) {
                    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let z: f32 = row.iter().map(|&v| (v - max).exp()).sum();
                    let lz = z.ln() + max;
                    row.iter_mut().for_each(|v| *v -= lz);
                }
                l
            }
            None => to_vec(log_softmax(self.logits(g), 1)),
        }
    }

    /// log pi_ref for every agent, decision step and token of `worlds`, in one
    /// teacher-forced pass. Use a backend without autodiff (no gradients are kept).
    ///
    /// # Shapes
    /// [`Scores`]: `[worlds, max agents, max steps, K]`.
    pub fn score(&self, worlds: &[WorldInput<'_>]) -> Scores {
        let k = self.vocab.len();
        let agents = worlds.iter().map(|w| w.agents.len()).max().unwrap_or(0);
        let steps = worlds.iter().map(|w| w.steps).max().unwrap_or(0);
        let mut out = Scores {
            worlds: worlds.len(),
            agents,
            steps,
            tokens: k,
            log_probs: vec![0.0; worlds.len() * agents * steps * k],
            valid: vec![false; worlds.len() * agents * steps],
        };
        let g = self.graph(worlds);
        if g.agent_nodes == 0 {
            return out;
        }
        let logp = self.log_probs_vec(&g);
        for (wi, w) in worlds.iter().enumerate() {
            for ai in 0..w.agents.len() {
                for t in w.first..w.steps {
                    let Some(n) = g.node(wi, ai, t) else { continue };
                    if g.node_mask[n] == 0.0 {
                        continue;
                    }
                    let i = (wi * agents + ai) * steps + t;
                    out.valid[i] = true;
                    out.log_probs[i * k..(i + 1) * k].copy_from_slice(&logp[n * k..(n + 1) * k]);
                }
            }
        }
        out
    }

    /// The next token of every agent of every world at decision step `step`, given
    /// the poses up to `step` and the tokens before it (`agents[i].poses[step]`,
    /// `tokens[..step]`). Draws from `softmax(logits / temperature)` over the `top_k`
    /// most likely tokens with spacer-core's sampler; `None` for agents whose pose at
    /// `step` is not valid. Only the last [`ReferenceConfig::receptive_steps`] steps
    /// are run, which gives exactly the logits of a full pass.
    ///
    /// # Errors
    /// A message for a bad temperature.
    pub fn sample(
        &self,
        worlds: &[WorldInput<'_>],
        step: usize,
        sampling: Sampling,
        rng: &mut Rng,
    ) -> Result<Vec<Vec<Option<u16>>>, String> {
        let logits = self.next_logits(worlds, step);
        let selection = Selection::Sample {
            temperature: sampling.temperature,
            top_k: sampling.top_k,
        };
        logits
            .into_iter()
            .map(|w| {
                w.into_iter()
                    .map(|l| {
                        l.map(|l| select(&l, selection, rng).map_err(|e| e.to_string()))
                            .transpose()
                    })
                    .collect()
            })
            .collect()
    }

    /// The logits of every agent at decision step `step` (see [`Self::sample`]).
    pub fn next_logits(
        &self,
        worlds: &[WorldInput<'_>],
        step: usize,
    ) -> Vec<Vec<Option<Vec<f32>>>> {
        let first = step.saturating_sub(self.config.receptive_steps());
        let cut: Vec<WorldInput<'_>> = worlds
            .iter()
            .map(|w| WorldInput {
                first,
                steps: step + 1,
                ..*w
            })
            .collect();
        let g = self.graph(&cut);
        let k = self.vocab.len();
        let logits = if g.agent_nodes > 0 {
            self.logits_vec(&g)
        } else {
            Vec::new()
        };
        worlds
            .iter()
            .enumerate()
            .map(|(wi, w)| {
                (0..w.agents.len())
                    .map(|ai| {
                        let n = g.node(wi, ai, step)?;
                        (g.node_mask[n] > 0.0).then(|| logits[n * k..(n + 1) * k].to_vec())
                    })
                    .collect()
            })
            .collect()
    }

    /// A checkpoint holding this model for inference (no optimizer state).
    ///
    /// # Errors
    /// A message if the record cannot be encoded.
    pub fn to_checkpoint(&self, step: u64, extra: String) -> Result<Checkpoint, String> {
        Ok(Checkpoint {
            kind: CHECKPOINT_KIND.into(),
            config: serde_json::to_string(&self.config).map_err(|e| e.to_string())?,
            step,
            model: record_to_bytes::<B, _>(self.net.clone().into_record())?,
            optimizer: Vec::new(),
            extra,
            files: vec![
                (
                    VOCABULARY_FILE.into(),
                    crate::vocab::vocabulary_bytes(&self.vocab),
                ),
                (
                    SAMPLING_FILE.into(),
                    serde_json::to_vec(&self.sampling).map_err(|e| e.to_string())?,
                ),
            ],
        })
    }

    /// A model from a checkpoint; `origin` names it in errors.
    ///
    /// # Errors
    /// [`DataError::Invalid`] naming `origin` when the config, vocabulary or weights
    /// do not load.
    pub fn from_checkpoint(
        ck: &Checkpoint,
        origin: &Path,
        device: &B::Device,
    ) -> Result<Self, DataError> {
        let bad = |field: &str, msg: String| {
            DataError::invalid(origin, Location::field(None, field), msg)
        };
        let config: ReferenceConfig =
            serde_json::from_str(&ck.config).map_err(|e| bad("config", e.to_string()))?;
        let vocab_bytes = ck
            .file(VOCABULARY_FILE)
            .ok_or_else(|| bad("files", "no vocabulary attached".into()))?;
        let vocab = crate::vocab::parse_vocabulary(vocab_bytes, origin)?;
        let mut m = Self::new(config, vocab, device, 0).map_err(|e| bad("config", e))?;
        if let Some(bytes) = ck.file(SAMPLING_FILE) {
            m.sampling =
                serde_json::from_slice(bytes).map_err(|e| bad("files.sampling", e.to_string()))?;
            if !(m.sampling.temperature > 0.0 && m.sampling.temperature.is_finite()) {
                return Err(bad(
                    "files.sampling",
                    format!("temperature {} is not positive", m.sampling.temperature),
                ));
            }
        }
        let record = record_from_bytes::<B, _>(&ck.model, device)
            .map_err(|e| bad("model", format!("weights do not fit the config: {e}")))?;
        m.net = m.net.load_record(record);
        Ok(m)
    }

    /// Loads a model saved by `spacer train-ref`.
    ///
    /// # Errors
    /// [`DataError`] naming the file.
    pub fn load(path: &Path, device: &B::Device) -> Result<Self, DataError> {
        let ck = Checkpoint::read(path, CHECKPOINT_KIND)?;
        Self::from_checkpoint(&ck, path, device)
    }
}

/// Agents of `agents` chosen for a training sample: the `max` nearest to agent
/// `centre` (by their first valid poses), `centre` included, in track order.
pub fn crop_agents(agents: &[TokenizedAgent], centre: usize, max: usize) -> Vec<TokenizedAgent> {
    if agents.len() <= max {
        return agents.to_vec();
    }
    let first_pose = |a: &TokenizedAgent| {
        a.pose_valid
            .iter()
            .position(|&v| v)
            .map(|t| a.poses[t].position())
    };
    let Some(c) = agents.get(centre).and_then(first_pose) else {
        return agents[..max].to_vec();
    };
    let mut order: Vec<(f32, usize)> = agents
        .iter()
        .enumerate()
        .map(|(i, a)| {
            (
                first_pose(a).map_or(f32::INFINITY, |p| (p - c).norm_sq()),
                i,
            )
        })
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut keep: Vec<usize> = order.iter().take(max).map(|o| o.1).collect();
    keep.sort_unstable();
    keep.iter().map(|&i| agents[i].clone()).collect()
}

#[cfg(test)]
mod tests;
