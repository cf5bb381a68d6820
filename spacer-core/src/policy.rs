//! The late-fusion policy network: forward pass and action selection.
//!
//! GPUDrive's late-fusion net, as SPACeR uses it:
//!
//! ```text
//! ego (6)            -> Linear(6->64)  -> LayerNorm -> tanh -> Linear(64->64) ----------\
//! partner (63 x 6)   -> Linear(6->64)  -> LayerNorm -> tanh -> Linear(64->64) -> max ---+-> concat (192)
//! road (200 x 13)    -> Linear(13->64) -> LayerNorm -> tanh -> Linear(64->64) -> max --/      |
//!                                                                       Linear(192->128) <----/
//!                                                        actor Linear(128->K)   critic Linear(128->1)
//! ```
//!
//! The partner and road encoders are shared over their slots and max-pooled. As in
//! GPUDrive there is no activation between the fusion layer and the heads. At K = 200
//! the network has [`param_count`]`(200)` = 65,289 parameters.
//!
//! # Parameter layout
//!
//! The parameters are one flat `f32` slice, in this order (a linear layer stores its
//! weight input-major, `w[i * out + j]` connecting input `i` to output `j`, then its
//! bias), which is also burn's `Linear` layout:
//!
//! | block | tensors |
//! |---|---|
//! | ego, partner, road encoders | `l1.w [d][64]`, `l1.b [64]`, `ln.gamma [64]`, `ln.beta [64]`, `l2.w [64][64]`, `l2.b [64]` |
//! | fusion | `w [192][128]`, `b [128]` |
//! | actor | `w [128][K]`, `b [K]` |
//! | critic | `w [128][1]`, `b [1]` |
//!
//! # Cost
//!
//! The ego encoder, fusion layer and heads use each weight once (about 55k
//! multiply-adds at K = 200). Each *occupied* partner or road slot adds one encoder
//! pass (4.5k-4.9k multiply-adds); empty (all-zero) slots all encode to the same
//! vector, which is computed once when the policy is created. Sums run in a fixed order
//! with separate multiplies and adds (Rust never fuses them), so every target computes
//! bit-identical logits: the firmware picks the same tokens as the host.

use crate::math::{self, Rng};

/// Width of every encoder.
pub const HIDDEN: usize = 64;
/// Width of the fusion layer.
pub const FUSED: usize = 128;
/// Encoders (ego, partner, road).
pub const ENCODERS: usize = 3;
/// Input width of the fusion layer.
pub const CONCAT: usize = ENCODERS * HIDDEN;
/// Largest action count (the vocabulary's capacity).
pub const MAX_ACTIONS: usize = crate::tokenizer::MAX_TOKENS;
/// LayerNorm epsilon (burn's and PyTorch's default).
pub const LAYER_NORM_EPS: f32 = 1e-5;
/// Largest magnitude accepted in an observation. Real features are normalised to
/// about ±1; anything beyond this is a caller bug, and refusing it keeps every
/// intermediate value finite.
pub const MAX_OBSERVATION_MAGNITUDE: f32 = 1.0e4;
/// Largest magnitude accepted for a weight (same reason).
pub const MAX_WEIGHT_MAGNITUDE: f32 = 1.0e4;

use crate::observation::{EGO_FEATURES, PARTNER_FEATURES, ROAD_FEATURES};

/// The shape of a policy: slot counts and action count. The feature widths and hidden
/// sizes are fixed by the architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PolicyDims {
    /// Partner slots in the observation.
    pub max_partners: u16,
    /// Road slots in the observation.
    pub max_road_segments: u16,
    /// Actions (tokens per agent kind).
    pub actions: u16,
}

impl Default for PolicyDims {
    fn default() -> Self {
        Self {
            max_partners: crate::observation::MAX_PARTNERS as u16,
            max_road_segments: crate::observation::MAX_ROAD_SEGMENTS as u16,
            actions: crate::tokenizer::DEFAULT_TOKENS as u16,
        }
    }
}

impl PolicyDims {
    /// Checks the dimensions against the crate's capacities.
    ///
    /// # Errors
    /// [`PolicyError::BadDims`] for zero actions, more than [`MAX_ACTIONS`], or more
    /// slots than the observation can hold.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let ok = self.actions >= 1
            && self.actions as usize <= MAX_ACTIONS
            && self.max_partners as usize <= crate::observation::MAX_PARTNERS
            && self.max_road_segments as usize <= crate::observation::MAX_ROAD_SEGMENTS;
        if ok {
            Ok(())
        } else {
            Err(PolicyError::BadDims)
        }
    }

    /// Length of the observation this policy reads.
    pub const fn observation_len(&self) -> usize {
        EGO_FEATURES
            + self.max_partners as usize * PARTNER_FEATURES
            + self.max_road_segments as usize * ROAD_FEATURES
    }

    /// Number of actions.
    pub const fn actions(&self) -> usize {
        self.actions as usize
    }

    /// The observation layout these dimensions read (radius 50 m).
    pub fn observation_config(&self) -> crate::observation::ObservationConfig {
        crate::observation::ObservationConfig {
            max_partners: self.max_partners as usize,
            max_road_segments: self.max_road_segments as usize,
            ..Default::default()
        }
    }
}

/// Parameters of the network for `actions` actions (65,289 at 200).
pub const fn param_count(actions: usize) -> usize {
    encoder_params(EGO_FEATURES)
        + encoder_params(PARTNER_FEATURES)
        + encoder_params(ROAD_FEATURES)
        + CONCAT * FUSED
        + FUSED
        + FUSED * actions
        + actions
        + FUSED
        + 1
}

const fn encoder_params(d: usize) -> usize {
    d * HIDDEN + HIDDEN + 2 * HIDDEN + HIDDEN * HIDDEN + HIDDEN
}

/// Why the policy refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyError {
    /// Dimensions outside the crate's capacities.
    BadDims,
    /// The parameter slice's length does not match the dimensions.
    WrongParamCount,
    /// A parameter is NaN, infinite or larger than [`MAX_WEIGHT_MAGNITUDE`].
    BadWeight,
    /// The observation's length does not match the dimensions.
    WrongObservationLength,
    /// An observation value is NaN, infinite or beyond [`MAX_OBSERVATION_MAGNITUDE`].
    BadObservation,
    /// An output buffer has the wrong length.
    WrongOutputLength,
    /// Sampling settings are invalid (temperature not positive and finite).
    BadSampling,
    /// The operation does not exist for this weight format (e.g. the f32 encoding of
    /// an int8 policy).
    WrongFormat,
}

impl core::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PolicyError::BadDims => "policy dimensions exceed the core's capacities",
            PolicyError::WrongParamCount => "parameter count does not match the dimensions",
            PolicyError::BadWeight => "a weight is NaN, infinite or implausibly large",
            PolicyError::WrongObservationLength => "observation has the wrong length",
            PolicyError::BadObservation => "observation holds NaN, infinity or a huge value",
            PolicyError::WrongOutputLength => "output buffer has the wrong length",
            PolicyError::BadSampling => "temperature must be positive and finite",
            PolicyError::WrongFormat => "not available for this weight format",
        })
    }
}

/// Offsets of one encoder's tensors in the flat parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct EncoderLayout {
    d: usize,
    l1_w: usize,
    l1_b: usize,
    gamma: usize,
    beta: usize,
    l2_w: usize,
    l2_b: usize,
}

impl EncoderLayout {
    const fn at(start: usize, d: usize) -> Self {
        let l1_w = start;
        let l1_b = l1_w + d * HIDDEN;
        let gamma = l1_b + HIDDEN;
        let beta = gamma + HIDDEN;
        let l2_w = beta + HIDDEN;
        let l2_b = l2_w + HIDDEN * HIDDEN;
        Self {
            d,
            l1_w,
            l1_b,
            gamma,
            beta,
            l2_w,
            l2_b,
        }
    }
    const fn end(&self) -> usize {
        self.l2_b + HIDDEN
    }
}

/// Offsets of every tensor in the flat parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamLayout {
    ego: EncoderLayout,
    partner: EncoderLayout,
    road: EncoderLayout,
    fuse_w: usize,
    fuse_b: usize,
    actor_w: usize,
    actor_b: usize,
    critic_w: usize,
    critic_b: usize,
    total: usize,
    actions: usize,
}

/// One named tensor of the flat parameters: where it starts and its shape
/// (`[rows, cols]`, input-major for weights; `[n, 1]` for vectors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// Name, e.g. `road.l2.w`.
    pub name: &'static str,
    /// Offset in the flat parameters.
    pub offset: usize,
    /// Rows (inputs for a weight, length for a vector).
    pub rows: usize,
    /// Columns (outputs for a weight, 1 for a vector).
    pub cols: usize,
    /// How [`init_params`] initialises it.
    pub init: TensorInit,
}

