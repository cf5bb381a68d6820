//! The reference model's network (burn): SMART / CAT-K style, over the graph of
//! [`super::graph`].
//!
//! ```text
//! map features -> MLP -> [map self-attention block] x map_layers ------------------\
//! agent-step features -> MLP + embeddings of the last token and of the anchor       |
//!   -> [temporal self-attention (causal) -> agent-to-map cross-attention <----------/
//!       -> agent-to-agent attention] x agent_layers -> LayerNorm -> MLP -> K logits
//! ```
//!
//! The anchor is the token that repeats the agent's own last 0.2 s of motion
//! ([`super::graph::repeat_last_motion`]): the network starts from "keep doing what
//! you did" and learns where behaviour departs from it. It enters twice: as an
//! embedding added to the agent's input, and as a prior on the output, a learned
//! gain (initially [`ANCHOR_PRIOR`]) added to the anchor's logit, so that an untrained
//! or uncertain network falls back to repeating the last motion rather than to noise.
//!
//! Every attention block is pre-LayerNorm multi-head attention over a fixed-size
//! neighbour list plus a feed-forward layer, both residual. Relative geometry enters
//! as in SMART: each (query, neighbour) pair's relative features go through an MLP
//! (one per attention type, shared by its layers) whose output is added to the keys
//! and the values, so attention depends on where a neighbour is in the query's frame
//! and nothing is in world coordinates.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use super::graph::{
    AGENT_AGENT_FEATURES, AGENT_FEATURES, AGENT_MAP_FEATURES, GraphBatch, Neighbours,
    POSE_FEATURES, TEMPORAL_FEATURES,
};
use super::map::MAP_FEATURES;
use crate::training::{float_tensor, int_tensor};

/// The initial gain of the anchor prior on the logits (nats): with it an untrained
/// network picks the anchor. 6 is about the log-odds of the anchor being the next
/// token on real logs (right for ~79% of held-out targets, against 1/199 for each
/// other token: ln(0.79 / (0.21 / 199)) = 6.6); training adjusts it.
pub const ANCHOR_PRIOR: f32 = 6.0;

/// Sizes of the network.
#[derive(Config, Debug, PartialEq)]
pub struct NetworkConfig {
    /// Width of every node embedding.
    pub hidden: usize,
    /// Attention heads.
    pub heads: usize,
    /// Map self-attention layers.
    pub map_layers: usize,
    /// Agent layers (temporal + agent-map + agent-agent each).
    pub agent_layers: usize,
    /// Width of the feed-forward layers.
    pub ffn: usize,
    /// Tokens per kind (the output width).
    pub tokens: usize,
}

/// Linear -> LayerNorm -> ReLU -> Linear.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    l1: Linear<B>,
    ln: LayerNorm<B>,
    l2: Linear<B>,
}

impl<B: Backend> Mlp<B> {
    fn new(d_in: usize, hidden: usize, d_out: usize, device: &B::Device) -> Self {
        Self {
            l1: LinearConfig::new(d_in, hidden).init(device),
            ln: LayerNormConfig::new(hidden).init(device),
            l2: LinearConfig::new(hidden, d_out).init(device),
        }
    }

    fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        self.l2.forward(relu(self.ln.forward(self.l1.forward(x))))
    }
}

/// Multi-head attention of each query over its own neighbour list.
#[derive(Module, Debug)]
pub struct NeighbourAttention<B: Backend> {
    query: Linear<B>,
    key: Linear<B>,
    value: Linear<B>,
    output: Linear<B>,
    heads: usize,
}

/// One attention type's neighbours on the device.
#[derive(Clone, Debug)]
pub struct NeighbourTensors<B: Backend> {
    /// `[queries * k]` source rows.
    pub index: Tensor<B, 1, Int>,
    /// `[queries, k, 1, 1]` 1 for real neighbours.
    pub mask: Tensor<B, 4>,
    /// `[queries, k, 1, 1]` 0 for real neighbours, a large negative number otherwise.
    pub bias: Tensor<B, 4>,
    /// `[queries * k, features]` relative features.
    pub rel: Tensor<B, 2>,
    /// Neighbours per query.
    pub k: usize,
}

