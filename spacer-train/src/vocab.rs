//! Building the motion-token vocabulary from logs (k-disk clustering), storing it,
//! and measuring how well it reproduces logged motion.
//!
//! # Clustering (docs/design.md section 1.3)
//!
//! Every logged 0.2 s segment of every agent (steps `s, s+1, s+2` all valid, any `s`)
//! is expressed in the agent's frame at step `s` and represented by the four corners
//! of its kind's fixed token box ([`AgentKind::token_box`]: vehicle 4.8 x 2.0 m,
//! cyclist 2.0 x 1.0, pedestrian 1.0 x 1.0) placed at the segment's end pose. Then,
//! per kind, until `k` tokens exist:
//!
//! 1. take a seed: the first is "stand still" (the identity motion); every later seed
//!    is drawn uniformly at random from the segments not yet grouped (so dense motions
//!    are drawn first, as in SMART's k-disk), with a ChaCha8 generator seeded by
//!    [`ClusterConfig::seed`];
//! 2. group every remaining segment whose *mean* corner distance to the seed is below
//!    the kind's tolerance ([`ClusterConfig::tolerance`]);
//! 3. the group's mean (positions averaged, headings averaged on the circle) becomes
//!    a token, except for the first group, whose token is exactly
//!    [`Token::STILL`] so that token 0 always means "stand still";
//! 4. remove the group.
//!
//! Tolerances: `vehicle_tolerance` for vehicles, and for the other kinds the same
//! value scaled by their token box's half-diagonal relative to the vehicle's
//! (pedestrian 0.272 x, cyclist 0.430 x), so a token spans the same angular change of
//! heading for every kind.
//!
//! **The default vehicle tolerance is 0.1 m, not the "about 0.05 m" first planned**
//! (docs/design.md section 1.3), by measurement: clustering the 34 real training scenes
//! (WOMD, GPUDrive JSON, INTERACTION windows) plus 200 synthetic ones, then encoding
//! and decoding the logs of the 8 held-out real scenes, vehicle ADE / FDE was 0.0695 /
//! 0.1073 m at 0.05 m, 0.0374 / 0.0525 m at 0.1 m, 0.0451 / 0.0607 m at 0.2 m, and
//! 0.0538 / 0.0645 m for [`Vocabulary::kinematic_grid`]. At 0.05 m the 200 groups go to
//! the dense slow motions and leave fast ones with too little heading resolution: the
//! greedy closed-loop encoding of a 23 m/s curve then under-turns, falls behind and
//! ends 19-50 m off (largest training error 31.7 m, against 1.6 m at 0.1 m).
//!
//! **Coverage.** At a fixed tolerance, `k` groups may not reach every logged motion:
//! the random seeds spend the tokens where motion is dense, and the rare fast or
//! sharp motions are left without a token near them, so the closed-loop encoding of
//! such a log drifts by metres. With [`ClusterConfig::coverage`] (the CLI's
//! `--coverage`, e.g. 0.999), the tolerance grows by [`TOLERANCE_GROWTH`] and the
//! clustering is redone until the `k` tokens cover that fraction of the segments.
//!
//! **When the data runs out** before `k` tokens (few logs of a kind: cyclists have
//! 3 tracks in a WOMD scene), the remaining slots are filled from
//! [`Vocabulary::kinematic_grid`]`(k)`'s tokens of that kind, farthest-first: each
//! time the grid token whose end box is farthest (summed corner distance) from every
//! token already chosen. The report says how many tokens came from data.
//!
//! Segments whose end displacement is implausible for the kind (more than
//! [`max_segment_length`] in 0.2 s, i.e. a tracking jump) are left out.
//!
//! # File format
//!
//! `magic "SPACERVO"`, format version (u16 LE), `k` (u16 LE), then
//! [`Vocabulary::write_bytes`] (little-endian f32, kind-major) and a CRC32C (u32 LE)
//! of those bytes. [`read_vocabulary`] checks all of it and names the file in errors.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use spacer_core::agent::AgentKind;
use spacer_core::geometry::{OrientedBox, Pose, Vec2};
use spacer_core::tokenizer::{MAX_TOKENS, Token, Vocabulary};