/// How a tensor is initialised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TensorInit {
    /// Orthogonal with this gain.
    Orthogonal(f32),
    /// Every value this constant.
    Constant(f32),
}

impl Eq for TensorInit {}

impl ParamLayout {
    /// The layout for `actions` actions.
    pub const fn new(actions: usize) -> Self {
        let ego = EncoderLayout::at(0, EGO_FEATURES);
        let partner = EncoderLayout::at(ego.end(), PARTNER_FEATURES);
        let road = EncoderLayout::at(partner.end(), ROAD_FEATURES);
        let fuse_w = road.end();
        let fuse_b = fuse_w + CONCAT * FUSED;
        let actor_w = fuse_b + FUSED;
        let actor_b = actor_w + FUSED * actions;
        let critic_w = actor_b + actions;
        let critic_b = critic_w + FUSED;
        let total = critic_b + 1;
        Self {
            ego,
            partner,
            road,
            fuse_w,
            fuse_b,
            actor_w,
            actor_b,
            critic_w,
            critic_b,
            total,
            actions,
        }
    }

    /// Total parameters.
    pub const fn total(&self) -> usize {
        self.total
    }

    /// Every tensor, in storage order (18 encoder tensors, then fusion, actor, critic).
    pub fn tensors(&self) -> [TensorSpec; 24] {
        const SQRT2: f32 = core::f32::consts::SQRT_2;
        let enc = |e: &EncoderLayout, names: [&'static str; 6]| {
            [
                TensorSpec {
                    name: names[0],
                    offset: e.l1_w,
                    rows: e.d,
                    cols: HIDDEN,
                    init: TensorInit::Orthogonal(SQRT2),
                },
                TensorSpec {
                    name: names[1],
                    offset: e.l1_b,
                    rows: HIDDEN,
                    cols: 1,
                    init: TensorInit::Constant(0.0),
                },
                TensorSpec {
                    name: names[2],
                    offset: e.gamma,
                    rows: HIDDEN,
                    cols: 1,
                    init: TensorInit::Constant(1.0),
                },
                TensorSpec {
                    name: names[3],
                    offset: e.beta,
                    rows: HIDDEN,
                    cols: 1,
                    init: TensorInit::Constant(0.0),
                },
                TensorSpec {
                    name: names[4],
                    offset: e.l2_w,
                    rows: HIDDEN,
                    cols: HIDDEN,
                    init: TensorInit::Orthogonal(SQRT2),
                },
                TensorSpec {
                    name: names[5],
                    offset: e.l2_b,
                    rows: HIDDEN,
                    cols: 1,
                    init: TensorInit::Constant(0.0),
                },
            ]
        };
        let e = enc(
            &self.ego,
            [
                "ego.l1.w",
                "ego.l1.b",
                "ego.ln.gamma",
                "ego.ln.beta",
                "ego.l2.w",
                "ego.l2.b",
            ],
        );
        let p = enc(
            &self.partner,
            [
                "partner.l1.w",
                "partner.l1.b",
                "partner.ln.gamma",
                "partner.ln.beta",
                "partner.l2.w",
                "partner.l2.b",
            ],
        );
        let r = enc(
            &self.road,
            [
                "road.l1.w",
                "road.l1.b",
                "road.ln.gamma",
                "road.ln.beta",
                "road.l2.w",
                "road.l2.b",
            ],
        );
        let k = self.actions;
        [
            e[0],
            e[1],
            e[2],
            e[3],
            e[4],
            e[5],
            p[0],
            p[1],
            p[2],
            p[3],
            p[4],
            p[5],
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            TensorSpec {
                name: "fuse.w",
                offset: self.fuse_w,
                rows: CONCAT,
                cols: FUSED,
                init: TensorInit::Orthogonal(SQRT2),
            },
            TensorSpec {
                name: "fuse.b",
                offset: self.fuse_b,
                rows: FUSED,
                cols: 1,
                init: TensorInit::Constant(0.0),
            },
            TensorSpec {
                name: "actor.w",
                offset: self.actor_w,
                rows: FUSED,
                cols: k,
                init: TensorInit::Orthogonal(0.01),
            },
            TensorSpec {
                name: "actor.b",
                offset: self.actor_b,
                rows: k,
                cols: 1,
                init: TensorInit::Constant(0.0),
            },
            TensorSpec {
                name: "critic.w",
                offset: self.critic_w,
                rows: FUSED,
                cols: 1,
                init: TensorInit::Orthogonal(1.0),
            },
            TensorSpec {
                name: "critic.b",
                offset: self.critic_b,
                rows: 1,
                cols: 1,
                init: TensorInit::Constant(0.0),
            },
        ]
    }
}

/// Deterministic initialisation (docs/design.md section 1.4): orthogonal weights
/// (gain √2 for the encoders and the fusion layer, 0.01 for the actor, 1 for the
/// critic), zero biases, LayerNorm gain 1 and shift 0. Orthogonal means the rows (or,
/// for tall matrices, the columns) of the `[out, in]` weight are orthonormal before the
/// gain, as PyTorch's `orthogonal_`; the Gram-Schmidt runs in place, without scratch
/// memory.
///
/// # Errors
/// [`PolicyError::BadDims`] / [`PolicyError::WrongParamCount`] for bad sizes.
pub fn init_params(dims: &PolicyDims, seed: u64, out: &mut [f32]) -> Result<(), PolicyError> {
    dims.validate()?;
    let layout = ParamLayout::new(dims.actions());
    if out.len() != layout.total() {
        return Err(PolicyError::WrongParamCount);
    }
    let mut rng = Rng::new(seed);
    for t in layout.tensors() {
        let Some(block) = out.get_mut(t.offset..t.offset + t.rows * t.cols) else {
            return Err(PolicyError::WrongParamCount);
        };
        match t.init {
            TensorInit::Constant(c) => block.fill(c),
            TensorInit::Orthogonal(gain) => {
                for v in block.iter_mut() {
                    *v = rng.normal();
                }
                orthonormalize(block, t.rows, t.cols);
                for v in block.iter_mut() {
                    *v *= gain;
                }
            }
        }
    }
    Ok(())
}

/// Makes the shorter family of vectors of a `rows x cols` row-major matrix orthonormal
/// (modified Gram-Schmidt in f64): its columns (length `rows`) when `cols <= rows`,
/// else its rows (length `cols`).
fn orthonormalize(m: &mut [f32], rows: usize, cols: usize) {
    // Element e of vector v lives at v * sv + e * se.
    let (count, len, sv, se) = if cols <= rows {
        (cols, rows, 1, cols)
    } else {
        (rows, cols, cols, 1)
    };
    if m.len() < rows * cols {
        return;
    }
    for v in 0..count {
        for u in 0..v {
            let mut dot = 0.0f64;
            for e in 0..len {
                dot += m[v * sv + e * se] as f64 * m[u * sv + e * se] as f64;
            }
            for e in 0..len {
                let uu = m[u * sv + e * se] as f64;
                let x = &mut m[v * sv + e * se];
                *x = (*x as f64 - dot * uu) as f32;
            }
        }
        let mut norm = 0.0f64;
        for e in 0..len {
            let x = m[v * sv + e * se] as f64;
            norm += x * x;
        }
        let inv = if norm > 1e-30 {
            1.0 / libm::sqrt(norm)
        } else {
            0.0
        };
        for e in 0..len {
            let x = &mut m[v * sv + e * se];
            *x = (*x as f64 * inv) as f32;
        }
    }
}

/// How a policy's weights are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[repr(u8)]
pub enum WeightFormat {
    /// 32-bit floats, the trained network as is.
    F32 = 0,
    /// int8 weights, int16 activations, integer arithmetic ([`crate::quant`]).
    Int8 = 1,
}

impl WeightFormat {
    /// From its code in a blob header.
    pub const fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(WeightFormat::F32),
            1 => Some(WeightFormat::Int8),
            _ => None,
        }
    }

    /// `"f32"` or `"int8"`.
    pub const fn name(self) -> &'static str {
        match self {
            WeightFormat::F32 => "f32",
            WeightFormat::Int8 => "int8",
        }
    }
}

/// The network over borrowed parameters (a slice of RAM, or of flash in place): the
/// f32 network, or its int8 quantization ([`crate::quant`]). Both run through the same
/// methods.
#[derive(Clone, Copy, Debug)]
pub struct Policy<'w> {
    dims: PolicyDims,
    net: Net<'w>,
}

