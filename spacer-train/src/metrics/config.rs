//! The metric configuration: `SimAgentMetricsConfig` read from its text format.
//!
//! The official challenge ships its configuration as text-format protobuf
//! (`challenge_2024_config.textproto`, `challenge_2025_sim_agents_config.textproto`):
//! for each of the ten features an estimator (histogram, kernel density or Bernoulli)
//! with its parameters, whether time steps are pooled (`independent_timesteps`), whether
//! objects are pooled (`aggregate_objects`), and the feature's weight in the
//! meta-metric. Nothing of it is hard-coded here: [`MetricsConfig::parse`] reads any such
//! file, checking field names, types and ranges, and every error names the file, the
//! field and the line. Proto2 defaults apply to absent fields (pseudocounts 0.001,
//! weights 0, flags false), exactly as the official parser fills them.
//!
//! Ranges (stricter than the proto, which takes any number; each official config is
//! inside them): a meta-metric weight is in \[0, 1\] (so the meta-metric, a weighted
//! sum of likelihoods, lies between 0 and the sum of the weights: 1 for the challenge
//! configs, 10 for the official code's test config, which weights every feature 1); a histogram
//! has 1 to [`MAX_HISTOGRAM_BINS`] bins over finite `min_val < max_val` within
//! +-[`MAX_HISTOGRAM_EDGE`]; a kernel density has a finite positive bandwidth; a
//! pseudocount is finite and non-negative. A file holds at most
//! [`MAX_CONFIG_BYTES`].

use std::path::{Path, PathBuf};

use super::textformat::{self, Scalar, TextField, TextMessage, TextValue};
use crate::error::{DataError, Location};
use crate::limits::{MAX_CONFIG_BYTES, MAX_HISTOGRAM_BINS, quote};

/// Largest magnitude of a histogram edge (`min_val`, `max_val`): far beyond any
/// feature's range, small enough that the bin width is a finite `f32`.
pub const MAX_HISTOGRAM_EDGE: f32 = 1.0e9;

/// The proto2 default of `additive_smoothing_pseudocount` (histogram and Bernoulli).
pub const DEFAULT_PSEUDOCOUNT: f32 = 0.001;

/// One of the ten scored features, in the order of `SimAgentMetricsConfig`'s fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feature {
    /// Speed of the box centre (3D), m/s.
    LinearSpeed,
    /// Change of linear speed, m/s².
    LinearAcceleration,
    /// Yaw rate, rad/s.
    AngularSpeed,
    /// Change of yaw rate, rad/s².
    AngularAcceleration,
    /// Signed box-to-box distance to the nearest other object, m.
    DistanceToNearestObject,
    /// Whether the object ever overlaps another (Bernoulli).
    CollisionIndication,
    /// Time to collision with the object ahead, s.
    TimeToCollision,
    /// Signed distance from the box to the road edge (positive off-road), m.
    DistanceToRoadEdge,
    /// Whether the object is ever off-road (Bernoulli).
    OffroadIndication,
    /// Whether the object ever runs a red light (Bernoulli; 2025).
    TrafficLightViolation,
}

/// The three groups the leaderboard reports (`SimAgentsBucketedMetrics`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// Speeds and accelerations.
    Kinematic,
    /// Distance to objects, collisions, time to collision.
    Interactive,
    /// Road edge, off-road, traffic lights.
    MapBased,
}

impl Feature {
    /// Every feature, in proto field order.
    pub const ALL: [Feature; 10] = [
        Feature::LinearSpeed,
        Feature::LinearAcceleration,
        Feature::AngularSpeed,
        Feature::AngularAcceleration,
        Feature::DistanceToNearestObject,
        Feature::CollisionIndication,
        Feature::TimeToCollision,
        Feature::DistanceToRoadEdge,
        Feature::OffroadIndication,
        Feature::TrafficLightViolation,
    ];