use crate::error::{DataError, Location};
use crate::scenario::Scene;
use crate::tokenized::{logged_pose, usable, valid_runs};

/// File magic of a vocabulary file.
pub const VOCAB_MAGIC: [u8; 8] = *b"SPACERVO";
/// Version of the vocabulary file format.
pub const VOCAB_VERSION: u16 = 1;
const HEADER_LEN: usize = 8 + 2 + 2;

/// The largest plausible end displacement of a 0.2 s segment (m): 50 m/s for
/// vehicles, 25 m/s for cyclists, 10 m/s for pedestrians.
pub const fn max_segment_length(kind: AgentKind) -> f32 {
    match kind {
        AgentKind::Vehicle => 10.0,
        AgentKind::Cyclist => 5.0,
        AgentKind::Pedestrian => 2.0,
    }
}

/// One logged 0.2 s segment in the agent's frame: poses at +0.1 s and +0.2 s.
pub type Segment = Token;

/// How [`build_vocabulary`] clusters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClusterConfig {
    /// Tokens per kind.
    pub k: usize,
    /// Grouping tolerance for vehicles: mean corner distance (m); 0.1 by default (see
    /// the module docs for why not 0.05).
    pub vehicle_tolerance: f32,
    /// Seed of the generator that draws the cluster seeds.
    pub seed: u64,
    /// Fraction of the segments the `k` tokens must cover (lie within the tolerance
    /// of); while they do not, the tolerance grows by [`TOLERANCE_GROWTH`] and the
    /// clustering is redone. 0 keeps the tolerance as given.
    pub coverage: f64,
}

/// Factor by which the tolerance grows until the coverage is met.
pub const TOLERANCE_GROWTH: f32 = 1.25;

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            k: spacer_core::tokenizer::DEFAULT_TOKENS,
            vehicle_tolerance: 0.1,
            seed: 0,
            coverage: 0.0,
        }
    }
}

impl ClusterConfig {
    /// The grouping tolerance for `kind`: the vehicle tolerance scaled by the kind's
    /// token-box half-diagonal over the vehicle's.
    pub fn tolerance(&self, kind: AgentKind) -> f32 {
        let half_diag = |k: AgentKind| {
            let (l, w) = k.token_box();
            0.5 * (l * l + w * w).sqrt()
        };
        self.vehicle_tolerance * half_diag(kind) / half_diag(AgentKind::Vehicle)
    }
}

/// Every plausible logged 0.2 s segment of every agent of `kind` in `scenes`.
pub fn logged_segments(scenes: &[Scene], kind: AgentKind) -> Vec<Segment> {
    let mut out = Vec::new();
    let max = max_segment_length(kind);
    for scene in scenes {
        for track in &scene.tracks {
            if track.object_type.agent_kind() != Some(kind) {
                continue;
            }
            for w in track.states.windows(3) {
                if !(usable(&w[0]) && usable(&w[1]) && usable(&w[2])) {
                    continue;
                }
                let p0 = logged_pose(&w[0]);
                let seg = Token {
                    poses: [
                        p0.relative(logged_pose(&w[1])),
                        p0.relative(logged_pose(&w[2])),
                    ],
                };
                if seg.is_finite() && seg.end().position().norm() <= max {
                    out.push(seg);
                }
            }
        }
    }
    out
}

/// The corners of `kind`'s token box at a segment's end pose.
fn end_corners(kind: AgentKind, seg: &Segment) -> [Vec2; 4] {
    let (l, w) = kind.token_box();
    OrientedBox::new(seg.end(), l, w).corners()
}

fn corner_sum(a: &[Vec2; 4], b: &[Vec2; 4]) -> f32 {
    a.iter().zip(b).map(|(p, q)| (*p - *q).norm()).sum()
}

