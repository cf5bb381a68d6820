//! The C ABI (`spacer-core` feature `ffi`) called as a C program would, with arbitrary
//! blobs, values, pointers and lengths: a blob (raw bytes, or a valid f32 or int8 blob
//! with patched bytes and a resealed checksum) at any offset and claimed length, then
//! a sequence of calls (load again, info, observation build, polyline segments,
//! forward, forward batch, act, apply token, status message) with buffers the target
//! owns. A pointer may be null or misaligned, a length anything up to the buffer it
//! comes with (the caller's side of the contract); the library must answer with a
//! status, never a panic (which cannot unwind through `extern "C"`: it aborts) or a
//! write outside a buffer (AddressSanitizer sees those: buffers are allocated at the
//! claimed length).
//!
//! Invariants checked: a call on storage without a loaded policy says `NotLoaded`; an
//! observation the library built is finite, and forward refuses it only for a value
//! beyond the magnitude limit; logits and values that come out are finite; tokens are
//! in range; `written` never exceeds the capacity.
#![no_main]
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use spacer_core::ffi::*;
use spacer_core::math::Rng;
use spacer_core::policy::MAX_OBSERVATION_MAGNITUDE;
use spacer_core::tokenizer::Vocabulary;
use spacer_core::weights::{CHECKSUM_BYTES, crc32c};
use spacer_train::policy_file::PolicyFile;
use spacer_train::quantize::{calibrate, quantize};

/// A valid f32 blob (the deterministic initialisation) and its int8 quantization.
fn bases() -> &'static (Vec<u8>, Vec<u8>) {
    static BASES: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    BASES.get_or_init(|| {
        let f = PolicyFile::initial(&Vocabulary::kinematic_grid(200).unwrap(), 1);
        let d = f.model().policy.observation_len();
        let mut rng = Rng::new(1);
        let obs: Vec<f32> = (0..16 * d).map(|_| rng.normal() * 0.05).collect();
        let q = quantize(&f, &calibrate(&f.model().policy, &obs).unwrap()).unwrap();
        (f.bytes().to_vec(), q.bytes().to_vec())
    })
}

/// A float: any bit pattern, or an everyday value.
fn float(u: &mut Unstructured) -> Result<f32> {
    Ok(match u.choose_index(4)? {
        0 => f32::from_bits(u.arbitrary()?),
        1 => u.int_in_range(-100_000i32..=100_000)? as f32 * 0.01,
        2 => u.int_in_range(-2_000i32..=2_000)? as f32,
        _ => 0.0,
    })
}

/// A buffer's pointer as passed: usually the buffer, sometimes null or misaligned
/// (one byte in: the library checks alignment before reading).
fn ptr<T>(u: &mut Unstructured, p: *mut T) -> Result<*mut T> {
    Ok(match u.choose_index(16)? {
        0 => std::ptr::null_mut(),
        1 => p.cast::<u8>().wrapping_add(1).cast::<T>(),
        _ => p,
    })
}

/// A length for a buffer of `cap` elements where `want` are expected: usually
/// `want` (when it fits), else anything up to `cap`.
fn len(u: &mut Unstructured, want: usize, cap: usize) -> Result<usize> {
    Ok(if want <= cap && u.ratio(7, 8)? {
        want
    } else {
        u.int_in_range(0..=cap)?
    })
}

/// A blob in 4-aligned storage at a byte offset, and the length a caller claims.
struct BlobBuf {
    words: Vec<u32>,
    offset: usize,
    len: usize,
}

fn blob(u: &mut Unstructured) -> Result<BlobBuf> {
    let bytes = match u.choose_index(3)? {
        0 => {
            let n = u.arbitrary_len::<u8>()?;
            u.bytes(n)?.to_vec()
        }
        m => {
            let (f32_base, int8_base) = bases();
            let mut b = if m == 1 { f32_base.clone() } else { int8_base.clone() };
            let body = b.len() - CHECKSUM_BYTES;
            for _ in 0..u.int_in_range(0..=8)? {
                let at = u.int_in_range(0..=body - 1)?;
                b[at] ^= u.arbitrary::<u8>()?;
            }
            if u.ratio(7, 8)? {
                let crc = crc32c(&b[..body]);
                b[body..].copy_from_slice(&crc.to_le_bytes());
            }
            b
        }
    };
    let offset = if u.ratio(1, 8)? { u.int_in_range(1..=3)? } else { 0 };
    let mut words = vec![0u32; (offset + bytes.len()).div_ceil(4).max(1)];
    // SAFETY: `words` holds at least `offset + bytes.len()` bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            words.as_mut_ptr().cast::<u8>().add(offset),
            bytes.len(),
        );
    }
    let cap = words.len() * 4 - offset;
    let len = len(u, bytes.len(), cap)?;
    Ok(BlobBuf { words, offset, len })
}