impl<B: Backend> NeighbourTensors<B> {
    /// Uploads `n`.
    pub fn new(n: &Neighbours, device: &B::Device) -> Self {
        let q = n.queries();
        let mask = float_tensor::<B, 4>(n.mask.clone(), [q, n.k, 1, 1], device);
        let bias = mask.clone().sub_scalar(1.0).mul_scalar(1e9);
        Self {
            index: int_tensor(n.index.clone(), device),
            mask,
            bias,
            rel: float_tensor(n.rel.clone(), [q * n.k, n.features], device),
            k: n.k,
        }
    }
}

impl<B: Backend> NeighbourAttention<B> {
    fn new(d: usize, heads: usize, device: &B::Device) -> Self {
        let lin = || LinearConfig::new(d, d).init(device);
        Self {
            query: lin(),
            key: lin(),
            value: lin(),
            output: lin(),
            heads,
        }
    }

    /// # Shapes
    /// `xq`: `[nq, d]`; `xs`: `[ns, d]`; `rel`: `[nq, k, d]`; output `[nq, d]`.
    fn forward(
        &self,
        xq: Tensor<B, 2>,
        xs: Tensor<B, 2>,
        nb: &NeighbourTensors<B>,
        rel: Tensor<B, 3>,
    ) -> Tensor<B, 2> {
        let [nq, d] = xq.dims();
        let (h, k) = (self.heads, nb.k);
        let dh = d / h;
        let q = self.query.forward(xq).reshape([nq, 1, h, dh]);
        let keys = self.key.forward(xs.clone()).select(0, nb.index.clone());
        let keys = (keys.reshape([nq, k, d]) + rel.clone()).reshape([nq, k, h, dh]);
        let values = self.value.forward(xs).select(0, nb.index.clone());
        let values = (values.reshape([nq, k, d]) + rel).reshape([nq, k, h, dh]);
        let scores = (q * keys).sum_dim(3).div_scalar((dh as f32).sqrt()) + nb.bias.clone();
        let w = softmax(scores, 1) * nb.mask.clone();
        let ctx = (w * values).sum_dim(1).reshape([nq, d]);
        self.output.forward(ctx)
    }
}

/// Pre-LayerNorm attention + feed-forward, both residual.
#[derive(Module, Debug)]
pub struct AttentionBlock<B: Backend> {
    norm_query: LayerNorm<B>,
    /// Cross-attention only: the sources' own LayerNorm.
    norm_source: Option<LayerNorm<B>>,
    attention: NeighbourAttention<B>,
    norm_ffn: LayerNorm<B>,
    ffn1: Linear<B>,
    ffn2: Linear<B>,
}

impl<B: Backend> AttentionBlock<B> {
    fn new(d: usize, heads: usize, ffn: usize, cross: bool, device: &B::Device) -> Self {
        Self {
            norm_query: LayerNormConfig::new(d).init(device),
            norm_source: cross.then(|| LayerNormConfig::new(d).init(device)),
            attention: NeighbourAttention::new(d, heads, device),
            norm_ffn: LayerNormConfig::new(d).init(device),
            ffn1: LinearConfig::new(d, ffn).init(device),
            ffn2: LinearConfig::new(ffn, d).init(device),
        }
    }

    /// `source = None` is self-attention.
    fn forward(
        &self,
        x: Tensor<B, 2>,
        source: Option<Tensor<B, 2>>,
        nb: &NeighbourTensors<B>,
        rel: Tensor<B, 3>,
    ) -> Tensor<B, 2> {
        let q = self.norm_query.forward(x.clone());
        let s = match (source, &self.norm_source) {
            (Some(s), Some(norm)) => norm.forward(s),
            (Some(s), None) => s,
            (None, _) => q.clone(),
        };
        let x = x + self.attention.forward(q, s, nb, rel);
        let f = self
            .ffn2
            .forward(relu(self.ffn1.forward(self.norm_ffn.forward(x.clone()))));
        x + f
    }
}

/// One agent layer.
#[derive(Module, Debug)]
pub struct AgentLayer<B: Backend> {
    temporal: AttentionBlock<B>,
    agent_map: AttentionBlock<B>,
    agent_agent: AttentionBlock<B>,
}