/// The tokens of one kind and where they came from.
#[derive(Clone, Debug, PartialEq)]
pub struct KindClusters {
    /// `k` tokens, token 0 standing still.
    pub tokens: Vec<Token>,
    /// How many tokens are group means of logged segments (the rest are grid fill).
    pub from_data: usize,
    /// Segments clustered.
    pub segments: usize,
    /// Segments grouped into some token (the rest were left when `k` was reached).
    pub covered: usize,
    /// The tolerance used (m): the kind's tolerance, grown until the coverage was met.
    pub tolerance: f32,
}

/// k-disk clustering of one kind's segments (see the module docs), the tolerance
/// grown until [`ClusterConfig::coverage`] is met.
pub fn cluster_kind(kind: AgentKind, segments: &[Segment], config: &ClusterConfig) -> KindClusters {
    let mut tol = config.tolerance(kind);
    loop {
        let c = cluster_at(kind, segments, config, tol);
        let covered = c.covered as f64 / c.segments.max(1) as f64;
        // Growing 40 times multiplies the tolerance by 7500: always enough.
        if covered >= config.coverage || tol > 7000.0 * config.tolerance(kind) {
            return c;
        }
        tol *= TOLERANCE_GROWTH;
    }
}

fn cluster_at(
    kind: AgentKind,
    segments: &[Segment],
    config: &ClusterConfig,
    tol: f32,
) -> KindClusters {
    let k = config.k.clamp(1, MAX_TOKENS);
    let tol_sum = 4.0 * tol;
    let corners: Vec<[Vec2; 4]> = segments.iter().map(|s| end_corners(kind, s)).collect();
    let mut remaining: Vec<usize> = (0..segments.len()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ (kind.index() as u64) << 32);
    let mut tokens = vec![Token::STILL];
    let mut from_data = 0;
    let still = end_corners(kind, &Token::STILL);
    let mut seed_corners = still;
    let mut first = true;
    loop {
        let (group, rest): (Vec<usize>, Vec<usize>) = remaining
            .iter()
            .partition(|&&i| corner_sum(&corners[i], &seed_corners) < tol_sum);
        remaining = rest;
        if first {
            first = false;
            if !group.is_empty() {
                from_data += 1;
            }
        } else if !group.is_empty() {
            tokens.push(mean_token(group.iter().map(|&i| &segments[i])));
            from_data += 1;
        }
        if tokens.len() >= k || remaining.is_empty() {
            break;
        }
        let pick = remaining[rng.random_range(0..remaining.len())];
        seed_corners = corners[pick];
    }
    let covered = segments.len() - remaining.len();
    if tokens.len() < k {
        fill_from_grid(kind, k, &mut tokens);
    }
    KindClusters {
        tokens,
        from_data,
        segments: segments.len(),
        covered,
        tolerance: tol,
    }
}

/// The mean of segments: positions averaged, headings averaged on the circle.
fn mean_token<'a>(group: impl Iterator<Item = &'a Segment>) -> Token {
    let mut acc = [[0.0f64; 4]; 2];
    let mut n = 0.0f64;
    for s in group {
        for (a, p) in acc.iter_mut().zip(s.poses.iter()) {
            a[0] += p.x as f64;
            a[1] += p.y as f64;
            a[2] += (p.yaw as f64).cos();
            a[3] += (p.yaw as f64).sin();
        }
        n += 1.0;
    }
    let mut t = Token::STILL;
    if n > 0.0 {
        for (p, a) in t.poses.iter_mut().zip(acc.iter()) {
            *p = Pose::new(
                (a[0] / n) as f32,
                (a[1] / n) as f32,
                a[3].atan2(a[2]) as f32,
            );
        }
    }
    t
}

