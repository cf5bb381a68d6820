//! The weights blob: one self-describing byte string holding a trained policy.
//!
//! The blob (format version 2) is a postcard message with five fields:
//!
//! | field | postcard encoding | content |
//! |---|---|---|
//! | header | struct [`BlobHeader`] | magic `SPACERPL`, format version, weight format (f32 or int8), architecture, observation radius, training steps |
//! | vocabulary | byte string | `3 * K` tokens, little-endian f32 (see [`Vocabulary::write_bytes`]) |
//! | padding | byte string | zeros, so that the parameters start 4-aligned in the blob |
//! | params | byte string | f32: [`param_count`]`(K)` little-endian f32 in [`ParamLayout`] order; int8: [`quant::param_words`]`(K)` little-endian words in [`quant::QuantLayout`] order |
//! | checksum | `[u8; 4]` | CRC-32C (Castagnoli) of every byte before it, little-endian |
//!
//! [`Blob::parse`] validates everything once: magic, version, weight format,
//! dimensions against the architecture the crate implements, exact lengths, that the
//! parameters start at a multiple of 4 bytes from the blob's start, no trailing bytes,
//! the checksum, every f32 value finite (an int8 parameter set is bounded when its
//! model is built: [`Blob::model`]). After that [`Model`] runs without further checks.
//! On a little-endian target whose blob is 4-aligned in memory (a `static` in flash, a
//! `Vec<u32>` viewed as bytes, any `malloc`ed buffer) the parameters are used *in
//! place*: no copy, no RAM for the weights. A blob misaligned in memory is refused with
//! [`WeightsError::Misaligned`] by [`Blob::model`]; [`Blob::copy_params`] /
//! [`Blob::copy_int8_words`] copy it into caller storage instead.
//!
//! **Version 1** blobs (f32 only, no checksum field) still load: [`Blob::checksum`] is
//! `None` for them, and tools should warn that corruption cannot be detected (rewrite
//! them with [`write_blob`], e.g. `spacer quantize --f32`).
//!
//! [`quant::param_words`]: crate::quant::param_words
//! [`quant::QuantLayout`]: crate::quant::QuantLayout

use crate::agent::AgentKind;
use crate::observation::{EGO_FEATURES, ObservationConfig, PARTNER_FEATURES, ROAD_FEATURES};
use crate::policy::{FUSED, HIDDEN, ParamLayout, Policy, PolicyDims, PolicyError, param_count};
use crate::tokenizer::{TOKEN_FLOATS, Token, TokenizerError, Vocabulary};

pub use crate::policy::WeightFormat;

/// First eight bytes of every blob.
pub const MAGIC: [u8; 8] = *b"SPACERPL";
/// The format version this crate writes (and the newest it reads).
pub const FORMAT_VERSION: u16 = 2;
/// The oldest format version this crate reads (f32 only, no checksum).
pub const LEGACY_FORMAT_VERSION: u16 = 1;
/// Bytes of the trailing checksum of a version-2 blob.
pub const CHECKSUM_BYTES: usize = 4;

/// What the blob says about itself (version 2's header; version 1 headers read into
/// it with [`WeightFormat::F32`]).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BlobHeader {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`FORMAT_VERSION`] (or [`LEGACY_FORMAT_VERSION`] for a blob read from version 1).
    pub version: u16,
    /// How the parameters are stored.
    pub format: WeightFormat,
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

/// Version 1's header: no weight format.
#[derive(serde::Serialize, serde::Deserialize)]
struct HeaderV1 {
    magic: [u8; 8],
    version: u16,
    ego_features: u16,
    partner_features: u16,
    road_features: u16,
    hidden: u16,
    fused: u16,
    dims: PolicyDims,
    radius: f32,
    trained_steps: u64,
}

/// Version 2's header as it is decoded (the format as a raw code, so that an unknown
/// one is its own error).
#[derive(serde::Deserialize)]
struct HeaderV2 {
    magic: [u8; 8],
    version: u16,
    format: u8,
    ego_features: u16,
    partner_features: u16,
    road_features: u16,
    hidden: u16,
    fused: u16,
    dims: PolicyDims,
    radius: f32,
    trained_steps: u64,
}

