//! The C ABI (feature `ffi`): load a policy from a blob, build observations, run the
//! network, pick and apply tokens. The header is `include/spacer.h` (generated with
//! cbindgen from this file; a test fails when it is stale); its preamble states the
//! conventions for C and C++ callers:
//!
//! - **ABI version**: [`SPACER_ABI_VERSION`] in the header, [`spacer_abi_version`] in the
//!   library; a program checks they agree once at start-up.
//! - **Errors**: every function returns a [`SpacerStatus`]; `SPACER_STATUS_OK` is 0. Null
//!   pointers, misaligned pointers, short buffers and bad values are errors, never
//!   undefined behaviour: the library checks every pointer and length it is given.
//! - **Memory**: nothing is allocated. A [`SpacerPolicy`] is a fixed-size opaque struct
//!   the caller owns (on the stack, in a global, in a C++ member). It *borrows* the blob:
//!   keep the blob alive and unmodified while the policy is in use. The blob must be
//!   4-byte aligned (`malloc`, `new[]` of `float`, `std::vector<uint32_t>`, a
//!   linker-placed array all are): its parameters are used in place.
//! - **Threads**: functions are reentrant; a [`SpacerPolicy`] is read-only after
//!   [`spacer_policy_load`] and may be shared between threads.
//! - Structs that cross the boundary hold only plain numbers (`float`, `uint8_t`,
//!   `uint16_t`, `uint32_t`): enums and flags arrive as integers and are validated.
//! - Both weight formats (f32, int8) load through the same functions;
//!   [`SpacerPolicyInfo`] reports which.

//! # Safety
//!
//! This module is the crate's only `unsafe` code: dereferencing the raw pointers C
//! passes in, and storing a [`Model`] in the caller's opaque storage. Every pointer is
//! checked for null and alignment before use, lengths come with every buffer, and the
//! opaque storage's size and alignment are checked at compile time. The lifetime of the
//! borrowed blob is the caller's contract (documented on [`spacer_policy_load`]). The
//! C++ test in `tests/` exercises every function, null pointers and short buffers
//! included.

#![allow(unsafe_code)]

use core::ffi::c_char;
use core::mem::{align_of, size_of};

use crate::agent::{AgentKind, AgentState};
use crate::geometry::{Pose, Vec2};
use crate::kinematics::apply_token;
use crate::math::Rng;
use crate::observation::{
    AsPartnerView, AsRoadSegment, EgoView, ObservationError, PartnerView, RoadKind, RoadSegment,
    build_from, polyline_segments,
};
use crate::policy::{PolicyError, Selection, param_count};
use crate::weights::{Blob, Model, WeightsError};

/// Version of this C ABI (structs, functions, status codes). It changes whenever a
/// struct's layout or a function's meaning changes; a program should check
/// `spacer_abi_version() == SPACER_ABI_VERSION` once at start-up. Version 2 added the
/// int8 weight format, the blob checksum status, `spacer_abi_version` and the
/// `format`, `blob_version` and `param_bytes` fields of [`SpacerPolicyInfo`].
pub const SPACER_ABI_VERSION: u32 = 2;

/// 64-bit words of a [`SpacerPolicy`].
pub const SPACER_POLICY_WORDS: usize = 192;

/// A loaded policy: opaque storage the caller owns. Initialise it with
/// [`spacer_policy_load`].
#[repr(C)]
pub struct SpacerPolicy {
    /// Opaque; do not touch.
    pub opaque: [u64; SPACER_POLICY_WORDS],
}

// The last word holds the load marker, so the model must fit in front of it.
const _: () = assert!(size_of::<LoadedPolicy>() < size_of::<SpacerPolicy>() - 8);
const _: () = assert!(align_of::<LoadedPolicy>() <= align_of::<SpacerPolicy>());

/// What [`SpacerPolicy`] holds. Its last word is a marker (the first word XOR
/// [`LOADED`]), so that storage [`spacer_policy_load`] did not fill is refused.
struct LoadedPolicy {
    model: Model<'static>,
}

const LOADED: u64 = 0x5350_4143_4552_504c; // "SPACERPL"

