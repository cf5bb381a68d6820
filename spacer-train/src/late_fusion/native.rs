//! A hand-written CPU forward and backward pass of the late-fusion network, for the
//! PPO learner: the same function as spacer-core's forward pass and burn's
//! [`super::LateFusion`], computed only where it matters.
//!
//! - **Packed observations** ([`PackedBatch`]): only the occupied partner and road
//!   slots are stored, plus one flag per pooled encoder saying whether some slot was
//!   empty. An empty (all-zero) slot encodes to the same vector whatever the sample,
//!   so it is computed once per parameter state (`Empty`), exactly as the
//!   core does once per load.
//! - **Sparse max-pool gradients**: the gradient of a max-pool reaches, per channel,
//!   only the slot that won it; so the backward pass recomputes and differentiates at
//!   most `W` slots per observation and encoder (usually far fewer: a slot often wins
//!   several channels), however many are occupied.
//! - **Parameters** in spacer-core's flat layout ([`spacer_core::policy::ParamLayout`]
//!   at width 64), so that a [`spacer_core::policy::Policy`] reads them as they are;
//!   any width (128 for HR-PPO's cloned reference) through [`NativeLayout`].
//! - **Deterministic parallelism**: a minibatch is cut into fixed chunks of
//!   [`CHUNK`] samples, each chunk's gradient is summed in its own buffer, and the
//!   buffers are added in chunk order: the result does not depend on the thread count.
//!
//! The forward pass sums in the core's order with separate multiplies and adds, so at
//! width 64 it gives the core's bits (a test checks it on real observations): the
//! learner's log-probabilities are the deployed policy's. The backward pass uses
//! fused multiply-adds where the target has them (`f32::mul_add`).

use rayon::prelude::*;
use spacer_core::math::tanh_fast;
use spacer_core::observation::{EGO_FEATURES, PARTNER_FEATURES, ROAD_FEATURES};
use spacer_core::policy::{LAYER_NORM_EPS, PolicyDims};

/// Samples per parallel chunk of a minibatch (fixed, so results do not depend on the
/// number of threads).
pub const CHUNK: usize = 32;

/// Marker of the shared empty-slot encoding in an argmax.
const EMPTY: u32 = u32::MAX;

/// Observations with only their occupied slots stored.
///
/// # Shapes
/// `ego`: `[n * 6]`; `partners`: `[partner slots * 6]`, sample `i`'s in
/// `partner_offsets[i]..partner_offsets[i + 1]` (slot units); `roads` likewise with
/// 13 floats per slot; `empty`: `[n]`, bit 0 set when some partner slot of the sample
/// is empty, bit 1 for the road slots.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PackedBatch {
    dims: PolicyDims,
    ego: Vec<f32>,
    partners: Vec<f32>,
    partner_offsets: Vec<u32>,
    roads: Vec<f32>,
    road_offsets: Vec<u32>,
    empty: Vec<u8>,
}

fn is_zero(slot: &[f32]) -> bool {
    slot.iter().fold(0u32, |acc, v| acc | (v.to_bits() << 1)) == 0
}

impl PackedBatch {
    /// An empty batch of observations with `dims`' layout.
    pub fn new(dims: PolicyDims) -> Self {
        Self {
            dims,
            partner_offsets: vec![0],
            road_offsets: vec![0],
            ..Self::default()
        }
    }

    /// The layout.
    pub fn dims(&self) -> PolicyDims {
        self.dims
    }

    /// Samples.
    pub fn len(&self) -> usize {
        self.empty.len()
    }

    /// True when there is no sample.
    pub fn is_empty(&self) -> bool {
        self.empty.is_empty()
    }

    /// Occupied partner and road slots over all samples.
    pub fn occupied(&self) -> (usize, usize) {
        (
            self.partners.len() / PARTNER_FEATURES,
            self.roads.len() / ROAD_FEATURES,
        )
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        4 * (self.ego.len()
            + self.partners.len()
            + self.roads.len()
            + self.partner_offsets.len()
            + self.road_offsets.len())
            + self.empty.len()
    }