#[derive(Clone, Copy, Debug)]
enum Net<'w> {
    F32(Dense<'w>),
    Int8(crate::quant::QuantNet<'w>),
}

/// The f32 network.
#[derive(Clone, Copy, Debug)]
struct Dense<'w> {
    params: &'w [f32],
    layout: ParamLayout,
    /// What an empty (all-zero) partner / road slot encodes to.
    empty_partner: [f32; HIDDEN],
    empty_road: [f32; HIDDEN],
}

/// How [`Policy::act`] picks a token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Selection {
    /// The most likely token (ties go to the lowest index).
    Argmax,
    /// A sample from `softmax(logits / temperature)` over the `top_k` most likely
    /// tokens (`top_k` 0 or above the action count means all).
    Sample {
        /// Softmax temperature (> 0).
        temperature: f32,
        /// How many of the most likely tokens to sample among.
        top_k: u16,
    },
}

/// What [`Policy::act`] chose.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Action {
    /// The token.
    pub token: u16,
    /// Its log-probability under the full (untempered) policy distribution.
    pub log_prob: f32,
    /// The critic's value estimate.
    pub value: f32,
}

impl<'w> Policy<'w> {
    /// An f32 policy over `params`, checked once here: lengths, and every weight finite
    /// and within [`MAX_WEIGHT_MAGNITUDE`]. After this the forward pass cannot fail on
    /// the weights.
    ///
    /// # Errors
    /// [`PolicyError::BadDims`], [`PolicyError::WrongParamCount`],
    /// [`PolicyError::BadWeight`].
    pub fn new(dims: PolicyDims, params: &'w [f32]) -> Result<Self, PolicyError> {
        dims.validate()?;
        let layout = ParamLayout::new(dims.actions());
        if params.len() != layout.total() {
            return Err(PolicyError::WrongParamCount);
        }
        if params
            .iter()
            .any(|w| w.is_nan() || w.abs() > MAX_WEIGHT_MAGNITUDE)
        {
            return Err(PolicyError::BadWeight);
        }
        let mut d = Dense {
            params,
            layout,
            empty_partner: [0.0; HIDDEN],
            empty_road: [0.0; HIDDEN],
        };
        let mut scratch = [0.0f32; HIDDEN];
        d.encode(&d.layout.partner, &[0.0; PARTNER_FEATURES], &mut scratch);
        d.empty_partner = scratch;
        d.encode(&d.layout.road, &[0.0; ROAD_FEATURES], &mut scratch);
        d.empty_road = scratch;
        Ok(Self {
            dims,
            net: Net::F32(d),
        })
    }

    /// An int8 policy over `words` ([`crate::quant::QuantLayout`]), validated once here
    /// so that no observation can make an integer overflow.
    ///
    /// # Errors
    /// [`PolicyError::BadDims`], [`PolicyError::WrongParamCount`],
    /// [`PolicyError::BadWeight`] (a scale, multiplier or bias out of its bounds).
    pub fn new_int8(dims: PolicyDims, words: &'w [u32]) -> Result<Self, PolicyError> {
        Ok(Self {
            dims,
            net: Net::Int8(crate::quant::QuantNet::new(dims, words)?),
        })
    }

    /// The dimensions.
    pub fn dims(&self) -> PolicyDims {
        self.dims
    }

    /// How the weights are stored.
    pub fn format(&self) -> WeightFormat {
        match self.net {
            Net::F32(_) => WeightFormat::F32,
            Net::Int8(_) => WeightFormat::Int8,
        }
    }

    /// The f32 parameters (empty for an int8 policy: see [`Policy::int8_words`]).
    pub fn params(&self) -> &'w [f32] {
        match &self.net {
            Net::F32(d) => d.params,
            Net::Int8(_) => &[],
        }
    }

    /// The int8 parameter words (empty for an f32 policy).
    pub fn int8_words(&self) -> &'w [u32] {
        match &self.net {
            Net::F32(_) => &[],
            Net::Int8(q) => q.words(),
        }
    }

    /// Bytes of parameters the forward pass reads: 4 per f32 parameter, or the int8
    /// words.
    pub fn param_bytes(&self) -> usize {
        4 * (self.params().len() + self.int8_words().len())
    }

    /// Observation length.
    pub fn observation_len(&self) -> usize {
        self.dims.observation_len()
    }

    /// Action count.
    pub fn actions(&self) -> usize {
        self.dims.actions()
    }

    /// Validates an observation and finds its occupied slots, in one pass.
    fn check_observation(&self, obs: &[f32]) -> Result<Scan, PolicyError> {
        if obs.len() != self.observation_len() {
            return Err(PolicyError::WrongObservationLength);
        }
        Scan::of(&self.dims, obs)
    }

    /// The fused 192-vector the f32 network's fusion layer reads (ego encoding, then
    /// the max-pooled partner and road encodings): what calibrating a quantization
    /// needs.
    ///
    /// # Shapes
    /// `obs`: [`Policy::observation_len`]; `out`: [`CONCAT`].
    ///
    /// # Errors
    /// As [`Policy::forward`]; [`PolicyError::WrongFormat`] for an int8 policy.
    pub fn encode(&self, obs: &[f32], out: &mut [f32]) -> Result<(), PolicyError> {
        let scan = self.check_observation(obs)?;
        let out: &mut [f32; CONCAT] = out.try_into().map_err(|_| PolicyError::WrongOutputLength)?;
        match &self.net {
            Net::F32(d) => {
                d.features(&self.dims, obs, &scan, out);
                Ok(())
            }
            Net::Int8(_) => Err(PolicyError::WrongFormat),
        }
    }

    /// Logits over the actions and the value of one observation.
    ///
    /// # Shapes
    /// `obs`: [`Policy::observation_len`]; `logits`: [`Policy::actions`].
    ///
    /// # Errors
    /// [`PolicyError::WrongObservationLength`], [`PolicyError::BadObservation`],
    /// [`PolicyError::WrongOutputLength`].
    pub fn forward(&self, obs: &[f32], logits: &mut [f32]) -> Result<f32, PolicyError> {
        let scan = self.check_observation(obs)?;
        if logits.len() != self.actions() {
            return Err(PolicyError::WrongOutputLength);
        }
        Ok(match &self.net {
            Net::F32(d) => d.forward(&self.dims, obs, &scan, logits),
            Net::Int8(q) => q.forward(&self.dims, obs, &scan, logits),
        })
    }

    /// The int8 network's integer logits (`actions` of them) and value (index
    /// `actions`), before their scaling to f32: what [`Policy::forward`] returns times
    /// the blob's logit and value steps.
    ///
    /// # Errors
    /// As [`Policy::forward`]; [`PolicyError::WrongFormat`] for an f32 policy.
    pub fn forward_int8(
        &self,
        obs: &[f32],
        out: &mut [i32; MAX_ACTIONS + 2],
    ) -> Result<(), PolicyError> {
        let scan = self.check_observation(obs)?;
        match &self.net {
            Net::F32(_) => Err(PolicyError::WrongFormat),
            Net::Int8(q) => {
                q.forward_int(&self.dims, obs, &scan, out);
                Ok(())
            }
        }
    }

    /// [`Policy::forward`] over `n` observations at once (`n = values.len()`). For the
    /// f32 network the fusion layer and the heads run over tiles of [`BATCH_TILE`]
    /// agents, so each weight row is read once per tile instead of once per agent.
    /// Results equal `n` calls of [`Policy::forward`] bit for bit.
    ///
    /// # Shapes
    /// `obs`: `n * observation_len`; `logits`: `n * actions`; `values`: `n`.
    ///
    /// # Errors
    /// As [`Policy::forward`]; nothing is written past the first bad observation's
    /// tile.
    pub fn forward_batch(
        &self,
        obs: &[f32],
        logits: &mut [f32],
        values: &mut [f32],
    ) -> Result<(), PolicyError> {
        let n = values.len();
        let (d, k) = (self.observation_len(), self.actions());
        if obs.len() != n * d {
            return Err(PolicyError::WrongObservationLength);
        }
        if logits.len() != n * k {
            return Err(PolicyError::WrongOutputLength);
        }
        match &self.net {
            Net::F32(dense) => {
                let mut scans = [Scan::default(); BATCH_TILE];
                let tiles = obs
                    .chunks(d * BATCH_TILE)
                    .zip(logits.chunks_mut(k * BATCH_TILE))
                    .zip(values.chunks_mut(BATCH_TILE));
                for ((obs_t, logits_t), values_t) in tiles {
                    for (o, sc) in obs_t.chunks_exact(d.max(1)).zip(scans.iter_mut()) {
                        *sc = self.check_observation(o)?;
                    }
                    dense.forward_tile(&self.dims, obs_t, &scans, logits_t, values_t);
                }
            }
            Net::Int8(q) => {
                let rows = obs
                    .chunks_exact(d.max(1))
                    .zip(logits.chunks_exact_mut(k.max(1)))
                    .zip(values.iter_mut());
                for ((o, l), v) in rows {
                    let scan = self.check_observation(o)?;
                    *v = q.forward(&self.dims, o, &scan, l);
                }
            }
        }
        Ok(())
    }

    /// Runs [`Policy::forward`] and picks a token. `rng` is used only for
    /// [`Selection::Sample`].
    ///
    /// # Errors
    /// As [`Policy::forward`]; [`PolicyError::BadSampling`] for a bad temperature.
    pub fn act(
        &self,
        obs: &[f32],
        selection: Selection,
        rng: &mut Rng,
    ) -> Result<Action, PolicyError> {
        let mut logits = [0.0f32; MAX_ACTIONS];
        let k = self.actions();
        let logits = logits.get_mut(..k).ok_or(PolicyError::BadDims)?;
        let value = self.forward(obs, logits)?;
        let token = select(logits, selection, rng)?;
        Ok(Action {
            token,
            log_prob: log_softmax_at(logits, token as usize),
            value,
        })
    }
}

