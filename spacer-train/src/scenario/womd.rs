//! Waymo Open Motion Dataset scenes: TFRecord files of `Scenario` protobufs.
//!
//! Three layers, each usable alone:
//!
//! - [`TfRecordReader`]: the TFRecord framing. Each record is a little-endian `u64`
//!   length, the masked CRC32C of those 8 bytes, the data, and the masked CRC32C of the
//!   data; both checksums are verified. Records are read one at a time from any
//!   [`Read`], so a file of thousands of scenes is never held whole. A length larger
//!   than [`MAX_RECORD_BYTES`] or than what is left of the file is refused before
//!   anything is allocated.
//! - [`proto`]: the protobuf messages (prost derives, written by hand from
//!   `womd/SCHEMA.md`; no protoc at build time). Repeated scalars are accepted packed
//!   and unpacked; the laser and camera fields are skipped.
//! - [`scenario_to_scene`]: the conversion into the crate's [`Scene`] (f32, states
//!   per track, signals per step, map features with their kinds and sub-types).
//!
//! [`WomdReader`] streams [`Scene`]s from a file; [`read_scenes`] collects them.
//!
//! Conversion rules (what "missing" means for proto2 optional fields):
//! - refused: object types outside `Track.ObjectType` and difficulties outside
//!   0..=2 (unknown map sub-types and signal states read as unknown);
//! - required: `scenario_id` (non-empty), `current_time_index`, every track's `id`,
//!   every map feature's `id` and its `feature_data`, a stop sign's `position`, a
//!   signal's `lane` and `stop_point`, a prediction's `track_index`, and in every
//!   *valid* state `center_x`, `center_y`, `length`, `width` and `heading`;
//! - defaulted as proto2 does: `object_type` (unset), `valid` (false), `center_z`,
//!   `height`, velocities and map-point `z` (0), sub-types (unknown/undefined),
//!   `difficulty` (none);
//! - invalid states are stored as [`ObjectState::default`] (all zero): WOMD fills them
//!   with placeholders (-1 sizes) that masked arithmetic must never see;
//! - a stop sign becomes a one-point feature at its position, controlling its lanes;
//! - `signals` gets one entry per step: `dynamic_map_states[t]`'s lane states, padded
//!   with empty steps up to the track length.
//!
//! Plausibility (step counts, indices in range, finite values, sizes) is checked by
//! [`super::validate`], not here.

pub mod proto;

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use prost::Message;

use super::{
    LaneSignal, LaneType, MapFeature, MapFeatureKind, MapPoint, ObjectState, ObjectType,
    PredictionTarget, RoadEdgeType, RoadLineType, Scene, SceneSource, SignalState, Track,
};
use crate::error::{DataError, Location};
use proto::map_feature::FeatureData;

/// Largest TFRecord record accepted (a WOMD scene without sensor data is about 1 MB;
/// with lidar, tens of MB).
pub const MAX_RECORD_BYTES: u64 = 512 << 20;

/// TFRecord's checksum: CRC32C, rotated right by 15 bits plus a constant.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let c = crc32c::crc32c(data);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// Writes one TFRecord record (length, its masked CRC, data, its masked CRC).
///
/// # Errors
/// What `out` returns.
pub fn write_record(out: &mut impl Write, data: &[u8]) -> std::io::Result<()> {
    let len = (data.len() as u64).to_le_bytes();
    out.write_all(&len)?;
    out.write_all(&masked_crc32c(&len).to_le_bytes())?;
    out.write_all(data)?;
    out.write_all(&masked_crc32c(data).to_le_bytes())
}

/// Streams the records of a TFRecord file.
///
/// A framing error (truncation, checksum mismatch, implausible length) ends the
/// stream: the position of the next record is unknown after it.
pub struct TfRecordReader<R> {
    input: R,
    path: PathBuf,
    record: usize,
    /// Bytes left in the input, where known (files).
    remaining: Option<u64>,
    done: bool,
}

impl TfRecordReader<BufReader<File>> {
    /// Opens a TFRecord file.
    ///
    /// # Errors
    /// [`DataError::Io`] naming the file.
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        let len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
        Ok(Self::new(BufReader::new(file), path, Some(len)))
    }
}

impl<R: Read> TfRecordReader<R> {
    /// Reads records from `input`; `path` names it in errors and `size`, where known,
    /// lets an implausible length be refused before reading.
    pub fn new(input: R, path: &Path, size: Option<u64>) -> Self {
        Self {
            input,
            path: path.to_path_buf(),
            record: 0,
            remaining: size,
            done: false,
        }
    }

    /// The file this reader names in its errors.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Index of the next record.
    pub fn record_index(&self) -> usize {
        self.record
    }

    fn fail(&mut self, message: String) -> DataError {
        self.done = true;
        DataError::invalid(&self.path, Location::record(self.record), message)
    }