    /// Appends one dense observation (the core's layout; its length is the caller's
    /// to check: extra floats are ignored, missing ones read as empty slots).
    pub fn push(&mut self, obs: &[f32]) {
        let p = self.dims.max_partners as usize;
        let r = self.dims.max_road_segments as usize;
        let ego_end = EGO_FEATURES.min(obs.len());
        let mut ego = [0.0f32; EGO_FEATURES];
        ego[..ego_end].copy_from_slice(&obs[..ego_end]);
        self.ego.extend_from_slice(&ego);
        let mut flags = 0u8;
        let rest = obs.get(EGO_FEATURES..).unwrap_or(&[]);
        let (pp, rr) = rest.split_at((p * PARTNER_FEATURES).min(rest.len()));
        let mut seen = 0;
        for slot in pp.chunks_exact(PARTNER_FEATURES).take(p) {
            seen += 1;
            if is_zero(slot) {
                flags |= 1;
            } else {
                self.partners.extend_from_slice(slot);
            }
        }
        if seen < p || p == 0 {
            flags |= 1;
        }
        let mut seen = 0;
        for slot in rr.chunks_exact(ROAD_FEATURES).take(r) {
            seen += 1;
            if is_zero(slot) {
                flags |= 2;
            } else {
                self.roads.extend_from_slice(slot);
            }
        }
        if seen < r || r == 0 {
            flags |= 2;
        }
        self.partner_offsets
            .push((self.partners.len() / PARTNER_FEATURES) as u32);
        self.road_offsets
            .push((self.roads.len() / ROAD_FEATURES) as u32);
        self.empty.push(flags);
    }

    /// Appends sample `i` of `other` (same layout).
    pub fn push_from(&mut self, other: &PackedBatch, i: usize) {
        self.ego
            .extend_from_slice(&other.ego[i * EGO_FEATURES..(i + 1) * EGO_FEATURES]);
        self.partners.extend_from_slice(other.partner_slots(i));
        self.roads.extend_from_slice(other.road_slots(i));
        self.partner_offsets
            .push((self.partners.len() / PARTNER_FEATURES) as u32);
        self.road_offsets
            .push((self.roads.len() / ROAD_FEATURES) as u32);
        self.empty.push(other.empty[i]);
    }

    fn partner_slots(&self, i: usize) -> &[f32] {
        let (a, b) = (
            self.partner_offsets[i] as usize,
            self.partner_offsets[i + 1] as usize,
        );
        &self.partners[a * PARTNER_FEATURES..b * PARTNER_FEATURES]
    }

    fn road_slots(&self, i: usize) -> &[f32] {
        let (a, b) = (
            self.road_offsets[i] as usize,
            self.road_offsets[i + 1] as usize,
        );
        &self.roads[a * ROAD_FEATURES..b * ROAD_FEATURES]
    }

    /// Sample `i` as a dense observation (occupied slots first, then zeros: the
    /// network's output does not depend on slot order).
    ///
    /// # Panics
    /// When `i` is out of range.
    pub fn dense(&self, i: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; self.dims.observation_len()];
        out[..EGO_FEATURES].copy_from_slice(&self.ego[i * EGO_FEATURES..(i + 1) * EGO_FEATURES]);
        let p = self.partner_slots(i);
        out[EGO_FEATURES..EGO_FEATURES + p.len()].copy_from_slice(p);
        let r0 = EGO_FEATURES + self.dims.max_partners as usize * PARTNER_FEATURES;
        let r = self.road_slots(i);
        out[r0..r0 + r.len()].copy_from_slice(r);
        out
    }
}

/// Offsets of one encoder's tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Enc {
    d: usize,
    l1_w: usize,
    l1_b: usize,
    gamma: usize,
    beta: usize,
    l2_w: usize,
    l2_b: usize,
}

impl Enc {
    fn at(start: usize, d: usize, w: usize) -> Self {
        let l1_w = start;
        let l1_b = l1_w + d * w;
        let gamma = l1_b + w;
        let beta = gamma + w;
        let l2_w = beta + w;
        let l2_b = l2_w + w * w;
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

    fn end(&self, w: usize) -> usize {
        self.l2_b + w
    }
}

/// Offsets of every tensor of a width-`W` late-fusion network, in the core's order
/// (at width 64 exactly [`spacer_core::policy::ParamLayout`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NativeLayout {
    width: usize,
    actions: usize,
    ego: Enc,
    partner: Enc,
    road: Enc,
    fuse_w: usize,
    fuse_b: usize,
    actor_w: usize,
    actor_b: usize,
    critic_w: usize,
    critic_b: usize,
    total: usize,
}