/// The whole network.
#[derive(Module, Debug)]
pub struct ReferenceNet<B: Backend> {
    map_input: Mlp<B>,
    map_rel: Mlp<B>,
    map_layers: Vec<AttentionBlock<B>>,
    agent_input: Mlp<B>,
    last_token: Embedding<B>,
    anchor_token: Embedding<B>,
    anchor_gain: Param<Tensor<B, 1>>,
    temporal_rel: Mlp<B>,
    agent_map_rel: Mlp<B>,
    agent_agent_rel: Mlp<B>,
    agent_layers: Vec<AgentLayer<B>>,
    norm_out: LayerNorm<B>,
    head: Mlp<B>,
}

/// A [`GraphBatch`] on the device.
#[derive(Clone, Debug)]
pub struct GraphTensors<B: Backend> {
    /// `[map_nodes, MAP_FEATURES]`.
    pub map_features: Tensor<B, 2>,
    /// Map self-attention.
    pub map_map: NeighbourTensors<B>,
    /// `[agent_nodes, AGENT_FEATURES]`.
    pub agent_features: Tensor<B, 2>,
    /// `[agent_nodes]`.
    pub last_token: Tensor<B, 1, Int>,
    /// `[agent_nodes]`.
    pub anchor_token: Tensor<B, 1, Int>,
    /// `[agent_nodes]`.
    pub anchor_index: Tensor<B, 1, Int>,
    /// Temporal attention.
    pub temporal: NeighbourTensors<B>,
    /// Agent-to-map attention.
    pub agent_map: NeighbourTensors<B>,
    /// Agent-to-agent attention.
    pub agent_agent: NeighbourTensors<B>,
    /// `[agent_nodes]`.
    pub target: Tensor<B, 1, Int>,
    /// `[agent_nodes]`.
    pub target_mask: Tensor<B, 1>,
}

impl<B: Backend> GraphTensors<B> {
    /// Uploads a batch.
    pub fn new(g: &GraphBatch, device: &B::Device) -> Self {
        Self {
            map_features: float_tensor(g.map_features.clone(), [g.map_nodes, MAP_FEATURES], device),
            map_map: NeighbourTensors::new(&g.map_map, device),
            agent_features: float_tensor(
                g.agent_features.clone(),
                [g.agent_nodes, AGENT_FEATURES],
                device,
            ),
            last_token: int_tensor(g.last_token.clone(), device),
            anchor_token: int_tensor(g.anchor_token.clone(), device),
            anchor_index: int_tensor(g.anchor_index.clone(), device),
            temporal: NeighbourTensors::new(&g.temporal, device),
            agent_map: NeighbourTensors::new(&g.agent_map, device),
            agent_agent: NeighbourTensors::new(&g.agent_agent, device),
            target: int_tensor(g.target.clone(), device),
            target_mask: float_tensor(g.target_mask.clone(), [g.agent_nodes], device),
        }
    }
}

impl NetworkConfig {
    /// A freshly initialised network (burn's default initialisers; seed the backend
    /// first for determinism).
    pub fn init<B: Backend>(&self, device: &B::Device) -> ReferenceNet<B> {
        let d = self.hidden;
        let block = |cross| AttentionBlock::new(d, self.heads, self.ffn, cross, device);
        ReferenceNet {
            map_input: Mlp::new(MAP_FEATURES, d, d, device),
            map_rel: Mlp::new(POSE_FEATURES, d, d, device),
            map_layers: (0..self.map_layers).map(|_| block(false)).collect(),
            agent_input: Mlp::new(AGENT_FEATURES, d, d, device),
            last_token: EmbeddingConfig::new(3 * self.tokens + 1, d).init(device),
            anchor_token: EmbeddingConfig::new(3 * self.tokens + 1, d).init(device),
            anchor_gain: Param::from_tensor(Tensor::from_floats([ANCHOR_PRIOR], device)),
            temporal_rel: Mlp::new(TEMPORAL_FEATURES, d, d, device),
            agent_map_rel: Mlp::new(AGENT_MAP_FEATURES, d, d, device),
            agent_agent_rel: Mlp::new(AGENT_AGENT_FEATURES, d, d, device),
            agent_layers: (0..self.agent_layers)
                .map(|_| AgentLayer {
                    temporal: block(false),
                    agent_map: block(true),
                    agent_agent: block(false),
                })
                .collect(),
            norm_out: LayerNormConfig::new(d).init(device),
            head: Mlp::new(d, d, self.tokens, device),
        }
    }