impl BlobHeader {
    /// An f32 header for this crate's architecture with `dims`.
    pub fn new(dims: PolicyDims, radius: f32, trained_steps: u64) -> Self {
        Self {
            magic: MAGIC,
            version: FORMAT_VERSION,
            format: WeightFormat::F32,
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

    /// The same header with another weight format.
    pub fn with_format(self, format: WeightFormat) -> Self {
        Self { format, ..self }
    }

    /// The observation layout the policy reads.
    pub fn observation(&self) -> ObservationConfig {
        ObservationConfig {
            radius: self.radius,
            ..self.dims.observation_config()
        }
    }

    /// Bytes of the parameter field for this header's format and action count.
    pub fn param_bytes(&self) -> usize {
        let k = self.dims.actions();
        match self.format {
            WeightFormat::F32 => 4 * param_count(k),
            WeightFormat::Int8 => 4 * crate::quant::param_words(k),
        }
    }

    fn check(&self) -> Result<(), WeightsError> {
        if self.magic != MAGIC {
            return Err(WeightsError::BadMagic);
        }
        if !(LEGACY_FORMAT_VERSION..=FORMAT_VERSION).contains(&self.version) {
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
    /// A weight is NaN, infinite or implausibly large (f32), or a scale, multiplier or
    /// bias is outside the bounds that keep integer sums from overflowing (int8).
    BadWeight,
    /// Bytes follow the blob.
    TrailingBytes,
    /// The parameters are not 4-aligned in memory (or the target is big-endian), so
    /// they cannot be used in place: copy them with [`Blob::copy_params`] /
    /// [`Blob::copy_int8_words`].
    Misaligned,
    /// An output buffer is too short.
    OutputTooShort,
    /// The parameters do not start at a multiple of 4 bytes from the blob's start (a
    /// malformed padding field): no buffer can hold them aligned.
    UnalignedParams,
    /// The checksum does not match the bytes: the blob is corrupt.
    BadChecksum,
    /// An unknown weight format code.
    UnsupportedFormat,
    /// The operation needs the other weight format (e.g. f32 parameters of an int8
    /// blob).
    WrongFormat,
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
            WeightsError::BadWeight => {
                "blob holds a NaN, infinite or huge weight, or an out-of-bounds int8 scale"
            }
            WeightsError::TrailingBytes => "bytes follow the weights blob",
            WeightsError::Misaligned => "blob parameters are not 4-aligned; copy them first",
            WeightsError::OutputTooShort => "output buffer too short",
            WeightsError::UnalignedParams => {
                "blob parameters do not start at a multiple of 4 bytes (bad padding)"
            }
            WeightsError::BadChecksum => "weights blob checksum mismatch (corrupt blob)",
            WeightsError::UnsupportedFormat => "unknown weight format (neither f32 nor int8)",
            WeightsError::WrongFormat => "not available for this blob's weight format",
        })
    }
}

impl From<PolicyError> for WeightsError {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::BadWeight => WeightsError::BadWeight,
            PolicyError::WrongParamCount => WeightsError::ParamCount,
            PolicyError::WrongFormat => WeightsError::WrongFormat,
            _ => WeightsError::Architecture,
        }
    }
}