impl NativeLayout {
    /// The layout of width `width` with `actions` outputs.
    pub fn new(width: usize, actions: usize) -> Self {
        let w = width;
        let ego = Enc::at(0, EGO_FEATURES, w);
        let partner = Enc::at(ego.end(w), PARTNER_FEATURES, w);
        let road = Enc::at(partner.end(w), ROAD_FEATURES, w);
        let fuse_w = road.end(w);
        let fuse_b = fuse_w + 3 * w * 2 * w;
        let actor_w = fuse_b + 2 * w;
        let actor_b = actor_w + 2 * w * actions;
        let critic_w = actor_b + actions;
        let critic_b = critic_w + 2 * w;
        Self {
            width,
            actions,
            ego,
            partner,
            road,
            fuse_w,
            fuse_b,
            actor_w,
            actor_b,
            critic_w,
            critic_b,
            total: critic_b + 1,
        }
    }

    /// Parameters in all.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Encoder width.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Actions.
    pub fn actions(&self) -> usize {
        self.actions
    }
}

/// What a loss says about one sample's outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SampleLoss {
    /// The sample's loss (already weighted, e.g. divided by the minibatch size).
    pub loss: f64,
    /// d loss / d value.
    pub dvalue: f32,
}

/// A loss over the network's heads, sample by sample.
pub trait HeadLoss: Sync {
    /// Statistics the loss sums over a minibatch.
    type Stats: Default + Send + Copy + std::ops::AddAssign;

    /// The loss of sample `i` (its index in the batch) given its `logits` and
    /// `value`; writes d loss / d logits into `dlogits` and adds its statistics.
    fn loss(
        &self,
        i: usize,
        logits: &[f32],
        value: f32,
        dlogits: &mut [f32],
        stats: &mut Self::Stats,
    ) -> SampleLoss;
}

/// One slot's forward activations at width `W`, kept for its backward pass.
#[derive(Clone, Copy, Debug)]
struct Acts<const W: usize> {
    /// LayerNorm output before gain and shift.
    xhat: [f32; W],
    /// 1 / standard deviation.
    inv: f32,
    /// tanh output.
    a: [f32; W],
}

impl<const W: usize> Default for Acts<W> {
    fn default() -> Self {
        Self {
            xhat: [0.0; W],
            inv: 0.0,
            a: [0.0; W],
        }
    }
}

/// The encodings (and activations) of an all-zero slot, per pooled encoder.
#[derive(Clone, Copy, Debug)]
struct Empty<const W: usize> {
    partner: (Acts<W>, [f32; W]),
    road: (Acts<W>, [f32; W]),
}

/// A late-fusion network with its parameters in one flat vector.
#[derive(Clone, Debug, PartialEq)]
pub struct NativeNet {
    layout: NativeLayout,
    dims: PolicyDims,
    /// The parameters (core layout at width 64).
    pub params: Vec<f32>,
}

/// Scratch of one sample's forward and backward pass at width `W`.
struct Scratch<const W: usize> {
    ego: Acts<W>,
    concat: [[f32; W]; 3],
    fused: [[f32; W]; 2],
    logits: Vec<f32>,
    dlogits: Vec<f32>,
    dfused: [[f32; W]; 2],
    dconcat: [[f32; W]; 3],
    /// Activations of every occupied slot of the sample: partners, then roads.
    slots: Vec<Acts<W>>,
    argmax: [[u32; W]; 2],
    /// (winner slot, channel) pairs of one pooled encoder.
    routes: Vec<(u32, u16)>,
}

impl<const W: usize> Scratch<W> {
    fn new(k: usize) -> Self {
        Self {
            ego: Acts::default(),
            concat: [[0.0; W]; 3],
            fused: [[0.0; W]; 2],
            logits: vec![0.0; k],
            dlogits: vec![0.0; k],
            dfused: [[0.0; W]; 2],
            dconcat: [[0.0; W]; 3],
            slots: Vec::new(),
            argmax: [[0; W]; 2],
            routes: Vec::with_capacity(W),
        }
    }
}