    /// Fills `buf`; returns how many bytes were read before the end of the input.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, DataError> {
        let mut n = 0;
        while n < buf.len() {
            match self.input.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.done = true;
                    return Err(DataError::io(&self.path, e));
                }
            }
        }
        Ok(n)
    }

    /// The next record's data, `None` at a clean end of file.
    ///
    /// # Errors
    /// [`DataError::Invalid`] naming the file and record for a truncated record, a
    /// length or data checksum mismatch, or a length over [`MAX_RECORD_BYTES`] or
    /// past the end of the file; [`DataError::Io`] for read failures.
    pub fn next_record(&mut self) -> Result<Option<Vec<u8>>, DataError> {
        if self.done {
            return Ok(None);
        }
        let mut head = [0u8; 12];
        let n = self.fill(&mut head)?;
        if n == 0 {
            self.done = true;
            return Ok(None);
        }
        if n < head.len() {
            return Err(self.fail(format!(
                "truncated record header ({n} of 12 bytes): the file ends inside a record"
            )));
        }
        let mut len_bytes = [0u8; 8];
        len_bytes.copy_from_slice(&head[..8]);
        let mut crc_bytes = [0u8; 4];
        crc_bytes.copy_from_slice(&head[8..]);
        if u32::from_le_bytes(crc_bytes) != masked_crc32c(&len_bytes) {
            return Err(self.fail(
                "length checksum mismatch: corrupt file, or not a TFRecord file".to_string(),
            ));
        }
        let len = u64::from_le_bytes(len_bytes);
        if len > MAX_RECORD_BYTES {
            return Err(self.fail(format!(
                "record length {len} bytes exceeds the {MAX_RECORD_BYTES}-byte limit"
            )));
        }
        if let Some(rem) = self.remaining {
            let left = rem.saturating_sub(12);
            if len.saturating_add(4) > left {
                return Err(self.fail(format!(
                    "truncated record: its length says {len} bytes of data but only {left} bytes (data + checksum) remain"
                )));
            }
            self.remaining = Some(left - len - 4);
        }
        // `len` fits in memory by the checks above; grow the buffer as data arrives
        // so that a lying length on a stream of unknown size allocates nothing big.
        let mut data = Vec::with_capacity(usize::try_from(len.min(1 << 20)).unwrap_or(0));
        let got = (&mut self.input)
            .take(len)
            .read_to_end(&mut data)
            .map_err(|e| DataError::io(&self.path, e))?;
        if (got as u64) < len {
            return Err(self.fail(format!(
                "truncated record: {got} of {len} data bytes before the end of the file"
            )));
        }
        let mut crc = [0u8; 4];
        let n = self.fill(&mut crc)?;
        if n < 4 {
            return Err(self.fail("truncated record: the data checksum is missing".to_string()));
        }
        if u32::from_le_bytes(crc) != masked_crc32c(&data) {
            return Err(self.fail("data checksum mismatch: corrupt record".to_string()));
        }
        self.record += 1;
        Ok(Some(data))
    }
}