impl<'w> Dense<'w> {
    fn slice(&self, at: usize, len: usize) -> &'w [f32] {
        // Offsets come from the layout the length was checked against in `new`.
        self.params.get(at..at + len).unwrap_or(&[])
    }

    /// One encoder pass: Linear -> LayerNorm -> tanh -> Linear.
    fn encode(&self, e: &EncoderLayout, x: &[f32], out: &mut [f32; HIDDEN]) {
        let mut h = [0.0f32; HIDDEN];
        linear::<true>(
            x,
            self.slice(e.l1_w, e.d * HIDDEN),
            self.slice(e.l1_b, HIDDEN),
            &mut h,
        );
        layer_norm_tanh(
            &mut h,
            self.slice(e.gamma, HIDDEN),
            self.slice(e.beta, HIDDEN),
        );
        linear::<false>(
            &h,
            self.slice(e.l2_w, HIDDEN * HIDDEN),
            self.slice(e.l2_b, HIDDEN),
            out,
        );
    }

    /// The first layer, LayerNorm and tanh of the first `n` slots, in phases across the slots (the
    /// LayerNorm's chains of dependent steps overlap; each slot's operations are those
    /// of [`layer_norm_tanh`]).
    #[inline(always)]
    fn first_tile(
        &self,
        e: &EncoderLayout,
        slots: &[&[f32]; SLOT_TILE],
        n: usize,
        h: &mut [[f32; HIDDEN]; SLOT_TILE],
    ) {
        let (w1, b1) = (self.slice(e.l1_w, e.d * HIDDEN), self.slice(e.l1_b, HIDDEN));
        let (gamma, beta) = (self.slice(e.gamma, HIDDEN), self.slice(e.beta, HIDDEN));
        for (x, hk) in slots.iter().zip(h.iter_mut()).take(n) {
            linear::<true>(x, w1, b1, hk);
        }
        let mut stats = [(0.0f32, 0.0f32); SLOT_TILE];
        for (hk, st) in h.iter().zip(stats.iter_mut()).take(n) {
            *st = layer_norm_stats(hk);
        }
        for (hk, &(mean, inv)) in h.iter_mut().zip(stats.iter()).take(n) {
            layer_norm_apply(hk, mean, inv, gamma, beta);
        }
    }

    /// Max-pooled encoding of `slots` (each `width` long); empty slots (`occupied`
    /// unset) use `empty`. Runs with the widest vectors the host has (the same bits
    /// either way: see [`Dense::pool_tiled`]).
    fn pool(
        &self,
        e: &EncoderLayout,
        slots: &[f32],
        width: usize,
        occupied: &SlotMask,
        empty: &[f32; HIDDEN],
        out: &mut [f32],
    ) {
        #[cfg(all(any(feature = "std", test), target_arch = "x86_64"))]
        if crate::simd::avx512() {
            // SAFETY: the CPU has AVX-512F (checked at run time just above); the
            // function is otherwise safe Rust.
            #[allow(unsafe_code)]
            unsafe {
                self.pool_avx512(e, slots, width, occupied, empty, out)
            };
            return;
        }
        self.pool_tiled::<SLOT_COLS>(e, slots, width, occupied, empty, out);
    }

    /// [`Dense::pool_tiled`] compiled for AVX-512 (32 outputs per register block).
    ///
    /// # Safety
    /// The CPU must support AVX-512F.
    #[cfg(all(any(feature = "std", test), target_arch = "x86_64"))]
    #[target_feature(enable = "avx512f")]
    #[allow(unsafe_code)]
    unsafe fn pool_avx512(
        &self,
        e: &EncoderLayout,
        slots: &[f32],
        width: usize,
        occupied: &SlotMask,
        empty: &[f32; HIDDEN],
        out: &mut [f32],
    ) {
        self.pool_tiled::<32>(e, slots, width, occupied, empty, out);
    }

    /// The pool over tiles of [`SLOT_TILE`] occupied slots: each slot's first layer,
    /// LayerNorm and tanh, then the tile's second layer as one small matrix product
    /// (register blocks of [`SLOT_ROWS`] slots x `C` outputs, each weight loaded once
    /// per block). Every output's sum runs in the order of its inputs and slots are
    /// max-merged in index order (the empty encoding at the first empty slot's place),
    /// so the bits are those of encoding each slot alone.
    #[inline(always)]
    fn pool_tiled<const C: usize>(
        &self,
        e: &EncoderLayout,
        slots: &[f32],
        width: usize,
        occupied: &SlotMask,
        empty: &[f32; HIDDEN],
        out: &mut [f32],
    ) {
        let mut pool = Pooling {
            any: false,
            empty_at: None,
            merged: 0,
        };
        let mut seen = 0usize;
        let mut h = [[0.0f32; HIDDEN]; SLOT_TILE];
        let mut enc = [[0.0f32; HIDDEN]; SLOT_TILE];
        let mut pending: [&[f32]; SLOT_TILE] = [&[]; SLOT_TILE];
        let mut n = 0usize;
        let w2 = self.slice(e.l2_w, HIDDEN * HIDDEN);
        let b2 = self.slice(e.l2_b, HIDDEN);
        for (i, slot) in slots.chunks_exact(width).enumerate() {
            if !occupied.get(i) {
                if pool.empty_at.is_none() {
                    pool.empty_at = Some(seen);
                }
                continue;
            }
            pending[n] = slot;
            n += 1;
            seen += 1;
            if n == SLOT_TILE {
                self.first_tile(e, &pending, n, &mut h);
                tile_linear::<C>(&h, n, w2, b2, &mut enc);
                pool.merge_tile(&enc, n, empty, out);
                n = 0;
            }
        }
        if n > 0 {
            self.first_tile(e, &pending, n, &mut h);
            tile_linear::<C>(&h, n, w2, b2, &mut enc);
            pool.merge_tile(&enc, n, empty, out);
        }
        if pool.empty_at == Some(pool.merged) {
            pool.merge(empty, out);
        }
        if !pool.any {
            // No slots at all (zero-slot dims): the empty encoding stands in.
            out.copy_from_slice(empty);
        }
    }

    /// The fused 192-vector of one observation (already validated).
    fn features(&self, dims: &PolicyDims, obs: &[f32], scan: &Scan, concat: &mut [f32; CONCAT]) {
        let p_len = dims.max_partners as usize * PARTNER_FEATURES;
        let (ego, rest) = obs.split_at(EGO_FEATURES.min(obs.len()));
        let (partners, roads) = rest.split_at(p_len.min(rest.len()));
        let (c_ego, c_rest) = concat.split_at_mut(HIDDEN);
        let (c_partner, c_road) = c_rest.split_at_mut(HIDDEN);
        let mut e = [0.0f32; HIDDEN];
        self.encode(&self.layout.ego, ego, &mut e);
        c_ego.copy_from_slice(&e);
        self.pool(
            &self.layout.partner,
            partners,
            PARTNER_FEATURES,
            &scan.partners,
            &self.empty_partner,
            c_partner,
        );
        self.pool(
            &self.layout.road,
            roads,
            ROAD_FEATURES,
            &scan.roads,
            &self.empty_road,
            c_road,
        );
    }

    fn forward(&self, dims: &PolicyDims, obs: &[f32], scan: &Scan, logits: &mut [f32]) -> f32 {
        let mut concat = [0.0f32; CONCAT];
        self.features(dims, obs, scan, &mut concat);
        let mut hidden = [0.0f32; FUSED];
        linear::<false>(
            &concat,
            self.slice(self.layout.fuse_w, CONCAT * FUSED),
            self.slice(self.layout.fuse_b, FUSED),
            &mut hidden,
        );
        let k = dims.actions();
        linear::<false>(
            &hidden,
            self.slice(self.layout.actor_w, FUSED * k),
            self.slice(self.layout.actor_b, k),
            logits,
        );
        let mut value = [0.0f32; 1];
        linear::<false>(
            &hidden,
            self.slice(self.layout.critic_w, FUSED),
            self.slice(self.layout.critic_b, 1),
            &mut value,
        );
        value[0]
    }

    /// One tile of at most [`BATCH_TILE`] validated observations (with their scans)
    /// in, logits and values out (lengths checked by the caller).
    fn forward_tile(
        &self,
        dims: &PolicyDims,
        obs_t: &[f32],
        scans: &[Scan; BATCH_TILE],
        logits_t: &mut [f32],
        values_t: &mut [f32],
    ) {
        let (d, k) = (dims.observation_len(), dims.actions());
        let mut concat = [[0.0f32; CONCAT]; BATCH_TILE];
        let mut hidden = [[0.0f32; FUSED]; BATCH_TILE];
        let m = values_t.len().min(BATCH_TILE);
        for ((o, c), sc) in obs_t.chunks_exact(d).zip(concat.iter_mut()).zip(scans) {
            self.features(dims, o, sc, c);
        }
        {
            linear_tile(
                &concat[..m],
                CONCAT,
                self.slice(self.layout.fuse_w, CONCAT * FUSED),
                self.slice(self.layout.fuse_b, FUSED),
                &mut hidden[..m],
            );
            let fused: [&[f32]; BATCH_TILE] = core::array::from_fn(|i| hidden[i].as_slice());
            let mut outs = logits_t.chunks_exact_mut(k);
            let mut rows: [&mut [f32]; BATCH_TILE] =
                core::array::from_fn(|_| outs.next().unwrap_or(&mut []));
            linear_rows(
                &fused[..m],
                self.slice(self.layout.actor_w, FUSED * k),
                self.slice(self.layout.actor_b, k),
                &mut rows[..m],
            );
            for (h, v) in hidden[..m].iter().zip(values_t.iter_mut()) {
                let mut out = [0.0f32; 1];
                linear::<false>(
                    h,
                    self.slice(self.layout.critic_w, FUSED),
                    self.slice(self.layout.critic_b, 1),
                    &mut out,
                );
                *v = out[0];
            }
        }
    }
}