/// `out = b + x W` for an input-major `[x.len(), out.len()]` weight, summed in the
/// core's order (sequential over the inputs, separate multiply and add, zero inputs
/// skipped), so that the forward pass gives the core's bits. Outputs are computed in
/// register blocks of 64, then 8, then 1.
#[inline(always)]
fn affine(x: &[f32], w: &[f32], b: &[f32], out: &mut [f32]) {
    let n = out.len();
    let mut j0 = 0;
    while j0 + 64 <= n {
        affine_block::<64>(x, w, b, j0, out);
        j0 += 64;
    }
    while j0 + 8 <= n {
        affine_block::<8>(x, w, b, j0, out);
        j0 += 8;
    }
    while j0 < n {
        affine_block::<1>(x, w, b, j0, out);
        j0 += 1;
    }
}

/// Outputs `j0..j0 + B` of [`affine`], accumulated in registers.
#[inline(always)]
fn affine_block<const B: usize>(x: &[f32], w: &[f32], b: &[f32], j0: usize, out: &mut [f32]) {
    let n = out.len();
    let mut acc = [0.0f32; B];
    if let Some(bias) = b.get(j0..j0 + B) {
        acc.copy_from_slice(bias);
    }
    for (&xi, row) in x.iter().zip(w.chunks_exact(n)) {
        if xi == 0.0 {
            continue;
        }
        let Some(seg) = row
            .get(j0..j0 + B)
            .and_then(|s| <&[f32; B]>::try_from(s).ok())
        else {
            break;
        };
        let wv: [f32; B] = *seg;
        let mut prod = [0.0f32; B];
        for (p, &wj) in prod.iter_mut().zip(wv.iter()) {
            *p = xi * wj;
        }
        for (a, &p) in acc.iter_mut().zip(prod.iter()) {
            *a += p;
        }
    }
    if let Some(dst) = out.get_mut(j0..j0 + B) {
        dst.copy_from_slice(&acc);
    }
}

/// The core's fixed-order sum of a LayerNorm's inputs: eight interleaved partial sums
/// (lane `l` adds elements `l, l + 8, ...`), then a pairwise tree.
#[inline(always)]
fn lane_sum(v: &[f32]) -> f32 {
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

/// A dot product with eight partial sums (so that it vectorises).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for ((l, &u), &v) in lanes.iter_mut().zip(x).zip(y) {
            *l = u.mul_add(v, *l);
        }
    }
    let mut s = lanes.iter().sum::<f32>();
    for (&u, &v) in ra.iter().zip(rb) {
        s = u.mul_add(v, s);
    }
    s
}

/// `out += W g` for an input-major `[out.len(), g.len()]` weight (the input gradient
/// of a linear layer).
#[inline(always)]
fn back_input(w: &[f32], g: &[f32], out: &mut [f32]) {
    let n = g.len();
    for (o, row) in out.iter_mut().zip(w.chunks_exact(n)) {
        *o += dot(row, g);
    }
}

/// `dw += x ⊗ g` (input-major), `db += g`.
#[inline(always)]
fn back_weight(x: &[f32], g: &[f32], dw: &mut [f32], db: &mut [f32]) {
    let n = g.len();
    for (&xi, row) in x.iter().zip(dw.chunks_exact_mut(n)) {
        if xi == 0.0 {
            continue;
        }
        for (d, &gj) in row.iter_mut().zip(g) {
            *d = xi.mul_add(gj, *d);
        }
    }
    for (d, &gj) in db.iter_mut().zip(g) {
        *d += gj;
    }
}

/// The passes at width `W` (64 for the policy, 128 for HR-PPO's reference).
struct Kernel<'n, const W: usize> {
    net: &'n NativeNet,
}