impl<R: Read> Iterator for TfRecordReader<R> {
    type Item = Result<Vec<u8>, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

/// Decodes one record's data as a `Scenario`.
///
/// # Errors
/// [`DataError::Invalid`] naming the file, the record and, where prost reports it, the
/// message field path (`Scenario.tracks/Track.states/ObjectState.center_x`).
pub fn decode_scenario(
    data: &[u8],
    path: &Path,
    record: usize,
) -> Result<proto::Scenario, DataError> {
    proto::Scenario::decode(data).map_err(|e| {
        let (field, what) = split_decode_error(&e.to_string());
        DataError::invalid(
            path,
            Location {
                record: Some(record),
                field,
            },
            format!("not a WOMD Scenario protobuf: {what}"),
        )
    })
}

/// Splits prost's "failed to decode Protobuf message: Inner.f: Outer.g: what" into
/// the field path outermost first and the description.
fn split_decode_error(s: &str) -> (Option<String>, String) {
    let rest = s
        .strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(s);
    let mut stack = Vec::new();
    let mut tail = rest;
    while let Some((head, more)) = tail.split_once(": ") {
        let is_field = head.split_once('.').is_some_and(|(m, f)| {
            !m.is_empty()
                && !f.is_empty()
                && m.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if !is_field {
            break;
        }
        stack.push(head);
        tail = more;
    }
    if stack.is_empty() {
        return (None, rest.to_string());
    }
    stack.reverse();
    (Some(stack.join("/")), tail.to_string())
}

/// Streams the [`Scene`]s of a WOMD TFRecord file.
///
/// A record whose protobuf or content is bad yields an error and the stream goes on
/// with the next record; a framing error ends it.
pub struct WomdReader<R = BufReader<File>> {
    records: TfRecordReader<R>,
}

impl WomdReader<BufReader<File>> {
    /// Opens a WOMD TFRecord file.
    ///
    /// # Errors
    /// [`DataError::Io`] naming the file.
    pub fn open(path: &Path) -> Result<Self, DataError> {
        Ok(Self {
            records: TfRecordReader::open(path)?,
        })
    }
}

impl<R: Read> WomdReader<R> {
    /// Reads scenes from any byte stream; `path` names it in errors.
    pub fn from_reader(input: R, path: &Path) -> Self {
        Self {
            records: TfRecordReader::new(input, path, None),
        }
    }

    /// The next record as the raw protobuf message, with its record index.
    ///
    /// # Errors
    /// As [`TfRecordReader::next_record`] and [`decode_scenario`].
    pub fn next_scenario(&mut self) -> Option<Result<(usize, proto::Scenario), DataError>> {
        let record = self.records.record_index();
        match self.records.next_record() {
            Ok(None) => None,
            Err(e) => Some(Err(e)),
            Ok(Some(data)) => {
                Some(decode_scenario(&data, self.records.path(), record).map(|s| (record, s)))
            }
        }
    }
}

impl<R: Read> Iterator for WomdReader<R> {
    type Item = Result<Scene, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        let r = self.next_scenario()?;
        Some(r.and_then(|(record, s)| scenario_to_scene(&s, self.records.path(), record)))
    }
}

/// Reads every scene of a WOMD TFRecord file.
///
/// # Errors
/// The first record that fails, naming the file and record.
pub fn read_scenes(path: &Path) -> Result<Vec<Scene>, DataError> {
    WomdReader::open(path)?.collect()
}

/// Converts a decoded `Scenario` into a [`Scene`] (rules in the module docs).
///
/// # Errors
/// [`DataError::Invalid`] naming `path`, `record` and the field for a missing required
/// field or a negative index.
pub fn scenario_to_scene(
    s: &proto::Scenario,
    path: &Path,
    record: usize,
) -> Result<Scene, DataError> {
    let err = |field: String, msg: &str| {
        DataError::invalid(path, Location::field(Some(record), field), msg.to_string())
    };
    let missing = |field: String| err(field, "missing required field");

    let id = match s.scenario_id.as_deref() {
        Some(id) if !id.is_empty() => id.to_string(),
        Some(_) => return Err(err("scenario_id".into(), "empty scenario id")),
        None => return Err(missing("scenario_id".into())),
    };
    let current = s
        .current_time_index
        .ok_or_else(|| missing("current_time_index".into()))?;
    let current_step = usize::try_from(current)
        .map_err(|_| err("current_time_index".into(), "negative step index"))?;

    let mut tracks = Vec::with_capacity(s.tracks.len());
    for (ti, t) in s.tracks.iter().enumerate() {
        let track_id = t.id.ok_or_else(|| missing(format!("tracks[{ti}].id")))?;
        let type_value = t.object_type.unwrap_or(0);
        if !(0..=4).contains(&type_value) {
            return Err(err(
                format!("tracks[{ti}].object_type"),
                &format!("unknown object type {type_value} (expected 0..=4)"),
            ));
        }
        let object_type = ObjectType::from_proto(type_value);
        let mut states = Vec::with_capacity(t.states.len());
        for (si, st) in t.states.iter().enumerate() {
            if !st.valid.unwrap_or(false) {
                states.push(ObjectState::default());
                continue;
            }
            let need = |v: Option<f64>, name: &str| {
                v.ok_or_else(|| missing(format!("tracks[{ti}].states[{si}].{name}")))
            };
            let needf = |v: Option<f32>, name: &str| {
                v.ok_or_else(|| missing(format!("tracks[{ti}].states[{si}].{name}")))
            };
            states.push(ObjectState {
                x: need(st.center_x, "center_x")? as f32,
                y: need(st.center_y, "center_y")? as f32,
                z: st.center_z.unwrap_or(0.0) as f32,
                length: needf(st.length, "length")?,
                width: needf(st.width, "width")?,
                height: st.height.unwrap_or(0.0),
                heading: needf(st.heading, "heading")?,
                vx: st.velocity_x.unwrap_or(0.0),
                vy: st.velocity_y.unwrap_or(0.0),
                valid: true,
            });
        }
        tracks.push(Track {
            id: i64::from(track_id),
            object_type,
            states,
        });
    }

    let mut map = Vec::with_capacity(s.map_features.len());
    for (fi, f) in s.map_features.iter().enumerate() {
        let fid =
            f.id.ok_or_else(|| missing(format!("map_features[{fi}].id")))?;
        let data = f
            .feature_data
            .as_ref()
            .ok_or_else(|| missing(format!("map_features[{fi}].feature_data")))?;
        let feature = match data {
            FeatureData::Lane(l) => {
                let mut m = MapFeature::new(
                    fid,
                    MapFeatureKind::Lane(lane_type(l.r#type.unwrap_or(0))),
                    points(&l.polyline),
                );
                m.entry_lanes = l.entry_lanes.clone();
                m.exit_lanes = l.exit_lanes.clone();
                m.speed_limit_mph = l.speed_limit_mph.map(|v| v as f32);
                m
            }
            FeatureData::RoadLine(l) => MapFeature::new(
                fid,
                MapFeatureKind::RoadLine(road_line_type(l.r#type.unwrap_or(0))),
                points(&l.polyline),
            ),
            FeatureData::RoadEdge(e) => MapFeature::new(
                fid,
                MapFeatureKind::RoadEdge(road_edge_type(e.r#type.unwrap_or(0))),
                points(&e.polyline),
            ),
            FeatureData::StopSign(st) => {
                let p = st
                    .position
                    .as_ref()
                    .ok_or_else(|| missing(format!("map_features[{fi}].stop_sign.position")))?;
                let mut m = MapFeature::new(fid, MapFeatureKind::StopSign, vec![point(p)]);
                m.controlled_lanes = st.lane.clone();
                m
            }
            FeatureData::Crosswalk(c) => {
                MapFeature::new(fid, MapFeatureKind::Crosswalk, points(&c.polygon))
            }
            FeatureData::SpeedBump(c) => {
                MapFeature::new(fid, MapFeatureKind::SpeedBump, points(&c.polygon))
            }
            FeatureData::Driveway(c) => {
                MapFeature::new(fid, MapFeatureKind::Driveway, points(&c.polygon))
            }
        };
        map.push(feature);
    }

    let steps = tracks.first().map_or(0, |t| t.states.len());
    let mut signals = Vec::with_capacity(steps.max(s.dynamic_map_states.len()));
    for (t, d) in s.dynamic_map_states.iter().enumerate() {
        let mut step = Vec::with_capacity(d.lane_states.len());
        for (li, ls) in d.lane_states.iter().enumerate() {
            let field = |name: &str| format!("dynamic_map_states[{t}].lane_states[{li}].{name}");
            let lane = ls.lane.ok_or_else(|| missing(field("lane")))?;
            let stop = ls
                .stop_point
                .as_ref()
                .ok_or_else(|| missing(field("stop_point")))?;
            step.push(LaneSignal {
                lane,
                state: SignalState::from_proto(ls.state.unwrap_or(0)),
                stop_point: point(stop),
            });
        }
        signals.push(step);
    }
    while signals.len() < steps {
        signals.push(Vec::new());
    }

    let sdc_index = match s.sdc_track_index {
        None => None,
        Some(i) => {
            Some(usize::try_from(i).map_err(|_| err("sdc_track_index".into(), "negative index"))?)
        }
    };
    let mut tracks_to_predict = Vec::with_capacity(s.tracks_to_predict.len());
    for (pi, p) in s.tracks_to_predict.iter().enumerate() {
        let field = format!("tracks_to_predict[{pi}].track_index");
        let i = p.track_index.ok_or_else(|| missing(field.clone()))?;
        let track_index = usize::try_from(i).map_err(|_| err(field, "negative index"))?;
        let d = p.difficulty.unwrap_or(0);
        let difficulty = u8::try_from(d).ok().filter(|d| *d <= 2).ok_or_else(|| {
            err(
                format!("tracks_to_predict[{pi}].difficulty"),
                &format!("difficulty {d} is not 0, 1 or 2"),
            )
        })?;
        tracks_to_predict.push(PredictionTarget {
            track_index,
            difficulty,
        });
    }

    Ok(Scene {
        id,
        source: SceneSource::Womd,
        current_step,
        tracks,
        map,
        signals,
        sdc_index,
        tracks_to_predict,
        objects_of_interest: s
            .objects_of_interest
            .iter()
            .map(|&i| i64::from(i))
            .collect(),
    })
}

fn point(p: &proto::MapPoint) -> MapPoint {
    MapPoint {
        x: p.x.unwrap_or(0.0) as f32,
        y: p.y.unwrap_or(0.0) as f32,
        z: p.z.unwrap_or(0.0) as f32,
    }
}

fn points(ps: &[proto::MapPoint]) -> Vec<MapPoint> {
    ps.iter().map(point).collect()
}

/// WOMD `LaneType` value to the model's (unknown values: undefined).
pub fn lane_type(v: i32) -> LaneType {
    match v {
        1 => LaneType::Freeway,
        2 => LaneType::SurfaceStreet,
        3 => LaneType::BikeLane,
        _ => LaneType::Undefined,
    }
}

/// WOMD `RoadLineType` value to the model's (unknown values: unknown).
pub fn road_line_type(v: i32) -> RoadLineType {
    match v {
        1 => RoadLineType::BrokenSingleWhite,
        2 => RoadLineType::SolidSingleWhite,
        3 => RoadLineType::SolidDoubleWhite,
        4 => RoadLineType::BrokenSingleYellow,
        5 => RoadLineType::BrokenDoubleYellow,
        6 => RoadLineType::SolidSingleYellow,
        7 => RoadLineType::SolidDoubleYellow,
        8 => RoadLineType::PassingDoubleYellow,
        _ => RoadLineType::Unknown,
    }
}

/// WOMD `RoadEdgeType` value to the model's (unknown values: unknown).
pub fn road_edge_type(v: i32) -> RoadEdgeType {
    match v {
        1 => RoadEdgeType::Boundary,
        2 => RoadEdgeType::Median,
        _ => RoadEdgeType::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::shared_data;
    use crate::scenario::MapFeatureKind as K;

    fn scene_637() -> Scene {
        let v = read_scenes(&shared_data("womd/637f20cafde22ff8.tfrecord")).unwrap();
        assert_eq!(v.len(), 1);
        v.into_iter().next().unwrap()
    }

    #[test]
    fn shipped_637f_matches_the_readme() {
        let s = scene_637();
        assert_eq!(s.id, "637f20cafde22ff8");
        assert_eq!(s.tracks.len(), 83);
        let count = |t| s.tracks.iter().filter(|x| x.object_type == t).count();
        assert_eq!(count(ObjectType::Vehicle), 70);
        assert_eq!(count(ObjectType::Pedestrian), 10);
        assert_eq!(count(ObjectType::Cyclist), 3);
        assert!(s.tracks.iter().all(|t| t.states.len() == 91));
        assert_eq!(s.current_step, 10);
        let valid: usize = s
            .tracks
            .iter()
            .map(|t| t.states.iter().filter(|s| s.valid).count())
            .sum();
        assert_eq!(valid, 4596);
        assert_eq!(s.sdc_index, Some(82));
        assert_eq!(s.map.len(), 301);
        let kind = |f: fn(&K) -> bool| s.map.iter().filter(|m| f(&m.kind)).count();
        assert_eq!(kind(|k| matches!(k, K::Lane(_))), 199);
        assert_eq!(kind(|k| matches!(k, K::RoadLine(_))), 59);
        assert_eq!(kind(|k| matches!(k, K::RoadEdge(_))), 28);
        assert_eq!(kind(|k| matches!(k, K::Crosswalk)), 4);
        assert_eq!(kind(|k| matches!(k, K::SpeedBump)), 3);
        assert_eq!(kind(|k| matches!(k, K::StopSign)), 8);
        let pts: usize = s
            .map
            .iter()
            .filter(|m| matches!(m.kind, K::Lane(_) | K::RoadLine(_) | K::RoadEdge(_)))
            .map(|m| m.points.len())
            .sum();
        assert_eq!(pts, 19_596);
        assert_eq!(s.signals.len(), 91);
        assert!(s.signals.iter().all(|st| !st.is_empty()));
        let mut lanes: Vec<i64> = s.signals.iter().flatten().map(|l| l.lane).collect();
        lanes.sort_unstable();
        lanes.dedup();
        assert_eq!(lanes.len(), 12);
        let ttp: Vec<usize> = s.tracks_to_predict.iter().map(|t| t.track_index).collect();
        assert_eq!(ttp, [72, 43, 42]);
    }

    #[test]
    fn shipped_ee51_matches_the_readme() {
        let v = read_scenes(&shared_data("womd/ee519cf571686d19.tfrecord")).unwrap();
        let s = &v[0];
        assert_eq!(s.tracks.len(), 257);
        assert_eq!(s.sdc_index, Some(256));
        assert_eq!(s.map.len(), 215);
        assert!(!s.has_signals());
    }

    #[test]
    fn decode_errors_name_the_field_path() {
        let (f, what) = split_decode_error(
            "failed to decode Protobuf message: ObjectState.center_x: Track.states: Scenario.tracks: invalid wire type: LengthDelimited (expected SixtyFourBit)",
        );
        assert_eq!(
            f.as_deref(),
            Some("Scenario.tracks/Track.states/ObjectState.center_x")
        );
        assert!(what.starts_with("invalid wire type"), "{what}");
        let (f, what) = split_decode_error("failed to decode Protobuf message: invalid varint");
        assert_eq!(f, None);
        assert_eq!(what, "invalid varint");
    }

    // ---- Broken inputs: deliberately damaged copies in a temporary directory.

    fn real_record() -> Vec<u8> {
        let mut r = TfRecordReader::open(&shared_data("womd/637f20cafde22ff8.tfrecord")).unwrap();
        r.next_record().unwrap().unwrap()
    }

    fn framed(records: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            write_record(&mut out, r).unwrap();
        }
        out
    }

    /// Writes `bytes` to `name` in a fresh temporary directory and reads it back with
    /// the loader (validation included); returns the error text.
    fn load_err(name: &str, bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let e = crate::scenario::load_scenes(&p, crate::scenario::BadScenePolicy::Fail)
            .expect_err("a broken file loaded")
            .to_string();
        assert!(e.contains(name), "the error does not name the file: {e}");
        e
    }

    fn encode(s: &proto::Scenario) -> Vec<u8> {
        s.encode_to_vec()
    }

    #[test]
    fn truncated_records_are_reported() {
        let good = std::fs::read(shared_data("womd/637f20cafde22ff8.tfrecord")).unwrap();
        for cut in [5, 12, 20, good.len() / 2, good.len() - 2] {
            let e = load_err("cut.tfrecord", &good[..cut]);
            assert!(
                e.contains("record 0") && e.contains("truncated"),
                "cut at {cut}: {e}"
            );
        }
        // A second record cut short: the first still names record 0 fine, the error
        // names record 1.
        let mut two = good.clone();
        two.extend_from_slice(&good[..100]);
        let e = load_err("two.tfrecord", &two);
        assert!(e.contains("record 1") && e.contains("truncated"), "{e}");
    }

    #[test]
    fn checksum_mismatches_of_length_and_data_are_reported() {
        let good = std::fs::read(shared_data("womd/637f20cafde22ff8.tfrecord")).unwrap();
        let mut b = good.clone();
        b[9] ^= 0x40; // the length's checksum
        let e = load_err("lencrc.tfrecord", &b);
        assert!(
            e.contains("record 0") && e.contains("length checksum mismatch"),
            "{e}"
        );
        let mut b = good.clone();
        b[2] ^= 0x01; // the length itself
        let e = load_err("len.tfrecord", &b);
        assert!(e.contains("length checksum mismatch"), "{e}");
        let mut b = good.clone();
        b[5000] ^= 0x01; // the data
        let e = load_err("data.tfrecord", &b);
        assert!(
            e.contains("record 0") && e.contains("data checksum mismatch"),
            "{e}"
        );
        let mut b = good;
        let n = b.len();
        b[n - 1] ^= 0x01; // the data's checksum
        let e = load_err("datacrc.tfrecord", &b);
        assert!(e.contains("data checksum mismatch"), "{e}");
    }

    #[test]
    fn a_huge_length_field_is_refused_without_allocating_it() {
        for len in [u64::MAX, 1 << 40, MAX_RECORD_BYTES + 1] {
            let mut b = len.to_le_bytes().to_vec();
            b.extend_from_slice(&masked_crc32c(&len.to_le_bytes()).to_le_bytes());
            b.extend_from_slice(&[0u8; 64]);
            let e = load_err("huge.tfrecord", &b);
            assert!(e.contains("record 0") && e.contains("exceeds"), "{e}");
        }
        // Under the limit but longer than the file: refused from the file size.
        let len: u64 = 300 << 20;
        let mut b = len.to_le_bytes().to_vec();
        b.extend_from_slice(&masked_crc32c(&len.to_le_bytes()).to_le_bytes());
        b.extend_from_slice(&[0u8; 64]);
        let e = load_err("long.tfrecord", &b);
        assert!(e.contains("truncated") && e.contains("remain"), "{e}");
        // On a stream of unknown size the buffer grows with the data that arrives.
        let mut r = WomdReader::from_reader(&b[..], Path::new("stream"));
        let e = r.next().unwrap().unwrap_err().to_string();
        assert!(
            e.contains("truncated") && e.contains("64 of 314572800"),
            "{e}"
        );
        assert!(r.next().is_none());
    }

    #[test]
    fn wrong_wire_types_name_the_field_path() {
        // Scenario.tracks (field 2, a message) sent as a varint.
        let e = load_err("wire.tfrecord", &framed(&[vec![0x10, 0x01]]));
        assert!(
            e.contains("record 0, field Scenario.tracks") && e.contains("wire type"),
            "{e}"
        );
        // ObjectState.center_x (field 2, a double) sent as a varint, three levels down.
        let state = vec![0x10, 0x05];
        let mut track = vec![0x1a, state.len() as u8];
        track.extend(&state);
        let mut scenario = vec![0x12, track.len() as u8];
        scenario.extend(&track);
        let e = load_err("deep.tfrecord", &framed(&[scenario]));
        assert!(
            e.contains("field Scenario.tracks/Track.states/ObjectState.center_x"),
            "{e}"
        );
        // Garbage that is not a protobuf at all.
        let e = load_err("junk.tfrecord", &framed(&[vec![0xff; 16]]));
        assert!(
            e.contains("record 0") && e.contains("not a WOMD Scenario"),
            "{e}"
        );
    }

    #[test]
    fn missing_required_fields_are_named() {
        let good = proto::Scenario::decode(&real_record()[..]).unwrap();
        type Damage = Box<dyn Fn(&mut proto::Scenario)>;
        let cases: Vec<(&str, Damage)> = vec![
            ("field scenario_id", Box::new(|s| s.scenario_id = None)),
            (
                "field current_time_index",
                Box::new(|s| s.current_time_index = None),
            ),
            ("field tracks[3].id", Box::new(|s| s.tracks[3].id = None)),
            (
                "field tracks[0].states[10].center_x",
                Box::new(|s| s.tracks[0].states[10].center_x = None),
            ),
            (
                "field tracks[0].states[10].length",
                Box::new(|s| s.tracks[0].states[10].length = None),
            ),
            (
                "field map_features[5].id",
                Box::new(|s| s.map_features[5].id = None),
            ),
            (
                "field map_features[5].feature_data",
                Box::new(|s| s.map_features[5].feature_data = None),
            ),
            (
                "field dynamic_map_states[0].lane_states[0].stop_point",
                Box::new(|s| s.dynamic_map_states[0].lane_states[0].stop_point = None),
            ),
            (
                "field tracks_to_predict[1].track_index",
                Box::new(|s| s.tracks_to_predict[1].track_index = None),
            ),
        ];
        for (want, damage) in cases {
            let mut s = good.clone();
            damage(&mut s);
            let e = load_err("missing.tfrecord", &framed(&[encode(&s)]));
            assert!(e.contains(&format!("record 0, {want}")), "{want}: {e}");
            assert!(e.contains("missing required field"), "{e}");
        }
        // An invalid state may lack everything.
        let mut s = good.clone();
        let (t, i) = s
            .tracks
            .iter()
            .enumerate()
            .find_map(|(t, tr)| {
                tr.states
                    .iter()
                    .position(|x| x.valid != Some(true))
                    .map(|i| (t, i))
            })
            .unwrap();
        s.tracks[t].states[i] = proto::ObjectState::default();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ok.tfrecord");
        std::fs::write(&p, framed(&[encode(&s)])).unwrap();
        read_scenes(&p).unwrap();
    }

    #[test]
    fn implausible_content_fails_validation_with_its_field() {
        let good = proto::Scenario::decode(&real_record()[..]).unwrap();
        let mut s = good.clone();
        s.tracks[2].states[12].center_x = Some(f64::NAN);
        let e = load_err("nan.tfrecord", &framed(&[encode(&s)]));
        assert!(
            e.contains("record 0, field tracks[2].states[12]") && e.contains("non-finite"),
            "{e}"
        );
        let mut s = good.clone();
        s.tracks[2].states[12].velocity_y = Some(f32::INFINITY);
        let e = load_err("inf.tfrecord", &framed(&[encode(&s)]));
        assert!(
            e.contains("tracks[2].states[12]") && e.contains("non-finite"),
            "{e}"
        );
        let mut s = good.clone();
        if let Some(FeatureData::RoadEdge(edge)) = &mut s.map_features[0].feature_data {
            edge.polyline[3].y = Some(f64::NEG_INFINITY);
        }
        let e = load_err("infmap.tfrecord", &framed(&[encode(&s)]));
        assert!(e.contains("field map[0].points[3]"), "{e}");
        let mut s = good.clone();
        s.tracks.clear();
        s.sdc_track_index = None;
        s.tracks_to_predict.clear();
        let e = load_err("empty.tfrecord", &framed(&[encode(&s)]));
        assert!(e.contains("no agents"), "{e}");
        let mut s = good.clone();
        if let Some(FeatureData::RoadEdge(edge)) = &mut s.map_features[0].feature_data {
            edge.polyline.truncate(1);
        }
        let e = load_err("onepoint.tfrecord", &framed(&[encode(&s)]));
        assert!(
            e.contains("field map[0].points") && e.contains("needs at least 2"),
            "{e}"
        );
        let mut s = good.clone();
        s.tracks[7].states[20].width = Some(0.0);
        let e = load_err("size.tfrecord", &framed(&[encode(&s)]));
        assert!(
            e.contains("tracks[7].states[20]") && e.contains("positive"),
            "{e}"
        );
        let mut s = good.clone();
        s.tracks[4].states.truncate(50);
        let e = load_err("short.tfrecord", &framed(&[encode(&s)]));
        assert!(
            e.contains("tracks[4].states") && e.contains("50 steps"),
            "{e}"
        );
        let mut s = good.clone();
        s.sdc_track_index = Some(83);
        let e = load_err("sdc.tfrecord", &framed(&[encode(&s)]));
        assert!(
            e.contains("field sdc_index") && e.contains("out of range"),
            "{e}"
        );
        let mut s = good.clone();
        s.sdc_track_index = Some(-1);
        let e = load_err("neg.tfrecord", &framed(&[encode(&s)]));
        assert!(
            e.contains("field sdc_track_index") && e.contains("negative"),
            "{e}"
        );
        let mut s = good.clone();
        s.tracks[1].id = s.tracks[0].id;
        let e = load_err("dup.tfrecord", &framed(&[encode(&s)]));
        assert!(e.contains("tracks[1].id") && e.contains("duplicate"), "{e}");
        let mut s = good.clone();
        s.tracks[3].object_type = Some(9);
        let e = load_err("type.tfrecord", &framed(&[encode(&s)]));
        assert!(
            e.contains("field tracks[3].object_type") && e.contains("unknown object type 9"),
            "{e}"
        );
        let mut s = good.clone();
        s.tracks_to_predict[2].difficulty = Some(3);
        let e = load_err("difficulty.tfrecord", &framed(&[encode(&s)]));
        assert!(e.contains("field tracks_to_predict[2].difficulty"), "{e}");
        let mut s = good;
        s.tracks_to_predict[0].track_index = Some(500);
        let e = load_err("ttp.tfrecord", &framed(&[encode(&s)]));
        assert!(
            e.contains("tracks_to_predict[0]") && e.contains("out of range"),
            "{e}"
        );
    }

    #[test]
    fn packed_and_unpacked_repeated_scalars_decode_alike() {
        // objects_of_interest = [7, 300] unpacked (tag 4, varint each) and packed
        // (tag 4, length-delimited run of varints).
        let mut unpacked = vec![0x2a, 0x01, b'x']; // scenario_id "x"
        unpacked.extend([0x20, 0x07, 0x20, 0xac, 0x02]);
        let mut packed = vec![0x2a, 0x01, b'x'];
        packed.extend([0x22, 0x03, 0x07, 0xac, 0x02]);
        let a = proto::Scenario::decode(&unpacked[..]).unwrap();
        let b = proto::Scenario::decode(&packed[..]).unwrap();
        assert_eq!(a.objects_of_interest, [7, 300]);
        assert_eq!(a, b);
    }

    #[test]
    fn bad_records_are_skipped_and_good_ones_kept_under_skip() {
        let good = real_record();
        let file = framed(&[good.clone(), vec![0x10, 0x01], good]);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mixed.tfrecord");
        std::fs::write(&p, &file).unwrap();
        let mut o = crate::scenario::LoadOptions::new(crate::scenario::BadScenePolicy::Skip);
        o.quiet = true;
        let loaded = crate::scenario::load_scenes_with(std::slice::from_ref(&p), o).unwrap();
        assert_eq!(loaded.scenes.len(), 2);
        assert_eq!(loaded.warnings.len(), 1);
        assert!(
            loaded.warnings[0].to_string().contains("record 1"),
            "{}",
            loaded.warnings[0]
        );
        let e = crate::scenario::load_scenes(&p, crate::scenario::BadScenePolicy::Fail)
            .unwrap_err()
            .to_string();
        assert!(e.contains("mixed.tfrecord, record 1"), "{e}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Random bytes, raw or framed as valid TFRecord records, never panic the
        /// reader, the decoder, the conversion or the validation.
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..4096)) {
            let p = Path::new("random");
            for s in WomdReader::from_reader(&bytes[..], p).flatten() {
                let _ = crate::scenario::validate::validate_scene(&s, Default::default(), p, None);
            }
            let framed = framed(std::slice::from_ref(&bytes));
            for s in WomdReader::from_reader(&framed[..], p).flatten() {
                let _ = crate::scenario::validate::validate_scene(&s, Default::default(), p, None);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

        /// A real record with random bytes overwritten, or cut short, never panics.
        #[test]
        fn damaged_real_records_never_panic(
            flips in proptest::collection::vec((0usize..1 << 20, proptest::prelude::any::<u8>()), 1..8),
            cut in 0usize..1 << 20,
        ) {
            use std::sync::OnceLock;
            static RECORD: OnceLock<Vec<u8>> = OnceLock::new();
            let rec = RECORD.get_or_init(real_record);
            let mut b = rec.clone();
            for (at, v) in flips {
                let n = b.len();
                b[at % n] = v;
            }
            b.truncate(cut.max(1).min(b.len()));
            let p = Path::new("damaged");
            if let Ok(s) = decode_scenario(&b, p, 0)
                && let Ok(scene) = scenario_to_scene(&s, p, 0)
            {
                let _ = crate::scenario::validate::validate_scene(&scene, Default::default(), p, Some(0));
            }
        }
    }

    #[test]
    fn masked_crc_of_the_empty_string() {
        // TensorFlow's masked CRC32C of b"" (crc 0): rotate(0) + delta.
        assert_eq!(masked_crc32c(b""), 0xa282_ead8);
    }
}
