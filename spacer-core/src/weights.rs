//! The weights blob: one self-describing byte string holding a trained policy.
//!
//! The blob is a postcard message with four fields:
//!
//! | field | postcard encoding | content |
//! |---|---|---|
//! | header | struct [`BlobHeader`] | magic `SPACERPL`, format version, architecture, observation radius, training steps |
//! | vocabulary | byte string | `3 * K` tokens, little-endian f32 (see [`Vocabulary::write_bytes`]) |
//! | padding | byte string | zeros, so that the parameters start 4-aligned in the blob |
//! | params | byte string | [`param_count`]`(K)` little-endian f32 in [`ParamLayout`] order |
//!
//! [`Blob::parse`] validates everything once: magic, version, dimensions against the
//! architecture the crate implements, exact lengths, no trailing bytes, every value
//! finite. After that [`Model`] runs without further checks on the weights. On a
//! little-endian target whose blob is 4-aligned (a `static` in flash, a `Vec<f32>`
//! viewed as bytes, any `malloc`ed buffer) the parameters are used *in place*: no copy,
//! no RAM for the 261 KB of weights. A misaligned blob is refused with
//! [`WeightsError::Misaligned`] by [`Blob::model`]; [`Blob::copy_params`] copies it
//! into caller storage instead.

use crate::agent::AgentKind;
use crate::observation::{EGO_FEATURES, ObservationConfig, PARTNER_FEATURES, ROAD_FEATURES};
use crate::policy::{FUSED, HIDDEN, ParamLayout, Policy, PolicyDims, PolicyError, param_count};
use crate::tokenizer::{TOKEN_FLOATS, Token, TokenizerError, Vocabulary};

/// First eight bytes of every blob.
pub const MAGIC: [u8; 8] = *b"SPACERPL";
/// The format version this crate reads and writes.
pub const FORMAT_VERSION: u16 = 1;

/// What the blob says about itself.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BlobHeader {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`FORMAT_VERSION`].
    pub version: u16,
    /// Ego features per observation (6).
    pub ego_features: u16,
    /// Features per partner slot (6).
    pub partner_features: u16,
    /// Features per road slot (13).
    pub road_features: u16,
    /// Encoder width (64).
    pub hidden: u16,
    /// Fusion width (128).
    pub fused: u16,
    /// Slot and action counts.
    pub dims: PolicyDims,
    /// Observation radius the policy was trained with (metres).
    pub radius: f32,
    /// Environment steps of training behind these weights (0 for an initialisation).
    pub trained_steps: u64,
}

impl BlobHeader {
    /// The header for this crate's architecture with `dims`.
    pub fn new(dims: PolicyDims, radius: f32, trained_steps: u64) -> Self {
        Self {
            magic: MAGIC,
            version: FORMAT_VERSION,
            ego_features: EGO_FEATURES as u16,
            partner_features: PARTNER_FEATURES as u16,
            road_features: ROAD_FEATURES as u16,
            hidden: HIDDEN as u16,
            fused: FUSED as u16,
            dims,
            radius,
            trained_steps,
        }
    }

    /// The observation layout the policy reads.
    pub fn observation(&self) -> ObservationConfig {
        ObservationConfig {
            radius: self.radius,
            ..self.dims.observation_config()
        }
    }

    fn check(&self) -> Result<(), WeightsError> {
        if self.magic != MAGIC {
            return Err(WeightsError::BadMagic);
        }
        if self.version != FORMAT_VERSION {
            return Err(WeightsError::UnsupportedVersion);
        }
        let arch = self.ego_features as usize == EGO_FEATURES
            && self.partner_features as usize == PARTNER_FEATURES
            && self.road_features as usize == ROAD_FEATURES
            && self.hidden as usize == HIDDEN
            && self.fused as usize == FUSED;
        if !arch || self.dims.validate().is_err() {
            return Err(WeightsError::Architecture);
        }
        if self.observation().validate().is_err() {
            return Err(WeightsError::Architecture);
        }
        Ok(())
    }
}