/// Status codes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpacerStatus {
    /// Success.
    Ok = 0,
    /// A required pointer is null.
    NullPointer = 1,
    /// A buffer is shorter than required (or has the wrong length).
    BufferLength = 2,
    /// The blob is truncated.
    BlobTruncated = 3,
    /// The blob is not a spacer weights blob.
    BlobBadMagic = 4,
    /// The blob has an unsupported format version.
    BlobVersion = 5,
    /// The blob's architecture is not this library's.
    BlobArchitecture = 6,
    /// The blob's vocabulary is malformed.
    BlobVocabulary = 7,
    /// The blob's parameters are malformed (count, NaN, huge values).
    BlobParams = 8,
    /// The blob is not 4-byte aligned.
    Misaligned = 9,
    /// The policy storage was not initialised by `spacer_policy_load`.
    NotLoaded = 10,
    /// An observation holds NaN, infinity or a huge value.
    BadObservation = 11,
    /// The ego pose is not finite.
    BadEgo = 12,
    /// An argument is out of range (agent kind, token, road kind, selection mode,
    /// temperature).
    BadArgument = 13,
    /// The blob's checksum does not match its bytes (a corrupt blob).
    BlobChecksum = 14,
    /// The blob's weight format is unknown to this library.
    BlobFormat = 15,
}

static MESSAGES: [&str; 16] = [
    "ok\0",
    "a required pointer is null\0",
    "a buffer has the wrong length\0",
    "weights blob is truncated\0",
    "not a spacer weights blob\0",
    "unsupported weights format version\0",
    "blob architecture does not match this library\0",
    "blob vocabulary is malformed\0",
    "blob parameters are malformed\0",
    "blob is not 4-byte aligned\0",
    "policy storage not initialised by spacer_policy_load\0",
    "observation holds NaN, infinity or a huge value\0",
    "ego pose is not finite\0",
    "an argument is out of range\0",
    "weights blob checksum mismatch (corrupt blob)\0",
    "unknown weight format\0",
];

impl From<WeightsError> for SpacerStatus {
    fn from(e: WeightsError) -> Self {
        match e {
            WeightsError::Truncated | WeightsError::TrailingBytes => SpacerStatus::BlobTruncated,
            WeightsError::BadMagic => SpacerStatus::BlobBadMagic,
            WeightsError::UnsupportedVersion => SpacerStatus::BlobVersion,
            WeightsError::Architecture => SpacerStatus::BlobArchitecture,
            WeightsError::Vocabulary => SpacerStatus::BlobVocabulary,
            WeightsError::ParamCount | WeightsError::BadWeight | WeightsError::UnalignedParams => {
                SpacerStatus::BlobParams
            }
            WeightsError::Misaligned => SpacerStatus::Misaligned,
            WeightsError::OutputTooShort => SpacerStatus::BufferLength,
            WeightsError::BadChecksum => SpacerStatus::BlobChecksum,
            WeightsError::UnsupportedFormat | WeightsError::WrongFormat => SpacerStatus::BlobFormat,
        }
    }
}

impl From<PolicyError> for SpacerStatus {
    fn from(e: PolicyError) -> Self {
        match e {
            PolicyError::WrongObservationLength | PolicyError::WrongOutputLength => {
                SpacerStatus::BufferLength
            }
            PolicyError::BadObservation => SpacerStatus::BadObservation,
            PolicyError::BadSampling | PolicyError::WrongFormat => SpacerStatus::BadArgument,
            PolicyError::BadDims | PolicyError::WrongParamCount | PolicyError::BadWeight => {
                SpacerStatus::BlobParams
            }
        }
    }
}

impl From<ObservationError> for SpacerStatus {
    fn from(e: ObservationError) -> Self {
        match e {
            ObservationError::WrongLength | ObservationError::OutputTooShort => {
                SpacerStatus::BufferLength
            }
            ObservationError::BadConfig => SpacerStatus::BlobArchitecture,
            ObservationError::NonFiniteEgo => SpacerStatus::BadEgo,
        }
    }
}

/// What a loaded policy reads and produces.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SpacerPolicyInfo {
    /// Tokens per agent kind (the action count).
    pub actions: u32,
    /// Floats per observation.
    pub observation_len: u32,
    /// Partner slots.
    pub max_partners: u32,
    /// Road slots.
    pub max_road_segments: u32,
    /// Parameters of the architecture (65,289 at 200 actions), whatever the format.
    pub param_count: u32,
    /// Observation radius (metres).
    pub radius: f32,
    /// Environment steps of training behind the weights.
    pub trained_steps: u64,
    /// Weight format: 0 f32, 1 int8 (int8 weights, integer arithmetic).
    pub format: u32,
    /// Format version of the blob the policy was loaded from (1 or 2; 1 has no
    /// checksum).
    pub blob_version: u32,
    /// Bytes of parameters the forward pass reads (in place, from the blob).
    pub param_bytes: u32,
}