    /// Checks the sizes.
    ///
    /// # Errors
    /// A message for zero sizes or a width the heads do not divide.
    pub fn validate(&self) -> Result<(), String> {
        if self.hidden == 0 || self.heads == 0 || !self.hidden.is_multiple_of(self.heads) {
            return Err(format!(
                "hidden ({}) must be a positive multiple of heads ({})",
                self.hidden, self.heads
            ));
        }
        if self.tokens == 0 || self.ffn == 0 {
            return Err("tokens and ffn must be positive".into());
        }
        Ok(())
    }
}

impl<B: Backend> ReferenceNet<B> {
    fn rel(mlp: &Mlp<B>, nb: &NeighbourTensors<B>) -> Tensor<B, 3> {
        let e = mlp.forward(nb.rel.clone());
        let [nk, d] = e.dims();
        e.reshape([nk / nb.k.max(1), nb.k, d])
    }

    /// Logits over the tokens for every agent-step node.
    ///
    /// # Shapes
    /// Output `[agent_nodes, tokens]`.
    pub fn forward(&self, g: &GraphTensors<B>) -> Tensor<B, 2> {
        let mut m = self.map_input.forward(g.map_features.clone());
        let map_rel = Self::rel(&self.map_rel, &g.map_map);
        for layer in &self.map_layers {
            m = layer.forward(m, None, &g.map_map, map_rel.clone());
        }
        let table = self.last_token.weight.val();
        let emb = table.clone().select(0, g.last_token.clone());
        let anchor = self
            .anchor_token
            .weight
            .val()
            .select(0, g.anchor_token.clone());
        let mut a = self.agent_input.forward(g.agent_features.clone()) + emb + anchor;
        let t_rel = Self::rel(&self.temporal_rel, &g.temporal);
        let am_rel = Self::rel(&self.agent_map_rel, &g.agent_map);
        let aa_rel = Self::rel(&self.agent_agent_rel, &g.agent_agent);
        for layer in &self.agent_layers {
            a = layer.temporal.forward(a, None, &g.temporal, t_rel.clone());
            a = layer
                .agent_map
                .forward(a, Some(m.clone()), &g.agent_map, am_rel.clone());
            a = layer
                .agent_agent
                .forward(a, None, &g.agent_agent, aa_rel.clone());
        }
        let logits = self.head.forward(self.norm_out.forward(a));
        let [nodes, k] = logits.dims();
        let prior = g
            .anchor_index
            .clone()
            .one_hot::<2>(k + 1)
            .float()
            .narrow(1, 0, k);
        let gain = self.anchor_gain.val().reshape([1, 1]);
        debug_assert_eq!(prior.dims(), [nodes, k]);
        logits + prior * gain
    }
}

/// The network's weights as plain data, for the native inference pass
/// ([`super::native`]).
pub mod plain {
    /// A linear layer: `y = x w + b`, `w` input-major `[d_in, d_out]`.
    #[derive(Clone, Debug, PartialEq)]
    pub struct Lin {
        /// Weights `[d_in * d_out]`.
        pub w: Vec<f32>,
        /// Bias `[d_out]`.
        pub b: Vec<f32>,
        /// Inputs.
        pub d_in: usize,
        /// Outputs.
        pub d_out: usize,
    }

    /// A LayerNorm: gain and shift.
    #[derive(Clone, Debug, PartialEq)]
    pub struct Norm {
        /// Gain.
        pub gamma: Vec<f32>,
        /// Shift.
        pub beta: Vec<f32>,
    }

    /// Linear -> LayerNorm -> ReLU -> Linear.
    #[derive(Clone, Debug, PartialEq)]
    pub struct Mlp {
        /// First layer.
        pub l1: Lin,
        /// Its norm.
        pub ln: Norm,
        /// Second layer.
        pub l2: Lin,
    }