/// Why a blob was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightsError {
    /// The bytes end before the blob does.
    Truncated,
    /// Not a spacer weights blob.
    BadMagic,
    /// A format version this build cannot read.
    UnsupportedVersion,
    /// The architecture (feature widths, hidden sizes, slot or action counts) is not
    /// the one this crate implements, or exceeds its capacities.
    Architecture,
    /// The vocabulary is malformed (wrong length or non-finite).
    Vocabulary,
    /// The parameter count does not match the architecture.
    ParamCount,
    /// A weight is NaN, infinite or implausibly large.
    BadWeight,
    /// Bytes follow the blob.
    TrailingBytes,
    /// The parameters are not 4-aligned in memory (or the target is big-endian), so
    /// they cannot be used in place: copy them with [`Blob::copy_params`].
    Misaligned,
    /// An output buffer is too short.
    OutputTooShort,
}

impl core::fmt::Display for WeightsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            WeightsError::Truncated => "weights blob is truncated",
            WeightsError::BadMagic => "not a spacer weights blob (bad magic)",
            WeightsError::UnsupportedVersion => "unsupported weights format version",
            WeightsError::Architecture => "blob architecture does not match this build",
            WeightsError::Vocabulary => "blob vocabulary is malformed",
            WeightsError::ParamCount => "blob parameter count does not match its architecture",
            WeightsError::BadWeight => "blob holds a NaN, infinite or huge weight",
            WeightsError::TrailingBytes => "bytes follow the weights blob",
            WeightsError::Misaligned => "blob parameters are not 4-aligned; copy them first",
            WeightsError::OutputTooShort => "output buffer too short",
        })
    }
}

impl From<PolicyError> for WeightsError {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::BadWeight => WeightsError::BadWeight,
            PolicyError::WrongParamCount => WeightsError::ParamCount,
            _ => WeightsError::Architecture,
        }
    }
}

/// Tokens read in place from a blob's vocabulary bytes (no copy, no corner tables):
/// what a deployed agent needs to apply the tokens its policy picks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenTable<'a> {
    k: usize,
    bytes: &'a [u8],
}

impl<'a> TokenTable<'a> {
    /// A table over `bytes` as [`Vocabulary::write_bytes`] wrote them, checked here.
    ///
    /// # Errors
    /// [`TokenizerError::BadSize`], [`TokenizerError::BadLength`],
    /// [`TokenizerError::NonFinite`].
    pub fn new(k: usize, bytes: &'a [u8]) -> Result<Self, TokenizerError> {
        if k == 0 || k > crate::tokenizer::MAX_TOKENS {
            return Err(TokenizerError::BadSize);
        }
        if bytes.len() != Vocabulary::byte_len(k) {
            return Err(TokenizerError::BadLength);
        }
        if bytes
            .chunks_exact(4)
            .any(|c| !f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite())
        {
            return Err(TokenizerError::NonFinite);
        }
        Ok(Self { k, bytes })
    }

    /// Tokens per kind.
    pub fn len(&self) -> usize {
        self.k
    }

    /// Never true for a constructed table.
    pub fn is_empty(&self) -> bool {
        self.k == 0
    }

    /// Token `index` of `kind`.
    pub fn get(&self, kind: AgentKind, index: usize) -> Option<Token> {
        if index >= self.k {
            return None;
        }
        let start = (kind.index() * self.k + index) * TOKEN_FLOATS * 4;
        let b = self.bytes.get(start..start + TOKEN_FLOATS * 4)?;
        let f = |i: usize| f32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
        let mut t = Token::STILL;
        for (s, p) in t.poses.iter_mut().enumerate() {
            *p = crate::geometry::Pose::new(f(3 * s), f(3 * s + 1), f(3 * s + 2));
        }
        Some(t)
    }