/// Tops `tokens` up to `k` with the grid's tokens, farthest from the chosen first.
fn fill_from_grid(kind: AgentKind, k: usize, tokens: &mut Vec<Token>) {
    let Ok(grid) = Vocabulary::kinematic_grid(k) else {
        return;
    };
    let mut pool: Vec<(Token, [Vec2; 4])> = grid
        .tokens(kind)
        .iter()
        .map(|t| (*t, end_corners(kind, t)))
        .collect();
    let chosen: Vec<[Vec2; 4]> = tokens.iter().map(|t| end_corners(kind, t)).collect();
    let mut nearest: Vec<f32> = pool
        .iter()
        .map(|(_, c)| {
            chosen
                .iter()
                .map(|d| corner_sum(c, d))
                .fold(f32::INFINITY, f32::min)
        })
        .collect();
    while tokens.len() < k && !pool.is_empty() {
        let (best, _) = nearest
            .iter()
            .enumerate()
            .fold(
                (0, f32::NEG_INFINITY),
                |b, (i, &d)| {
                    if d > b.1 { (i, d) } else { b }
                },
            );
        let (tok, c) = pool.swap_remove(best);
        nearest.swap_remove(best);
        tokens.push(tok);
        for ((_, pc), d) in pool.iter().zip(nearest.iter_mut()) {
            *d = d.min(corner_sum(pc, &c));
        }
    }
    // k grid tokens always suffice; pad defensively anyway.
    while tokens.len() < k {
        tokens.push(Token::STILL);
    }
}

/// A vocabulary and how it was built.
#[derive(Clone, Debug)]
pub struct BuiltVocabulary {
    /// The vocabulary.
    pub vocabulary: Vocabulary,
    /// Per kind (in [`AgentKind::ALL`] order): provenance of the tokens.
    pub clusters: [KindClusters; AgentKind::COUNT],
}

/// Builds a vocabulary of `config.k` tokens per kind from the logs of `scenes`.
///
/// # Errors
/// A message when `k` is outside `1..=256`.
pub fn build_vocabulary(
    scenes: &[Scene],
    config: &ClusterConfig,
) -> Result<BuiltVocabulary, String> {
    if config.k == 0 || config.k > MAX_TOKENS {
        return Err(format!(
            "k must be between 1 and {MAX_TOKENS}, got {}",
            config.k
        ));
    }
    if !(config.vehicle_tolerance > 0.0 && config.vehicle_tolerance.is_finite()) {
        return Err("the tolerance must be positive".into());
    }
    let clusters = AgentKind::ALL.map(|kind| {
        let segs = logged_segments(scenes, kind);
        cluster_kind(kind, &segs, config)
    });
    let vocabulary = Vocabulary::new([
        &clusters[0].tokens,
        &clusters[1].tokens,
        &clusters[2].tokens,
    ])
    .map_err(|e| e.to_string())?;
    Ok(BuiltVocabulary {
        vocabulary,
        clusters,
    })
}