/// Which slots of an observation hold a value: bit `i` set when slot `i` has a
/// nonzero feature (zero of either sign counts as empty).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SlotMask([u64; 4]);

impl SlotMask {
    #[inline(always)]
    pub(crate) fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 != 0)
    }

    /// The bits, slot `i` at bit `i % 64` of word `i / 64`.
    #[inline(always)]
    pub(crate) fn words(&self) -> &[u64; 4] {
        &self.0
    }

    /// Whether at least `k` slots are set (stops counting at `k`).
    #[cfg(spacer_dsp)]
    pub(crate) fn at_least(&self, k: u32) -> bool {
        let mut n = 0;
        for &w in &self.0 {
            let mut w = w;
            while w != 0 {
                n += 1;
                if n >= k {
                    return true;
                }
                w &= w - 1;
            }
        }
        n >= k
    }

    #[inline(always)]
    fn set(&mut self, i: usize) {
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }
}

/// An observation's occupied partner and road slots, found while validating it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    pub(crate) partners: SlotMask,
    pub(crate) roads: SlotMask,
}

/// ORs the bits of every slot (`W` floats) into the mask (bit set for a nonzero slot)
/// and returns the OR of everything.
#[inline(always)]
fn or_slots<const W: usize>(slots: &[f32], mask: &mut SlotMask) -> u32 {
    let (chunks, _) = slots.as_chunks::<W>();
    let mut all = 0u32;
    for (i, c) in chunks.iter().enumerate() {
        let o = c.iter().fold(0u32, |a, v| a | v.to_bits());
        all |= o;
        if o << 1 != 0 {
            mask.set(i);
        }
    }
    all
}

impl Scan {
    /// Validates `obs` (length checked by the caller) and marks its occupied slots.
    /// The OR of every value's bits bounds their magnitudes from above, so when it is
    /// within [`MAX_OBSERVATION_MAGNITUDE`] (every normalised observation: all values
    /// below 2) no further check is needed; otherwise the exact check runs.
    fn of(dims: &PolicyDims, obs: &[f32]) -> Result<Self, PolicyError> {
        let p_len = dims.max_partners as usize * PARTNER_FEATURES;
        let (ego, rest) = obs.split_at(EGO_FEATURES.min(obs.len()));
        let (partners, roads) = rest.split_at(p_len.min(rest.len()));
        let mut scan = Scan::default();
        let mut all = ego.iter().fold(0u32, |a, v| a | v.to_bits());
        all |= or_slots::<PARTNER_FEATURES>(partners, &mut scan.partners);
        all |= or_slots::<ROAD_FEATURES>(roads, &mut scan.roads);
        let limit = MAX_OBSERVATION_MAGNITUDE.to_bits();
        if all & 0x7FFF_FFFF > limit {
            // |v| as integer bits: NaN and infinity sort above every finite value, so
            // one integer max catches all three cases.
            let worst = obs
                .iter()
                .map(|v| v.to_bits() & 0x7FFF_FFFF)
                .max()
                .unwrap_or(0);
            if worst > limit {
                return Err(PolicyError::BadObservation);
            }
        }
        Ok(scan)
    }
}

/// Agents per tile in [`Policy::forward_batch`].
pub const BATCH_TILE: usize = 8;

/// Picks a token from logits.
///
/// # Errors
/// [`PolicyError::BadSampling`] for a temperature that is not positive and finite,
/// [`PolicyError::WrongOutputLength`] for empty logits.
pub fn select(logits: &[f32], selection: Selection, rng: &mut Rng) -> Result<u16, PolicyError> {
    if logits.is_empty() || logits.len() > MAX_ACTIONS {
        return Err(PolicyError::WrongOutputLength);
    }
    match selection {
        Selection::Argmax => Ok(argmax(logits) as u16),
        Selection::Sample { temperature, top_k } => {
            if !(temperature > 0.0 && temperature.is_finite()) {
                return Err(PolicyError::BadSampling);
            }
            let k = if top_k == 0 || top_k as usize > logits.len() {
                logits.len()
            } else {
                top_k as usize
            };
            // The k largest, by insertion into a sorted prefix (k <= 256).
            let mut idx = [0u16; MAX_ACTIONS];
            let mut n = 0usize;
            for (i, &l) in logits.iter().enumerate() {
                let l = finite_or_min(l);
                if n == k && l <= finite_or_min(logits[idx[k - 1] as usize]) {
                    continue;
                }
                let mut pos = n.min(k - 1);
                if n < k {
                    n += 1;
                }
                while pos > 0 && finite_or_min(logits[idx[pos - 1] as usize]) < l {
                    idx[pos] = idx[pos - 1];
                    pos -= 1;
                }
                idx[pos] = i as u16;
            }
            let top = finite_or_min(logits[idx[0] as usize]);
            let mut total = 0.0f32;
            for &i in &idx[..n] {
                total +=
                    math::exp_nonpositive((finite_or_min(logits[i as usize]) - top) / temperature);
            }
            let mut u = rng.next_f32() * total;
            for &i in &idx[..n] {
                u -= math::exp_nonpositive((finite_or_min(logits[i as usize]) - top) / temperature);
                if u < 0.0 {
                    return Ok(i);
                }
            }
            Ok(idx[n - 1])
        }
    }
}

#[inline]
fn finite_or_min(v: f32) -> f32 {
    if v.is_nan() { f32::MIN } else { v }
}

/// Index of the largest logit (first on ties; NaN never wins).
pub fn argmax(logits: &[f32]) -> usize {
    let mut best = 0usize;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &v) in logits.iter().enumerate() {
        if v > best_v {
            best = i;
            best_v = v;
        }
    }
    best
}

/// `log softmax(logits)[i]`, computed stably; `-inf` for an index out of range.
pub fn log_softmax_at(logits: &[f32], i: usize) -> f32 {
    let Some(&li) = logits.get(i) else {
        return f32::NEG_INFINITY;
    };
    // `f32::max`'s result (NaN skipped; the running maximum is never NaN) by a
    // comparison, which inlines (on the Cortex-M4F `f32::max` is a call to `fmaxf`).
    let max = logits
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, |m, l| if m < l { l } else { m });
    let mut sum = 0.0f32;
    for &l in logits {
        sum += math::exp_nonpositive(l - max);
    }
    li - max - math::ln(sum)
}