/// A world-frame kinematic state.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SpacerAgentState {
    /// x (m).
    pub x: f32,
    /// y (m).
    pub y: f32,
    /// Heading (rad, counter-clockwise from +x).
    pub yaw: f32,
    /// Velocity x (m/s).
    pub vx: f32,
    /// Velocity y (m/s).
    pub vy: f32,
}

impl SpacerAgentState {
    fn to_core(self) -> AgentState {
        AgentState::new(
            Pose::new(self.x, self.y, self.yaw),
            Vec2::new(self.vx, self.vy),
        )
    }
    fn from_core(s: &AgentState) -> Self {
        Self {
            x: s.pose.x,
            y: s.pose.y,
            yaw: s.pose.yaw,
            vx: s.velocity.x,
            vy: s.velocity.y,
        }
    }
}

/// The observing agent.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SpacerEgo {
    /// x (m, world).
    pub x: f32,
    /// y (m, world).
    pub y: f32,
    /// Heading (rad).
    pub yaw: f32,
    /// Speed (m/s).
    pub speed: f32,
    /// Box length (m).
    pub length: f32,
    /// Box width (m).
    pub width: f32,
    /// Goal x (m, world).
    pub goal_x: f32,
    /// Goal y (m, world).
    pub goal_y: f32,
    /// 1 if the agent has collided, else 0.
    pub collided: u8,
    /// 1 to show the goal, 0 to hide it (goal dropout).
    pub goal_visible: u8,
}

/// Another agent.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SpacerPartner {
    /// x (m, world).
    pub x: f32,
    /// y (m, world).
    pub y: f32,
    /// Heading (rad).
    pub yaw: f32,
    /// Speed (m/s).
    pub speed: f32,
    /// Box length (m).
    pub length: f32,
    /// Box width (m).
    pub width: f32,
}

impl AsPartnerView for SpacerPartner {
    fn partner_view(&self) -> PartnerView {
        PartnerView {
            pose: Pose::new(self.x, self.y, self.yaw),
            speed: self.speed,
            length: self.length,
            width: self.width,
        }
    }
}

/// A road segment (see [`spacer_polyline_segments`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SpacerRoadSegment {
    /// Midpoint x (m, world).
    pub x: f32,
    /// Midpoint y (m, world).
    pub y: f32,
    /// Direction (rad).
    pub yaw: f32,
    /// Half length (m).
    pub half_length: f32,
    /// Half width (m).
    pub half_width: f32,
    /// Height (m), 0 when unknown.
    pub height: f32,
    /// Kind: 0 none, 1 road edge, 2 road line, 3 lane, 4 crosswalk, 5 speed bump,
    /// 6 stop sign. Other values read as 0.
    pub kind: u8,
}

impl AsRoadSegment for SpacerRoadSegment {
    fn road_segment(&self) -> RoadSegment {
        RoadSegment {
            center: Vec2::new(self.x, self.y),
            yaw: self.yaw,
            half_length: self.half_length,
            half_width: self.half_width,
            height: self.height,
            kind: RoadKind::from_code(self.kind),
        }
    }
}

impl SpacerRoadSegment {
    fn from_core(r: &RoadSegment) -> Self {
        Self {
            x: r.center.x,
            y: r.center.y,
            yaw: r.yaw,
            half_length: r.half_length,
            half_width: r.half_width,
            height: r.height,
            kind: r.kind as u8,
        }
    }
}

/// A 2D point.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SpacerPoint {
    /// x (m).
    pub x: f32,
    /// y (m).
    pub y: f32,
}

/// How [`spacer_policy_act`] picks a token.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SpacerSelection {
    /// 0: argmax; 1: sample.
    pub mode: u8,
    /// Sample among this many most likely tokens (0 = all).
    pub top_k: u16,
    /// Softmax temperature when sampling (> 0).
    pub temperature: f32,
}

/// What [`spacer_policy_act`] chose.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SpacerAction {
    /// The token.
    pub token: u16,
    /// Its log-probability under the policy.
    pub log_prob: f32,
    /// The critic's value.
    pub value: f32,
}