impl<const W: usize> Kernel<'_, W> {
    #[inline(always)]
    fn p(&self, at: usize, len: usize) -> &[f32] {
        &self.net.params[at..at + len]
    }

    /// One encoder pass of input `x`: its output, and its activations in `acts`.
    #[inline(always)]
    fn encode(&self, e: &Enc, x: &[f32], acts: &mut Acts<W>, out: &mut [f32; W]) {
        let mut h = [0.0f32; W];
        affine(x, self.p(e.l1_w, e.d * W), self.p(e.l1_b, W), &mut h);
        let mean = lane_sum(&h) / W as f32;
        let mut sq = [0.0f32; W];
        for (s, &v) in sq.iter_mut().zip(h.iter()) {
            let d = v - mean;
            *s = d * d;
        }
        let var = lane_sum(&sq) / W as f32;
        let inv = 1.0 / (var + LAYER_NORM_EPS).sqrt();
        acts.inv = inv;
        let gamma = self.p(e.gamma, W);
        let beta = self.p(e.beta, W);
        for j in 0..W {
            let xh = (h[j] - mean) * inv;
            acts.xhat[j] = xh;
            acts.a[j] = tanh_fast(xh * gamma[j] + beta[j]);
        }
        affine(&acts.a, self.p(e.l2_w, W * W), self.p(e.l2_b, W), out);
    }

    /// Backward of one encoder pass whose output gradient is non-zero only on the
    /// channels `routes` (`(channel, gradient)`); adds the parameter gradients.
    #[inline(always)]
    fn encode_back(
        &self,
        e: &Enc,
        x: &[f32],
        acts: &Acts<W>,
        routes: impl Iterator<Item = (usize, f32)>,
        grads: &mut [f32],
    ) {
        let w2 = self.p(e.l2_w, W * W);
        let mut da = [0.0f32; W];
        for (c, g) in routes {
            grads[e.l2_b + c] += g;
            let dw2 = &mut grads[e.l2_w..e.l2_w + W * W];
            for i in 0..W {
                dw2[i * W + c] = acts.a[i].mul_add(g, dw2[i * W + c]);
                da[i] = w2[i * W + c].mul_add(g, da[i]);
            }
        }
        let gamma = self.p(e.gamma, W);
        let mut dx = [0.0f32; W];
        let (mut sum_g, mut sum_gx) = (0.0f32, 0.0f32);
        for j in 0..W {
            let dz = da[j] * (1.0 - acts.a[j] * acts.a[j]);
            grads[e.gamma + j] += dz * acts.xhat[j];
            grads[e.beta + j] += dz;
            let g = dz * gamma[j];
            dx[j] = g;
            sum_g += g;
            sum_gx += g * acts.xhat[j];
        }
        let wf = W as f32;
        for (d, &xh) in dx.iter_mut().zip(acts.xhat.iter()) {
            *d = acts.inv / wf * (wf * *d - sum_g - xh * sum_gx);
        }
        let (dw1, db1) = grads[e.l1_w..e.l1_b + W].split_at_mut(e.d * W);
        back_weight(x, &dx, dw1, db1);
    }

    /// The encodings of an empty slot for the current parameters.
    fn empty(&self) -> Empty<W> {
        let l = &self.net.layout;
        let run = |e: &Enc| {
            let mut acts = Acts::default();
            let mut out = [0.0f32; W];
            self.encode(e, &[0.0; ROAD_FEATURES][..e.d], &mut acts, &mut out);
            (acts, out)
        };
        Empty {
            partner: run(&l.partner),
            road: run(&l.road),
        }
    }

    /// Max-pools the encodings of `slots` (and the empty encoding when `has_empty`)
    /// into `out`, recording each channel's winner (slot index, or [`EMPTY`]) and
    /// each slot's activations (appended to `acts`).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn pool(
        &self,
        e: &Enc,
        slots: &[f32],
        has_empty: bool,
        empty: &(Acts<W>, [f32; W]),
        out: &mut [f32; W],
        argmax: &mut [u32; W],
        acts: &mut Vec<Acts<W>>,
    ) {
        if has_empty || slots.is_empty() {
            *out = empty.1;
            *argmax = [EMPTY; W];
        } else {
            *out = [f32::NEG_INFINITY; W];
            *argmax = [0; W];
        }
        let mut enc = [0.0f32; W];
        for (s, x) in slots.chunks_exact(e.d).enumerate() {
            let mut a = Acts::default();
            self.encode(e, x, &mut a, &mut enc);
            acts.push(a);
            for j in 0..W {
                if enc[j] > out[j] {
                    out[j] = enc[j];
                    argmax[j] = s as u32;
                }
            }
        }
    }

    /// Forward pass of sample `i` into `sc`; returns the value.
    #[inline(always)]
    fn forward_sample(
        &self,
        batch: &PackedBatch,
        i: usize,
        empty: &Empty<W>,
        sc: &mut Scratch<W>,
    ) -> f32 {
        let l = &self.net.layout;
        let k = l.actions;
        let ego = &batch.ego[i * EGO_FEATURES..(i + 1) * EGO_FEATURES];
        let [c_ego, c_p, c_r] = &mut sc.concat;
        self.encode(&l.ego, ego, &mut sc.ego, c_ego);
        let flags = batch.empty[i];
        sc.slots.clear();
        let [am_p, am_r] = &mut sc.argmax;
        self.pool(
            &l.partner,
            batch.partner_slots(i),
            flags & 1 != 0,
            &empty.partner,
            c_p,
            am_p,
            &mut sc.slots,
        );
        self.pool(
            &l.road,
            batch.road_slots(i),
            flags & 2 != 0,
            &empty.road,
            c_r,
            am_r,
            &mut sc.slots,
        );
        affine(
            sc.concat.as_flattened(),
            self.p(l.fuse_w, 3 * W * 2 * W),
            self.p(l.fuse_b, 2 * W),
            sc.fused.as_flattened_mut(),
        );
        affine(
            sc.fused.as_flattened(),
            self.p(l.actor_w, 2 * W * k),
            self.p(l.actor_b, k),
            &mut sc.logits,
        );
        let mut v = self.net.params[l.critic_b];
        for (&f, &c) in sc
            .fused
            .as_flattened()
            .iter()
            .zip(self.p(l.critic_w, 2 * W))
        {
            v += f * c;
        }
        v
    }

    /// Backward of one pooled encoder: routes `dpool` to each channel's winner and
    /// differentiates the winners' encoder passes (their activations from the
    /// forward pass, at `acts[first..]`).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn pool_back(
        &self,
        e: &Enc,
        slots: &[f32],
        argmax: &[u32; W],
        dpool: &[f32; W],
        empty: &Acts<W>,
        acts: &[Acts<W>],
        routes: &mut Vec<(u32, u16)>,
        grads: &mut [f32],
    ) {
        routes.clear();
        for c in 0..W {
            if dpool[c] != 0.0 {
                routes.push((argmax[c], c as u16));
            }
        }
        routes.sort_unstable();
        let zeros = [0.0f32; ROAD_FEATURES];
        let mut start = 0;
        while start < routes.len() {
            let s = routes[start].0;
            let end = start + routes[start..].iter().take_while(|r| r.0 == s).count();
            let chans = routes[start..end]
                .iter()
                .map(|&(_, c)| (c as usize, dpool[c as usize]));
            if s == EMPTY {
                self.encode_back(e, &zeros[..e.d], empty, chans, grads);
            } else {
                let x = &slots[s as usize * e.d..(s as usize + 1) * e.d];
                self.encode_back(e, x, &acts[s as usize], chans, grads);
            }
            start = end;
        }
    }

    /// Backward of sample `i` after [`Self::forward_sample`] and the loss (whose
    /// gradients are in `sc.dlogits` and `dvalue`).
    #[inline(always)]
    fn backward_sample(
        &self,
        batch: &PackedBatch,
        i: usize,
        empty: &Empty<W>,
        dvalue: f32,
        sc: &mut Scratch<W>,
        grads: &mut [f32],
    ) {
        let l = &self.net.layout;
        let k = l.actions;
        let fused = sc.fused.as_flattened();
        {
            let (daw, dab) = grads[l.actor_w..l.actor_b + k].split_at_mut(2 * W * k);
            back_weight(fused, &sc.dlogits, daw, dab);
        }
        for (g, &f) in grads[l.critic_w..l.critic_w + 2 * W].iter_mut().zip(fused) {
            *g = f.mul_add(dvalue, *g);
        }
        grads[l.critic_b] += dvalue;
        let dfused = sc.dfused.as_flattened_mut();
        dfused.fill(0.0);
        back_input(self.p(l.actor_w, 2 * W * k), &sc.dlogits, dfused);
        for (d, &c) in dfused.iter_mut().zip(self.p(l.critic_w, 2 * W)) {
            *d = c.mul_add(dvalue, *d);
        }
        {
            let (dfw, dfb) = grads[l.fuse_w..l.fuse_b + 2 * W].split_at_mut(3 * W * 2 * W);
            back_weight(sc.concat.as_flattened(), sc.dfused.as_flattened(), dfw, dfb);
        }
        let dconcat = sc.dconcat.as_flattened_mut();
        dconcat.fill(0.0);
        back_input(
            self.p(l.fuse_w, 3 * W * 2 * W),
            sc.dfused.as_flattened(),
            dconcat,
        );
        let [d_ego, d_p, d_r] = &sc.dconcat;
        let ego = &batch.ego[i * EGO_FEATURES..(i + 1) * EGO_FEATURES];
        self.encode_back(
            &l.ego,
            ego,
            &sc.ego,
            d_ego.iter().copied().enumerate(),
            grads,
        );
        let partners = batch.partner_slots(i);
        let n_p = partners.len() / PARTNER_FEATURES;
        let [am_p, am_r] = &sc.argmax;
        self.pool_back(
            &l.partner,
            partners,
            am_p,
            d_p,
            &empty.partner.0,
            &sc.slots[..n_p],
            &mut sc.routes,
            grads,
        );
        self.pool_back(
            &l.road,
            batch.road_slots(i),
            am_r,
            d_r,
            &empty.road.0,
            &sc.slots[n_p..],
            &mut sc.routes,
            grads,
        );
    }

    fn forward(&self, batch: &PackedBatch, rows: &[usize], logits: &mut [f32], values: &mut [f32]) {
        let k = self.net.layout.actions;
        let empty = self.empty();
        logits
            .par_chunks_mut(k * CHUNK)
            .zip(values.par_chunks_mut(CHUNK))
            .zip(rows.par_chunks(CHUNK))
            .for_each(|((lg, vs), rs)| {
                let mut sc = Scratch::<W>::new(k);
                for ((l, v), &i) in lg.chunks_exact_mut(k).zip(vs.iter_mut()).zip(rs) {
                    *v = self.forward_sample(batch, i, &empty, &mut sc);
                    l.copy_from_slice(&sc.logits);
                }
            });
    }

    fn loss_and_grad<L: HeadLoss>(
        &self,
        batch: &PackedBatch,
        rows: &[usize],
        loss: &L,
        buffers: &mut [Vec<f32>],
    ) -> Vec<(f64, L::Stats)> {
        let k = self.net.layout.actions;
        let empty = self.empty();
        buffers
            .par_iter_mut()
            .zip(rows.par_chunks(CHUNK))
            .map(|(g, rs)| {
                g.fill(0.0);
                let mut sc = Scratch::<W>::new(k);
                let mut sum = 0.0f64;
                let mut stats = L::Stats::default();
                for &i in rs {
                    let v = self.forward_sample(batch, i, &empty, &mut sc);
                    let out = loss.loss(i, &sc.logits, v, &mut sc.dlogits, &mut stats);
                    sum += out.loss;
                    self.backward_sample(batch, i, &empty, out.dvalue, &mut sc, g);
                }
                (sum, stats)
            })
            .collect()
    }
}

