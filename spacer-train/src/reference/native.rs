//! The reference network's forward pass written out for the CPU, for inference:
//! scoring finished episodes for PPO and sampling closed-loop rollouts.
//!
//! The same function as [`super::model::ReferenceNet::forward`] (a test holds the
//! logits together on real scenes), computed without a tensor library's
//! per-operation overhead: every linear layer of a batch is one matrix product
//! (`matrixmultiply`'s packed kernels, rows split over threads), LayerNorms and
//! activations are fused row loops, and each attention query gathers its own
//! neighbours' keys and values. No gradients are kept.

use rayon::prelude::*;

use super::graph::{GraphBatch, Neighbours};
use super::model::plain;

/// burn's LayerNorm epsilon (the network is built with the default).
const EPS: f32 = 1e-5;
/// Rows per parallel matrix-product task.
const ROWS: usize = 256;

/// `c = a b` for row-major `a: [m, k]`, `b: [k, n]`, `c: [m, n]`.
///
/// # Panics
/// When the slices do not have those lengths.
pub fn gemm(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the lengths were checked above: `a` holds m rows of k, `b` k rows of n,
    // `c` m rows of n, all row-major with unit column stride, and `c` does not alias
    // `a` or `b` (a shared and a unique borrow).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            n as isize,
            1,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// `y = x W + b` over the rows of `x` (`[rows, d_in]` -> `[rows, d_out]`), in
/// parallel: one block of rows per thread (at least [`ROWS`]), so that the weights
/// are packed once per thread.
fn linear(x: &[f32], l: &plain::Lin) -> Vec<f32> {
    let rows = x.len() / l.d_in.max(1);
    let mut y = vec![0.0f32; rows * l.d_out];
    let per = rows.div_ceil(rayon::current_num_threads().max(1)).max(ROWS);
    y.par_chunks_mut(per * l.d_out)
        .zip(x.par_chunks(per * l.d_in))
        .for_each(|(yc, xc)| {
            let m = xc.len() / l.d_in;
            gemm(xc, &l.w, yc, m, l.d_in, l.d_out);
            for row in yc.chunks_exact_mut(l.d_out) {
                for (v, &b) in row.iter_mut().zip(&l.b) {
                    *v += b;
                }
            }
        });
    y
}

/// LayerNorm of every row of `x` in place (biased variance).
fn norm_rows(x: &mut [f32], n: &plain::Norm) {
    let d = n.gamma.len();
    x.par_chunks_mut(d * 64).for_each(|chunk| {
        for row in chunk.chunks_exact_mut(d) {
            let mean = row.iter().sum::<f32>() / d as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
            let inv = 1.0 / (var + EPS).sqrt();
            for ((v, &g), &b) in row.iter_mut().zip(&n.gamma).zip(&n.beta) {
                *v = (*v - mean) * inv * g + b;
            }
        }
    });
}

/// LayerNorm of every row into a new buffer.
fn normed(x: &[f32], n: &plain::Norm) -> Vec<f32> {
    let mut y = x.to_vec();
    norm_rows(&mut y, n);
    y
}

fn relu(x: &mut [f32]) {
    x.par_chunks_mut(4096)
        .for_each(|c| c.iter_mut().for_each(|v| *v = v.max(0.0)));
}

/// Linear -> LayerNorm -> ReLU -> Linear.
fn mlp(x: &[f32], m: &plain::Mlp) -> Vec<f32> {
    let mut h = linear(x, &m.l1);
    norm_rows(&mut h, &m.ln);
    relu(&mut h);
    linear(&h, &m.l2)
}

/// Multi-head attention of each query over its neighbours (keys and values are the
/// sources' projections plus the pair's relative embedding), then the output
/// projection.
fn attention(
    q_in: &[f32],
    s_in: &[f32],
    nb: &Neighbours,
    rel: &[f32],
    b: &plain::Block,
) -> Vec<f32> {
    let d = b.query.d_out;
    let q = linear(q_in, &b.query);
    let keys = linear(s_in, &b.key);
    let values = linear(s_in, &b.value);
    let (h, k) = (b.heads.max(1), nb.k);
    let dh = d / h;
    let scale = 1.0 / (dh as f32).sqrt();
    let nq = q.len() / d;
    let mut ctx = vec![0.0f32; nq * d];
    ctx.par_chunks_mut(d * 32).enumerate().for_each(|(c, out)| {
        let mut scores = vec![0.0f32; k * h];
        let mut key = vec![0.0f32; k * d];
        let mut val = vec![0.0f32; k * d];
        for (r, o) in out.chunks_exact_mut(d).enumerate() {
            let i = c * 32 + r;
            let qi = &q[i * d..(i + 1) * d];
            for j in 0..k {
                let src = nb.index[i * k + j] as usize;
                let re = &rel[(i * k + j) * d..(i * k + j + 1) * d];
                let (kj, vj) = (&mut key[j * d..(j + 1) * d], &mut val[j * d..(j + 1) * d]);
                for t in 0..d {
                    kj[t] = keys[src * d + t] + re[t];
                    vj[t] = values[src * d + t] + re[t];
                }
                let bias = if nb.mask[i * k + j] > 0.0 { 0.0 } else { -1e9 };
                for hh in 0..h {
                    let s: f32 = qi[hh * dh..(hh + 1) * dh]
                        .iter()
                        .zip(&kj[hh * dh..(hh + 1) * dh])
                        .map(|(a, b)| a * b)
                        .sum();
                    scores[hh * k + j] = s * scale + bias;
                }
            }
            o.fill(0.0);
            for hh in 0..h {
                let sc = &mut scores[hh * k..(hh + 1) * k];
                let max = sc.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut z = 0.0f32;
                for v in sc.iter_mut() {
                    *v = (*v - max).exp();
                    z += *v;
                }
                for (j, w) in sc.iter().enumerate() {
                    let w = w / z * nb.mask[i * k + j];
                    if w == 0.0 {
                        continue;
                    }
                    for t in hh * dh..(hh + 1) * dh {
                        o[t] += w * val[j * d + t];
                    }
                }
            }
        }
    });
    linear(&ctx, &b.output)
}

/// A pre-norm attention block (`source = None`: self-attention), then the
/// feed-forward layer, both residual, in place.
fn block(x: &mut [f32], source: Option<&[f32]>, nb: &Neighbours, rel: &[f32], b: &plain::Block) {
    let q = normed(x, &b.norm_query);
    let s_owned;
    let s: &[f32] = match (source, &b.norm_source) {
        (Some(s), Some(n)) => {
            s_owned = normed(s, n);
            &s_owned
        }
        (Some(s), None) => s,
        (None, _) => &q,
    };
    let a = attention(&q, s, nb, rel, b);
    x.par_iter_mut().zip(&a).for_each(|(v, &u)| *v += u);
    let mut f = linear(&normed(x, &b.norm_ffn), &b.ffn1);
    relu(&mut f);
    let f = linear(&f, &b.ffn2);
    x.par_iter_mut().zip(&f).for_each(|(v, &u)| *v += u);
}

/// The reference network for CPU inference.
#[derive(Clone, Debug, PartialEq)]
pub struct NativeReference {
    net: plain::Net,
}

impl NativeReference {
    /// From the network's weights.
    pub fn new(net: plain::Net) -> Self {
        Self { net }
    }

    /// The map encodings `[map_nodes, hidden]` of a graph (depend on the map only).
    pub fn encode_map(&self, g: &GraphBatch) -> Vec<f32> {
        let n = &self.net;
        let mut m = mlp(&g.map_features, &n.map_input);
        if !n.map_layers.is_empty() {
            let rel = mlp(&g.map_map.rel, &n.map_rel);
            for layer in &n.map_layers {
                block(&mut m, None, &g.map_map, &rel, layer);
            }
        }
        m
    }

    /// Logits `[agent_nodes, K]` of a graph.
    pub fn logits(&self, g: &GraphBatch) -> Vec<f32> {
        let m = self.encode_map(g);
        self.logits_with_map(g, &m)
    }

    /// Logits `[agent_nodes, K]` of a graph whose map encodings are `map`
    /// ([`Self::encode_map`]).
    pub fn logits_with_map(&self, g: &GraphBatch, map: &[f32]) -> Vec<f32> {
        let n = &self.net;
        let d = n.hidden;
        let nodes = g.agent_nodes;
        let mut a = mlp(&g.agent_features, &n.agent_input);
        a.par_chunks_mut(d).enumerate().for_each(|(i, row)| {
            let (lt, at) = (g.last_token[i] as usize, g.anchor_token[i] as usize);
            let e1 = n.last_token.get(lt * d..(lt + 1) * d).unwrap_or(&[]);
            let e2 = n.anchor_token.get(at * d..(at + 1) * d).unwrap_or(&[]);
            for (t, v) in row.iter_mut().enumerate() {
                *v += e1.get(t).copied().unwrap_or(0.0) + e2.get(t).copied().unwrap_or(0.0);
            }
        });
        let t_rel = mlp(&g.temporal.rel, &n.temporal_rel);
        let am_rel = mlp(&g.agent_map.rel, &n.agent_map_rel);
        let aa_rel = mlp(&g.agent_agent.rel, &n.agent_agent_rel);
        for [temporal, agent_map, agent_agent] in &n.agent_layers {
            block(&mut a, None, &g.temporal, &t_rel, temporal);
            block(&mut a, Some(map), &g.agent_map, &am_rel, agent_map);
            block(&mut a, None, &g.agent_agent, &aa_rel, agent_agent);
        }
        norm_rows(&mut a, &n.norm_out);
        let mut logits = mlp(&a, &n.head);
        let k = n.head.l2.d_out;
        for (i, row) in logits.chunks_exact_mut(k).enumerate().take(nodes) {
            let ai = g.anchor_index[i];
            if ai >= 0
                && let Some(v) = row.get_mut(ai as usize)
            {
                *v += n.anchor_gain;
            }
        }
        logits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{PreparedScene, ReferenceConfig, ReferenceModel};
    use crate::training::{Cpu, to_vec};

    #[test]
    fn gemm_multiplies() {
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2 x 3
        let b = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3 x 2
        let mut c = [0.0f32; 4];
        gemm(&a, &b, &mut c, 2, 3, 2);
        assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
    }

    #[test]
    fn native_logits_equal_burns_on_a_real_scene() {
        let scene = crate::late_fusion::tests::womd_scene();
        let vocab = spacer_core::tokenizer::Vocabulary::kinematic_grid(200).unwrap();
        for config in [ReferenceConfig::tiny(200), ReferenceConfig::nano(200)] {
            let m =
                ReferenceModel::<Cpu>::new(config.clone(), vocab.clone(), &Default::default(), 7)
                    .unwrap();
            let p = PreparedScene::new(scene.clone(), &vocab, &config);
            let g = m.graph(&[p.world()]);
            let burn = to_vec(m.logits(&g));
            let native = NativeReference::new(m.net.plain()).logits(&g);
            assert_eq!(burn.len(), native.len());
            let scale = burn.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
            let worst = burn
                .iter()
                .zip(&native)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(scale > 1.0, "{}: lively logits", config.name);
            assert!(
                worst < 1e-3 * scale,
                "{}: differ by {worst} (scale {scale})",
                config.name
            );
        }
    }
}
