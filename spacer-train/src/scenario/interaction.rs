//! The INTERACTION dataset: drone recordings as track CSVs plus a Lanelet2 map
//! (OpenStreetMap XML), cut into WOMD-shaped scenes.
//!
//! **Tracks.** `vehicle_tracks_NNN.csv` has `track_id, frame_id, timestamp_ms,
//! agent_type, x, y, vx, vy, psi_rad, length, width` (metres, m/s, radians, 10 Hz);
//! the matching `pedestrian_tracks_NNN.csv` has no heading or size. Columns are found
//! by header name. Pedestrian ids (`P4`) become [`PEDESTRIAN_ID_OFFSET`] + 4, so that
//! they never collide with vehicle ids. Pedestrians get their heading from their
//! velocity (held while they stand; before they first move, the direction of their first motion) and a default box
//! ([`InteractionOptions::pedestrian_size`]). The dataset lumps bicycles with
//! pedestrians (`pedestrian/bicycle`); an agent of that type whose median speed
//! exceeds [`InteractionOptions::cyclist_speed`] is taken for a cyclist. Box heights
//! are unknown (0) and z is 0.
//!
//! **Windows.** The recording is cut into 9.1 s windows of [`NUM_STEPS`] frames,
//! starting every [`InteractionOptions::stride_steps`] frames (default 10: one scene
//! per second, a few hundred from a 5-minute recording; overlapping windows share
//! frames, so hold out whole recordings, not windows, for evaluation). The current
//! step is [`CURRENT_STEP`]. A window holds every agent seen in it; its tracks to
//! predict are the agents valid at all 91 steps. There is no self-driving car
//! (a drone recording), so `sdc_index` is `None`.
//!
//! **Map.** Node lat/lon are projected with a transverse Mercator projection on the
//! WGS84 ellipsoid, origin (0, 0), scale 1 ([`project`]): the dataset's own frame
//! (near the origin x ≈ lon · 111,319 m and y ≈ lat · 110,574 m). A test checks it
//! against the tracks. From the lanelets:
//! - a **lane** per lanelet: the centre line, the mean of the left and right
//!   boundaries after both are resampled to the same number of points (spacing
//!   [`InteractionOptions::lane_spacing`]); the right boundary's direction is the
//!   driving direction (the left one is reversed when it points the other way, as
//!   Lanelet2 does for boundaries shared by opposite lanes); entry and exit lanes
//!   from shared end nodes; `bicycle_lane` lanelets are bike lanes;
//! - **road edges** from the outer boundaries: a boundary no other lanelet shares,
//!   unless it is `virtual` (inside intersections lanelets overlap, their virtual
//!   boundaries lie on the road); oriented with the road on their left, like WOMD's;
//!   physical borders (`curbstone`, `road_border`, `guard_rail`, `wall`, `fence`) are
//!   road edges even where shared (a median);
//! - **road lines** from the shared boundaries that are painted (`line_thin`,
//!   `line_thick` and untyped ones), sub-type from `subtype` (`solid`, `dashed`,
//!   `solid_solid`, ...) and `color`; painted lines are road lines where unshared too;
//! - **stop signs** from `traffic_sign` ways of a stop sub-type (`usR1-1`, `de206`)
//!   at the centroid of the way's nodes, controlling the yielding lanelets of the
//!   right-of-way rules that refer to them, or every lanelet of an all-way stop;
//! - `crosswalk` lanelets become crosswalk polygons. Loose `pedestrian_marking` and
//!   `stop_line` ways, and the free-space multipolygon, are not carried.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::{
    CURRENT_STEP, LaneType, MapFeature, MapFeatureKind, MapPoint, NUM_STEPS, ObjectState,
    ObjectType, PredictionTarget, RoadEdgeType, RoadLineType, Scene, SceneSource,
};
use crate::error::{DataError, Location};

/// Offset added to pedestrian numbers (`P4` becomes 1,000,004).
pub const PEDESTRIAN_ID_OFFSET: i64 = 1_000_000;

/// Largest frame number accepted (about 115 days at 10 Hz).
pub const MAX_FRAME: i64 = 100_000_000;

/// Largest CSV or OSM file accepted (a recording is a few MB).
pub const MAX_FILE_BYTES: u64 = 512 << 20;

/// How a recording becomes scenes.
#[derive(Clone, Debug, PartialEq)]
pub struct InteractionOptions {
    /// Frames between the starts of consecutive windows.
    pub stride_steps: usize,
    /// Box of a pedestrian (length, width), which the CSV does not give (m).
    pub pedestrian_size: (f32, f32),
    /// Box of a cyclist (length, width) (m).
    pub cyclist_size: (f32, f32),
    /// Median speed above which a `pedestrian/bicycle` agent is a cyclist (m/s).
    pub cyclist_speed: f32,
    /// Speed below which a pedestrian's heading is held (m/s).
    pub heading_min_speed: f32,
    /// Spacing of the resampled lane centre lines (m).
    pub lane_spacing: f32,
}

impl Default for InteractionOptions {
    fn default() -> Self {
        Self {
            stride_steps: 10,
            pedestrian_size: (1.0, 1.0),
            cyclist_size: (2.0, 1.0),
            cyclist_speed: 3.0,
            heading_min_speed: 0.2,
            lane_spacing: 0.5,
        }
    }
}

/// The projection of node lat/lon to the recording's metres: Lanelet2's
/// `UtmProjector` with origin (0, 0), which the dataset's tools use. That is UTM
/// (WGS84, scale 0.9996) in the origin's zone (31, central meridian 3° E), minus the
/// origin's own easting and northing, so that (0, 0) maps to (0, 0). Near the origin
/// x ≈ lon · 111,427 m and y ≈ lat · 110,681 m. The tracks confirm it: vehicles lie
/// 0.5 m from the lane centre lines on average with it, 0.85 m with a plain
/// transverse Mercator about the Greenwich meridian (scale 1).
pub fn project(lat_deg: f64, lon_deg: f64) -> (f64, f64) {
    let (x, y) = transverse_mercator(lat_deg, lon_deg, 3.0, 0.9996);
    let (x0, y0) = transverse_mercator(0.0, 0.0, 3.0, 0.9996);
    (x - x0, y - y0)
}