/// An observation the library built from finite input is run, or refused only for a
/// value beyond `MAX_OBSERVATION_MAGNITUDE` (an absurd but finite ego speed, size or
/// goal is normalised, not clipped).
fn built_observation_status(s: SpacerStatus, obs: &[f32]) {
    if s != SpacerStatus::Ok {
        assert_eq!(s, SpacerStatus::BadObservation, "a built observation: {s:?}");
        assert!(
            obs.iter().any(|v| v.abs() > MAX_OBSERVATION_MAGNITUDE),
            "a built observation within the limits was refused"
        );
    }
}

struct Session {
    policy: Box<SpacerPolicy>,
    loaded: bool,
    info: SpacerPolicyInfo,
    /// Every blob loaded so far: a policy borrows its blob.
    blobs: Vec<BlobBuf>,
    /// The last observation the library built.
    built: Option<Vec<f32>>,
}

impl Session {
    fn load(&mut self, u: &mut Unstructured) -> Result<()> {
        let mut b = blob(u)?;
        let p = unsafe { b.words.as_mut_ptr().cast::<u8>().add(b.offset) };
        let p = if u.ratio(1, 32)? { std::ptr::null() } else { p.cast_const() };
        let out: *mut SpacerPolicy = if u.ratio(1, 64)? {
            std::ptr::null_mut()
        } else {
            &mut *self.policy
        };
        // SAFETY: `p` null or pointing to `b.len` readable bytes that live in
        // `self.blobs` as long as the policy; `out` null or the policy storage.
        let s = unsafe { spacer_policy_load(out, p, b.len) };
        self.blobs.push(b);
        if out.is_null() {
            assert_eq!(s, SpacerStatus::NullPointer);
            return Ok(());
        }
        self.loaded = s == SpacerStatus::Ok;
        self.built = None;
        if self.loaded {
            // SAFETY: both point to owned storage.
            let s = unsafe { spacer_policy_info(&*self.policy, &mut self.info) };
            assert_eq!(s, SpacerStatus::Ok);
            assert!(self.info.actions > 0 && self.info.observation_len > 0);
        }
        Ok(())
    }

    /// Checks a status against the load state; true when the call may have worked.
    fn expect(&self, s: SpacerStatus) -> bool {
        if !self.loaded {
            assert_eq!(s, SpacerStatus::NotLoaded);
        }
        s == SpacerStatus::Ok
    }