/// A slice from a C pointer and length; `None` for a null pointer (an empty slice may
/// come with any pointer, null included).
///
/// # Safety
/// `ptr` must point to `len` readable, initialised `T` (the caller's contract).
unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> Option<&'a [T]> {
    if len == 0 {
        return Some(&[]);
    }
    if ptr.is_null() || !(ptr as usize).is_multiple_of(align_of::<T>()) {
        return None;
    }
    // SAFETY: non-null, aligned, and `len` elements readable per the caller's contract.
    Some(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// # Safety
/// As [`slice`], writable.
unsafe fn slice_mut<'a, T>(ptr: *mut T, len: usize) -> Option<&'a mut [T]> {
    if len == 0 {
        return Some(&mut []);
    }
    if ptr.is_null() || !(ptr as usize).is_multiple_of(align_of::<T>()) {
        return None;
    }
    // SAFETY: non-null, aligned, and `len` elements writable per the caller's contract.
    Some(unsafe { core::slice::from_raw_parts_mut(ptr, len) })
}

/// # Safety
/// `ptr` null or pointing to a readable `T`.
unsafe fn get<'a, T>(ptr: *const T) -> Option<&'a T> {
    if !(ptr as usize).is_multiple_of(align_of::<T>()) {
        return None;
    }
    // SAFETY: null is handled by `as_ref`; alignment checked; readable per contract.
    unsafe { ptr.as_ref() }
}

/// # Safety
/// `ptr` null or pointing to a writable `T`.
unsafe fn get_mut<'a, T>(ptr: *mut T) -> Option<&'a mut T> {
    if !(ptr as usize).is_multiple_of(align_of::<T>()) {
        return None;
    }
    // SAFETY: as `get`, writable.
    unsafe { ptr.as_mut() }
}

/// The model in a loaded policy.
///
/// # Safety
/// `p` null or pointing to a `SpacerPolicy`.
unsafe fn model<'a>(p: *const SpacerPolicy) -> Result<&'a Model<'static>, SpacerStatus> {
    // SAFETY: the caller's contract; null and alignment are checked by `get`.
    let storage = unsafe { get(p) }.ok_or(SpacerStatus::NullPointer)?;
    let loaded = storage.opaque.as_ptr() as *const LoadedPolicy;
    // Check the marker as plain words first, so garbage is never read as a Model.
    let marker = storage.opaque[0] ^ storage.opaque[SPACER_POLICY_WORDS - 1];
    if marker != LOADED {
        return Err(SpacerStatus::NotLoaded);
    }
    // SAFETY: the markers match only after `spacer_policy_load` wrote a LoadedPolicy
    // here (size and alignment checked at compile time).
    Ok(unsafe { &(*loaded).model })
}

fn status(r: Result<(), SpacerStatus>) -> SpacerStatus {
    match r {
        Ok(()) => SpacerStatus::Ok,
        Err(s) => s,
    }
}

/// Loads a policy from a weights blob into `out`.
///
/// The blob is validated completely (magic, version, architecture, lengths, every
/// value finite) and then *borrowed*: it must stay alive and unchanged as long as `out`
/// is used, and be 4-byte aligned.
///
/// # Safety
/// `out` must point to a writable `SpacerPolicy`; `blob` to `blob_len` readable bytes
/// that outlive every use of `out`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spacer_policy_load(
    out: *mut SpacerPolicy,
    blob: *const u8,
    blob_len: usize,
) -> SpacerStatus {
    status((|| {
        // SAFETY: the caller's contract; null/alignment checked.
        let out = unsafe { get_mut(out) }.ok_or(SpacerStatus::NullPointer)?;
        out.opaque = [0; SPACER_POLICY_WORDS];
        if blob.is_null() {
            return Err(SpacerStatus::NullPointer);
        }
        // SAFETY: `blob_len` readable bytes that outlive `out` (the caller's contract,
        // which is what makes the 'static lifetime sound).
        let bytes: &'static [u8] = unsafe { core::slice::from_raw_parts(blob, blob_len) };
        let model = Blob::parse(bytes)?.model()?;
        let loaded = LoadedPolicy { model };
        // SAFETY: the storage is large and aligned enough (compile-time asserts) and
        // exclusively borrowed.
        unsafe { core::ptr::write(out.opaque.as_mut_ptr() as *mut LoadedPolicy, loaded) };
        // The marker lives in the first and last words: both must be ours.
        let first = out.opaque[0];
        out.opaque[SPACER_POLICY_WORDS - 1] = first ^ LOADED;
        Ok(())
    })())
}