/// Transverse Mercator on the WGS84 ellipsoid (Snyder's series) about the central
/// meridian `lon0_deg` with scale `k0`: (easting without false easting, northing).
pub fn transverse_mercator(lat_deg: f64, lon_deg: f64, lon0_deg: f64, k0: f64) -> (f64, f64) {
    const A: f64 = 6_378_137.0;
    const F: f64 = 1.0 / 298.257_223_563;
    let e2 = F * (2.0 - F);
    let ep2 = e2 / (1.0 - e2);
    let (e4, e6) = (e2 * e2, e2 * e2 * e2);
    let phi = lat_deg.to_radians();
    let lam = (lon_deg - lon0_deg).to_radians();
    let (s, c) = phi.sin_cos();
    let n = A / (1.0 - e2 * s * s).sqrt();
    let t = (s / c).powi(2);
    let cc = ep2 * c * c;
    let a = lam * c;
    let m = A
        * ((1.0 - e2 / 4.0 - 3.0 * e4 / 64.0 - 5.0 * e6 / 256.0) * phi
            - (3.0 * e2 / 8.0 + 3.0 * e4 / 32.0 + 45.0 * e6 / 1024.0) * (2.0 * phi).sin()
            + (15.0 * e4 / 256.0 + 45.0 * e6 / 1024.0) * (4.0 * phi).sin()
            - (35.0 * e6 / 3072.0) * (6.0 * phi).sin());
    let x = n
        * (a + (1.0 - t + cc) * a.powi(3) / 6.0
            + (5.0 - 18.0 * t + t * t + 72.0 * cc - 58.0 * ep2) * a.powi(5) / 120.0);
    let y = m + n
        * (s / c)
        * (a * a / 2.0
            + (5.0 - t + 9.0 * cc + 4.0 * cc * cc) * a.powi(4) / 24.0
            + (61.0 - 58.0 * t + t * t + 600.0 * cc - 330.0 * ep2) * a.powi(6) / 720.0);
    (k0 * x, k0 * y)
}

fn read_text(path: &Path) -> Result<String, DataError> {
    let len = std::fs::metadata(path)
        .map_err(|e| DataError::io(path, e))?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(DataError::invalid(
            path,
            Location::file(),
            format!("{len}-byte file exceeds the {MAX_FILE_BYTES}-byte limit"),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    String::from_utf8(bytes)
        .map_err(|e| DataError::invalid(path, Location::file(), format!("not UTF-8 text: {e}")))
}

// ---------------------------------------------------------------------------------
// Tracks

/// One CSV sample.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Sample {
    frame: i64,
    x: f32,
    y: f32,
    vx: f32,
    vy: f32,
    heading: Option<f32>,
    size: Option<(f32, f32)>,
}

/// One agent of a recording, with its samples in frame order.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedAgent {
    /// Scene track id (pedestrians offset by [`PEDESTRIAN_ID_OFFSET`]).
    pub id: i64,
    /// Type.
    pub object_type: ObjectType,
    samples: Vec<Sample>,
}

impl RecordedAgent {
    /// Frames in which the agent was observed.
    pub fn frames(&self) -> impl Iterator<Item = i64> + '_ {
        self.samples.iter().map(|s| s.frame)
    }
}

/// A parsed track CSV.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackFile {
    /// Agents in id order.
    pub agents: Vec<RecordedAgent>,
}

/// Reads an INTERACTION track CSV (vehicles or pedestrians).
///
/// # Errors
/// [`DataError`] naming the file, the line and the column for a missing column, a
/// bad number, an unknown agent type, a repeated frame or a non-positive size.
pub fn read_track_csv(path: &Path, options: &InteractionOptions) -> Result<TrackFile, DataError> {
    let text = read_text(path)?;
    parse_track_csv(&text, path, options)
}

/// Parses track CSV text; `path` names it in errors. Lines are 1-based records.
///
/// # Errors
/// As [`read_track_csv`].
pub fn parse_track_csv(
    text: &str,
    path: &Path,
    options: &InteractionOptions,
) -> Result<TrackFile, DataError> {
    let mut lines = text.lines().enumerate();
    let (_, header) = lines
        .next()
        .ok_or_else(|| DataError::invalid(path, Location::file(), "empty CSV file"))?;
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let col = |name: &str| names.iter().position(|n| *n == name);
    let need = |name: &str| {
        col(name).ok_or_else(|| {
            DataError::invalid(
                path,
                Location::field(Some(1), name),
                format!("missing column {name:?} (header: {header})"),
            )
        })
    };
    let (c_id, c_frame, c_type) = (need("track_id")?, need("frame_id")?, need("agent_type")?);
    let (c_x, c_y, c_vx, c_vy) = (need("x")?, need("y")?, need("vx")?, need("vy")?);
    let (c_psi, c_len, c_wid) = (col("psi_rad"), col("length"), col("width"));

    let mut agents: BTreeMap<i64, (ObjectType, String, Vec<Sample>)> = BTreeMap::new();
    for (i, line) in lines {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let at = |c: usize| Location::field(Some(line_no), names[c].to_string());
        let cell = |c: usize| {
            cells.get(c).copied().ok_or_else(|| {
                DataError::invalid(
                    path,
                    at(c),
                    format!("line has {} cells, header has {}", cells.len(), names.len()),
                )
            })
        };
        let num = |c: usize| -> Result<f32, DataError> {
            let s = cell(c)?;
            let v: f32 = s
                .parse()
                .map_err(|_| DataError::invalid(path, at(c), format!("{s:?} is not a number")))?;
            if v.is_finite() {
                Ok(v)
            } else {
                Err(DataError::invalid(
                    path,
                    at(c),
                    format!("non-finite value {s}"),
                ))
            }
        };
        let raw_id = cell(c_id)?;
        let id = agent_id(raw_id).ok_or_else(|| {
            DataError::invalid(path, at(c_id), format!("{raw_id:?} is not a track id"))
        })?;
        let frame_s = cell(c_frame)?;
        let frame: i64 = frame_s
            .parse()
            .ok()
            .filter(|f| (0..=MAX_FRAME).contains(f))
            .ok_or_else(|| {
                DataError::invalid(
                    path,
                    at(c_frame),
                    format!("{frame_s:?} is not a frame number in 0..={MAX_FRAME}"),
                )
            })?;
        let type_s = cell(c_type)?;
        let object_type = agent_type(type_s).ok_or_else(|| {
            DataError::invalid(path, at(c_type), format!("unknown agent type {type_s:?}"))
        })?;
        let heading = c_psi.map(num).transpose()?;
        let size = match (c_len, c_wid) {
            (Some(cl), Some(cw)) => {
                let (l, w) = (num(cl)?, num(cw)?);
                if l <= 0.0 || w <= 0.0 {
                    return Err(DataError::invalid(
                        path,
                        at(cl),
                        format!("box {l} x {w} m: sizes must be positive"),
                    ));
                }
                Some((l, w))
            }
            _ => None,
        };
        let sample = Sample {
            frame,
            x: num(c_x)?,
            y: num(c_y)?,
            vx: num(c_vx)?,
            vy: num(c_vy)?,
            heading,
            size,
        };
        let entry = agents
            .entry(id)
            .or_insert_with(|| (object_type, type_s.to_string(), Vec::new()));
        if entry.1 != type_s {
            return Err(DataError::invalid(
                path,
                at(c_type),
                format!(
                    "track {raw_id} changes type from {:?} to {type_s:?}",
                    entry.1
                ),
            ));
        }
        entry.2.push(sample);
    }
    let mut out = Vec::with_capacity(agents.len());
    for (id, (mut object_type, type_s, mut samples)) in agents {
        samples.sort_by_key(|s| s.frame);
        if let Some(w) = samples.windows(2).find(|w| w[0].frame == w[1].frame) {
            return Err(DataError::invalid(
                path,
                Location::field(None, format!("track {id}")),
                format!("frame {} appears twice", w[0].frame),
            ));
        }
        // Heading from motion where the CSV has none: the velocity's direction,
        // held while slow; before the first motion, the first moving direction.
        let moving = |s: &Sample| s.vx.hypot(s.vy) >= options.heading_min_speed;
        let mut held = samples
            .iter()
            .find(|s| moving(s))
            .map_or(0.0, |s| s.vy.atan2(s.vx));
        for s in &mut samples {
            if s.heading.is_none() {
                if moving(s) {
                    held = s.vy.atan2(s.vx);
                }
                s.heading = Some(held);
            }
        }
        if type_s == "pedestrian/bicycle" {
            let mut speeds: Vec<f32> = samples.iter().map(|s| s.vx.hypot(s.vy)).collect();
            speeds.sort_by(f32::total_cmp);
            if speeds
                .get(speeds.len() / 2)
                .is_some_and(|&v| v > options.cyclist_speed)
            {
                object_type = ObjectType::Cyclist;
            }
        }
        out.push(RecordedAgent {
            id,
            object_type,
            samples,
        });
    }
    Ok(TrackFile { agents: out })
}