    /// The raw bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The full [`Vocabulary`] (with its encoding tables), built on the stack
    /// (about 43 KB): for hosts, not for small firmware stacks.
    ///
    /// # Errors
    /// As [`Vocabulary::from_bytes`].
    pub fn to_vocabulary(&self) -> Result<Vocabulary, TokenizerError> {
        Vocabulary::from_bytes(self.k, self.bytes)
    }
}

/// A parsed, validated blob borrowing its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Blob<'a> {
    header: BlobHeader,
    tokens: TokenTable<'a>,
    params: &'a [u8],
}

/// A policy ready to run: network, tokens and observation layout, all borrowed from
/// one blob.
#[derive(Clone, Copy, Debug)]
pub struct Model<'a> {
    /// The network.
    pub policy: Policy<'a>,
    /// Its action tokens.
    pub tokens: TokenTable<'a>,
    /// The observation it reads.
    pub observation: ObservationConfig,
    /// The blob's header.
    pub header: BlobHeader,
}

/// Reads an unsigned LEB128 varint (postcard's integer and length encoding).
fn read_varint(bytes: &[u8]) -> Result<(u64, &[u8]), WeightsError> {
    let mut v = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        v |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, &bytes[i + 1..]));
        }
    }
    Err(WeightsError::Truncated)
}

fn read_bytes(bytes: &[u8]) -> Result<(&[u8], &[u8]), WeightsError> {
    let (len, rest) = read_varint(bytes)?;
    let len = usize::try_from(len).map_err(|_| WeightsError::Truncated)?;
    if rest.len() < len {
        return Err(WeightsError::Truncated);
    }
    Ok(rest.split_at(len))
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn write_varint(mut v: u64, out: &mut [u8]) -> Result<usize, WeightsError> {
    let mut i = 0;
    loop {
        let slot = out.get_mut(i).ok_or(WeightsError::OutputTooShort)?;
        if v < 0x80 {
            *slot = v as u8;
            return Ok(i + 1);
        }
        *slot = (v as u8 & 0x7f) | 0x80;
        v >>= 7;
        i += 1;
    }
}

impl<'a> Blob<'a> {
    /// Parses and validates a blob.
    ///
    /// # Errors
    /// Every [`WeightsError`] but `Misaligned` and `OutputTooShort`: truncation, bad
    /// magic or version, another architecture, a bad vocabulary, a wrong parameter
    /// count, a non-finite or huge weight, trailing bytes.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, WeightsError> {
        if bytes.len() < MAGIC.len() {
            return Err(WeightsError::Truncated);
        }
        if bytes[..MAGIC.len()] != MAGIC {
            return Err(WeightsError::BadMagic);
        }
        // The version right after the magic, before anything that could change.
        let (version, _) = read_varint(&bytes[MAGIC.len()..])?;
        if version != FORMAT_VERSION as u64 {
            return Err(WeightsError::UnsupportedVersion);
        }
        let (header, rest): (BlobHeader, &[u8]) =
            postcard::take_from_bytes(bytes).map_err(|_| WeightsError::Truncated)?;
        header.check()?;
        let k = header.dims.actions();
        let (vocab, rest) = read_bytes(rest)?;
        let tokens = TokenTable::new(k, vocab).map_err(|_| WeightsError::Vocabulary)?;
        let (_padding, rest) = read_bytes(rest)?;
        let (params, rest) = read_bytes(rest)?;
        if !rest.is_empty() {
            return Err(WeightsError::TrailingBytes);
        }
        if params.len() != 4 * param_count(k) {
            return Err(WeightsError::ParamCount);
        }
        let bad = params.chunks_exact(4).any(|c| {
            let w = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            w.is_nan() || w.abs() > crate::policy::MAX_WEIGHT_MAGNITUDE
        });
        if bad {
            return Err(WeightsError::BadWeight);
        }
        Ok(Self {
            header,
            tokens,
            params,
        })
    }

    /// The header.
    pub fn header(&self) -> &BlobHeader {
        &self.header
    }

    /// The tokens.
    pub fn tokens(&self) -> TokenTable<'a> {
        self.tokens
    }

    /// The parameters in place, when the target is little-endian and they are
    /// 4-aligned in memory.
    ///
    /// # Errors
    /// [`WeightsError::Misaligned`] otherwise.
    pub fn params(&self) -> Result<&'a [f32], WeightsError> {
        if cfg!(target_endian = "big") {
            return Err(WeightsError::Misaligned);
        }
        bytemuck::try_cast_slice(self.params).map_err(|_| WeightsError::Misaligned)
    }

    /// Copies the parameters into `out` (any alignment, any endianness).
    ///
    /// # Errors
    /// [`WeightsError::ParamCount`] unless `out` has exactly [`param_count`] slots.
    pub fn copy_params(&self, out: &mut [f32]) -> Result<(), WeightsError> {
        if out.len() * 4 != self.params.len() {
            return Err(WeightsError::ParamCount);
        }
        for (o, c) in out.iter_mut().zip(self.params.chunks_exact(4)) {
            *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        Ok(())
    }

    /// The model, using the parameters in place.
    ///
    /// # Errors
    /// [`WeightsError::Misaligned`] (see [`Blob::params`]).
    pub fn model(&self) -> Result<Model<'a>, WeightsError> {
        let params = self.params()?;
        self.model_with(params)
    }

    /// The model over parameters the caller copied with [`Blob::copy_params`].
    ///
    /// # Errors
    /// [`WeightsError::ParamCount`] / [`WeightsError::BadWeight`] if `params` is not
    /// a valid parameter set for this blob.
    pub fn model_with<'p>(&self, params: &'p [f32]) -> Result<Model<'p>, WeightsError>
    where
        'a: 'p,
    {
        let policy = Policy::new(self.header.dims, params)?;
        Ok(Model {
            policy,
            tokens: self.tokens,
            observation: self.header.observation(),
            header: self.header,
        })
    }
}