/// Describes a loaded policy.
///
/// # Safety
/// `policy` points to a `SpacerPolicy`, `out` to a writable `SpacerPolicyInfo`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spacer_policy_info(
    policy: *const SpacerPolicy,
    out: *mut SpacerPolicyInfo,
) -> SpacerStatus {
    status((|| {
        // SAFETY: the caller's contract; checked inside.
        let m = unsafe { model(policy) }?;
        // SAFETY: as above.
        let out = unsafe { get_mut(out) }.ok_or(SpacerStatus::NullPointer)?;
        let d = m.policy.dims();
        *out = SpacerPolicyInfo {
            actions: d.actions as u32,
            observation_len: d.observation_len() as u32,
            max_partners: d.max_partners as u32,
            max_road_segments: d.max_road_segments as u32,
            param_count: param_count(d.actions()) as u32,
            radius: m.observation.radius,
            trained_steps: m.header.trained_steps,
            format: m.policy.format() as u32,
            blob_version: m.header.version as u32,
            param_bytes: m.policy.param_bytes() as u32,
        };
        Ok(())
    })())
}

/// Builds the observation of `ego` among `partners` and `roads` (any number, any
/// order: the nearest within the policy's radius are kept) into `out`, which must hold
/// exactly `observation_len` floats.
///
/// # Safety
/// Pointers to readable arrays of the given lengths (null allowed for empty arrays);
/// `out` writable for `out_len` floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spacer_observation_build(
    policy: *const SpacerPolicy,
    ego: *const SpacerEgo,
    partners: *const SpacerPartner,
    partners_len: usize,
    roads: *const SpacerRoadSegment,
    roads_len: usize,
    out: *mut f32,
    out_len: usize,
) -> SpacerStatus {
    status((|| {
        // SAFETY (all four): the caller's contract; null/alignment checked.
        let m = unsafe { model(policy) }?;
        let ego = unsafe { get(ego) }.ok_or(SpacerStatus::NullPointer)?;
        let partners = unsafe { slice(partners, partners_len) }.ok_or(SpacerStatus::NullPointer)?;
        let roads = unsafe { slice(roads, roads_len) }.ok_or(SpacerStatus::NullPointer)?;
        let out = unsafe { slice_mut(out, out_len) }.ok_or(SpacerStatus::NullPointer)?;
        let view = EgoView {
            pose: Pose::new(ego.x, ego.y, ego.yaw),
            speed: ego.speed,
            length: ego.length,
            width: ego.width,
            goal: Vec2::new(ego.goal_x, ego.goal_y),
            collided: ego.collided != 0,
            goal_visible: ego.goal_visible != 0,
        };
        build_from(&m.observation, &view, partners, roads, out)?;
        Ok(())
    })())
}

/// Turns a polyline into road segments (near-collinear points dropped, half-width
/// 0.1 m); writes at most `out_cap` and stores how many in `written`. Long polylines
/// are processed 64 points at a time, so every 63rd point is kept as a segment end.
///
/// # Safety
/// `points` readable for `points_len`; `out` writable for `out_cap`; `written` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spacer_polyline_segments(
    points: *const SpacerPoint,
    points_len: usize,
    kind: u8,
    out: *mut SpacerRoadSegment,
    out_cap: usize,
    written: *mut usize,
) -> SpacerStatus {
    status((|| {
        // SAFETY (all three): the caller's contract; null/alignment checked.
        let points = unsafe { slice(points, points_len) }.ok_or(SpacerStatus::NullPointer)?;
        let out = unsafe { slice_mut(out, out_cap) }.ok_or(SpacerStatus::NullPointer)?;
        let written = unsafe { get_mut(written) }.ok_or(SpacerStatus::NullPointer)?;
        if kind as usize >= RoadKind::COUNT {
            return Err(SpacerStatus::BadArgument);
        }
        *written = 0;
        // Convert in fixed chunks: no allocation, any polyline length.
        const CHUNK: usize = 64;
        let kind = RoadKind::from_code(kind);
        let mut pts = [Vec2::ZERO; CHUNK];
        let mut segs = [RoadSegment::default(); CHUNK];
        let mut start = 0usize;
        while start < points.len().max(1) {
            // Chunks overlap by one point so that consecutive pieces join.
            let end = (start + CHUNK).min(points.len());
            let n = end - start;
            for (p, q) in pts.iter_mut().zip(&points[start..end]) {
                *p = Vec2::new(q.x, q.y);
            }
            let made = polyline_segments(&pts[..n], kind, &mut segs)?;
            for s in &segs[..made] {
                let slot = out.get_mut(*written).ok_or(SpacerStatus::BufferLength)?;
                *slot = SpacerRoadSegment::from_core(s);
                *written += 1;
            }
            if end >= points.len() {
                break;
            }
            start = end - 1;
        }
        Ok(())
    })())
}