    /// The field name in `SimAgentMetricsConfig`.
    pub fn name(self) -> &'static str {
        match self {
            Feature::LinearSpeed => "linear_speed",
            Feature::LinearAcceleration => "linear_acceleration",
            Feature::AngularSpeed => "angular_speed",
            Feature::AngularAcceleration => "angular_acceleration",
            Feature::DistanceToNearestObject => "distance_to_nearest_object",
            Feature::CollisionIndication => "collision_indication",
            Feature::TimeToCollision => "time_to_collision",
            Feature::DistanceToRoadEdge => "distance_to_road_edge",
            Feature::OffroadIndication => "offroad_indication",
            Feature::TrafficLightViolation => "traffic_light_violation",
        }
    }

    /// The feature with this config field name.
    pub fn from_name(name: &str) -> Option<Feature> {
        Feature::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Its position in [`Feature::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The bucket it is reported in (the official grouping).
    pub fn bucket(self) -> Bucket {
        match self {
            Feature::LinearSpeed
            | Feature::LinearAcceleration
            | Feature::AngularSpeed
            | Feature::AngularAcceleration => Bucket::Kinematic,
            Feature::DistanceToNearestObject
            | Feature::CollisionIndication
            | Feature::TimeToCollision => Bucket::Interactive,
            Feature::DistanceToRoadEdge
            | Feature::OffroadIndication
            | Feature::TrafficLightViolation => Bucket::MapBased,
        }
    }

    /// True for the per-object "ever" booleans scored with a Bernoulli estimate.
    pub fn is_indicator(self) -> bool {
        matches!(
            self,
            Feature::CollisionIndication
                | Feature::OffroadIndication
                | Feature::TrafficLightViolation
        )
    }
}

impl Bucket {
    /// All buckets in report order.
    pub const ALL: [Bucket; 3] = [Bucket::Kinematic, Bucket::Interactive, Bucket::MapBased];

    /// The features in this bucket.
    pub fn features(self) -> impl Iterator<Item = Feature> {
        Feature::ALL.into_iter().filter(move |f| f.bucket() == self)
    }
}

/// A histogram estimate: `num_bins` equal bins over `[min_val, max_val]`, values
/// clipped into the range, `additive_smoothing_pseudocount` added to every bin.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HistogramEstimate {
    /// Lower edge.
    pub min_val: f32,
    /// Upper edge.
    pub max_val: f32,
    /// Number of bins (at least 1).
    pub num_bins: u32,
    /// Count added to every bin.
    pub additive_smoothing_pseudocount: f32,
}

/// A Gaussian kernel density estimate, normalised so that a Dirac delta scores 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KernelDensityEstimate {
    /// Kernel standard deviation (positive).
    pub bandwidth: f32,
}

/// A Bernoulli estimate for boolean features: a two-bin histogram.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BernoulliEstimate {
    /// Count added to both outcomes.
    pub additive_smoothing_pseudocount: f32,
}

/// The `estimator` oneof.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Estimator {
    /// Histogram.
    Histogram(HistogramEstimate),
    /// Kernel density.
    KernelDensity(KernelDensityEstimate),
    /// Bernoulli.
    Bernoulli(BernoulliEstimate),
}

/// One feature's configuration (`SimAgentMetricsConfig.FeatureConfig`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FeatureConfig {
    /// The estimator; `None` when the file sets none (scoring then fails, as the
    /// official code does).
    pub estimator: Option<Estimator>,
    /// Pool all steps of an object into one distribution (else one per step).
    pub independent_timesteps: bool,
    /// Weight in the meta-metric.
    pub metametric_weight: f32,
    /// Pool all objects of the scene into one distribution (scenario generation).
    pub aggregate_objects: bool,
}

/// A whole `SimAgentMetricsConfig`.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricsConfig {
    /// A short name for reports (the file stem, or what the caller gave).
    pub name: String,
    features: [Option<FeatureConfig>; 10],
}

impl MetricsConfig {
    /// A configuration with no feature set.
    pub fn empty(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            features: [None; 10],
        }
    }

    /// The configuration of `feature`, if the file sets it.
    pub fn feature(&self, feature: Feature) -> Option<&FeatureConfig> {
        self.features[feature.index()].as_ref()
    }

    /// Sets (or clears) one feature's configuration.
    pub fn set_feature(&mut self, feature: Feature, config: Option<FeatureConfig>) {
        self.features[feature.index()] = config;
    }

    /// The meta-metric weight of `feature` (0 when absent, the proto default).
    pub fn weight(&self, feature: Feature) -> f32 {
        self.feature(feature).map_or(0.0, |c| c.metametric_weight)
    }

    /// Reads a text-format config file.
    ///
    /// # Errors
    /// [`DataError`] naming the file (and the line and field for content errors).
    pub fn from_path(path: &Path) -> Result<Self, DataError> {
        let bytes = crate::limits::read_bounded(path, MAX_CONFIG_BYTES, "metric config")?;
        let text = String::from_utf8(bytes).map_err(|e| {
            DataError::invalid(
                path,
                Location::file(),
                format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
            )
        })?;
        let mut config = Self::parse(&text, path)?;
        if let Some(stem) = path.file_stem() {
            config.name = stem
                .to_string_lossy()
                .trim_end_matches("_config")
                .to_string();
        }
        Ok(config)
    }

    /// Parses text-format content; `origin` names it in errors (a path, or something
    /// like `<inline>`).
    ///
    /// # Errors
    /// [`DataError::Invalid`] naming `origin`, the field and the line: syntax errors,
    /// unknown fields, wrong value types, a singular field set twice, two estimators
    /// in one feature, out-of-range parameters (module docs: bins, range, bandwidth,
    /// pseudocount, weights), text longer than [`MAX_CONFIG_BYTES`].
    pub fn parse(text: &str, origin: &Path) -> Result<Self, DataError> {
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(DataError::invalid(
                origin,
                Location::file(),
                format!(
                    "{} bytes of metric config exceed the {MAX_CONFIG_BYTES}-byte limit",
                    text.len()
                ),
            ));
        }
        let tree = textformat::parse(text).map_err(|e| {
            DataError::invalid(origin, Location::file(), format!("syntax error at {e}"))
        })?;
        let mut config = Self::empty(
            origin
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
        );
        let mut seen = Seen::default();
        for field in &tree.fields {
            let Some(feature) = Feature::from_name(&field.name) else {
                return Err(schema_error(
                    origin,
                    &field.name,
                    field,
                    format!(
                        "unknown field `{}` in SimAgentMetricsConfig (expected one of: {})",
                        quote(&field.name),
                        Feature::ALL.map(Feature::name).join(", ")
                    ),
                ));
            };
            seen.once(origin, "", field)?;
            let msg = expect_message(origin, feature.name(), field)?;
            config.features[feature.index()] = Some(parse_feature(origin, feature.name(), msg)?);
        }
        Ok(config)
    }

    /// The official 2024 challenge configuration, compiled in
    /// (`spacer-train/configs/wosac/challenge_2024_config.textproto`, a copy of
    /// waymo-open-dataset's).
    ///
    /// # Errors
    /// Never for the embedded text (a test parses it).
    pub fn challenge_2024() -> Result<Self, DataError> {
        let mut c = Self::parse(EMBEDDED_2024, Path::new(CHALLENGE_2024))?;
        c.name = "2024".into();
        Ok(c)
    }

    /// The official 2025 sim agents challenge configuration, compiled in
    /// (`spacer-train/configs/wosac/challenge_2025_sim_agents_config.textproto`).
    ///
    /// # Errors
    /// Never for the embedded text (a test parses it).
    pub fn challenge_2025() -> Result<Self, DataError> {
        let mut c = Self::parse(EMBEDDED_2025, Path::new(CHALLENGE_2025))?;
        c.name = "2025".into();
        Ok(c)
    }

    /// `2024` or `2025` for the shipped challenge configurations, anything else a path
    /// to a text-format file.
    ///
    /// # Errors
    /// As [`MetricsConfig::from_path`].
    pub fn resolve(spec: &str) -> Result<Self, DataError> {
        match spec {
            "2024" => Self::challenge_2024(),
            "2025" => Self::challenge_2025(),
            path => Self::from_path(&PathBuf::from(path)),
        }
    }
}

/// The official 2024 configuration's text, compiled in.
pub const EMBEDDED_2024: &str = include_str!("../../configs/wosac/challenge_2024_config.textproto");
/// The official 2025 configuration's text, compiled in.
pub const EMBEDDED_2025: &str =
    include_str!("../../configs/wosac/challenge_2025_sim_agents_config.textproto");

/// The shipped 2024 configuration, relative to the shared data directory.
pub const CHALLENGE_2024: &str = "wosac/challenge_2024_config.textproto";
/// The shipped 2025 configuration, relative to the shared data directory.
pub const CHALLENGE_2025: &str = "wosac/challenge_2025_sim_agents_config.textproto";

fn schema_error(origin: &Path, path: &str, field: &TextField, message: String) -> DataError {
    let full = if path.is_empty() || path == field.name {
        field.name.clone()
    } else {
        format!("{path}.{}", field.name)
    };
    DataError::invalid(
        origin,
        Location::field(None, full),
        format!(
            "line {}, column {}: {message}",
            field.position.line, field.position.column
        ),
    )
}

fn scalar_error(origin: &Path, path: &str, e: textformat::TextError) -> DataError {
    DataError::invalid(origin, Location::field(None, path), e.to_string())
}

/// Field names already set in one message, to reject a singular field set twice.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    fn once(&mut self, origin: &Path, path: &str, field: &TextField) -> Result<(), DataError> {
        if self.0.contains(&field.name) {
            return Err(schema_error(
                origin,
                path,
                field,
                format!("field `{}` is set more than once", field.name),
            ));
        }
        self.0.push(field.name.clone());
        Ok(())
    }
}

fn expect_message<'a>(
    origin: &Path,
    path: &str,
    field: &'a TextField,
) -> Result<&'a TextMessage, DataError> {
    match &field.value {
        TextValue::Message(m) => Ok(m),
        TextValue::Scalar(s) => Err(schema_error(
            origin,
            path,
            field,
            format!(
                "field `{}` is a message; write `{} {{ ... }}`, not `{}`",
                field.name,
                field.name,
                quote(&s.text)
            ),
        )),
    }
}

fn expect_scalar<'a>(
    origin: &Path,
    path: &str,
    field: &'a TextField,
) -> Result<&'a Scalar, DataError> {
    match &field.value {
        TextValue::Scalar(s) => Ok(s),
        TextValue::Message(_) => Err(schema_error(
            origin,
            path,
            field,
            format!("field `{}` takes a value, not a message", field.name),
        )),
    }
}

fn parse_f32(origin: &Path, path: &str, field: &TextField) -> Result<f32, DataError> {
    let full = format!("{path}.{}", field.name);
    let v = expect_scalar(origin, path, field)?
        .as_f64()
        .map_err(|e| scalar_error(origin, &full, e))?;
    Ok(v as f32)
}

fn parse_bool(origin: &Path, path: &str, field: &TextField) -> Result<bool, DataError> {
    let full = format!("{path}.{}", field.name);
    expect_scalar(origin, path, field)?
        .as_bool()
        .map_err(|e| scalar_error(origin, &full, e))
}

fn parse_i32(origin: &Path, path: &str, field: &TextField) -> Result<i32, DataError> {
    let full = format!("{path}.{}", field.name);
    let s = expect_scalar(origin, path, field)?;
    let v = s.as_i64().map_err(|e| scalar_error(origin, &full, e))?;
    i32::try_from(v).map_err(|_| {
        schema_error(
            origin,
            path,
            field,
            format!("{v} does not fit a 32-bit integer"),
        )
    })
}

fn unknown(
    origin: &Path,
    path: &str,
    field: &TextField,
    message: &str,
    known: &[&str],
) -> DataError {
    schema_error(
        origin,
        path,
        field,
        format!(
            "unknown field `{}` in {message} (expected one of: {})",
            field.name,
            known.join(", ")
        ),
    )
}

fn parse_feature(origin: &Path, path: &str, msg: &TextMessage) -> Result<FeatureConfig, DataError> {
    let mut out = FeatureConfig::default();
    let mut seen = Seen::default();
    let mut estimator_field: Option<&TextField> = None;
    for field in &msg.fields {
        seen.once(origin, path, field)?;
        let sub = format!("{path}.{}", field.name);
        let estimator = match field.name.as_str() {
            "histogram" => Some(Estimator::Histogram(parse_histogram(
                origin,
                &sub,
                field,
                expect_message(origin, path, field)?,
            )?)),
            "kernel_density" => Some(Estimator::KernelDensity(parse_kde(
                origin,
                &sub,
                field,
                expect_message(origin, path, field)?,
            )?)),
            "bernoulli" => Some(Estimator::Bernoulli(parse_bernoulli(
                origin,
                &sub,
                expect_message(origin, path, field)?,
            )?)),
            "independent_timesteps" => {
                out.independent_timesteps = parse_bool(origin, path, field)?;
                None
            }
            "metametric_weight" => {
                let w = parse_f32(origin, path, field)?;
                if !(w.is_finite() && (0.0..=1.0).contains(&w)) {
                    return Err(schema_error(
                        origin,
                        path,
                        field,
                        format!("metametric_weight must be in [0, 1] (found {w})"),
                    ));
                }
                out.metametric_weight = w;
                None
            }
            "aggregate_objects" => {
                out.aggregate_objects = parse_bool(origin, path, field)?;
                None
            }
            _ => {
                return Err(unknown(
                    origin,
                    path,
                    field,
                    "FeatureConfig",
                    &[
                        "histogram",
                        "kernel_density",
                        "bernoulli",
                        "independent_timesteps",
                        "metametric_weight",
                        "aggregate_objects",
                    ],
                ));
            }
        };
        if let Some(e) = estimator {
            if let Some(prev) = estimator_field {
                return Err(schema_error(
                    origin,
                    path,
                    field,
                    format!(
                        "`{}` and `{}` (line {}) are both set, but a feature has one estimator",
                        field.name, prev.name, prev.position.line
                    ),
                ));
            }
            estimator_field = Some(field);
            out.estimator = Some(e);
        }
    }
    Ok(out)
}

fn parse_histogram(
    origin: &Path,
    path: &str,
    at: &TextField,
    msg: &TextMessage,
) -> Result<HistogramEstimate, DataError> {
    let mut h = HistogramEstimate {
        min_val: 0.0,
        max_val: 0.0,
        num_bins: 0,
        additive_smoothing_pseudocount: DEFAULT_PSEUDOCOUNT,
    };
    let mut bins: Option<i32> = None;
    let mut seen = Seen::default();
    for field in &msg.fields {
        seen.once(origin, path, field)?;
        match field.name.as_str() {
            "min_val" => h.min_val = parse_f32(origin, path, field)?,
            "max_val" => h.max_val = parse_f32(origin, path, field)?,
            "num_bins" => bins = Some(parse_i32(origin, path, field)?),
            "additive_smoothing_pseudocount" => {
                h.additive_smoothing_pseudocount = pseudocount(origin, path, field)?;
            }
            _ => {
                return Err(unknown(
                    origin,
                    path,
                    field,
                    "HistogramEstimate",
                    &[
                        "min_val",
                        "max_val",
                        "num_bins",
                        "additive_smoothing_pseudocount",
                    ],
                ));
            }
        }
    }
    let parent = path.rsplit_once('.').map_or(path, |(p, _)| p).to_string();
    let n = bins.unwrap_or(0);
    if n < 1 {
        return Err(schema_error(
            origin,
            &parent,
            at,
            format!("a histogram needs num_bins >= 1 (found {n})"),
        ));
    }
    if n as u32 > MAX_HISTOGRAM_BINS {
        return Err(schema_error(
            origin,
            &parent,
            at,
            format!("a histogram has at most {MAX_HISTOGRAM_BINS} bins (found {n})"),
        ));
    }
    h.num_bins = n as u32;
    let edge_ok = |v: f32| v.is_finite() && v.abs() <= MAX_HISTOGRAM_EDGE;
    if !(edge_ok(h.min_val) && edge_ok(h.max_val) && h.max_val > h.min_val) {
        return Err(schema_error(
            origin,
            &parent,
            at,
            format!(
                "a histogram needs finite min_val < max_val within +-{MAX_HISTOGRAM_EDGE} (found {} and {})",
                h.min_val, h.max_val
            ),
        ));
    }
    Ok(h)
}

fn parse_kde(
    origin: &Path,
    path: &str,
    at: &TextField,
    msg: &TextMessage,
) -> Result<KernelDensityEstimate, DataError> {
    let mut bandwidth = 0.0f32;
    let mut seen = Seen::default();
    for field in &msg.fields {
        seen.once(origin, path, field)?;
        match field.name.as_str() {
            "bandwidth" => bandwidth = parse_f32(origin, path, field)?,
            _ => {
                return Err(unknown(
                    origin,
                    path,
                    field,
                    "KernelDensityEstimate",
                    &["bandwidth"],
                ));
            }
        }
    }
    if !(bandwidth.is_finite() && bandwidth > 0.0) {
        let parent = path.rsplit_once('.').map_or(path, |(p, _)| p).to_string();
        return Err(schema_error(
            origin,
            &parent,
            at,
            format!("kernel_density needs a positive bandwidth (found {bandwidth})"),
        ));
    }
    Ok(KernelDensityEstimate { bandwidth })
}

fn parse_bernoulli(
    origin: &Path,
    path: &str,
    msg: &TextMessage,
) -> Result<BernoulliEstimate, DataError> {
    let mut b = BernoulliEstimate {
        additive_smoothing_pseudocount: DEFAULT_PSEUDOCOUNT,
    };
    let mut seen = Seen::default();
    for field in &msg.fields {
        seen.once(origin, path, field)?;
        match field.name.as_str() {
            "additive_smoothing_pseudocount" => {
                b.additive_smoothing_pseudocount = pseudocount(origin, path, field)?;
            }
            _ => {
                return Err(unknown(
                    origin,
                    path,
                    field,
                    "BernoulliEstimate",
                    &["additive_smoothing_pseudocount"],
                ));
            }
        }
    }
    Ok(b)
}

fn pseudocount(origin: &Path, path: &str, field: &TextField) -> Result<f32, DataError> {
    let v = parse_f32(origin, path, field)?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(schema_error(
            origin,
            path,
            field,
            format!("additive_smoothing_pseudocount must be finite and >= 0 (found {v})"),
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MetricsConfig, DataError> {
        MetricsConfig::parse(text, Path::new("test.textproto"))
    }

    #[test]
    fn embedded_configs_are_the_official_files() {
        for (embedded, rel) in [
            (EMBEDDED_2024, CHALLENGE_2024),
            (EMBEDDED_2025, CHALLENGE_2025),
        ] {
            let shipped = std::fs::read_to_string(crate::paths::shared_data(rel)).unwrap();
            assert_eq!(embedded, shipped, "the compiled-in copy of {rel} drifted");
        }
    }

    #[test]
    fn shipped_configs_parse_with_their_numbers() {
        let c25 = MetricsConfig::challenge_2025().unwrap();
        let c24 = MetricsConfig::challenge_2024().unwrap();
        for c in [&c25, &c24] {
            for f in Feature::ALL {
                assert!(c.feature(f).is_some(), "{} missing in {}", f.name(), c.name);
            }
            let ls = c.feature(Feature::LinearSpeed).unwrap();
            assert_eq!(
                ls.estimator,
                Some(Estimator::Histogram(HistogramEstimate {
                    min_val: 0.0,
                    max_val: 25.0,
                    num_bins: 10,
                    additive_smoothing_pseudocount: 0.1
                }))
            );
            assert!(ls.independent_timesteps && !ls.aggregate_objects);
            assert_eq!(
                c.feature(Feature::CollisionIndication).unwrap().estimator,
                Some(Estimator::Bernoulli(BernoulliEstimate {
                    additive_smoothing_pseudocount: DEFAULT_PSEUDOCOUNT
                }))
            );
            assert_eq!(c.weight(Feature::OffroadIndication), 0.25);
        }
        assert_eq!(c25.weight(Feature::DistanceToRoadEdge), 0.05);
        assert_eq!(c24.weight(Feature::DistanceToRoadEdge), 0.1);
        assert_eq!(c25.weight(Feature::TrafficLightViolation), 0.05);
        assert_eq!(c24.weight(Feature::TrafficLightViolation), 0.0);
        let sum25: f32 = Feature::ALL.iter().map(|&f| c25.weight(f)).sum();
        assert!((sum25 - 1.0).abs() < 1e-6);
        assert_eq!(MetricsConfig::resolve("2025").unwrap(), c25);
    }

    #[test]
    fn defaults_follow_proto2() {
        let c = parse("linear_speed { histogram { min_val: -1 max_val: 1 num_bins: 4 } }").unwrap();
        let f = c.feature(Feature::LinearSpeed).unwrap();
        assert_eq!(f.metametric_weight, 0.0);
        assert!(!f.independent_timesteps);
        let Some(Estimator::Histogram(h)) = f.estimator else {
            panic!()
        };
        assert_eq!(h.additive_smoothing_pseudocount, DEFAULT_PSEUDOCOUNT);
        assert!(c.feature(Feature::AngularSpeed).is_none());
        assert_eq!(c.weight(Feature::AngularSpeed), 0.0);
        let c = parse("time_to_collision { metametric_weight: 0.5 }").unwrap();
        assert_eq!(c.feature(Feature::TimeToCollision).unwrap().estimator, None);
        let c = parse("time_to_collision { kernel_density { bandwidth: 0.2 } }").unwrap();
        assert_eq!(
            c.feature(Feature::TimeToCollision).unwrap().estimator,
            Some(Estimator::KernelDensity(KernelDensityEstimate {
                bandwidth: 0.2
            }))
        );
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_file_field_and_line() {
        let e = err("linear_speed {\n  histogram {\n    min_val: abc\n  }\n}\n");
        assert!(e.starts_with("test.textproto"), "{e}");
        assert!(e.contains("linear_speed.histogram.min_val"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        let e = err("\nlinear_sped { }");
        assert!(
            e.contains("unknown field `linear_sped`") && e.contains("line 2"),
            "{e}"
        );
        let e = err("linear_speed { bernoulli {} }\nlinear_speed { bernoulli {} }");
        assert!(e.contains("more than once") && e.contains("line 2"), "{e}");
        let e = err("collision_indication { bernoulli {} histogram { num_bins: 2 max_val: 1 } }");
        assert!(e.contains("one estimator"), "{e}");
        let e = err("linear_speed { histogram { min_val: 1 max_val: 1 num_bins: 3 } }");
        assert!(e.contains("min_val < max_val"), "{e}");
        let e = err("linear_speed { histogram { max_val: 1 num_bins: 2.5 } }");
        assert!(e.contains("expected an integer"), "{e}");
        let e = err("linear_speed { histogram { max_val: 1 } }");
        assert!(e.contains("num_bins >= 1"), "{e}");
        let e = err("linear_speed { independent_timesteps: maybe }");
        assert!(e.contains("expected a boolean"), "{e}");
        let e = err("linear_speed { histogram: 3 }");
        assert!(e.contains("is a message"), "{e}");
        let e = err("linear_speed { bernoulli { additive_smoothing_pseudocount: -1 } }");
        assert!(e.contains(">= 0"), "{e}");
        let e = err("linear_speed { kernel_density { bandwidth: 0 } }");
        assert!(e.contains("positive bandwidth"), "{e}");
        let e = err("linear_speed {");
        assert!(e.contains("syntax error") && e.contains("line 1"), "{e}");
        let missing = MetricsConfig::from_path(Path::new("/nonexistent/x.textproto"));
        assert!(
            missing
                .unwrap_err()
                .to_string()
                .starts_with("/nonexistent/x.textproto")
        );
    }

    #[test]
    fn sizes_and_weights_are_bounded() {
        // Two billion bins used to allocate until the kernel killed the process.
        let e = err("linear_speed { histogram { min_val: 0 max_val: 1 num_bins: 2000000000 } }");
        assert!(
            e.contains("linear_speed.histogram") && e.contains("at most 10000 bins"),
            "{e}"
        );
        parse("linear_speed { histogram { min_val: 0 max_val: 1 num_bins: 10000 } }").unwrap();
        // A negative weight made the meta-metric negative.
        let e = err("linear_speed { metametric_weight: -0.5 bernoulli {} }");
        assert!(
            e.contains("linear_speed.metametric_weight") && e.contains("[0, 1]"),
            "{e}"
        );
        let e = err("linear_speed { metametric_weight: 1e30 }");
        assert!(e.contains("[0, 1]"), "{e}");
        let e = err("linear_speed { metametric_weight: nan }");
        assert!(e.contains("[0, 1]"), "{e}");
        parse("linear_speed { metametric_weight: 1 }\nangular_speed { metametric_weight: 0 }")
            .unwrap();
        let e = err("linear_speed { histogram { min_val: -3e38 max_val: 3e38 num_bins: 2 } }");
        assert!(e.contains("within"), "{e}");
        let e = parse(&" ".repeat(MAX_CONFIG_BYTES as usize + 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("limit"), "{e}");
        // A long bad token is quoted short.
        let e = err(&format!(
            "linear_speed {{ histogram {{ min_val: {} }} }}",
            "x".repeat(10_000_000)
        ));
        assert!(e.len() < 400, "{} bytes", e.len());
        let e = err(&format!("{} {{ }}", "y".repeat(10_000_000)));
        assert!(e.len() < 800, "{} bytes", e.len());
    }

    #[test]
    fn buckets_group_as_officially() {
        let k: Vec<_> = Bucket::Kinematic.features().collect();
        assert_eq!(k.len(), 4);
        let i: Vec<_> = Bucket::Interactive.features().map(Feature::name).collect();
        assert_eq!(
            i,
            [
                "distance_to_nearest_object",
                "collision_indication",
                "time_to_collision"
            ]
        );
        let m: Vec<_> = Bucket::MapBased.features().map(Feature::name).collect();
        assert_eq!(
            m,
            [
                "distance_to_road_edge",
                "offroad_indication",
                "traffic_light_violation"
            ]
        );
    }
}