fn agent_id(s: &str) -> Option<i64> {
    if let Some(p) = s.strip_prefix('P') {
        let n: i64 = p.parse().ok()?;
        return (0..PEDESTRIAN_ID_OFFSET)
            .contains(&n)
            .then_some(PEDESTRIAN_ID_OFFSET + n);
    }
    let n: i64 = s.parse().ok()?;
    (0..PEDESTRIAN_ID_OFFSET).contains(&n).then_some(n)
}

fn agent_type(s: &str) -> Option<ObjectType> {
    Some(match s {
        "car" | "truck" | "bus" | "van" | "vehicle" => ObjectType::Vehicle,
        "pedestrian/bicycle" | "pedestrian" => ObjectType::Pedestrian,
        "bicycle" | "cyclist" => ObjectType::Cyclist,
        "motorcycle" | "other" => ObjectType::Other,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------
// Map

#[derive(Clone, Debug, Default)]
struct Way {
    nodes: Vec<i64>,
    tags: HashMap<String, String>,
}

#[derive(Clone, Debug, Default)]
struct Relation {
    members: Vec<(String, i64, String)>,
    tags: HashMap<String, String>,
}

#[derive(Clone, Debug, Default)]
struct Osm {
    nodes: HashMap<i64, (f64, f64)>,
    ways: BTreeMap<i64, Way>,
    relations: BTreeMap<i64, Relation>,
}

fn parse_osm(text: &str, path: &Path) -> Result<Osm, DataError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut osm = Osm::default();
    enum Open {
        None,
        Way(i64, Way),
        Relation(i64, Relation),
    }
    let mut open = Open::None;
    // The `<osm>` root: seen opening, seen closing (a cut file never closes it).
    let (mut root_open, mut root_closed) = (false, false);
    loop {
        let pos = reader.buffer_position();
        let line = || {
            text.get(..pos as usize)
                .map_or(0, |t| t.lines().count().max(1))
        };
        let bad = |msg: String| DataError::invalid(path, Location::record(line()), msg);
        let ev = reader
            .read_event()
            .map_err(|e| bad(format!("malformed XML: {e}")))?;
        let (e, empty) = match &ev {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                if e.name().as_ref() == b"osm" {
                    root_closed = true;
                }
                match (e.name().as_ref(), std::mem::replace(&mut open, Open::None)) {
                    (b"way", Open::Way(id, w)) => {
                        osm.ways.insert(id, w);
                    }
                    (b"relation", Open::Relation(id, r)) => {
                        osm.relations.insert(id, r);
                    }
                    (_, o) => open = o,
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let mut attrs: HashMap<Vec<u8>, String> = HashMap::new();
        for a in e.attributes() {
            let a = a.map_err(|err| bad(format!("malformed XML attribute: {err}")))?;
            let v = a
                .unescape_value()
                .map_err(|err| bad(format!("malformed XML attribute: {err}")))?;
            attrs.insert(a.key.as_ref().to_vec(), v.into_owned());
        }
        let tag = String::from_utf8_lossy(e.name().as_ref()).into_owned();
        let attr = |k: &str| -> Result<&str, DataError> {
            attrs
                .get(k.as_bytes())
                .map(String::as_str)
                .ok_or_else(|| bad(format!("<{tag}> without {k:?}")))
        };
        let int = |k: &str| -> Result<i64, DataError> {
            let s = attr(k)?;
            s.parse()
                .map_err(|_| bad(format!("<{tag}> {k}={s:?} is not an integer")))
        };
        let float = |k: &str| -> Result<f64, DataError> {
            let s = attr(k)?;
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| bad(format!("<{tag}> {k}={s:?} is not a finite number")))
        };
        match e.name().as_ref() {
            b"osm" => {
                root_open = true;
                root_closed |= empty;
            }
            b"node" => {
                let (lat, lon) = (float("lat")?, float("lon")?);
                if !((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)) {
                    return Err(bad(format!(
                        "<node> lat={lat} lon={lon} is not a position on the Earth"
                    )));
                }
                osm.nodes.insert(int("id")?, (lat, lon));
            }
            b"way" => {
                let w = Way::default();
                if empty {
                    osm.ways.insert(int("id")?, w);
                } else {
                    open = Open::Way(int("id")?, w);
                }
            }
            b"relation" => {
                let r = Relation::default();
                if empty {
                    osm.relations.insert(int("id")?, r);
                } else {
                    open = Open::Relation(int("id")?, r);
                }
            }
            b"nd" => {
                if let Open::Way(_, w) = &mut open {
                    w.nodes.push(int("ref")?);
                }
            }
            b"member" => {
                if let Open::Relation(_, r) = &mut open {
                    r.members.push((
                        attr("type")?.to_string(),
                        int("ref")?,
                        attr("role")?.to_string(),
                    ));
                }
            }
            b"tag" => {
                let (k, v) = (attr("k")?.to_string(), attr("v")?.to_string());
                match &mut open {
                    Open::Way(_, w) => {
                        w.tags.insert(k, v);
                    }
                    Open::Relation(_, r) => {
                        r.tags.insert(k, v);
                    }
                    Open::None => {}
                }
            }
            _ => {}
        }
    }
    if !root_open {
        return Err(DataError::invalid(
            path,
            Location::file(),
            "not a Lanelet2 map: no <osm> element (an empty file, or another format?)",
        ));
    }
    if !root_closed {
        return Err(DataError::invalid(
            path,
            Location::file(),
            "the map ends before </osm> (a cut file?)",
        ));
    }
    Ok(osm)
}

type Xy = (f64, f64);

/// A lanelet's boundaries as projected points, oriented in driving direction.
struct Lanelet {
    id: i64,
    left: i64,
    right: i64,
    left_pts: Vec<Xy>,
    right_pts: Vec<Xy>,
    left_nodes: (i64, i64),
    right_nodes: (i64, i64),
    subtype: String,
    regulatory: Vec<i64>,
}

fn dist(a: Xy, b: Xy) -> f64 {
    (a.0 - b.0).hypot(a.1 - b.1)
}

fn length(p: &[Xy]) -> f64 {
    p.windows(2).map(|w| dist(w[0], w[1])).sum()
}

/// Positive when `left` lies on the left of `right` (both in the same direction):
/// the summed cross product of the right boundary's direction and the offset to the
/// left boundary at evenly spaced stations.
fn left_side(left: &[Xy], right: &[Xy]) -> f64 {
    let n = 16;
    let (l, r) = (resample(left, n), resample(right, n));
    let mut sum = 0.0;
    for i in 0..n - 1 {
        let d = (r[i + 1].0 - r[i].0, r[i + 1].1 - r[i].1);
        let o = (l[i].0 - r[i].0, l[i].1 - r[i].1);
        sum += d.0 * o.1 - d.1 * o.0;
    }
    sum
}

/// `n` points evenly spaced by arc length along `p` (n >= 2, p non-empty).
fn resample(p: &[Xy], n: usize) -> Vec<Xy> {
    let total = length(p);
    let Some(&first) = p.first() else {
        return Vec::new();
    };
    if total <= 0.0 || p.len() < 2 {
        return vec![first; n];
    }
    let mut out = Vec::with_capacity(n);
    let mut seg = 0;
    let mut seg_start = 0.0;
    for k in 0..n {
        let s = total * k as f64 / (n - 1) as f64;
        while seg + 2 < p.len() && seg_start + dist(p[seg], p[seg + 1]) < s {
            seg_start += dist(p[seg], p[seg + 1]);
            seg += 1;
        }
        let (a, b) = (p[seg], p[seg + 1]);
        let l = dist(a, b);
        let t = if l > 0.0 {
            ((s - seg_start) / l).clamp(0.0, 1.0)
        } else {
            0.0
        };
        out.push((a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t));
    }
    out
}

fn map_points(p: &[Xy]) -> Vec<MapPoint> {
    p.iter()
        .map(|&(x, y)| MapPoint {
            x: x as f32,
            y: y as f32,
            z: 0.0,
        })
        .collect()
}

const BORDER_TYPES: [&str; 5] = ["curbstone", "road_border", "guard_rail", "wall", "fence"];
const PAINTED_TYPES: [&str; 2] = ["line_thin", "line_thick"];

fn road_line_type(way: &Way) -> RoadLineType {
    let yellow = way.tags.get("color").is_some_and(|c| c == "yellow");
    match (way.tags.get("subtype").map(String::as_str), yellow) {
        (Some("solid"), false) => RoadLineType::SolidSingleWhite,
        (Some("solid"), true) => RoadLineType::SolidSingleYellow,
        (Some("dashed"), false) => RoadLineType::BrokenSingleWhite,
        (Some("dashed"), true) => RoadLineType::BrokenSingleYellow,
        (Some("solid_solid"), false) => RoadLineType::SolidDoubleWhite,
        (Some("solid_solid"), true) => RoadLineType::SolidDoubleYellow,
        (Some("dashed_dashed"), true) => RoadLineType::BrokenDoubleYellow,
        (Some("solid_dashed" | "dashed_solid"), true) => RoadLineType::PassingDoubleYellow,
        _ => RoadLineType::Unknown,
    }
}

/// Reads a Lanelet2 map and converts it to map features (rules in the module docs).
///
/// # Errors
/// [`DataError`] naming the file and the line (malformed XML) or the element (a way
/// referencing a missing node, a lanelet without both boundaries).
pub fn read_lanelet_map(
    path: &Path,
    options: &InteractionOptions,
) -> Result<Vec<MapFeature>, DataError> {
    let text = read_text(path)?;
    parse_lanelet_map(&text, path, options)
}

/// Parses Lanelet2 OSM text; `path` names it in errors.
///
/// # Errors
/// As [`read_lanelet_map`].
pub fn parse_lanelet_map(
    text: &str,
    path: &Path,
    options: &InteractionOptions,
) -> Result<Vec<MapFeature>, DataError> {
    let osm = parse_osm(text, path)?;
    let bad =
        |field: String, msg: String| DataError::invalid(path, Location::field(None, field), msg);
    let way_points = |id: i64| -> Result<(Vec<Xy>, &Way), DataError> {
        let w = osm
            .ways
            .get(&id)
            .ok_or_else(|| bad(format!("way {id}"), "referenced but not defined".into()))?;
        let mut pts = Vec::with_capacity(w.nodes.len());
        for n in &w.nodes {
            let &(lat, lon) = osm
                .nodes
                .get(n)
                .ok_or_else(|| bad(format!("way {id}"), format!("references missing node {n}")))?;
            pts.push(project(lat, lon));
        }
        if pts.len() < 2 {
            return Err(bad(
                format!("way {id}"),
                format!("{} node(s); a boundary needs 2", pts.len()),
            ));
        }
        Ok((pts, w))
    };

    let mut lanelets = Vec::new();
    for (&rid, r) in &osm.relations {
        if r.tags.get("type").map(String::as_str) != Some("lanelet") {
            continue;
        }
        let member = |role: &str| {
            r.members
                .iter()
                .find(|(t, _, ro)| t == "way" && ro == role)
                .map(|m| m.1)
                .ok_or_else(|| {
                    bad(
                        format!("relation {rid}"),
                        format!("lanelet without a {role} boundary"),
                    )
                })
        };
        let (lid, rid_way) = (member("left")?, member("right")?);
        let (mut left_pts, lw) = way_points(lid)?;
        let (right_pts, rw) = way_points(rid_way)?;
        let mut left_nodes = (lw.nodes[0], lw.nodes[lw.nodes.len() - 1]);
        let right_nodes = (rw.nodes[0], rw.nodes[rw.nodes.len() - 1]);
        let (lf, ll, rf, rl) = (
            left_pts[0],
            left_pts[left_pts.len() - 1],
            right_pts[0],
            right_pts[right_pts.len() - 1],
        );
        let left_reversed = dist(lf, rf) + dist(ll, rl) > dist(ll, rf) + dist(lf, rl);
        if left_reversed {
            left_pts.reverse();
            left_nodes = (left_nodes.1, left_nodes.0);
        }
        // The left boundary lies on the left of the driving direction: if it lies on
        // the right of the bounds' common direction, the lanelet runs the other way.
        let mut right_pts = right_pts;
        let mut right_nodes = right_nodes;
        if left_side(&left_pts, &right_pts) < 0.0 {
            left_pts.reverse();
            right_pts.reverse();
            left_nodes = (left_nodes.1, left_nodes.0);
            right_nodes = (right_nodes.1, right_nodes.0);
        }
        lanelets.push(Lanelet {
            id: rid,
            left: lid,
            right: rid_way,
            left_pts,
            right_pts,
            left_nodes,
            right_nodes,
            subtype: r.tags.get("subtype").cloned().unwrap_or_default(),
            regulatory: r
                .members
                .iter()
                .filter(|(t, _, ro)| t == "relation" && ro == "regulatory_element")
                .map(|m| m.1)
                .collect(),
        });
    }

    if lanelets.is_empty() {
        // A map without lanes would silently give scenes without a road.
        return Err(DataError::invalid(
            path,
            Location::file(),
            "no lanelets (relations tagged type=lanelet): not a usable Lanelet2 map",
        ));
    }
    let mut uses: HashMap<i64, usize> = HashMap::new();
    for l in &lanelets {
        *uses.entry(l.left).or_default() += 1;
        *uses.entry(l.right).or_default() += 1;
    }

    let mut features = Vec::new();
    let mut by_start: HashMap<(i64, i64), Vec<i64>> = HashMap::new();
    let mut by_end: HashMap<(i64, i64), Vec<i64>> = HashMap::new();
    for l in &lanelets {
        by_start
            .entry((l.left_nodes.0, l.right_nodes.0))
            .or_default()
            .push(l.id);
        by_end
            .entry((l.left_nodes.1, l.right_nodes.1))
            .or_default()
            .push(l.id);
    }
    for l in &lanelets {
        if l.subtype == "crosswalk" {
            let mut poly = l.left_pts.clone();
            poly.extend(l.right_pts.iter().rev());
            features.push(MapFeature::new(
                l.id,
                MapFeatureKind::Crosswalk,
                map_points(&poly),
            ));
            continue;
        }
        let len = length(&l.left_pts).max(length(&l.right_pts));
        let spacing = f64::from(options.lane_spacing.max(0.01));
        let n = ((len / spacing).ceil() as usize + 1).clamp(2, 100_000);
        let (a, b) = (resample(&l.left_pts, n), resample(&l.right_pts, n));
        let centre: Vec<Xy> = a
            .iter()
            .zip(&b)
            .map(|(p, q)| ((p.0 + q.0) / 2.0, (p.1 + q.1) / 2.0))
            .collect();
        let lane_type = if l.subtype == "bicycle_lane" {
            LaneType::BikeLane
        } else {
            LaneType::SurfaceStreet
        };
        let mut f = MapFeature::new(l.id, MapFeatureKind::Lane(lane_type), map_points(&centre));
        f.entry_lanes = by_end
            .get(&(l.left_nodes.0, l.right_nodes.0))
            .cloned()
            .unwrap_or_default();
        f.exit_lanes = by_start
            .get(&(l.left_nodes.1, l.right_nodes.1))
            .cloned()
            .unwrap_or_default();
        features.push(f);
    }

    // Boundaries, each way once, oriented for the first lanelet that uses it.
    let mut done = std::collections::HashSet::new();
    for l in &lanelets {
        if l.subtype == "crosswalk" {
            continue;
        }
        for (way_id, pts, is_left) in [(l.left, &l.left_pts, true), (l.right, &l.right_pts, false)]
        {
            if !done.insert(way_id) {
                continue;
            }
            let Some(way) = osm.ways.get(&way_id) else {
                continue;
            };
            let ty = way.tags.get("type").map(String::as_str).unwrap_or("");
            let shared = uses.get(&way_id).copied().unwrap_or(0) > 1;
            let kind = if ty == "virtual" {
                None
            } else if BORDER_TYPES.contains(&ty) {
                Some(MapFeatureKind::RoadEdge(if shared {
                    RoadEdgeType::Median
                } else {
                    RoadEdgeType::Boundary
                }))
            } else if PAINTED_TYPES.contains(&ty) || (shared && ty.is_empty()) {
                Some(MapFeatureKind::RoadLine(road_line_type(way)))
            } else if !shared && ty.is_empty() {
                Some(MapFeatureKind::RoadEdge(RoadEdgeType::Boundary))
            } else {
                None
            };
            let Some(kind) = kind else { continue };
            let mut p = pts.clone();
            // Road on the left of a road edge: the right boundary runs in driving
            // direction, the left one against it.
            if is_left && matches!(kind, MapFeatureKind::RoadEdge(_)) {
                p.reverse();
            }
            features.push(MapFeature::new(way_id, kind, map_points(&p)));
        }
    }

    // Stop signs.
    for (&wid, w) in &osm.ways {
        let is_stop = w.tags.get("type").is_some_and(|t| t == "traffic_sign")
            && w.tags
                .get("subtype")
                .is_some_and(|s| s.starts_with("usR1-1") || s.starts_with("de206"));
        if !is_stop {
            continue;
        }
        let pts: Vec<Xy> = w
            .nodes
            .iter()
            .filter_map(|n| osm.nodes.get(n))
            .map(|&(lat, lon)| project(lat, lon))
            .collect();
        if pts.is_empty() {
            return Err(bad(
                format!("way {wid}"),
                "traffic sign without a known node".into(),
            ));
        }
        let k = pts.len() as f64;
        let centre = (
            pts.iter().map(|p| p.0).sum::<f64>() / k,
            pts.iter().map(|p| p.1).sum::<f64>() / k,
        );
        let mut f = MapFeature::new(wid, MapFeatureKind::StopSign, map_points(&[centre]));
        for (&reg_id, reg) in &osm.relations {
            let refers = reg
                .members
                .iter()
                .any(|(t, id, role)| t == "way" && *id == wid && role == "refers");
            if !refers {
                continue;
            }
            // A right-of-way rule stops its yielding lanelets; an all-way stop
            // every lanelet that references it.
            let yielding: Vec<i64> = reg
                .members
                .iter()
                .filter(|(t, _, role)| t == "relation" && role == "yield")
                .map(|m| m.1)
                .collect();
            if yielding.is_empty() {
                f.controlled_lanes.extend(
                    lanelets
                        .iter()
                        .filter(|l| l.regulatory.contains(&reg_id))
                        .map(|l| l.id),
                );
            } else {
                f.controlled_lanes.extend(yielding);
            }
        }
        f.controlled_lanes.sort_unstable();
        f.controlled_lanes.dedup();
        features.push(f);
    }
    Ok(features)
}

// ---------------------------------------------------------------------------------
// Scenes

/// The pedestrian CSV that belongs to a vehicle CSV (`..vehicle_tracks_NNN.csv` ->
/// `..pedestrian_tracks_NNN.csv`), if it exists.
pub fn pedestrian_csv_for(vehicle_csv: &Path) -> Option<PathBuf> {
    let name = vehicle_csv.file_name()?.to_str()?;
    let p = vehicle_csv.with_file_name(name.replace("vehicle_tracks", "pedestrian_tracks"));
    (p != vehicle_csv && p.is_file()).then_some(p)
}

/// The Lanelet2 map of a track CSV: an `.osm` beside it whose name begins its file
/// name, else the only `.osm` beside it, else `../../maps/<dir>.osm` (the dataset's
/// own layout: `recorded_trackfiles/<location>/` and `maps/<location>.osm`).
pub fn map_for(track_csv: &Path) -> Option<PathBuf> {
    let dir = track_csv
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = track_csv.file_name()?.to_string_lossy().into_owned();
    let mut osms: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "osm"))
        .collect();
    osms.sort();
    if let Some(p) = osms.iter().find(|p| {
        p.file_stem()
            .is_some_and(|s| name.starts_with(&*s.to_string_lossy()))
    }) {
        return Some(p.clone());
    }
    if osms.len() == 1 {
        return osms.pop();
    }
    let location = dir
        .canonicalize()
        .ok()?
        .file_name()?
        .to_string_lossy()
        .into_owned();
    let p = dir.join("../../maps").join(format!("{location}.osm"));
    p.is_file().then_some(p)
}

/// Reads a recording (vehicle CSV, optional pedestrian CSV, Lanelet2 map) and cuts it
/// into scenes (rules in the module docs).
///
/// # Errors
/// As [`read_track_csv`] and [`read_lanelet_map`]; an error naming the CSV when the
/// recording is shorter than one window.
pub fn read_recording(
    vehicle_csv: &Path,
    pedestrian_csv: Option<&Path>,
    map: &Path,
    options: &InteractionOptions,
) -> Result<Vec<Scene>, DataError> {
    let features = read_lanelet_map(map, options)?;
    let mut agents = read_track_csv(vehicle_csv, options)?.agents;
    if let Some(p) = pedestrian_csv {
        agents.extend(read_track_csv(p, options)?.agents);
    }
    let stem = vehicle_csv
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let scenes = cut_windows(&agents, &features, &stem, options);
    if scenes.is_empty() {
        return Err(DataError::invalid(
            vehicle_csv,
            Location::file(),
            format!("the recording is shorter than one {NUM_STEPS}-frame window"),
        ));
    }
    Ok(scenes)
}

/// Cuts agents into [`NUM_STEPS`]-frame windows every `stride_steps` frames; scene
/// ids are `<name>_<first frame>`.
pub fn cut_windows(
    agents: &[RecordedAgent],
    map: &[MapFeature],
    name: &str,
    options: &InteractionOptions,
) -> Vec<Scene> {
    let first = agents
        .iter()
        .filter_map(|a| a.samples.first())
        .map(|s| s.frame)
        .min();
    let last = agents
        .iter()
        .filter_map(|a| a.samples.last())
        .map(|s| s.frame)
        .max();
    let (Some(first), Some(last)) = (first, last) else {
        return Vec::new();
    };
    // A stride beyond any frame number takes one window (a huge usize must not wrap
    // negative and walk backwards forever).
    let stride = i64::try_from(options.stride_steps.max(1))
        .unwrap_or(i64::MAX)
        .min(MAX_FRAME + 1);
    let mut scenes = Vec::new();
    let mut start = first;
    while start + NUM_STEPS as i64 - 1 <= last {
        let end = start + NUM_STEPS as i64;
        let mut tracks = Vec::new();
        let mut predict = Vec::new();
        for a in agents {
            // Samples are in frame order.
            let from = a.samples.partition_point(|s| s.frame < start);
            let to = a.samples.partition_point(|s| s.frame < end);
            let inside: Vec<&Sample> = a.samples.get(from..to).unwrap_or_default().iter().collect();
            if inside.is_empty() {
                continue;
            }
            if inside.len() == NUM_STEPS {
                predict.push(PredictionTarget {
                    track_index: tracks.len(),
                    difficulty: 0,
                });
            }
            tracks.push(window_track(a, &inside, start, options));
        }
        if !tracks.is_empty() {
            scenes.push(Scene {
                id: format!("{name}_{start}"),
                source: SceneSource::Interaction,
                current_step: CURRENT_STEP,
                tracks,
                map: map.to_vec(),
                signals: vec![Vec::new(); NUM_STEPS],
                sdc_index: None,
                tracks_to_predict: predict,
                objects_of_interest: Vec::new(),
            });
        }
        start += stride;
    }
    scenes
}

fn window_track(
    a: &RecordedAgent,
    inside: &[&Sample],
    start: i64,
    options: &InteractionOptions,
) -> super::Track {
    let default_size = match a.object_type {
        ObjectType::Cyclist => options.cyclist_size,
        _ => options.pedestrian_size,
    };
    let mut states = vec![ObjectState::default(); NUM_STEPS];
    for s in inside {
        let Ok(step) = usize::try_from(s.frame - start) else {
            continue;
        };
        let heading = s.heading.unwrap_or(0.0);
        let (length, width) = s.size.unwrap_or(default_size);
        if let Some(st) = states.get_mut(step) {
            *st = ObjectState {
                x: s.x,
                y: s.y,
                z: 0.0,
                length,
                width,
                height: 0.0,
                heading,
                vx: s.vx,
                vy: s.vy,
                valid: true,
            };
        }
    }
    super::Track {
        id: a.id,
        object_type: a.object_type,
        states,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::shared_data;
    use std::f32::consts::{PI, TAU};

    const MAP: &str = "interaction/DR_USA_Intersection_EP0.osm";
    const VEHICLES: &str = "interaction/DR_USA_Intersection_EP0_vehicle_tracks_000.csv";

    /// Distance from `p` to segment `ab` and the segment's direction, and the signed
    /// side (positive: `p` on the left of `ab`).
    fn to_segment(p: (f32, f32), a: &MapPoint, b: &MapPoint) -> (f32, f32, f32) {
        let (dx, dy) = (b.x - a.x, b.y - a.y);
        let l2 = dx * dx + dy * dy;
        let t = if l2 > 0.0 {
            (((p.0 - a.x) * dx + (p.1 - a.y) * dy) / l2).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let (qx, qy) = (a.x + t * dx, a.y + t * dy);
        let side = dx * (p.1 - a.y) - dy * (p.0 - a.x);
        ((p.0 - qx).hypot(p.1 - qy), dy.atan2(dx), side)
    }

    fn angle(a: f32, b: f32) -> f32 {
        let d = (a - b).rem_euclid(TAU);
        d.min(TAU - d)
    }

    #[test]
    fn projection_is_utm_about_the_origin() {
        assert_eq!(project(0.0, 0.0), (0.0, 0.0));
        let (x, y) = project(0.0, 0.01);
        assert!((x - 1114.27).abs() < 0.5 && y.abs() < 0.1, "{x} {y}");
        let (x, y) = project(0.01, 0.0);
        assert!(x.abs() < 0.1 && (y - 1106.81).abs() < 0.5, "{x} {y}");
    }

    #[test]
    fn the_map_has_lanes_edges_lines_and_stop_signs() {
        let map = read_lanelet_map(&shared_data(MAP), &InteractionOptions::default()).unwrap();
        let count = |f: fn(&MapFeatureKind) -> bool| map.iter().filter(|m| f(&m.kind)).count();
        assert_eq!(count(|k| matches!(k, MapFeatureKind::Lane(_))), 59);
        assert_eq!(count(|k| matches!(k, MapFeatureKind::RoadEdge(_))), 24);
        assert_eq!(count(|k| matches!(k, MapFeatureKind::RoadLine(_))), 13);
        assert_eq!(count(|k| matches!(k, MapFeatureKind::StopSign)), 6);
        // Lanes are resampled densely and connected.
        let lanes: Vec<_> = map
            .iter()
            .filter(|m| matches!(m.kind, MapFeatureKind::Lane(_)))
            .collect();
        assert!(lanes.iter().all(|l| l.points.len() >= 2));
        assert!(lanes.iter().filter(|l| !l.exit_lanes.is_empty()).count() > 30);
        // The all-way stop and the right-of-way rules refer to the signs.
        let controlling = map
            .iter()
            .filter(|m| m.kind == MapFeatureKind::StopSign && !m.controlled_lanes.is_empty())
            .count();
        eprintln!("{controlling} of 6 stop signs control lanes");
        assert_eq!(controlling, 5);
    }

    #[test]
    fn tracks_lie_on_the_lanes_in_their_direction_and_inside_the_road_edges() {
        let o = InteractionOptions::default();
        let map = read_lanelet_map(&shared_data(MAP), &o).unwrap();
        let v = read_track_csv(&shared_data(VEHICLES), &o).unwrap();
        let lanes: Vec<_> = map
            .iter()
            .filter(|m| matches!(m.kind, MapFeatureKind::Lane(_)))
            .collect();
        let edges: Vec<_> = map
            .iter()
            .filter(|m| matches!(m.kind, MapFeatureKind::RoadEdge(_)))
            .collect();
        let (mut n, mut within_1, mut within_2) = (0usize, 0usize, 0usize);
        let (mut moving, mut aligned) = (0usize, 0usize);
        let mut road_side = 0usize;
        // Every 3rd sample keeps the test fast; there are 14,118.
        for a in &v.agents {
            for s in a.samples.iter().step_by(3) {
                let p = (s.x, s.y);
                n += 1;
                let mut best = f32::MAX;
                let mut agrees = false;
                for l in &lanes {
                    for w in l.points.windows(2) {
                        let (d, dir, _) = to_segment(p, &w[0], &w[1]);
                        best = best.min(d);
                        if d < 2.0 && angle(s.heading.unwrap_or(0.0), dir) < PI / 4.0 {
                            agrees = true;
                        }
                    }
                }
                within_1 += usize::from(best < 1.0);
                within_2 += usize::from(best < 2.0);
                if s.vx.hypot(s.vy) > 1.0 {
                    moving += 1;
                    aligned += usize::from(agrees);
                }
                let mut nearest = (f32::MAX, 0.0);
                for e in &edges {
                    for w in e.points.windows(2) {
                        let (d, _, side) = to_segment(p, &w[0], &w[1]);
                        if d < nearest.0 {
                            nearest = (d, side);
                        }
                    }
                }
                road_side += usize::from(nearest.1 > 0.0);
            }
        }
        let frac = |k: usize, of: usize| k as f64 / of as f64;
        eprintln!(
            "{n} vehicle states: {:.4} within 1 m of a lane centre line, {:.4} within 2 m; {:.4} of moving ones along a lane within 2 m; {:.4} on the road side of the nearest road edge",
            frac(within_1, n),
            frac(within_2, n),
            frac(aligned, moving),
            frac(road_side, n)
        );
        assert!(frac(within_1, n) > 0.85);
        assert!(frac(within_2, n) > 0.99);
        assert!(frac(aligned, moving) > 0.97);
        assert!(frac(road_side, n) > 0.97);
    }

    #[test]
    fn the_recording_is_cut_into_91_step_windows() {
        let dir = shared_data("interaction");
        let veh = dir.join("DR_USA_Intersection_EP0_vehicle_tracks_000.csv");
        let ped = pedestrian_csv_for(&veh).unwrap();
        let map = map_for(&veh).unwrap();
        assert!(map.ends_with("DR_USA_Intersection_EP0.osm"));
        let o = InteractionOptions::default();
        let scenes = read_recording(&veh, Some(&ped), &map, &o).unwrap();
        // Frames 1..=3007, a window every 10 frames: starts 1, 11, .., 2911.
        assert_eq!(scenes.len(), 292);
        assert_eq!(scenes[0].id, "DR_USA_Intersection_EP0_vehicle_tracks_000_1");
        let mut ids = std::collections::HashSet::new();
        for s in &scenes {
            crate::scenario::validate::validate_scene(
                s,
                crate::scenario::validate::StepRule::Full,
                &veh,
                None,
            )
            .unwrap();
            for t in &s.tracks_to_predict {
                assert!(s.tracks[t.track_index].states.iter().all(|st| st.valid));
            }
            let full = s
                .tracks
                .iter()
                .filter(|t| t.states.iter().all(|st| st.valid))
                .count();
            assert_eq!(full, s.tracks_to_predict.len());
            ids.extend(s.tracks.iter().map(|t| t.id));
        }
        let vehicles = ids.iter().filter(|&&i| i < PEDESTRIAN_ID_OFFSET).count();
        let pedestrians = ids.len() - vehicles;
        assert_eq!(vehicles, 74);
        assert_eq!(pedestrians, 23);
        // Pedestrians: default boxes, heading along their motion.
        let s = scenes
            .iter()
            .find(|s| {
                s.tracks
                    .iter()
                    .any(|t| t.object_type == ObjectType::Pedestrian)
            })
            .unwrap();
        let p = s
            .tracks
            .iter()
            .find(|t| t.object_type == ObjectType::Pedestrian)
            .unwrap();
        for st in p.states.iter().filter(|st| st.valid) {
            assert_eq!((st.length, st.width), (1.0, 1.0));
            if st.vx.hypot(st.vy) > 0.2 {
                assert!(angle(st.heading, st.vy.atan2(st.vx)) < 1e-5);
            }
        }
    }

    #[test]
    fn any_stride_terminates() {
        let veh = shared_data("interaction/DR_USA_Intersection_EP0_vehicle_tracks_000.csv");
        let o = InteractionOptions::default();
        let agents = read_track_csv(&veh, &o).unwrap().agents;
        for (stride, windows) in [(usize::MAX, 1), (1 << 40, 1), (0, 2917), (3000, 1)] {
            let o = InteractionOptions {
                stride_steps: stride,
                ..InteractionOptions::default()
            };
            assert_eq!(
                cut_windows(&agents, &[], "r", &o).len(),
                windows,
                "{stride}"
            );
        }
    }

    #[test]
    fn bad_csv_cells_name_line_and_column() {
        let o = InteractionOptions::default();
        let p = Path::new("t.csv");
        let head = "track_id,frame_id,timestamp_ms,agent_type,x,y,vx,vy,psi_rad,length,width\n";
        let e = parse_track_csv(&format!("{head}1,1,100,car,NaN,2,0,0,0,4,2\n"), p, &o)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t.csv, record 2, field x") && e.contains("non-finite"),
            "{e}"
        );
        let e = parse_track_csv(&format!("{head}1,1,100,car,abc,2,0,0,0,4,2\n"), p, &o)
            .unwrap_err()
            .to_string();
        assert!(e.contains("field x") && e.contains("not a number"), "{e}");
        let e = parse_track_csv(&format!("{head}1,1,100,tank,1,2,0,0,0,4,2\n"), p, &o)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown agent type"), "{e}");
        let e = parse_track_csv(&format!("{head}1,1,100,car,1,2,0,0,0,0,2\n"), p, &o)
            .unwrap_err()
            .to_string();
        assert!(e.contains("field length") && e.contains("positive"), "{e}");
        let e = parse_track_csv(
            &format!("{head}1,9223372036854775807,100,car,1,2,0,0,0,4,2\n"),
            p,
            &o,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("field frame_id") && e.contains("not a frame number"),
            "{e}"
        );
        let e = parse_track_csv("track_id,frame_id\n", p, &o)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing column"), "{e}");
        let e = parse_track_csv(&format!("{head}1,1,100,car,1,2\n"), p, &o)
            .unwrap_err()
            .to_string();
        assert!(e.contains("record 2") && e.contains("cells"), "{e}");
        let e = parse_lanelet_map(
            "<osm><node id='1' lat='x' lon='0'/></osm>",
            Path::new("m.osm"),
            &o,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("m.osm") && e.contains("lat"), "{e}");
        let e = parse_lanelet_map("<osm><way id='1'><nd ref='7'/><nd ref='8'/></way><relation id='2'><member type='way' ref='1' role='left'/><member type='way' ref='1' role='right'/><tag k='type' v='lanelet'/></relation></osm>", Path::new("m.osm"), &o).unwrap_err().to_string();
        assert!(e.contains("missing node 7"), "{e}");
        let e = parse_lanelet_map("<osm><node", Path::new("m.osm"), &o)
            .unwrap_err()
            .to_string();
        assert!(e.contains("malformed XML"), "{e}");
    }

    #[test]
    fn empty_broken_and_foreign_maps_are_errors() {
        // Each used to give scenes without a map.
        let o = InteractionOptions::default();
        let real = std::fs::read_to_string(shared_data(MAP)).unwrap();
        let cut = &real[..real.len() / 2];
        let cut = &cut[..cut.rfind('>').unwrap() + 1];
        for (text, want) in [
            ("", "no <osm> element"),
            ("{\"objects\": [], \"roads\": []}", "no <osm> element"),
            ("<osm></osm>", "no lanelets"),
            ("<osm/>", "no lanelets"),
            (cut, "ends before </osm>"),
            (
                "<osm><node id='1' lat='91' lon='0'/></osm>",
                "not a position on the Earth",
            ),
        ] {
            let e = parse_lanelet_map(text, Path::new("m.osm"), &o)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("m.osm") && e.contains(want), "{want}: {e}");
        }
        // --map pointing at a JSON scene fails the recording, naming the map.
        let dir = tempfile::tempdir().unwrap();
        let json = shared_data("gpudrive/637f20cafde22ff8.json");
        let e = read_recording(
            &shared_data("interaction/DR_USA_Intersection_EP0_vehicle_tracks_000.csv"),
            None,
            &json,
            &o,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("637f20cafde22ff8.json") && e.contains("<osm>"),
            "{e}"
        );
        let empty = dir.path().join("empty.osm");
        std::fs::write(&empty, "").unwrap();
        let e = read_lanelet_map(&empty, &o).unwrap_err().to_string();
        assert!(e.contains("empty.osm"), "{e}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// Random CSV rows and random OSM-like text never panic the parsers, and
        /// parsed rows cut into windows without panicking.
        #[test]
        fn random_text_never_panics(
            rows in "[-0-9P.,a-z/\n]{0,400}",
            xml in "[<>/='a-z0-9 .\n-]{0,400}",
        ) {
            let o = InteractionOptions::default();
            let head = "track_id,frame_id,timestamp_ms,agent_type,x,y,vx,vy,psi_rad,length,width\n";
            if let Ok(t) = parse_track_csv(&format!("{head}{rows}"), Path::new("r.csv"), &o) {
                let _ = cut_windows(&t.agents, &[], "r", &o);
            }
            let _ = parse_lanelet_map(&format!("<osm>{xml}</osm>"), Path::new("r.osm"), &o);
        }
    }
}