/// Bytes [`write_blob`] needs for a policy with `actions` actions.
pub fn blob_len(header: &BlobHeader) -> usize {
    let k = header.dims.actions();
    let head = header_len(header);
    let vocab = Vocabulary::byte_len(k);
    let params = 4 * param_count(k);
    let before_pad = head + varint_len(vocab as u64) + vocab;
    let pad = padding_for(before_pad, params);
    before_pad + 1 + pad + varint_len(params as u64) + params
}

/// Encoded length of a header (a few dozen bytes).
fn header_len(header: &BlobHeader) -> usize {
    let mut buf = [0u8; 96];
    postcard::to_slice(header, &mut buf).map_or(0, |b| b.len())
}

/// Padding that puts the parameter bytes on a 4-byte boundary, given where the
/// padding field starts.
fn padding_for(at: usize, params: usize) -> usize {
    let fixed = at + 1 + varint_len(params as u64);
    (4 - fixed % 4) % 4
}

/// Writes a blob into `out`; returns its length ([`blob_len`]).
///
/// # Errors
/// [`WeightsError::OutputTooShort`]; [`WeightsError::Architecture`],
/// [`WeightsError::ParamCount`], [`WeightsError::Vocabulary`] when the pieces do not
/// fit together.
pub fn write_blob(
    header: &BlobHeader,
    vocabulary: &Vocabulary,
    params: &[f32],
    out: &mut [u8],
) -> Result<usize, WeightsError> {
    header.check()?;
    let k = header.dims.actions();
    if vocabulary.len() != k {
        return Err(WeightsError::Vocabulary);
    }
    let layout = ParamLayout::new(k);
    if params.len() != layout.total() {
        return Err(WeightsError::ParamCount);
    }
    let total = blob_len(header);
    if out.len() < total {
        return Err(WeightsError::OutputTooShort);
    }
    let head = postcard::to_slice(header, out)
        .map_err(|_| WeightsError::OutputTooShort)?
        .len();
    let mut at = head;
    let vlen = Vocabulary::byte_len(k);
    at += write_varint(vlen as u64, &mut out[at..])?;
    vocabulary
        .write_bytes(&mut out[at..at + vlen])
        .map_err(|_| WeightsError::OutputTooShort)?;
    at += vlen;
    let plen = 4 * params.len();
    let pad = padding_for(at, plen);
    at += write_varint(pad as u64, &mut out[at..])?;
    out[at..at + pad].fill(0);
    at += pad;
    at += write_varint(plen as u64, &mut out[at..])?;
    for (c, w) in out[at..at + plen].chunks_exact_mut(4).zip(params) {
        c.copy_from_slice(&w.to_le_bytes());
    }
    at += plen;
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::init_params;
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    /// A blob whose parameter bytes start 4-aligned in memory.
    fn aligned_blob(seed: u64) -> (Vec<u32>, usize) {
        let dims = PolicyDims::default();
        let header = BlobHeader::new(dims, 50.0, 0);
        let mut params = vec![0.0f32; param_count(200)];
        init_params(&dims, seed, &mut params).unwrap();
        let vocab = Vocabulary::kinematic_grid(200).unwrap();
        let len = blob_len(&header);
        let mut words = vec![0u32; len.div_ceil(4)];
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
        assert_eq!(write_blob(&header, &vocab, &params, bytes).unwrap(), len);
        (words, len)
    }

    #[test]
    fn round_trip_in_place() {
        let (words, len) = aligned_blob(1);
        let bytes: &[u8] = &bytemuck::cast_slice(&words)[..len];
        let blob = Blob::parse(bytes).unwrap();
        assert_eq!(blob.header().dims, PolicyDims::default());
        let params = blob.params().unwrap();
        // In place: the slice points into the blob.
        let start = bytes.as_ptr() as usize;
        let p = params.as_ptr() as usize;
        assert!(p > start && p < start + len);
        let mut want = vec![0.0f32; param_count(200)];
        init_params(&PolicyDims::default(), 1, &mut want).unwrap();
        assert_eq!(params, &want[..]);
        let model = blob.model().unwrap();
        assert_eq!(
            model.tokens.to_vocabulary().unwrap(),
            Vocabulary::kinematic_grid(200).unwrap()
        );
        let v = Vocabulary::kinematic_grid(200).unwrap();
        assert_eq!(
            model.tokens.get(AgentKind::Cyclist, 17),
            v.get(AgentKind::Cyclist, 17).copied()
        );
        assert_eq!(model.tokens.get(AgentKind::Cyclist, 200), None);
        assert_eq!(model.observation, ObservationConfig::default());
    }

    #[test]
    fn the_blob_is_plain_postcard() {
        #[derive(serde::Deserialize)]
        struct Wire<'a> {
            header: BlobHeader,
            vocabulary: &'a [u8],
            _padding: &'a [u8],
            params: &'a [u8],
        }
        let (words, len) = aligned_blob(2);
        let bytes: &[u8] = &bytemuck::cast_slice(&words)[..len];
        let wire: Wire = postcard::from_bytes(bytes).unwrap();
        assert_eq!(wire.header.magic, MAGIC);
        assert_eq!(wire.vocabulary.len(), Vocabulary::byte_len(200));
        assert_eq!(wire.params.len(), 4 * 65_289);
        assert_eq!(
            (wire.params.as_ptr() as usize - bytes.as_ptr() as usize) % 4,
            0
        );
    }

    #[test]
    fn misaligned_blobs_are_copied_not_used_in_place() {
        let (words, len) = aligned_blob(3);
        let src: &[u8] = &bytemuck::cast_slice(&words)[..len];
        let mut shifted = vec![0u8; len + 1];
        shifted[1..].copy_from_slice(src);
        let blob = Blob::parse(&shifted[1..]).unwrap();
        assert_eq!(blob.model().unwrap_err(), WeightsError::Misaligned);
        let mut params = vec![0.0f32; param_count(200)];
        blob.copy_params(&mut params).unwrap();
        let model = blob.model_with(&params).unwrap();
        assert_eq!(model.policy.actions(), 200);
        assert_eq!(
            blob.copy_params(&mut params[1..]),
            Err(WeightsError::ParamCount)
        );
    }

    #[test]
    fn every_corruption_is_an_error() {
        let (words, len) = aligned_blob(4);
        let good: Vec<u8> = bytemuck::cast_slice(&words)[..len].to_vec();
        // Every truncation.
        for cut in [0, 3, 8, 9, 20, 40, len / 2, len - 1] {
            let e = Blob::parse(&good[..cut]).unwrap_err();
            assert!(
                matches!(e, WeightsError::Truncated | WeightsError::ParamCount),
                "cut {cut}: {e:?}"
            );
        }
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(Blob::parse(&bad).unwrap_err(), WeightsError::BadMagic);
        let mut bad = good.clone();
        bad[8] = 2;
        assert_eq!(
            Blob::parse(&bad).unwrap_err(),
            WeightsError::UnsupportedVersion
        );
        let mut bad = good.clone();
        bad.push(0);
        assert_eq!(Blob::parse(&bad).unwrap_err(), WeightsError::TrailingBytes);
        // A NaN weight (the last one).
        let mut bad = good.clone();
        bad[len - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
        assert_eq!(Blob::parse(&bad).unwrap_err(), WeightsError::BadWeight);
        // A NaN in the vocabulary.
        let head = header_len(&BlobHeader::new(PolicyDims::default(), 50.0, 0));
        let mut bad = good.clone();
        let at = head + varint_len(Vocabulary::byte_len(200) as u64) + 4;
        bad[at..at + 4].copy_from_slice(&f32::INFINITY.to_le_bytes());
        assert_eq!(Blob::parse(&bad).unwrap_err(), WeightsError::Vocabulary);
        // Another architecture: hidden width 32.
        let mut h = BlobHeader::new(PolicyDims::default(), 50.0, 0);
        h.hidden = 32;
        let mut out = vec![0u8; 64];
        let n = postcard::to_slice(&h, &mut out).unwrap().len();
        assert_eq!(
            Blob::parse(&out[..n]).unwrap_err(),
            WeightsError::Architecture
        );
        // Garbage after a valid magic and version never panics.
        let mut rng = crate::math::Rng::new(5);
        for _ in 0..2000 {
            let n = 9 + rng.below(200) as usize;
            let mut junk: Vec<u8> = (0..n).map(|_| rng.next_u32() as u8).collect();
            junk[..8].copy_from_slice(&MAGIC);
            junk[8] = 1;
            assert!(Blob::parse(&junk).is_err());
        }
    }

    #[test]
    fn writer_checks_its_inputs() {
        let dims = PolicyDims::default();
        let header = BlobHeader::new(dims, 50.0, 7);
        let vocab = Vocabulary::kinematic_grid(200).unwrap();
        let params = vec![0.0f32; param_count(200)];
        let mut out = vec![0u8; blob_len(&header)];
        assert_eq!(
            write_blob(&header, &vocab, &params[1..], &mut out),
            Err(WeightsError::ParamCount)
        );
        assert_eq!(
            write_blob(&header, &vocab, &params, &mut out[..100]),
            Err(WeightsError::OutputTooShort)
        );
        let small = Vocabulary::kinematic_grid(100).unwrap();
        assert_eq!(
            write_blob(&header, &small, &params, &mut out),
            Err(WeightsError::Vocabulary)
        );
        let n = write_blob(&header, &vocab, &params, &mut out).unwrap();
        assert_eq!(n, out.len());
        let mut copy = vec![0u32; n.div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut copy)[..n].copy_from_slice(&out);
        let blob = Blob::parse(&bytemuck::cast_slice(&copy)[..n]).unwrap();
        assert_eq!(blob.header().trained_steps, 7);
    }
}