/// Output lanes computed together; the sums run sequentially over the inputs in
/// either case, so the block size changes speed, never results.
#[cfg(target_arch = "arm")]
const BLOCK: usize = 8;
#[cfg(not(target_arch = "arm"))]
const BLOCK: usize = 64;

/// `out[j] = b[j] + sum_i x[i] * w[i * out.len() + j]`, summed in order of `i`.
/// With `SKIP`, zero inputs are skipped (adding `0 * w` changes no finite sum), which
/// pays off for sparse inputs (one-hot road kinds, zero-filled ego features). Lengths
/// are trusted (checked by the caller's layout); short slices just compute less.
#[inline(always)]
fn linear<const SKIP: bool>(x: &[f32], w: &[f32], b: &[f32], out: &mut [f32]) {
    let n_out = out.len();
    let mut j0 = 0;
    while j0 + BLOCK <= n_out {
        linear_block::<BLOCK, SKIP>(x, w, b, j0, out);
        j0 += BLOCK;
    }
    while j0 + 8 <= n_out {
        linear_block::<8, SKIP>(x, w, b, j0, out);
        j0 += 8;
    }
    while j0 < n_out {
        linear_block::<1, SKIP>(x, w, b, j0, out);
        j0 += 1;
    }
}

/// Outputs `j0..j0 + W` of [`linear`], accumulated in registers.
#[inline(always)]
fn linear_block<const W: usize, const SKIP: bool>(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    j0: usize,
    out: &mut [f32],
) {
    let n_out = out.len();
    let mut acc = [0.0f32; W];
    if let Some(bias) = b.get(j0..j0 + W) {
        acc.copy_from_slice(bias);
    }
    if n_out == 0 {
        return;
    }
    for (&xi, row) in x.iter().zip(w.chunks_exact(n_out)) {
        if SKIP && xi == 0.0 {
            continue;
        }
        let Some(seg) = row
            .get(j0..j0 + W)
            .and_then(|s| <&[f32; W]>::try_from(s).ok())
        else {
            break;
        };
        // Load the whole row block first: on the Cortex-M4F the loads then go to
        // consecutive registers and merge into one VLDM.
        let wv: [f32; W] = *seg;
        let mut prod = [0.0f32; W];
        for (p, &w) in prod.iter_mut().zip(wv.iter()) {
            *p = xi * w;
        }
        for (a, &p) in acc.iter_mut().zip(prod.iter()) {
            *a += p;
        }
    }
    if let Some(dst) = out.get_mut(j0..j0 + W) {
        dst.copy_from_slice(&acc);
    }
}

/// [`linear`] for a tile of input rows with fixed-width outputs (the fusion layer).
fn linear_tile<const IN: usize, const OUT: usize>(
    xs: &[[f32; IN]],
    n_in: usize,
    w: &[f32],
    b: &[f32],
    outs: &mut [[f32; OUT]],
) {
    let rows: [&[f32]; BATCH_TILE] =
        core::array::from_fn(|i| xs.get(i).map_or(&[][..], |x| &x[..n_in]));
    let mut it = outs.iter_mut();
    let mut out_rows: [&mut [f32]; BATCH_TILE] =
        core::array::from_fn(|_| it.next().map_or(&mut [][..], |o| &mut o[..]));
    let m = xs.len().min(BATCH_TILE);
    linear_rows(&rows[..m], w, b, &mut out_rows[..m]);
}

/// `m` independent [`linear`]s sharing one weight matrix: register-blocked over
/// [`ROWS_TILE`] inputs x [`COLS_TILE`] outputs, so that each weight is loaded once per
/// four agents instead of once per agent. Per output the sum order is that of
/// [`linear`] (sequential over the inputs), so the results are the same bits.
fn linear_rows(xs: &[&[f32]], w: &[f32], b: &[f32], outs: &mut [&mut [f32]]) {
    let Some(n_out) = outs.first().map(|o| o.len()) else {
        return;
    };
    for (xg, og) in xs.chunks(ROWS_TILE).zip(outs.chunks_mut(ROWS_TILE)) {
        let mut j0 = 0;
        if xg.len() == ROWS_TILE {
            // Interleave the inputs once per group: xt[i] holds input i of every row.
            let n_in = xg.iter().map(|x| x.len()).min().unwrap_or(0).min(CONCAT);
            let mut xt = [[0.0f32; ROWS_TILE]; CONCAT];
            for (r, x) in xg.iter().enumerate() {
                for (t, &v) in xt.iter_mut().zip(x.iter()).take(n_in) {
                    t[r] = v;
                }
            }
            while j0 + COLS_TILE <= n_out {
                rows_block::<ROWS_TILE, COLS_TILE>(&xt[..n_in], w, b, n_out, j0, og);
                j0 += COLS_TILE;
            }
        }
        while j0 + 8 <= n_out {
            for (x, o) in xg.iter().zip(og.iter_mut()) {
                linear_block::<8, false>(x, w, b, j0, o);
            }
            j0 += 8;
        }
        while j0 < n_out {
            for (x, o) in xg.iter().zip(og.iter_mut()) {
                linear_block::<1, false>(x, w, b, j0, o);
            }
            j0 += 1;
        }
    }
}

/// The running max-pool of [`Dense::pool_tiled`]: slots merge in index order, the
/// empty encoding right after the `empty_at` occupied slots before the first empty one.
struct Pooling {
    any: bool,
    empty_at: Option<usize>,
    merged: usize,
}

impl Pooling {
    #[inline(always)]
    fn merge(&mut self, src: &[f32; HIDDEN], out: &mut [f32]) {
        if self.any {
            for (o, &v) in out.iter_mut().zip(src.iter()) {
                if v > *o {
                    *o = v;
                }
            }
        } else {
            out.copy_from_slice(src);
            self.any = true;
        }
    }

    #[inline(always)]
    fn merge_tile(
        &mut self,
        enc: &[[f32; HIDDEN]; SLOT_TILE],
        n: usize,
        empty: &[f32; HIDDEN],
        out: &mut [f32],
    ) {
        for src in enc.iter().take(n) {
            if self.empty_at == Some(self.merged) {
                self.merge(empty, out);
            }
            self.merge(src, out);
            self.merged += 1;
        }
    }
}

/// Occupied slots encoded together before their second layer runs as one small
/// matrix product ([`tile_linear`]).
#[cfg(target_arch = "arm")]
const SLOT_TILE: usize = 4;
#[cfg(not(target_arch = "arm"))]
const SLOT_TILE: usize = 8;
/// Slots per register block of [`tile_linear`].
#[cfg(target_arch = "arm")]
const SLOT_ROWS: usize = 2;
#[cfg(not(target_arch = "arm"))]
const SLOT_ROWS: usize = 4;
/// Outputs per register block of [`tile_linear`] (without AVX-512).
#[cfg(target_arch = "arm")]
const SLOT_COLS: usize = 4;
#[cfg(not(target_arch = "arm"))]
const SLOT_COLS: usize = 16;

/// `out[r][j] = b[j] + sum_i x[r][i] * w[i * 64 + j]` for the first `n` rows, each sum
/// in the order of `i` with separate multiplies and adds (the bits of [`linear`]),
/// register-blocked over [`SLOT_ROWS`] rows x `C` outputs.
#[inline(always)]
fn tile_linear<const C: usize>(
    x: &[[f32; HIDDEN]; SLOT_TILE],
    n: usize,
    w: &[f32],
    b: &[f32],
    out: &mut [[f32; HIDDEN]; SLOT_TILE],
) {
    let Ok(w): Result<&[f32; HIDDEN * HIDDEN], _> = w.try_into() else {
        return;
    };
    let Ok(b): Result<&[f32; HIDDEN], _> = b.try_into() else {
        return;
    };
    let n = n.min(SLOT_TILE);
    let mut r0 = 0;
    while r0 < n {
        let xs: &[[f32; HIDDEN]; SLOT_ROWS] = match x.get(r0..r0 + SLOT_ROWS) {
            Some(rows) => rows.try_into().unwrap_or(&[[0.0; HIDDEN]; SLOT_ROWS]),
            None => &[[0.0; HIDDEN]; SLOT_ROWS],
        };
        let mut j0 = 0;
        while j0 + C <= HIDDEN {
            let mut acc = [[0.0f32; C]; SLOT_ROWS];
            for a in acc.iter_mut() {
                a.copy_from_slice(&b[j0..j0 + C]);
            }
            for (i, row) in w.chunks_exact(HIDDEN).enumerate() {
                let wv: [f32; C] = row[j0..j0 + C].try_into().unwrap_or([0.0; C]);
                for (a, xr) in acc.iter_mut().zip(xs.iter()) {
                    let xi = xr[i];
                    for (av, &wj) in a.iter_mut().zip(wv.iter()) {
                        *av += xi * wj;
                    }
                }
            }
            for (o, a) in out.iter_mut().skip(r0).zip(acc.iter()).take(n - r0) {
                o[j0..j0 + C].copy_from_slice(a);
            }
            j0 += C;
        }
        r0 += SLOT_ROWS;
    }
}