/// Serializes a vocabulary in the file format of the module docs.
pub fn vocabulary_bytes(v: &Vocabulary) -> Vec<u8> {
    let n = Vocabulary::byte_len(v.len());
    let mut out = vec![0u8; HEADER_LEN + n + 4];
    out[..8].copy_from_slice(&VOCAB_MAGIC);
    out[8..10].copy_from_slice(&VOCAB_VERSION.to_le_bytes());
    out[10..12].copy_from_slice(&(v.len() as u16).to_le_bytes());
    // The buffer has exactly byte_len(k) bytes after the header.
    let _ = v.write_bytes(&mut out[HEADER_LEN..HEADER_LEN + n]);
    let crc = crc32c::crc32c(&out[HEADER_LEN..HEADER_LEN + n]);
    out[HEADER_LEN + n..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Parses [`vocabulary_bytes`]; `origin` names the data in errors.
///
/// # Errors
/// [`DataError::Invalid`] naming `origin` for a bad magic, version, size, checksum or
/// value.
pub fn parse_vocabulary(bytes: &[u8], origin: &Path) -> Result<Vocabulary, DataError> {
    let bad =
        |field: &str, msg: String| DataError::invalid(origin, Location::field(None, field), msg);
    if bytes.len() < HEADER_LEN || bytes[..8] != VOCAB_MAGIC {
        return Err(DataError::invalid(
            origin,
            Location::file(),
            "not a spacer vocabulary file (bad magic); build one with `spacer vocab build`",
        ));
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != VOCAB_VERSION {
        return Err(bad(
            "version",
            format!("format version {version}, this build reads {VOCAB_VERSION}"),
        ));
    }
    let k = u16::from_le_bytes([bytes[10], bytes[11]]) as usize;
    if k == 0 || k > MAX_TOKENS {
        return Err(bad(
            "k",
            format!("{k} tokens per kind, must be 1..={MAX_TOKENS}"),
        ));
    }
    let n = Vocabulary::byte_len(k);
    if bytes.len() != HEADER_LEN + n + 4 {
        return Err(bad(
            "tokens",
            format!(
                "truncated or padded: {} bytes, expected {} for k = {k}",
                bytes.len(),
                HEADER_LEN + n + 4
            ),
        ));
    }
    let payload = &bytes[HEADER_LEN..HEADER_LEN + n];
    let stored = u32::from_le_bytes([
        bytes[HEADER_LEN + n],
        bytes[HEADER_LEN + n + 1],
        bytes[HEADER_LEN + n + 2],
        bytes[HEADER_LEN + n + 3],
    ]);
    if crc32c::crc32c(payload) != stored {
        return Err(bad(
            "crc32c",
            "checksum mismatch: the file is corrupt".into(),
        ));
    }
    Vocabulary::from_bytes(k, payload).map_err(|e| bad("tokens", e.to_string()))
}

/// Reads a vocabulary file.
///
/// # Errors
/// [`DataError::Io`] or [`DataError::Invalid`], naming the file.
pub fn read_vocabulary(path: &Path) -> Result<Vocabulary, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    parse_vocabulary(&bytes, path)
}

/// The vocabulary in `path`, or the kinematic grid of 200 tokens when `None`.
///
/// # Errors
/// [`DataError`] naming the file.
pub fn read_or_grid(path: Option<&Path>) -> Result<Vocabulary, DataError> {
    match path {
        Some(p) => read_vocabulary(p),
        None => Vocabulary::kinematic_grid(spacer_core::tokenizer::DEFAULT_TOKENS).map_err(|e| {
            DataError::invalid(
                Path::new("<kinematic grid>"),
                Location::file(),
                e.to_string(),
            )
        }),
    }
}

/// Where a vocabulary came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VocabularySource {
    /// Read from the file the user named.
    Given(PathBuf),
    /// Read from the cache (built earlier from the same scenes and settings).
    Cached(PathBuf),
    /// Built now, and written to the cache.
    Built(PathBuf),
}

/// The vocabulary the learners use by default: `given` when a file is named; else the
/// one built from `scenes` with `config`, cached in `cache_dir` under a name that
/// hashes the scene ids and the settings (so the same data gives the same file and
/// is not clustered twice).
///
/// # Errors
/// Unreadable or unwritable files; a bad `config`.
pub fn build_or_cached(
    given: Option<&Path>,
    scenes: &[&Scene],
    config: &ClusterConfig,
    cache_dir: &Path,
) -> Result<(Vocabulary, VocabularySource), DataError> {
    if let Some(p) = given {
        return Ok((
            read_vocabulary(p)?,
            VocabularySource::Given(p.to_path_buf()),
        ));
    }
    let mut key = format!(
        "k{} tol{} seed{} cov{}",
        config.k, config.vehicle_tolerance, config.seed, config.coverage
    );
    let mut ids: Vec<&str> = scenes.iter().map(|s| s.id.as_str()).collect();
    ids.sort_unstable();
    for id in ids {
        key.push('|');
        key.push_str(id);
    }
    let hash = crate::scenario::dataset::fnv1a(key.as_bytes());
    let path = cache_dir.join(format!("vocab-k{}-{hash:016x}.postcard", config.k));
    if path.is_file() {
        return Ok((read_vocabulary(&path)?, VocabularySource::Cached(path)));
    }
    let owned: Vec<Scene> = scenes.iter().map(|s| (*s).clone()).collect();
    let built = build_vocabulary(&owned, config)
        .map_err(|e| DataError::invalid(&path, Location::file(), e))?;
    std::fs::create_dir_all(cache_dir).map_err(|e| DataError::io(cache_dir, e))?;
    write_vocabulary(&path, &built.vocabulary)?;
    Ok((built.vocabulary, VocabularySource::Built(path)))
}

/// Writes a vocabulary file atomically.
///
/// # Errors
/// [`DataError::Io`] naming the file.
pub fn write_vocabulary(path: &Path, v: &Vocabulary) -> Result<(), DataError> {
    crate::fsutil::write_atomic(path, &vocabulary_bytes(v))
}

/// Tokenization error of one kind: logged trajectories encoded and decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TokenizationError {
    /// Trajectories (maximal valid runs of at least one token) measured.
    pub trajectories: usize,
    /// Positions compared.
    pub points: usize,
    /// Mean over trajectories of the mean position error (m).
    pub ade: f64,
    /// Mean over trajectories of the final position error (m).
    pub fde: f64,
    /// Largest position error seen (m).
    pub max: f64,
}