    /// A pre-norm attention block with its feed-forward layer.
    #[derive(Clone, Debug, PartialEq)]
    pub struct Block {
        /// Query norm.
        pub norm_query: Norm,
        /// Source norm (cross-attention).
        pub norm_source: Option<Norm>,
        /// Query projection.
        pub query: Lin,
        /// Key projection.
        pub key: Lin,
        /// Value projection.
        pub value: Lin,
        /// Output projection.
        pub output: Lin,
        /// Heads.
        pub heads: usize,
        /// Feed-forward norm.
        pub norm_ffn: Norm,
        /// Feed-forward layers.
        pub ffn1: Lin,
        /// Second feed-forward layer.
        pub ffn2: Lin,
    }

    /// The whole network.
    #[derive(Clone, Debug, PartialEq)]
    pub struct Net {
        /// Map token input.
        pub map_input: Mlp,
        /// Map relative features.
        pub map_rel: Mlp,
        /// Map self-attention blocks.
        pub map_layers: Vec<Block>,
        /// Agent input.
        pub agent_input: Mlp,
        /// Last-token embedding table `[rows, hidden]`.
        pub last_token: Vec<f32>,
        /// Anchor embedding table `[rows, hidden]`.
        pub anchor_token: Vec<f32>,
        /// Gain of the anchor prior on the logits.
        pub anchor_gain: f32,
        /// Temporal relative features.
        pub temporal_rel: Mlp,
        /// Agent-to-map relative features.
        pub agent_map_rel: Mlp,
        /// Agent-to-agent relative features.
        pub agent_agent_rel: Mlp,
        /// Per agent layer: temporal, agent-map, agent-agent.
        pub agent_layers: Vec<[Block; 3]>,
        /// Output norm.
        pub norm_out: Norm,
        /// Output head.
        pub head: Mlp,
        /// Width.
        pub hidden: usize,
    }
}

impl<B: Backend> ReferenceNet<B> {
    /// The weights as plain data.
    pub fn plain(&self) -> plain::Net {
        use crate::training::to_vec;
        let lin = |l: &Linear<B>| {
            let [d_in, d_out] = l.weight.dims();
            plain::Lin {
                w: to_vec(l.weight.val()),
                b: l.bias
                    .as_ref()
                    .map(|b| to_vec(b.val()))
                    .unwrap_or_else(|| vec![0.0; d_out]),
                d_in,
                d_out,
            }
        };
        let norm = |n: &LayerNorm<B>| {
            let gamma = to_vec(n.gamma.val());
            let beta = n
                .beta
                .as_ref()
                .map(|b| to_vec(b.val()))
                .unwrap_or_else(|| vec![0.0; gamma.len()]);
            plain::Norm { gamma, beta }
        };
        let mlp = |m: &Mlp<B>| plain::Mlp {
            l1: lin(&m.l1),
            ln: norm(&m.ln),
            l2: lin(&m.l2),
        };
        let block = |b: &AttentionBlock<B>| plain::Block {
            norm_query: norm(&b.norm_query),
            norm_source: b.norm_source.as_ref().map(norm),
            query: lin(&b.attention.query),
            key: lin(&b.attention.key),
            value: lin(&b.attention.value),
            output: lin(&b.attention.output),
            heads: b.attention.heads,
            norm_ffn: norm(&b.norm_ffn),
            ffn1: lin(&b.ffn1),
            ffn2: lin(&b.ffn2),
        };
        plain::Net {
            map_input: mlp(&self.map_input),
            map_rel: mlp(&self.map_rel),
            map_layers: self.map_layers.iter().map(block).collect(),
            agent_input: mlp(&self.agent_input),
            last_token: crate::training::to_vec(self.last_token.weight.val()),
            anchor_token: crate::training::to_vec(self.anchor_token.weight.val()),
            anchor_gain: crate::training::to_vec(self.anchor_gain.val())
                .first()
                .copied()
                .unwrap_or(0.0),
            temporal_rel: mlp(&self.temporal_rel),
            agent_map_rel: mlp(&self.agent_map_rel),
            agent_agent_rel: mlp(&self.agent_agent_rel),
            agent_layers: self
                .agent_layers
                .iter()
                .map(|l| {
                    [
                        block(&l.temporal),
                        block(&l.agent_map),
                        block(&l.agent_agent),
                    ]
                })
                .collect(),
            norm_out: norm(&self.norm_out),
            head: mlp(&self.head),
            hidden: self.norm_out.gamma.dims()[0],
        }
    }
}