/// CRC-32C (Castagnoli, reflected, init and final XOR `!0`): the checksum of scene
/// caches, TFRecords and weights blobs. Check value: `crc32c(b"123456789") ==
/// 0xE306_9283`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    let mut chunks = bytes.chunks_exact(4);
    for w in chunks.by_ref() {
        // Slicing by four: one table lookup per byte, four bytes per step.
        c ^= u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        c = CRC_TABLES[3][(c & 0xFF) as usize]
            ^ CRC_TABLES[2][((c >> 8) & 0xFF) as usize]
            ^ CRC_TABLES[1][((c >> 16) & 0xFF) as usize]
            ^ CRC_TABLES[0][(c >> 24) as usize];
    }
    for &b in chunks.remainder() {
        c = CRC_TABLES[0][((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

const CRC_TABLES: [[u32; 256]; 4] = {
    let mut t = [[0u32; 256]; 4];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut s = 1;
        while s < 4 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            s += 1;
        }
        i += 1;
    }
    t
};

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
    checksum: Option<u32>,
}

/// A policy ready to run: network, tokens and observation layout, all borrowed from
/// one blob.
#[derive(Clone, Copy, Debug)]
pub struct Model<'a> {
    /// The network (f32 or int8).
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

/// Decodes a header of `version` from the front of `bytes`.
fn read_header(version: u64, bytes: &[u8]) -> Result<(BlobHeader, &[u8]), WeightsError> {
    if version == LEGACY_FORMAT_VERSION as u64 {
        let (h, rest): (HeaderV1, &[u8]) =
            postcard::take_from_bytes(bytes).map_err(|_| WeightsError::Truncated)?;
        let header = BlobHeader {
            magic: h.magic,
            version: h.version,
            format: WeightFormat::F32,
            ego_features: h.ego_features,
            partner_features: h.partner_features,
            road_features: h.road_features,
            hidden: h.hidden,
            fused: h.fused,
            dims: h.dims,
            radius: h.radius,
            trained_steps: h.trained_steps,
        };
        return Ok((header, rest));
    }
    let (h, rest): (HeaderV2, &[u8]) =
        postcard::take_from_bytes(bytes).map_err(|_| WeightsError::Truncated)?;
    let format = WeightFormat::from_code(h.format).ok_or(WeightsError::UnsupportedFormat)?;
    let header = BlobHeader {
        magic: h.magic,
        version: h.version,
        format,
        ego_features: h.ego_features,
        partner_features: h.partner_features,
        road_features: h.road_features,
        hidden: h.hidden,
        fused: h.fused,
        dims: h.dims,
        radius: h.radius,
        trained_steps: h.trained_steps,
    };
    Ok((header, rest))
}

impl<'a> Blob<'a> {
    /// Parses and validates a blob (version 2, or a version-1 f32 blob).
    ///
    /// Structure first (lengths, alignment of the parameters within the blob,
    /// trailing bytes), then the checksum, then the content (vocabulary and f32 weights
    /// finite and bounded).
    ///
    /// # Errors
    /// Every [`WeightsError`] but `Misaligned`, `OutputTooShort` and `WrongFormat`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, WeightsError> {
        if bytes.len() < MAGIC.len() {
            return Err(WeightsError::Truncated);
        }
        if bytes[..MAGIC.len()] != MAGIC {
            return Err(WeightsError::BadMagic);
        }
        // The version right after the magic, before anything that could change.
        let (version, _) = read_varint(&bytes[MAGIC.len()..])?;
        if !(LEGACY_FORMAT_VERSION as u64..=FORMAT_VERSION as u64).contains(&version) {
            return Err(WeightsError::UnsupportedVersion);
        }
        let (header, rest) = read_header(version, bytes)?;
        header.check()?;
        let k = header.dims.actions();
        let (vocab, rest) = read_bytes(rest)?;
        let (_padding, rest) = read_bytes(rest)?;
        let (params, rest) = read_bytes(rest)?;
        let trailer = if version >= 2 { CHECKSUM_BYTES } else { 0 };
        if rest.len() < trailer {
            return Err(WeightsError::Truncated);
        }
        if rest.len() > trailer {
            return Err(WeightsError::TrailingBytes);
        }
        if params.len() != header.param_bytes() {
            return Err(WeightsError::ParamCount);
        }
        let offset = params.as_ptr() as usize - bytes.as_ptr() as usize;
        if !offset.is_multiple_of(4) {
            return Err(WeightsError::UnalignedParams);
        }
        let checksum = if trailer > 0 {
            let body = &bytes[..bytes.len() - CHECKSUM_BYTES];
            let stored = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            if crc32c(body) != stored {
                return Err(WeightsError::BadChecksum);
            }
            Some(stored)
        } else {
            None
        };
        let tokens = TokenTable::new(k, vocab).map_err(|_| WeightsError::Vocabulary)?;
        if header.format == WeightFormat::F32 {
            let bad = params.chunks_exact(4).any(|c| {
                let w = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                w.is_nan() || w.abs() > crate::policy::MAX_WEIGHT_MAGNITUDE
            });
            if bad {
                return Err(WeightsError::BadWeight);
            }
        }
        Ok(Self {
            header,
            tokens,
            params,
            checksum,
        })
    }

    /// The header.
    pub fn header(&self) -> &BlobHeader {
        &self.header
    }

    /// How the parameters are stored.
    pub fn format(&self) -> WeightFormat {
        self.header.format
    }

    /// The stored CRC-32C, or `None` for a version-1 blob (which has none: corruption
    /// of its bytes cannot be detected).
    pub fn checksum(&self) -> Option<u32> {
        self.checksum
    }

    /// The tokens.
    pub fn tokens(&self) -> TokenTable<'a> {
        self.tokens
    }

    /// The parameter field's bytes (either format).
    pub fn param_bytes(&self) -> &'a [u8] {
        self.params
    }

    /// The f32 parameters in place, when the target is little-endian and they are
    /// 4-aligned in memory.
    ///
    /// # Errors
    /// [`WeightsError::WrongFormat`] for an int8 blob; [`WeightsError::Misaligned`].
    pub fn params(&self) -> Result<&'a [f32], WeightsError> {
        if self.header.format != WeightFormat::F32 {
            return Err(WeightsError::WrongFormat);
        }
        if cfg!(target_endian = "big") {
            return Err(WeightsError::Misaligned);
        }
        bytemuck::try_cast_slice(self.params).map_err(|_| WeightsError::Misaligned)
    }

    /// The int8 parameter words in place (little-endian target, 4-aligned memory).
    ///
    /// # Errors
    /// [`WeightsError::WrongFormat`] for an f32 blob; [`WeightsError::Misaligned`].
    pub fn int8_words(&self) -> Result<&'a [u32], WeightsError> {
        if self.header.format != WeightFormat::Int8 {
            return Err(WeightsError::WrongFormat);
        }
        if cfg!(target_endian = "big") {
            return Err(WeightsError::Misaligned);
        }
        bytemuck::try_cast_slice(self.params).map_err(|_| WeightsError::Misaligned)
    }

    /// Copies the f32 parameters into `out` (any alignment, any endianness).
    ///
    /// # Errors
    /// [`WeightsError::WrongFormat`] for an int8 blob; [`WeightsError::ParamCount`]
    /// unless `out` has exactly [`param_count`] slots.
    pub fn copy_params(&self, out: &mut [f32]) -> Result<(), WeightsError> {
        if self.header.format != WeightFormat::F32 {
            return Err(WeightsError::WrongFormat);
        }
        if out.len() * 4 != self.params.len() {
            return Err(WeightsError::ParamCount);
        }
        for (o, c) in out.iter_mut().zip(self.params.chunks_exact(4)) {
            *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        Ok(())
    }

    /// Copies the int8 parameter words into `out` (any alignment, any endianness).
    ///
    /// # Errors
    /// [`WeightsError::WrongFormat`] for an f32 blob; [`WeightsError::ParamCount`]
    /// unless `out` has exactly [`crate::quant::param_words`] slots.
    pub fn copy_int8_words(&self, out: &mut [u32]) -> Result<(), WeightsError> {
        if self.header.format != WeightFormat::Int8 {
            return Err(WeightsError::WrongFormat);
        }
        if out.len() * 4 != self.params.len() {
            return Err(WeightsError::ParamCount);
        }
        for (o, c) in out.iter_mut().zip(self.params.chunks_exact(4)) {
            *o = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        Ok(())
    }

    /// The model (either format), using the parameters in place.
    ///
    /// # Errors
    /// [`WeightsError::Misaligned`] (see [`Blob::params`]); [`WeightsError::BadWeight`]
    /// for an int8 parameter set outside its bounds.
    pub fn model(&self) -> Result<Model<'a>, WeightsError> {
        match self.header.format {
            WeightFormat::F32 => self.model_with(self.params()?),
            WeightFormat::Int8 => self.model_with_int8(self.int8_words()?),
        }
    }

    /// The f32 model over parameters the caller copied with [`Blob::copy_params`].
    ///
    /// # Errors
    /// [`WeightsError::WrongFormat`] for an int8 blob; [`WeightsError::ParamCount`] /
    /// [`WeightsError::BadWeight`] if `params` is not a valid parameter set.
    pub fn model_with<'p>(&self, params: &'p [f32]) -> Result<Model<'p>, WeightsError>
    where
        'a: 'p,
    {
        if self.header.format != WeightFormat::F32 {
            return Err(WeightsError::WrongFormat);
        }
        let policy = Policy::new(self.header.dims, params)?;
        Ok(self.wrap(policy))
    }

    /// The int8 model over words the caller copied with [`Blob::copy_int8_words`].
    ///
    /// # Errors
    /// [`WeightsError::WrongFormat`] for an f32 blob; [`WeightsError::ParamCount`] /
    /// [`WeightsError::BadWeight`] if `words` is not a valid int8 parameter set.
    pub fn model_with_int8<'p>(&self, words: &'p [u32]) -> Result<Model<'p>, WeightsError>
    where
        'a: 'p,
    {
        if self.header.format != WeightFormat::Int8 {
            return Err(WeightsError::WrongFormat);
        }
        let policy = Policy::new_int8(self.header.dims, words)?;
        Ok(self.wrap(policy))
    }

    fn wrap<'p>(&self, policy: Policy<'p>) -> Model<'p>
    where
        'a: 'p,
    {
        Model {
            policy,
            tokens: self.tokens,
            observation: self.header.observation(),
            header: self.header,
        }
    }
}