/// Runs the network on one observation: `actions` logits and the value.
///
/// # Safety
/// `obs` readable for `obs_len`; `logits` writable for `logits_len`; `value` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spacer_policy_forward(
    policy: *const SpacerPolicy,
    obs: *const f32,
    obs_len: usize,
    logits: *mut f32,
    logits_len: usize,
    value: *mut f32,
) -> SpacerStatus {
    status((|| {
        // SAFETY (all four): the caller's contract; null/alignment checked.
        let m = unsafe { model(policy) }?;
        let obs = unsafe { slice(obs, obs_len) }.ok_or(SpacerStatus::NullPointer)?;
        let logits = unsafe { slice_mut(logits, logits_len) }.ok_or(SpacerStatus::NullPointer)?;
        let value = unsafe { get_mut(value) }.ok_or(SpacerStatus::NullPointer)?;
        *value = m.policy.forward(obs, logits)?;
        Ok(())
    })())
}

/// Runs the network on `count` observations stored back to back (faster per agent
/// than `count` calls of [`spacer_policy_forward`]).
///
/// # Safety
/// `obs` readable for `count * observation_len`; `logits` writable for
/// `count * actions`; `values` writable for `count`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spacer_policy_forward_batch(
    policy: *const SpacerPolicy,
    count: usize,
    obs: *const f32,
    obs_len: usize,
    logits: *mut f32,
    logits_len: usize,
    values: *mut f32,
) -> SpacerStatus {
    status((|| {
        // SAFETY (all four): the caller's contract; null/alignment checked.
        let m = unsafe { model(policy) }?;
        let obs = unsafe { slice(obs, obs_len) }.ok_or(SpacerStatus::NullPointer)?;
        let logits = unsafe { slice_mut(logits, logits_len) }.ok_or(SpacerStatus::NullPointer)?;
        let values = unsafe { slice_mut(values, count) }.ok_or(SpacerStatus::NullPointer)?;
        m.policy.forward_batch(obs, logits, values)?;
        Ok(())
    })())
}

/// Runs the network and picks a token: argmax, or a sample (temperature, top-k) drawn
/// with the caller's generator state `rng_state` (any value; advanced in place, so the
/// caller controls reproducibility).
///
/// # Safety
/// `obs` readable for `obs_len`; `selection` readable; `rng_state` and `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spacer_policy_act(
    policy: *const SpacerPolicy,
    obs: *const f32,
    obs_len: usize,
    selection: *const SpacerSelection,
    rng_state: *mut u64,
    out: *mut SpacerAction,
) -> SpacerStatus {
    status((|| {
        // SAFETY (all five): the caller's contract; null/alignment checked.
        let m = unsafe { model(policy) }?;
        let obs = unsafe { slice(obs, obs_len) }.ok_or(SpacerStatus::NullPointer)?;
        let sel = unsafe { get(selection) }.ok_or(SpacerStatus::NullPointer)?;
        let state = unsafe { get_mut(rng_state) }.ok_or(SpacerStatus::NullPointer)?;
        let out = unsafe { get_mut(out) }.ok_or(SpacerStatus::NullPointer)?;
        let selection = match sel.mode {
            0 => Selection::Argmax,
            1 => Selection::Sample {
                temperature: sel.temperature,
                top_k: sel.top_k,
            },
            _ => return Err(SpacerStatus::BadArgument),
        };
        let mut rng = Rng::new(*state);
        let a = m.policy.act(obs, selection, &mut rng)?;
        *state = rng.state;
        *out = SpacerAction {
            token: a.token,
            log_prob: a.log_prob,
            value: a.value,
        };
        Ok(())
    })())
}

/// Applies token `token` of the policy's vocabulary to an agent of kind `kind`
/// (0 vehicle, 1 pedestrian, 2 cyclist) in state `from`: writes its states after
/// 0.1 s and 0.2 s into `out` (`out_len` must be at least 2).
///
/// # Safety
/// `from` readable; `out` writable for `out_len` states.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn spacer_apply_token(
    policy: *const SpacerPolicy,
    kind: u8,
    token: u16,
    from: *const SpacerAgentState,
    out: *mut SpacerAgentState,
    out_len: usize,
) -> SpacerStatus {
    status((|| {
        // SAFETY (all three): the caller's contract; null/alignment checked.
        let m = unsafe { model(policy) }?;
        let from = unsafe { get(from) }.ok_or(SpacerStatus::NullPointer)?;
        let out = unsafe { slice_mut(out, out_len) }.ok_or(SpacerStatus::NullPointer)?;
        if out.len() < 2 {
            return Err(SpacerStatus::BufferLength);
        }
        let kind = AgentKind::from_index(kind as usize).ok_or(SpacerStatus::BadArgument)?;
        let tok = m
            .tokens
            .get(kind, token as usize)
            .ok_or(SpacerStatus::BadArgument)?;
        let next = apply_token(&from.to_core(), &tok);
        for (o, s) in out.iter_mut().zip(next.iter()) {
            *o = SpacerAgentState::from_core(s);
        }
        Ok(())
    })())
}