/// Encodes every logged run (from its first even step, as [`crate::tokenized`] does)
/// with `vocab`, decodes it, and compares the decoded poses with the log at every
/// 10 Hz step. One entry per kind, in [`AgentKind::ALL`] order.
pub fn tokenization_error(
    scenes: &[Scene],
    vocab: &Vocabulary,
) -> [TokenizationError; AgentKind::COUNT] {
    let mut out = [TokenizationError::default(); AgentKind::COUNT];
    let mut tokens = Vec::new();
    let mut poses = Vec::new();
    for scene in scenes {
        for track in &scene.tracks {
            let Some(kind) = track.object_type.agent_kind() else {
                continue;
            };
            for (lo, hi) in valid_runs(track) {
                let e0 = lo.next_multiple_of(2);
                if e0 + 2 > hi {
                    continue;
                }
                let traj: Vec<Pose> = track.states[e0..=hi].iter().map(logged_pose).collect();
                let n = (traj.len() - 1) / 2;
                tokens.resize(n, 0u16);
                poses.resize(2 * n, Pose::IDENTITY);
                let Ok(n) = vocab.encode(kind, &traj, &mut tokens) else {
                    continue;
                };
                let Ok(m) = vocab.decode(kind, traj[0], &tokens[..n], &mut poses) else {
                    continue;
                };
                let errs: Vec<f64> = poses[..m]
                    .iter()
                    .zip(&traj[1..])
                    .map(|(p, t)| (p.position() - t.position()).norm() as f64)
                    .collect();
                let e = &mut out[kind.index()];
                e.trajectories += 1;
                e.points += errs.len();
                e.ade += errs.iter().sum::<f64>() / errs.len() as f64;
                e.fde += errs.last().copied().unwrap_or(0.0);
                e.max = errs.iter().copied().fold(e.max, f64::max);
            }
        }
    }
    for e in &mut out {
        if e.trajectories > 0 {
            e.ade /= e.trajectories as f64;
            e.fde /= e.trajectories as f64;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ObjectType;
    use crate::tokenized::tests::{scene_of, straight_track};

    fn scenes() -> Vec<Scene> {
        let mut tracks = Vec::new();
        for (i, speed) in [0.0f32, 2.0, 5.0, 8.0, 12.0].iter().enumerate() {
            tracks.push(straight_track(
                i as i64,
                ObjectType::Vehicle,
                (i as f32 * 10.0, 0.0, 0.3 * i as f32),
                *speed,
                |_| true,
            ));
        }
        tracks.push(straight_track(
            9,
            ObjectType::Pedestrian,
            (0.0, 5.0, 1.0),
            1.3,
            |_| true,
        ));
        vec![scene_of("a", tracks)]
    }

    #[test]
    fn clusters_start_still_and_fill_from_grid() {
        let s = scenes();
        let cfg = ClusterConfig {
            k: 16,
            vehicle_tolerance: 0.05,
            ..Default::default()
        };
        // Five speeds need five groups: full coverage at the given tolerance.
        let grown = cluster_kind(
            AgentKind::Vehicle,
            &logged_segments(&s, AgentKind::Vehicle),
            &ClusterConfig {
                k: 3,
                coverage: 1.0,
                ..cfg
            },
        );
        assert_eq!(grown.covered, grown.segments);
        assert!(grown.tolerance > 0.05, "{}", grown.tolerance);
        let built = build_vocabulary(&s, &cfg).unwrap();
        let v = &built.vocabulary;
        assert_eq!(v.len(), 16);
        let veh = &built.clusters[0];
        assert_eq!(veh.tokens[0], Token::STILL);
        // Five constant speeds: still + four moving clusters from data, rest grid.
        assert_eq!(veh.from_data, 5, "{veh:?}");
        assert_eq!(veh.covered, veh.segments);
        let d = veh.tokens[1..5]
            .iter()
            .map(|t| t.end().x)
            .collect::<Vec<_>>();
        for end in [0.4f32, 1.0, 1.6, 2.4] {
            assert!(d.iter().any(|x| (x - end).abs() < 1e-3), "{d:?}");
        }
        // Cyclists have no data at all: all grid fill after "still".
        assert_eq!(built.clusters[2].from_data, 0);
        // Same seed, same vocabulary.
        let again = build_vocabulary(&s, &cfg).unwrap();
        assert_eq!(&again.vocabulary, v);
        // The vocabulary reproduces these logs almost exactly.
        let err = tokenization_error(&s, v);
        assert_eq!(err[0].trajectories, 5);
        assert!(err[0].ade < 0.02 && err[0].fde < 0.05, "{:?}", err[0]);
    }

    #[test]
    fn tolerance_scales_with_box() {
        let c = ClusterConfig {
            vehicle_tolerance: 0.05,
            ..Default::default()
        };
        assert_eq!(c.tolerance(AgentKind::Vehicle), 0.05);
        assert!((c.tolerance(AgentKind::Pedestrian) - 0.0136).abs() < 1e-3);
        assert!((c.tolerance(AgentKind::Cyclist) - 0.0215).abs() < 1e-3);
        assert!(build_vocabulary(&[], &ClusterConfig { k: 0, ..c }).is_err());
        // No data at all: still + grid.
        let v = build_vocabulary(&[], &ClusterConfig { k: 8, ..c }).unwrap();
        assert_eq!(v.vocabulary.tokens(AgentKind::Vehicle)[0], Token::STILL);
    }

    #[test]
    fn file_round_trip_and_errors_name_the_file() {
        let v = Vocabulary::kinematic_grid(200).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.postcard");
        write_vocabulary(&p, &v).unwrap();
        assert_eq!(read_vocabulary(&p).unwrap(), v);
        let bytes = std::fs::read(&p).unwrap();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (bytes[..100].to_vec(), "truncated"),
            (b"NOTVOCAB0000".to_vec(), "bad magic"),
            (
                {
                    let mut b = bytes.clone();
                    b[500] ^= 1;
                    b
                },
                "checksum",
            ),
        ];
        for (b, what) in cases {
            let bad = dir.path().join("bad.postcard");
            std::fs::write(&bad, b).unwrap();
            let e = read_vocabulary(&bad).unwrap_err().to_string();
            assert!(e.contains("bad.postcard") && e.contains(what), "{e}");
        }
    }
}