impl NativeNet {
    /// A width-`width` network (64 or 128) for `dims` holding `params`.
    ///
    /// # Errors
    /// A message for another width or lengths that do not fit.
    pub fn new(width: usize, dims: PolicyDims, params: Vec<f32>) -> Result<Self, String> {
        dims.validate().map_err(|e| e.to_string())?;
        if width != 64 && width != 128 {
            return Err(format!(
                "the native passes exist for widths 64 and 128, not {width}"
            ));
        }
        let layout = NativeLayout::new(width, dims.actions());
        if params.len() != layout.total() {
            return Err(format!(
                "{} parameters, a width-{width} network for {} actions has {}",
                params.len(),
                dims.actions(),
                layout.total()
            ));
        }
        Ok(Self {
            layout,
            dims,
            params,
        })
    }

    /// The layout.
    pub fn layout(&self) -> &NativeLayout {
        &self.layout
    }

    /// The observation layout.
    pub fn dims(&self) -> PolicyDims {
        self.dims
    }

    /// Logits `[n, K]` and values `[n]` of the samples `rows` of `batch` (in
    /// parallel).
    ///
    /// # Panics
    /// When the output lengths are not `n * K` and `n`, or a row is out of range.
    pub fn forward(
        &self,
        batch: &PackedBatch,
        rows: &[usize],
        logits: &mut [f32],
        values: &mut [f32],
    ) {
        assert_eq!(logits.len(), rows.len() * self.layout.actions);
        assert_eq!(values.len(), rows.len());
        match self.layout.width {
            64 => Kernel::<64> { net: self }.forward(batch, rows, logits, values),
            _ => Kernel::<128> { net: self }.forward(batch, rows, logits, values),
        }
    }