/// Inputs per register block of [`linear_rows`].
const ROWS_TILE: usize = 4;
/// Outputs per register block of [`linear_rows`].
#[cfg(target_arch = "arm")]
const COLS_TILE: usize = 4;
#[cfg(not(target_arch = "arm"))]
const COLS_TILE: usize = 16;

/// Outputs `j0..j0 + C` of `R` linears at once, accumulated in registers, from the
/// interleaved inputs `xt` (`xt[i]` holds input `i` of every row), so the inner loops
/// run over fixed-size arrays without bounds checks.
#[inline(always)]
fn rows_block<const R: usize, const C: usize>(
    xt: &[[f32; R]],
    w: &[f32],
    b: &[f32],
    n_out: usize,
    j0: usize,
    outs: &mut [&mut [f32]],
) {
    let mut acc = [[0.0f32; C]; R];
    if let Some(bias) = b.get(j0..j0 + C) {
        for a in acc.iter_mut() {
            a.copy_from_slice(bias);
        }
    }
    for (xi, row) in xt.iter().zip(w.chunks_exact(n_out)) {
        let Some(seg) = row
            .get(j0..j0 + C)
            .and_then(|s| <&[f32; C]>::try_from(s).ok())
        else {
            break;
        };
        let wv: [f32; C] = *seg;
        for (a, &x) in acc.iter_mut().zip(xi.iter()) {
            for (av, &wj) in a.iter_mut().zip(wv.iter()) {
                *av += x * wj;
            }
        }
    }
    for (a, o) in acc.iter().zip(outs.iter_mut()) {
        if let Some(dst) = o.get_mut(j0..j0 + C) {
            dst.copy_from_slice(a);
        }
    }
}

/// LayerNorm (biased variance, [`LAYER_NORM_EPS`]) then tanh, in place.
#[inline(always)]
fn layer_norm_tanh(h: &mut [f32; HIDDEN], gamma: &[f32], beta: &[f32]) {
    let (mean, inv) = layer_norm_stats(h);
    layer_norm_apply(h, mean, inv, gamma, beta);
}

/// Mean and `1 / sqrt(var + eps)` of [`layer_norm_tanh`].
#[inline(always)]
fn layer_norm_stats(h: &[f32; HIDDEN]) -> (f32, f32) {
    let mean = lane_sum(h) / HIDDEN as f32;
    let mut sq = [0.0f32; HIDDEN];
    for (s, &v) in sq.iter_mut().zip(h.iter()) {
        let d = v - mean;
        *s = d * d;
    }
    let var = lane_sum(&sq) / HIDDEN as f32;
    (mean, 1.0 / math::sqrt(var + LAYER_NORM_EPS))
}

/// The normalisation, gain, shift and tanh of [`layer_norm_tanh`].
#[inline(always)]
fn layer_norm_apply(h: &mut [f32; HIDDEN], mean: f32, inv: f32, gamma: &[f32], beta: &[f32]) {
    for ((v, &g), &b) in h.iter_mut().zip(gamma).zip(beta) {
        *v = math::tanh_fast((*v - mean) * inv * g + b);
    }
}