    fn observation(&mut self, u: &mut Unstructured) -> Result<()> {
        let d = self.info.observation_len as usize;
        let ego = SpacerEgo {
            x: float(u)?,
            y: float(u)?,
            yaw: float(u)?,
            speed: float(u)?,
            length: float(u)?,
            width: float(u)?,
            goal_x: float(u)?,
            goal_y: float(u)?,
            collided: u.arbitrary()?,
            goal_visible: u.arbitrary()?,
        };
        let mut partners = (0..u.int_in_range(0..=80)?)
            .map(|_| {
                Ok(SpacerPartner {
                    x: float(u)?,
                    y: float(u)?,
                    yaw: float(u)?,
                    speed: float(u)?,
                    length: float(u)?,
                    width: float(u)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut roads = (0..u.int_in_range(0..=300)?)
            .map(|_| {
                Ok(SpacerRoadSegment {
                    x: float(u)?,
                    y: float(u)?,
                    yaw: float(u)?,
                    half_length: float(u)?,
                    half_width: float(u)?,
                    height: float(u)?,
                    kind: u.arbitrary()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let cap = if u.ratio(7, 8)? { d } else { u.int_in_range(0..=d + 8)? };
        let mut out = vec![f32::NAN; cap];
        let n_partners = len(u, partners.len(), partners.len())?;
        let n_roads = len(u, roads.len(), roads.len())?;
        let out_len = len(u, d, cap)?;
        let (pp, rp, op) = (
            ptr(u, partners.as_mut_ptr())?,
            ptr(u, roads.as_mut_ptr())?,
            ptr(u, out.as_mut_ptr())?,
        );
        let ego_p: *const SpacerEgo = if u.ratio(1, 32)? { std::ptr::null() } else { &ego };
        // SAFETY: every pointer is null, misaligned, or points to a buffer of at least
        // the length passed with it.
        let s = unsafe {
            spacer_observation_build(&*self.policy, ego_p, pp, n_partners, rp, n_roads, op, out_len)
        };
        if self.expect(s) {
            assert_eq!(out_len, d);
            assert!(out.iter().all(|v| v.is_finite()), "a built observation is finite");
            self.built = Some(out);
        }
        Ok(())
    }

    fn polyline(&mut self, u: &mut Unstructured) -> Result<()> {
        let mut points = (0..u.int_in_range(0..=200)?)
            .map(|_| {
                Ok(SpacerPoint {
                    x: float(u)?,
                    y: float(u)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let kind: u8 = if u.ratio(7, 8)? { u.int_in_range(0..=7)? } else { u.arbitrary()? };
        let cap = u.int_in_range(0..=256)?;
        let mut out = vec![SpacerRoadSegment::default(); cap];
        let n = len(u, points.len(), points.len())?;
        let out_cap = len(u, cap, cap)?;
        let (pp, op) = (ptr(u, points.as_mut_ptr())?, ptr(u, out.as_mut_ptr())?);
        let mut written = usize::MAX;
        let wp: *mut usize = if u.ratio(1, 32)? { std::ptr::null_mut() } else { &mut written };
        // SAFETY: as in `observation`.
        let s = unsafe { spacer_polyline_segments(pp, n, kind, op, out_cap, wp) };
        if s == SpacerStatus::Ok || s == SpacerStatus::BufferLength {
            assert!(written <= out_cap, "{written} segments written into {out_cap}");
        }
        Ok(())
    }

    /// An observation: the last built one (valid), or arbitrary values and length.
    fn obs(&self, u: &mut Unstructured) -> Result<(Vec<f32>, bool)> {
        let d = self.info.observation_len as usize;
        match &self.built {
            Some(b) if u.ratio(3, 4)? => Ok((b.clone(), true)),
            _ => {
                let n = if u.ratio(7, 8)? { d } else { u.int_in_range(0..=d + 8)? };
                let mut v = vec![0.0f32; n];
                // Sparse, as real observations are: a few arbitrary slots.
                for _ in 0..u.int_in_range(0..=32)? {
                    if n > 0 {
                        let i = u.int_in_range(0..=n - 1)?;
                        v[i] = float(u)?;
                    }
                }
                Ok((v, false))
            }
        }
    }

    fn forward(&mut self, u: &mut Unstructured) -> Result<()> {
        let k = self.info.actions as usize;
        let (mut obs, valid) = self.obs(u)?;
        let cap = if u.ratio(7, 8)? { k } else { u.int_in_range(0..=k + 4)? };
        let mut logits = vec![f32::NAN; cap];
        let n = obs.len();
        let logits_len = len(u, k, cap)?;
        let (opp, lp) = (ptr(u, obs.as_mut_ptr())?, ptr(u, logits.as_mut_ptr())?);
        let mut value = f32::NAN;
        // SAFETY: as in `observation`.
        let s = unsafe { spacer_policy_forward(&*self.policy, opp, n, lp, logits_len, &mut value) };
        let clean = valid && logits_len == k && cap == k && opp == obs.as_mut_ptr() && lp == logits.as_mut_ptr();
        if self.loaded && clean {
            built_observation_status(s, &obs);
        }
        if self.expect(s) {
            assert!(value.is_finite() && logits[..logits_len].iter().all(|l| l.is_finite()));
        }
        Ok(())
    }

    fn forward_batch(&mut self, u: &mut Unstructured) -> Result<()> {
        let (d, k) = (self.info.observation_len as usize, self.info.actions as usize);
        let count = u.int_in_range(0..=5)?;
        let mut obs = Vec::new();
        let mut all_valid = true;
        for _ in 0..count {
            let (o, valid) = self.obs(u)?;
            all_valid &= valid;
            obs.extend(o);
        }
        if u.ratio(1, 16)? {
            obs.truncate(u.int_in_range(0..=obs.len())?);
        }
        let cap = if u.ratio(7, 8)? { count * k } else { u.int_in_range(0..=count * k + 4)? };
        let mut logits = vec![f32::NAN; cap];
        let mut values = vec![f32::NAN; count];
        let (n, logits_len) = (obs.len(), len(u, count * k, cap)?);
        let (opp, lp, vp) = (
            ptr(u, obs.as_mut_ptr())?,
            ptr(u, logits.as_mut_ptr())?,
            ptr(u, values.as_mut_ptr())?,
        );
        // SAFETY: as in `observation`; `values` holds `count` floats.
        let s = unsafe { spacer_policy_forward_batch(&*self.policy, count, opp, n, lp, logits_len, vp) };
        if self.expect(s) {
            assert_eq!(n, count * d);
            assert!(values.iter().chain(&logits[..logits_len]).all(|v| v.is_finite()));
        } else if self.loaded
            && all_valid
            && n == count * d
            && logits_len == count * k
            && (opp, lp, vp) == (obs.as_mut_ptr(), logits.as_mut_ptr(), values.as_mut_ptr())
        {
            built_observation_status(s, &obs);
        }
        Ok(())
    }

    fn act(&mut self, u: &mut Unstructured) -> Result<()> {
        let k = self.info.actions as usize;
        let (mut obs, _) = self.obs(u)?;
        let selection = SpacerSelection {
            mode: if u.ratio(7, 8)? { u.int_in_range(0..=1)? } else { u.arbitrary()? },
            top_k: u.arbitrary()?,
            temperature: float(u)?,
        };
        let mut rng_state: u64 = u.arbitrary()?;
        let mut action = SpacerAction::default();
        let n = obs.len();
        let opp = ptr(u, obs.as_mut_ptr())?;
        let sp: *const SpacerSelection = if u.ratio(1, 32)? { std::ptr::null() } else { &selection };
        // SAFETY: as in `observation`.
        let s = unsafe { spacer_policy_act(&*self.policy, opp, n, sp, &mut rng_state, &mut action) };
        if self.expect(s) {
            assert!((action.token as usize) < k, "token {} of {k}", action.token);
            assert!(action.log_prob <= 0.0 && action.value.is_finite(), "{action:?}");
        }
        Ok(())
    }

    fn apply(&mut self, u: &mut Unstructured) -> Result<()> {
        let kind: u8 = if u.ratio(7, 8)? { u.int_in_range(0..=3)? } else { u.arbitrary()? };
        let token: u16 = if u.ratio(3, 4)? {
            u.int_in_range(0..=self.info.actions as u16)?
        } else {
            u.arbitrary()?
        };
        let from = SpacerAgentState {
            x: float(u)?,
            y: float(u)?,
            yaw: float(u)?,
            vx: float(u)?,
            vy: float(u)?,
        };
        let cap = u.int_in_range(0..=4)?;
        let mut out = vec![SpacerAgentState::default(); cap];
        let out_len = len(u, 2, cap)?;
        let op = ptr(u, out.as_mut_ptr())?;
        // SAFETY: as in `observation`.
        let s = unsafe { spacer_apply_token(&*self.policy, kind, token, &from, op, out_len) };
        if self.expect(s) {
            assert!(out_len >= 2 && kind <= 2 && (token as u32) < self.info.actions);
        }
        Ok(())
    }
}

fn run(u: &mut Unstructured) -> Result<()> {
    let mut session = Session {
        policy: Box::new(SpacerPolicy {
            opaque: [0; SPACER_POLICY_WORDS],
        }),
        loaded: false,
        info: SpacerPolicyInfo::default(),
        blobs: Vec::new(),
        built: None,
    };
    session.load(u)?;
    for _ in 0..48 {
        if u.is_empty() {
            break;
        }
        match u.choose_index(9)? {
            0 => session.load(u)?,
            1 => session.observation(u)?,
            2 => session.polyline(u)?,
            3 | 4 => session.forward(u)?,
            5 => session.forward_batch(u)?,
            6 => session.act(u)?,
            7 => session.apply(u)?,
            _ => {
                let code: i32 = u.arbitrary()?;
                // SAFETY: the library returns static NUL-terminated strings.
                let msg = unsafe { CStr::from_ptr(spacer_status_message(code)) };
                assert!(!msg.to_bytes().is_empty() && msg.to_str().is_ok());
            }
        }
    }
    assert_eq!(spacer_abi_version(), SPACER_ABI_VERSION);
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