    /// The loss over the samples `rows` of `batch` and its gradient (summed over the
    /// samples; the loss decides the weighting) into `grads` (overwritten), with the
    /// summed statistics. Deterministic whatever the thread count (see the module
    /// docs); `buffers` is reused scratch.
    ///
    /// # Panics
    /// When `grads` does not have the layout's length, or a row is out of range.
    pub fn loss_and_grad<L: HeadLoss>(
        &self,
        batch: &PackedBatch,
        rows: &[usize],
        loss: &L,
        grads: &mut [f32],
        buffers: &mut Vec<Vec<f32>>,
    ) -> (f64, L::Stats) {
        let total = self.layout.total;
        assert_eq!(grads.len(), total);
        let chunks = rows.len().div_ceil(CHUNK);
        while buffers.len() < chunks {
            buffers.push(vec![0.0; total]);
        }
        let parts = match self.layout.width {
            64 => {
                Kernel::<64> { net: self }.loss_and_grad(batch, rows, loss, &mut buffers[..chunks])
            }
            _ => {
                Kernel::<128> { net: self }.loss_and_grad(batch, rows, loss, &mut buffers[..chunks])
            }
        };
        // Sum the chunk gradients in chunk order, in parallel over parameter blocks.
        let bufs = &buffers[..chunks];
        grads.par_chunks_mut(4096).enumerate().for_each(|(b, out)| {
            let start = b * 4096;
            let len = out.len();
            out.fill(0.0);
            for buf in bufs {
                for (o, &v) in out.iter_mut().zip(&buf[start..start + len]) {
                    *o += v;
                }
            }
        });
        let mut loss_sum = 0.0;
        let mut stats = L::Stats::default();
        for (l, s) in parts {
            loss_sum += l;
            stats += s;
        }
        (loss_sum, stats)
    }
}