/// Sum of 64 values in a fixed order that vectorises: eight interleaved partial sums
/// (lane `l` adds elements `l, l + 8, ...`), then a pairwise tree. Every target runs
/// the same order, so the result is the same bits everywhere.
#[inline(always)]
fn lane_sum(v: &[f32; HIDDEN]) -> f32 {
    let mut lanes = [0.0f32; 8];
    for chunk in v.chunks_exact(8) {
        for (l, &x) in lanes.iter_mut().zip(chunk) {
            *l += x;
        }
    }
    let q = [
        lanes[0] + lanes[4],
        lanes[1] + lanes[5],
        lanes[2] + lanes[6],
        lanes[3] + lanes[7],
    ];
    (q[0] + q[2]) + (q[1] + q[3])
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    fn policy_params(seed: u64) -> (PolicyDims, Vec<f32>) {
        let dims = PolicyDims::default();
        let mut p = vec![0.0f32; param_count(dims.actions())];
        init_params(&dims, seed, &mut p).unwrap();
        (dims, p)
    }

    /// The network written the slow, obvious way: every slot encoded, no skipping.
    fn reference_forward(dims: &PolicyDims, p: &[f32], obs: &[f32]) -> (Vec<f32>, f32) {
        let lay = ParamLayout::new(dims.actions());
        let lin = |x: &[f32], w: usize, b: usize, n_out: usize| -> Vec<f32> {
            (0..n_out)
                .map(|j| {
                    let mut s = p[b + j] as f64;
                    for (i, &xi) in x.iter().enumerate() {
                        s += xi as f64 * p[w + i * n_out + j] as f64;
                    }
                    s as f32
                })
                .collect()
        };
        let enc = |e: &EncoderLayout, x: &[f32]| -> Vec<f32> {
            let h = lin(x, e.l1_w, e.l1_b, HIDDEN);
            let mean = h.iter().map(|&v| v as f64).sum::<f64>() / 64.0;
            let var = h.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / 64.0;
            let h: Vec<f32> = h
                .iter()
                .enumerate()
                .map(|(j, &v)| {
                    (((v as f64 - mean) / (var + 1e-5).sqrt()) * p[e.gamma + j] as f64
                        + p[e.beta + j] as f64)
                        .tanh() as f32
                })
                .collect();
            lin(&h, e.l2_w, e.l2_b, HIDDEN)
        };
        let pool = |e: &EncoderLayout, slots: &[f32], w: usize| -> Vec<f32> {
            let mut best = vec![f32::NEG_INFINITY; HIDDEN];
            for s in slots.chunks(w) {
                for (b, v) in best.iter_mut().zip(enc(e, s)) {
                    *b = b.max(v);
                }
            }
            best
        };
        let np = dims.max_partners as usize * 6;
        let mut concat = enc(&lay.ego, &obs[..6]);
        concat.extend(pool(&lay.partner, &obs[6..6 + np], 6));
        concat.extend(pool(&lay.road, &obs[6 + np..], 13));
        let h = lin(&concat, lay.fuse_w, lay.fuse_b, FUSED);
        let logits = lin(&h, lay.actor_w, lay.actor_b, dims.actions());
        let v = lin(&h, lay.critic_w, lay.critic_b, 1)[0];
        (logits, v)
    }

    fn sample_obs(dims: &PolicyDims, seed: u64, partners: usize, roads: usize) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        let mut o = vec![0.0f32; dims.observation_len()];
        for v in &mut o[..6] {
            *v = rng.next_f32() - 0.5;
        }
        for s in 0..partners {
            for v in &mut o[6 + s * 6..12 + s * 6] {
                *v = rng.normal() * 0.05;
            }
        }
        let r0 = 6 + dims.max_partners as usize * 6;
        for s in 0..roads {
            let slot = &mut o[r0 + s * 13..r0 + s * 13 + 13];
            for v in &mut slot[..6] {
                *v = rng.normal() * 0.05;
            }
            slot[6 + (rng.below(7) as usize)] = 1.0;
        }
        o
    }

    #[test]
    fn parameter_count_matches_design() {
        assert_eq!(param_count(200), 65_289);
        assert_eq!(ParamLayout::new(200).total(), 65_289);
        let specs = ParamLayout::new(200).tensors();
        let sum: usize = specs.iter().map(|t| t.rows * t.cols).sum();
        assert_eq!(sum, 65_289);
        for w in specs.windows(2) {
            assert_eq!(
                w[0].offset + w[0].rows * w[0].cols,
                w[1].offset,
                "{} then {}",
                w[0].name,
                w[1].name
            );
        }
    }

    #[test]
    fn init_is_orthogonal_and_deterministic() {
        let (dims, p) = policy_params(3);
        let (_, q) = policy_params(3);
        assert_eq!(p, q);
        let (_, r) = policy_params(4);
        assert_ne!(p, r);
        let lay = ParamLayout::new(dims.actions());
        for t in lay.tensors() {
            let block = &p[t.offset..t.offset + t.rows * t.cols];
            match t.init {
                TensorInit::Constant(c) => assert!(block.iter().all(|&v| v == c), "{}", t.name),
                TensorInit::Orthogonal(g) => {
                    // Vectors of the shorter family have norm g and are orthogonal.
                    let (count, len, sv, se) = if t.cols <= t.rows {
                        (t.cols, t.rows, 1, t.cols)
                    } else {
                        (t.rows, t.cols, t.cols, 1)
                    };
                    let at = |v: usize, e: usize| block[v * sv + e * se];
                    for a in 0..count.min(6) {
                        for b in 0..count.min(6) {
                            let dot: f32 = (0..len).map(|e| at(a, e) * at(b, e)).sum();
                            let want = if a == b { g * g } else { 0.0 };
                            assert!(
                                (dot - want).abs() < 1e-4 * g * g.max(1.0),
                                "{} {a} {b}: {dot}",
                                t.name
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn forward_matches_the_obvious_implementation() {
        let (dims, p) = policy_params(11);
        // A policy whose heads are not near zero, so that logits differ visibly.
        let mut p = p;
        let lay = ParamLayout::new(dims.actions());
        for v in &mut p[lay.actor_w..lay.actor_b] {
            *v *= 100.0;
        }
        let pol = Policy::new(dims, &p).unwrap();
        for (seed, np, nr) in [(1, 0, 0), (2, 5, 17), (3, 63, 200), (4, 1, 0)] {
            let obs = sample_obs(&dims, seed, np, nr);
            let mut logits = vec![0.0; 200];
            let v = pol.forward(&obs, &mut logits).unwrap();
            let (want, want_v) = reference_forward(&dims, &p, &obs);
            for (a, b) in logits.iter().zip(&want) {
                assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
            }
            assert!((v - want_v).abs() < 1e-4 * (1.0 + want_v.abs()));
        }
    }

    /// The AVX-512 pool (where the CPU has it) and the portable one give the same bits.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_and_portable_paths_agree() {
        let (dims, p) = policy_params(8);
        let mut p = p;
        let lay = ParamLayout::new(dims.actions());
        for v in &mut p[lay.actor_w..lay.actor_b] {
            *v *= 100.0;
        }
        let pol = Policy::new(dims, &p).unwrap();
        let mut runs = Vec::new();
        for on in [true, false] {
            crate::simd::force_avx512(on);
            let mut out = Vec::new();
            for (seed, np, nr) in [(1, 3, 40), (2, 63, 200), (3, 0, 0), (4, 9, 1)] {
                let obs = sample_obs(&dims, seed, np, nr);
                let mut logits = vec![0.0f32; 200];
                let v = pol.forward(&obs, &mut logits).unwrap();
                out.push((
                    logits.iter().map(|l| l.to_bits()).collect::<Vec<_>>(),
                    v.to_bits(),
                ));
            }
            runs.push(out);
        }
        crate::simd::force_avx512(true);
        assert_eq!(runs[0], runs[1]);
    }

    #[test]
    fn batch_equals_single_bit_for_bit() {
        let (dims, p) = policy_params(5);
        let pol = Policy::new(dims, &p).unwrap();
        let n = 19; // not a multiple of the tile
        let d = dims.observation_len();
        let mut obs = vec![0.0; n * d];
        for i in 0..n {
            obs[i * d..(i + 1) * d].copy_from_slice(&sample_obs(
                &dims,
                100 + i as u64,
                i % 7,
                (i * 13) % 200,
            ));
        }
        let mut logits = vec![0.0; n * 200];
        let mut values = vec![0.0; n];
        pol.forward_batch(&obs, &mut logits, &mut values).unwrap();
        for i in 0..n {
            let mut l = vec![0.0; 200];
            let v = pol.forward(&obs[i * d..(i + 1) * d], &mut l).unwrap();
            assert_eq!(&logits[i * 200..(i + 1) * 200], &l[..]);
            assert_eq!(values[i].to_bits(), v.to_bits());
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let (dims, mut p) = policy_params(1);
        assert_eq!(
            Policy::new(dims, &p[1..]).unwrap_err(),
            PolicyError::WrongParamCount
        );
        let bad_dims = PolicyDims { actions: 0, ..dims };
        assert_eq!(Policy::new(bad_dims, &p).unwrap_err(), PolicyError::BadDims);
        let big = PolicyDims {
            max_partners: 64,
            ..dims
        };
        assert_eq!(Policy::new(big, &p).unwrap_err(), PolicyError::BadDims);
        p[7] = f32::NAN;
        assert_eq!(Policy::new(dims, &p).unwrap_err(), PolicyError::BadWeight);
        p[7] = 1e9;
        assert_eq!(Policy::new(dims, &p).unwrap_err(), PolicyError::BadWeight);
        p[7] = 0.0;
        let pol = Policy::new(dims, &p).unwrap();
        let mut logits = vec![0.0; 200];
        let mut obs = vec![0.0; dims.observation_len()];
        assert_eq!(
            pol.forward(&obs[1..], &mut logits),
            Err(PolicyError::WrongObservationLength)
        );
        assert_eq!(
            pol.forward(&obs, &mut logits[1..]),
            Err(PolicyError::WrongOutputLength)
        );
        obs[100] = f32::INFINITY;
        assert_eq!(
            pol.forward(&obs, &mut logits),
            Err(PolicyError::BadObservation)
        );
        obs[100] = 0.0;
        let mut rng = Rng::new(0);
        let bad = Selection::Sample {
            temperature: 0.0,
            top_k: 0,
        };
        assert_eq!(pol.act(&obs, bad, &mut rng), Err(PolicyError::BadSampling));
        let mut values = vec![0.0; 2];
        assert_eq!(
            pol.forward_batch(&obs, &mut logits, &mut values),
            Err(PolicyError::WrongObservationLength)
        );
    }

    #[test]
    fn selection_argmax_sampling_and_top_k() {
        let logits = [0.0f32, 3.0, 1.0, 3.0, -2.0];
        let mut rng = Rng::new(9);
        assert_eq!(select(&logits, Selection::Argmax, &mut rng), Ok(1));
        // top-2 keeps tokens 1 and 3 only; both are sampled about equally.
        let mut counts = [0u32; 5];
        for _ in 0..4000 {
            let t = select(
                &logits,
                Selection::Sample {
                    temperature: 1.0,
                    top_k: 2,
                },
                &mut rng,
            )
            .unwrap();
            counts[t as usize] += 1;
        }
        assert_eq!(counts[0] + counts[2] + counts[4], 0);
        assert!((1700..2300).contains(&counts[1]), "{counts:?}");
        // Full sampling follows the softmax: token 2 vs token 0 about e^1.
        let mut counts = [0u32; 5];
        for _ in 0..20000 {
            let t = select(
                &logits,
                Selection::Sample {
                    temperature: 1.0,
                    top_k: 0,
                },
                &mut rng,
            )
            .unwrap();
            counts[t as usize] += 1;
        }
        let ratio = counts[2] as f32 / counts[0] as f32;
        assert!((2.3..3.2).contains(&ratio), "{counts:?}");
        // A tiny temperature is argmax-like.
        let t = select(
            &[0.0, 1.0, 0.5],
            Selection::Sample {
                temperature: 1e-3,
                top_k: 0,
            },
            &mut rng,
        )
        .unwrap();
        assert_eq!(t, 1);
        let nan = [f32::NAN, 1.0];
        assert_eq!(select(&nan, Selection::Argmax, &mut rng), Ok(1));
        assert_eq!(
            select(&[], Selection::Argmax, &mut rng),
            Err(PolicyError::WrongOutputLength)
        );
        let lp = log_softmax_at(&logits, 1);
        let direct = 3.0 - logits.iter().map(|l| (*l as f64).exp()).sum::<f64>().ln() as f32;
        assert!((lp - direct).abs() < 1e-5);
    }

    #[test]
    fn act_is_deterministic_for_a_seed() {
        let (dims, p) = policy_params(2);
        let pol = Policy::new(dims, &p).unwrap();
        let obs = sample_obs(&dims, 3, 4, 30);
        let sel = Selection::Sample {
            temperature: 1.0,
            top_k: 16,
        };
        let a = pol.act(&obs, sel, &mut Rng::new(42)).unwrap();
        let b = pol.act(&obs, sel, &mut Rng::new(42)).unwrap();
        assert_eq!(a, b);
        assert!(a.log_prob < 0.0 && a.value.is_finite());
    }
}