/// Bytes [`write_blob`] / [`write_blob_int8`] need for `header` (its format and
/// action count).
pub fn blob_len(header: &BlobHeader) -> usize {
    let head = header_len(&BlobHeader {
        version: FORMAT_VERSION,
        ..*header
    });
    sections_len(head, header) + CHECKSUM_BYTES
}

fn sections_len(head: usize, header: &BlobHeader) -> usize {
    let vocab = Vocabulary::byte_len(header.dims.actions());
    let params = header.param_bytes();
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

/// Writes the vocabulary, padding and parameter fields after a header of `head`
/// bytes already in `out`; `params` writes the parameter bytes. Returns the end.
fn write_sections(
    head: usize,
    header: &BlobHeader,
    vocabulary: &Vocabulary,
    out: &mut [u8],
    params: impl FnOnce(&mut [u8]),
) -> Result<usize, WeightsError> {
    let k = header.dims.actions();
    let mut at = head;
    let vlen = Vocabulary::byte_len(k);
    at += write_varint(vlen as u64, out.get_mut(at..).unwrap_or(&mut []))?;
    let vdst = out
        .get_mut(at..at + vlen)
        .ok_or(WeightsError::OutputTooShort)?;
    vocabulary
        .write_bytes(vdst)
        .map_err(|_| WeightsError::OutputTooShort)?;
    at += vlen;
    let plen = header.param_bytes();
    let pad = padding_for(at, plen);
    at += write_varint(pad as u64, out.get_mut(at..).unwrap_or(&mut []))?;
    out.get_mut(at..at + pad)
        .ok_or(WeightsError::OutputTooShort)?
        .fill(0);
    at += pad;
    at += write_varint(plen as u64, out.get_mut(at..).unwrap_or(&mut []))?;
    params(
        out.get_mut(at..at + plen)
            .ok_or(WeightsError::OutputTooShort)?,
    );
    Ok(at + plen)
}

/// Writes a version-2 blob of `header`'s format into `out`; returns its length.
fn write_v2(
    header: &BlobHeader,
    vocabulary: &Vocabulary,
    out: &mut [u8],
    params: impl FnOnce(&mut [u8]),
) -> Result<usize, WeightsError> {
    let header = BlobHeader {
        version: FORMAT_VERSION,
        ..*header
    };
    header.check()?;
    if vocabulary.len() != header.dims.actions() {
        return Err(WeightsError::Vocabulary);
    }
    let total = blob_len(&header);
    if out.len() < total {
        return Err(WeightsError::OutputTooShort);
    }
    let head = postcard::to_slice(&header, out)
        .map_err(|_| WeightsError::OutputTooShort)?
        .len();
    let end = write_sections(head, &header, vocabulary, out, params)?;
    let crc = crc32c(&out[..end]);
    out.get_mut(end..end + CHECKSUM_BYTES)
        .ok_or(WeightsError::OutputTooShort)?
        .copy_from_slice(&crc.to_le_bytes());
    Ok(end + CHECKSUM_BYTES)
}

/// Writes an f32 blob (format version 2, with its checksum) into `out`; returns its
/// length ([`blob_len`]).
///
/// # Errors
/// [`WeightsError::OutputTooShort`]; [`WeightsError::WrongFormat`] unless the header
/// says f32; [`WeightsError::Architecture`], [`WeightsError::ParamCount`],
/// [`WeightsError::Vocabulary`] when the pieces do not fit together.
pub fn write_blob(
    header: &BlobHeader,
    vocabulary: &Vocabulary,
    params: &[f32],
    out: &mut [u8],
) -> Result<usize, WeightsError> {
    if header.format != WeightFormat::F32 {
        return Err(WeightsError::WrongFormat);
    }
    if params.len() != ParamLayout::new(header.dims.actions()).total() {
        return Err(WeightsError::ParamCount);
    }
    write_v2(header, vocabulary, out, |dst| {
        for (c, w) in dst.chunks_exact_mut(4).zip(params) {
            c.copy_from_slice(&w.to_le_bytes());
        }
    })
}

/// Writes an int8 blob (format version 2, with its checksum) from its parameter
/// words ([`crate::quant::QuantLayout`]); returns its length ([`blob_len`]). The words
/// are validated by [`Blob::model`], not here.
///
/// # Errors
/// As [`write_blob`], for an int8 header and [`crate::quant::param_words`] words.
pub fn write_blob_int8(
    header: &BlobHeader,
    vocabulary: &Vocabulary,
    words: &[u32],
    out: &mut [u8],
) -> Result<usize, WeightsError> {
    if header.format != WeightFormat::Int8 {
        return Err(WeightsError::WrongFormat);
    }
    if words.len() != crate::quant::param_words(header.dims.actions()) {
        return Err(WeightsError::ParamCount);
    }
    write_v2(header, vocabulary, out, |dst| {
        for (c, w) in dst.chunks_exact_mut(4).zip(words) {
            c.copy_from_slice(&w.to_le_bytes());
        }
    })
}

/// Bytes of a version-1 blob for `header` ([`write_blob_v1`]).
pub fn blob_len_v1(header: &BlobHeader) -> usize {
    sections_len(header_len_v1(header), header)
}

fn header_v1(header: &BlobHeader) -> HeaderV1 {
    HeaderV1 {
        magic: header.magic,
        version: LEGACY_FORMAT_VERSION,
        ego_features: header.ego_features,
        partner_features: header.partner_features,
        road_features: header.road_features,
        hidden: header.hidden,
        fused: header.fused,
        dims: header.dims,
        radius: header.radius,
        trained_steps: header.trained_steps,
    }
}

fn header_len_v1(header: &BlobHeader) -> usize {
    let mut buf = [0u8; 96];
    postcard::to_slice(&header_v1(header), &mut buf).map_or(0, |b| b.len())
}

/// Writes a version-1 f32 blob (no weight format, no checksum), as builds before
/// format version 2 wrote it: for compatibility tests and for readers that predate
/// version 2.
///
/// # Errors
/// As [`write_blob`].
pub fn write_blob_v1(
    header: &BlobHeader,
    vocabulary: &Vocabulary,
    params: &[f32],
    out: &mut [u8],
) -> Result<usize, WeightsError> {
    let header = BlobHeader {
        version: LEGACY_FORMAT_VERSION,
        format: WeightFormat::F32,
        ..*header
    };
    header.check()?;
    if vocabulary.len() != header.dims.actions() {
        return Err(WeightsError::Vocabulary);
    }
    if params.len() != ParamLayout::new(header.dims.actions()).total() {
        return Err(WeightsError::ParamCount);
    }
    if out.len() < blob_len_v1(&header) {
        return Err(WeightsError::OutputTooShort);
    }
    let head = postcard::to_slice(&header_v1(&header), out)
        .map_err(|_| WeightsError::OutputTooShort)?
        .len();
    write_sections(head, &header, vocabulary, out, |dst| {
        for (c, w) in dst.chunks_exact_mut(4).zip(params) {
            c.copy_from_slice(&w.to_le_bytes());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::init_params;
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    fn f32_parts(seed: u64) -> (BlobHeader, Vocabulary, Vec<f32>) {
        let dims = PolicyDims::default();
        let mut params = vec![0.0f32; param_count(200)];
        init_params(&dims, seed, &mut params).unwrap();
        (
            BlobHeader::new(dims, 50.0, 0),
            Vocabulary::kinematic_grid(200).unwrap(),
            params,
        )
    }

    /// Bytes in 4-aligned storage (the words, and the byte length).
    fn aligned(bytes: &[u8]) -> (Vec<u32>, usize) {
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        (words, bytes.len())
    }

    fn view(words: &[u32], len: usize) -> &[u8] {
        &bytemuck::cast_slice(words)[..len]
    }

    /// A version-2 f32 blob whose parameter bytes start 4-aligned in memory.
    fn aligned_blob(seed: u64) -> (Vec<u32>, usize) {
        let (header, vocab, params) = f32_parts(seed);
        let len = blob_len(&header);
        let mut bytes = vec![0u8; len];
        assert_eq!(
            write_blob(&header, &vocab, &params, &mut bytes).unwrap(),
            len
        );
        aligned(&bytes)
    }

    /// Rewrites the trailing checksum after an edit.
    fn reseal(bytes: &mut [u8]) {
        let n = bytes.len() - CHECKSUM_BYTES;
        let crc = crc32c(&bytes[..n]);
        bytes[n..].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        // Every length (the four-byte steps and the tail agree with the bytewise form).
        let data: Vec<u8> = (0..37u32).map(|i| (i * 97 + 13) as u8).collect();
        for n in 0..data.len() {
            let mut c = !0u32;
            for &b in &data[..n] {
                c ^= b as u32;
                for _ in 0..8 {
                    c = if c & 1 != 0 {
                        (c >> 1) ^ 0x82F6_3B78
                    } else {
                        c >> 1
                    };
                }
            }
            assert_eq!(crc32c(&data[..n]), !c, "length {n}");
        }
    }

    #[test]
    fn round_trip_in_place() {
        let (words, len) = aligned_blob(1);
        let bytes = view(&words, len);
        let blob = Blob::parse(bytes).unwrap();
        assert_eq!(blob.header().dims, PolicyDims::default());
        assert_eq!(blob.header().version, FORMAT_VERSION);
        assert_eq!(blob.format(), WeightFormat::F32);
        assert!(blob.checksum().is_some());
        let params = blob.params().unwrap();
        // In place: the slice points into the blob.
        let start = bytes.as_ptr() as usize;
        let p = params.as_ptr() as usize;
        assert!(p > start && p < start + len);
        let mut want = vec![0.0f32; param_count(200)];
        init_params(&PolicyDims::default(), 1, &mut want).unwrap();
        assert_eq!(params, &want[..]);
        assert_eq!(blob.int8_words(), Err(WeightsError::WrongFormat));
        let model = blob.model().unwrap();
        assert_eq!(model.policy.format(), WeightFormat::F32);
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
            checksum: [u8; 4],
        }
        let (words, len) = aligned_blob(2);
        let bytes = view(&words, len);
        let wire: Wire = postcard::from_bytes(bytes).unwrap();
        assert_eq!(wire.header.magic, MAGIC);
        assert_eq!(wire.header.format, WeightFormat::F32);
        assert_eq!(wire.vocabulary.len(), Vocabulary::byte_len(200));
        assert_eq!(wire.params.len(), 4 * 65_289);
        assert_eq!(
            (wire.params.as_ptr() as usize - bytes.as_ptr() as usize) % 4,
            0
        );
        assert_eq!(u32::from_le_bytes(wire.checksum), crc32c(&bytes[..len - 4]));
    }

    #[test]
    fn misaligned_blobs_are_copied_not_used_in_place() {
        let (words, len) = aligned_blob(3);
        let src = view(&words, len);
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
        let mut words = vec![0u32; 10];
        assert_eq!(
            blob.copy_int8_words(&mut words),
            Err(WeightsError::WrongFormat)
        );
    }

    /// Issue: a padding field one byte longer puts the parameters at an odd offset.
    /// Such a blob is refused by `parse` (it used to pass and fail later).
    #[test]
    fn parameters_off_the_4_byte_grid_are_refused_by_parse() {
        for v1 in [true, false] {
            let (header, vocab, params) = f32_parts(4);
            let mut bytes = if v1 {
                let mut b = vec![0u8; blob_len_v1(&header)];
                write_blob_v1(&header, &vocab, &params, &mut b).unwrap();
                b
            } else {
                let mut b = vec![0u8; blob_len(&header)];
                write_blob(&header, &vocab, &params, &mut b).unwrap();
                b
            };
            // The padding field follows the vocabulary: its length byte, then zeros.
            let head = if v1 {
                header_len_v1(&header)
            } else {
                header_len(&header)
            };
            let at =
                head + varint_len(Vocabulary::byte_len(200) as u64) + Vocabulary::byte_len(200);
            let pad = bytes[at] as usize;
            assert!(pad < 4);
            bytes[at] = pad as u8 + 1;
            bytes.insert(at + 1, 0);
            if !v1 {
                reseal(&mut bytes);
            }
            let (w, n) = aligned(&bytes);
            assert_eq!(
                Blob::parse(view(&w, n)).unwrap_err(),
                WeightsError::UnalignedParams,
                "v1 {v1}"
            );
        }
    }

    #[test]
    fn version_1_blobs_still_load_without_a_checksum() {
        let (header, vocab, params) = f32_parts(5);
        let mut old = vec![0u8; blob_len_v1(&header)];
        let n = write_blob_v1(&header, &vocab, &params, &mut old).unwrap();
        assert_eq!(n, old.len());
        let (w, n) = aligned(&old);
        let blob = Blob::parse(view(&w, n)).unwrap();
        assert_eq!(blob.header().version, LEGACY_FORMAT_VERSION);
        assert_eq!(blob.checksum(), None);
        assert_eq!(blob.params().unwrap(), &params[..]);
        // The same network as the version-2 blob of the same parameters.
        let (w2, n2) = aligned_blob(5);
        let b2 = Blob::parse(view(&w2, n2)).unwrap();
        let obs = vec![0.01f32; 2984];
        let (mut l1, mut l2) = (vec![0.0; 200], vec![0.0; 200]);
        let v1 = blob.model().unwrap().policy.forward(&obs, &mut l1).unwrap();
        let v2 = b2.model().unwrap().policy.forward(&obs, &mut l2).unwrap();
        assert_eq!((l1, v1.to_bits()), (l2, v2.to_bits()));
    }

    #[test]
    fn every_corruption_is_an_error() {
        let (words, len) = aligned_blob(4);
        let good: Vec<u8> = view(&words, len).to_vec();
        // Every truncation.
        for cut in [0, 3, 8, 9, 20, 40, len / 2, len - 5, len - 4, len - 1] {
            let e = Blob::parse(&good[..cut]).unwrap_err();
            assert!(
                matches!(e, WeightsError::Truncated | WeightsError::ParamCount),
                "cut {cut}: {e:?}"
            );
        }
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(Blob::parse(&bad).unwrap_err(), WeightsError::BadMagic);
        for v in [0u8, 3, 9] {
            let mut bad = good.clone();
            bad[8] = v;
            assert_eq!(
                Blob::parse(&bad).unwrap_err(),
                WeightsError::UnsupportedVersion
            );
        }
        let mut bad = good.clone();
        bad[9] = 7; // the weight format code
        reseal(&mut bad);
        assert_eq!(
            Blob::parse(&bad).unwrap_err(),
            WeightsError::UnsupportedFormat
        );
        let mut bad = good.clone();
        bad.push(0);
        assert_eq!(Blob::parse(&bad).unwrap_err(), WeightsError::TrailingBytes);
        // One flipped bit anywhere in the content is caught by the checksum.
        let mut rng = crate::math::Rng::new(9);
        for _ in 0..200 {
            let mut bad = good.clone();
            let at = 40 + rng.below((len - 44) as u32) as usize;
            bad[at] ^= 1 << rng.below(8);
            assert_eq!(Blob::parse(&bad).unwrap_err(), WeightsError::BadChecksum);
        }
        let mut bad = good.clone();
        bad[len - 1] ^= 0x80;
        assert_eq!(Blob::parse(&bad).unwrap_err(), WeightsError::BadChecksum);
        // A NaN weight (the last one) with a matching checksum.
        let mut bad = good.clone();
        bad[len - 8..len - 4].copy_from_slice(&f32::NAN.to_le_bytes());
        reseal(&mut bad);
        assert_eq!(Blob::parse(&bad).unwrap_err(), WeightsError::BadWeight);
        // A NaN in the vocabulary.
        let head = header_len(&BlobHeader::new(PolicyDims::default(), 50.0, 0));
        let mut bad = good.clone();
        let at = head + varint_len(Vocabulary::byte_len(200) as u64) + 4;
        bad[at..at + 4].copy_from_slice(&f32::INFINITY.to_le_bytes());
        reseal(&mut bad);
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
        for version in [1u8, 2] {
            for _ in 0..2000 {
                let n = 9 + rng.below(200) as usize;
                let mut junk: Vec<u8> = (0..n).map(|_| rng.next_u32() as u8).collect();
                junk[..8].copy_from_slice(&MAGIC);
                junk[8] = version;
                assert!(Blob::parse(&junk).is_err());
            }
        }
    }

    #[test]
    fn writer_checks_its_inputs() {
        let (header, vocab, params) = f32_parts(6);
        let header = BlobHeader {
            trained_steps: 7,
            ..header
        };
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
        assert_eq!(
            write_blob(
                &header.with_format(WeightFormat::Int8),
                &vocab,
                &params,
                &mut out
            ),
            Err(WeightsError::WrongFormat)
        );
        let n = write_blob(&header, &vocab, &params, &mut out).unwrap();
        assert_eq!(n, out.len());
        let (w, n) = aligned(&out);
        let blob = Blob::parse(view(&w, n)).unwrap();
        assert_eq!(blob.header().trained_steps, 7);
    }

    #[test]
    fn int8_blobs_round_trip_and_load_either_way() {
        let dims = PolicyDims::default();
        let words = crate::quant::tests::random_words(dims.actions(), 3);
        let header = BlobHeader::new(dims, 50.0, 11).with_format(WeightFormat::Int8);
        let vocab = Vocabulary::kinematic_grid(200).unwrap();
        let len = blob_len(&header);
        let mut bytes = vec![0u8; len];
        assert_eq!(
            write_blob_int8(&header, &vocab, &words, &mut bytes).unwrap(),
            len
        );
        assert_eq!(
            write_blob_int8(&header, &vocab, &words[1..], &mut bytes),
            Err(WeightsError::ParamCount)
        );
        let (w, n) = aligned(&bytes);
        let blob = Blob::parse(view(&w, n)).unwrap();
        assert_eq!(blob.format(), WeightFormat::Int8);
        assert_eq!(blob.int8_words().unwrap(), &words[..]);
        assert_eq!(blob.params(), Err(WeightsError::WrongFormat));
        let model = blob.model().unwrap();
        assert_eq!(model.policy.format(), WeightFormat::Int8);
        assert_eq!(model.policy.int8_words().len(), words.len());
        assert!(model.policy.params().is_empty());
        // At most a third of the f32 blob.
        assert!(
            3 * len <= blob_len(&BlobHeader::new(dims, 50.0, 0)),
            "{len}"
        );
        // Misaligned in memory: copied words give the same model.
        let mut shifted = vec![0u8; len + 1];
        shifted[1..].copy_from_slice(&bytes);
        let moved = Blob::parse(&shifted[1..]).unwrap();
        assert_eq!(moved.model().unwrap_err(), WeightsError::Misaligned);
        let mut copy = vec![0u32; words.len()];
        moved.copy_int8_words(&mut copy).unwrap();
        let m2 = moved.model_with_int8(&copy).unwrap();
        let obs = vec![0.02f32; 2984];
        let (mut a, mut b) = (vec![0.0; 200], vec![0.0; 200]);
        model.policy.forward(&obs, &mut a).unwrap();
        m2.policy.forward(&obs, &mut b).unwrap();
        assert_eq!(a, b);
        // An out-of-bounds multiplier (a valid checksum) is refused when the model is
        // built.
        let mut bad = words.clone();
        let lay = crate::quant::QuantLayout::new(200);
        bad[lay.head_m] = i32::MAX as u32;
        let mut bytes = vec![0u8; len];
        write_blob_int8(&header, &vocab, &bad, &mut bytes).unwrap();
        let (w, n) = aligned(&bytes);
        let blob = Blob::parse(view(&w, n)).unwrap();
        assert_eq!(blob.model().unwrap_err(), WeightsError::BadWeight);
    }
}