/// Adam (Kingma & Ba) over a flat parameter vector, with PyTorch's defaults for the
/// moment decays.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Adam {
    /// First moments.
    pub m: Vec<f32>,
    /// Second moments.
    pub v: Vec<f32>,
    /// Steps taken.
    pub t: u64,
    /// beta 1.
    pub beta1: f32,
    /// beta 2.
    pub beta2: f32,
    /// epsilon.
    pub eps: f32,
}

impl Adam {
    /// Zeroed state for `n` parameters (beta 0.9 / 0.999, epsilon 1e-5 as PufferLib's
    /// PPO uses).
    pub fn new(n: usize) -> Self {
        Self {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-5,
        }
    }

    /// One step of size `lr` along `grads`.
    pub fn step(&mut self, params: &mut [f32], grads: &[f32], lr: f32) {
        self.t += 1;
        let (b1, b2) = (self.beta1, self.beta2);
        let c1 = 1.0 - b1.powi(self.t.min(i32::MAX as u64) as i32);
        let c2 = 1.0 - b2.powi(self.t.min(i32::MAX as u64) as i32);
        let step = lr / c1;
        let c2s = c2.sqrt();
        let eps = self.eps;
        params
            .par_chunks_mut(4096)
            .zip(self.m.par_chunks_mut(4096))
            .zip(self.v.par_chunks_mut(4096))
            .zip(grads.par_chunks(4096))
            .for_each(|(((p, m), v), g)| {
                for (((p, m), v), &g) in p.iter_mut().zip(m).zip(v).zip(g) {
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    *p -= step * *m / (v.sqrt() / c2s + eps);
                }
            });
    }
}

/// The global L2 norm of `grads`; scales them to `max_norm` when above it. Returns the
/// norm before clipping.
pub fn clip_global_norm(grads: &mut [f32], max_norm: f32) -> f32 {
    let norm = grads
        .iter()
        .map(|&g| (g as f64) * (g as f64))
        .sum::<f64>()
        .sqrt() as f32;
    if norm.is_finite() && max_norm > 0.0 && norm > max_norm {
        let f = max_norm / (norm + 1e-6);
        grads.iter_mut().for_each(|g| *g *= f);
    }
    norm
}

#[cfg(test)]
mod tests;