/// A static, NUL-terminated English description of a status code.
#[unsafe(no_mangle)]
pub extern "C" fn spacer_status_message(status: i32) -> *const c_char {
    let i = usize::try_from(status).unwrap_or(usize::MAX);
    MESSAGES.get(i).unwrap_or(&"unknown status\0").as_ptr() as *const c_char
}

/// The newest weights format version the library reads and the one it writes (it
/// also reads version 1).
#[unsafe(no_mangle)]
pub extern "C" fn spacer_format_version() -> u32 {
    crate::weights::FORMAT_VERSION as u32
}

/// The ABI version the library was built with: compare it with [`SPACER_ABI_VERSION`]
/// from the header the caller was compiled against.
#[unsafe(no_mangle)]
pub extern "C" fn spacer_abi_version() -> u32 {
    SPACER_ABI_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{PolicyDims, init_params};
    use crate::tokenizer::Vocabulary;
    use crate::weights::{BlobHeader, blob_len, write_blob};
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    fn blob() -> Vec<u32> {
        let dims = PolicyDims::default();
        let header = BlobHeader::new(dims, 50.0, 0);
        let mut params = vec![0.0f32; param_count(200)];
        if cfg!(miri) {
            // The orthogonal initialisation (Gram-Schmidt over 65k parameters) takes
            // Miri longer than everything else here; any finite values exercise the
            // same pointers.
            for (i, p) in params.iter_mut().enumerate() {
                *p = ((i % 17) as f32 - 8.0) * 0.01;
            }
        } else {
            init_params(&dims, 1, &mut params).unwrap();
        }
        let vocab = Vocabulary::kinematic_grid(200).unwrap();
        let len = blob_len(&header);
        let mut words = vec![0u32; len.div_ceil(4)];
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
        write_blob(&header, &vocab, &params, bytes).unwrap();
        words.truncate(len.div_ceil(4));
        words
    }

    #[test]
    fn load_info_act_and_errors() {
        let words = blob();
        let bytes: &[u8] = bytemuck::cast_slice(&words);
        let len = blob_len(&BlobHeader::new(PolicyDims::default(), 50.0, 0));
        let mut p = SpacerPolicy {
            opaque: [0; SPACER_POLICY_WORDS],
        };
        unsafe {
            let mut info = SpacerPolicyInfo::default();
            assert_eq!(spacer_policy_info(&p, &mut info), SpacerStatus::NotLoaded);
            assert_eq!(
                spacer_policy_load(&mut p, core::ptr::null(), 10),
                SpacerStatus::NullPointer
            );
            assert_eq!(
                spacer_policy_load(&mut p, bytes.as_ptr(), 100),
                SpacerStatus::BlobTruncated
            );
            assert_eq!(
                spacer_policy_load(&mut p, bytes[1..].as_ptr(), len - 1),
                SpacerStatus::BlobBadMagic
            );
            assert_eq!(
                spacer_policy_load(&mut p, bytes.as_ptr(), len),
                SpacerStatus::Ok
            );
            assert_eq!(spacer_policy_info(&p, &mut info), SpacerStatus::Ok);
            assert_eq!(
                (info.actions, info.observation_len, info.param_count),
                (200, 2984, 65_289)
            );
            let ego = SpacerEgo {
                speed: 5.0,
                length: 4.5,
                width: 2.0,
                goal_x: 30.0,
                goal_visible: 1,
                ..Default::default()
            };
            let partners = [SpacerPartner {
                x: 10.0,
                speed: 3.0,
                length: 4.0,
                width: 2.0,
                ..Default::default()
            }];
            let mut obs = vec![0.0f32; 2984];
            let st = spacer_observation_build(
                &p,
                &ego,
                partners.as_ptr(),
                1,
                core::ptr::null(),
                0,
                obs.as_mut_ptr(),
                obs.len(),
            );
            assert_eq!(st, SpacerStatus::Ok);
            assert!((obs[7] - 0.01).abs() < 1e-6);
            let st = spacer_observation_build(
                &p,
                &ego,
                core::ptr::null(),
                1,
                core::ptr::null(),
                0,
                obs.as_mut_ptr(),
                obs.len(),
            );
            assert_eq!(st, SpacerStatus::NullPointer);
            let st = spacer_observation_build(
                &p,
                &ego,
                partners.as_ptr(),
                1,
                core::ptr::null(),
                0,
                obs.as_mut_ptr(),
                10,
            );
            assert_eq!(st, SpacerStatus::BufferLength);
            let mut action = SpacerAction::default();
            let mut state = 7u64;
            let sel = SpacerSelection {
                mode: 1,
                top_k: 5,
                temperature: 1.0,
            };
            assert_eq!(
                spacer_policy_act(&p, obs.as_ptr(), obs.len(), &sel, &mut state, &mut action),
                SpacerStatus::Ok
            );
            assert_ne!(state, 7);
            let bad = SpacerSelection { mode: 3, ..sel };
            assert_eq!(
                spacer_policy_act(&p, obs.as_ptr(), obs.len(), &bad, &mut state, &mut action),
                SpacerStatus::BadArgument
            );
            let mut logits = vec![0.0f32; 200];
            let mut v = 0.0f32;
            assert_eq!(
                spacer_policy_forward(
                    &p,
                    obs.as_ptr(),
                    obs.len(),
                    logits.as_mut_ptr(),
                    200,
                    &mut v
                ),
                SpacerStatus::Ok
            );
            assert_eq!(
                spacer_policy_forward(
                    &p,
                    obs.as_ptr(),
                    obs.len(),
                    logits.as_mut_ptr(),
                    199,
                    &mut v
                ),
                SpacerStatus::BufferLength
            );
            obs[0] = f32::NAN;
            assert_eq!(
                spacer_policy_forward(
                    &p,
                    obs.as_ptr(),
                    obs.len(),
                    logits.as_mut_ptr(),
                    200,
                    &mut v
                ),
                SpacerStatus::BadObservation
            );
            let from = SpacerAgentState {
                vx: 10.0,
                ..Default::default()
            };
            let mut next = [SpacerAgentState::default(); 2];
            assert_eq!(
                spacer_apply_token(&p, 0, 5, &from, next.as_mut_ptr(), 2),
                SpacerStatus::Ok
            );
            assert_eq!(
                spacer_apply_token(&p, 3, 5, &from, next.as_mut_ptr(), 2),
                SpacerStatus::BadArgument
            );
            assert_eq!(
                spacer_apply_token(&p, 0, 200, &from, next.as_mut_ptr(), 2),
                SpacerStatus::BadArgument
            );
            assert_eq!(
                spacer_apply_token(&p, 0, 5, &from, next.as_mut_ptr(), 1),
                SpacerStatus::BufferLength
            );
            let msg =
                core::ffi::CStr::from_ptr(spacer_status_message(SpacerStatus::Misaligned as i32));
            assert!(msg.to_str().unwrap().contains("aligned"));
        }
    }

    #[test]
    fn polylines_of_any_length_are_chunked_seamlessly() {
        // A zig-zag of 200 points: every point is a corner, so 199 segments.
        let pts: Vec<SpacerPoint> = (0..200)
            .map(|i| SpacerPoint {
                x: i as f32,
                y: if i % 2 == 0 { 0.0 } else { 3.0 },
            })
            .collect();
        let mut out = vec![SpacerRoadSegment::default(); 300];
        let mut n = 0usize;
        let st = unsafe {
            spacer_polyline_segments(
                pts.as_ptr(),
                pts.len(),
                3,
                out.as_mut_ptr(),
                out.len(),
                &mut n,
            )
        };
        assert_eq!(st, SpacerStatus::Ok);
        assert_eq!(n, 199);
        for w in out[..n].windows(2) {
            // Consecutive segments share an end point.
            let end = (
                w[0].x + w[0].half_length * w[0].yaw.cos(),
                w[0].y + w[0].half_length * w[0].yaw.sin(),
            );
            let start = (
                w[1].x - w[1].half_length * w[1].yaw.cos(),
                w[1].y - w[1].half_length * w[1].yaw.sin(),
            );
            assert!((end.0 - start.0).abs() < 1e-4 && (end.1 - start.1).abs() < 1e-4);
        }
        let st = unsafe {
            spacer_polyline_segments(pts.as_ptr(), pts.len(), 3, out.as_mut_ptr(), 10, &mut n)
        };
        assert_eq!(st, SpacerStatus::BufferLength);
        let st = unsafe {
            spacer_polyline_segments(pts.as_ptr(), pts.len(), 9, out.as_mut_ptr(), 10, &mut n)
        };
        assert_eq!(st, SpacerStatus::BadArgument);
    }
}
