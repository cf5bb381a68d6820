//! `spacer data`: look at scene files and convert them into scene caches.
//!
//! - `spacer data inspect PATH...` prints a table per scene: id, steps, agents by
//!   type, valid states, the self-driving car, tracks to predict, objects of
//!   interest, map features by kind, polyline points and traffic-light lanes.
//! - `spacer data convert IN... --out CACHE.spc [--skip-bad]` reads scenes from any
//!   source ([`crate::scenario::load`]), validates them for simulation (91 steps) and
//!   writes them into one cache, with a progress bar and a summary.
//! - `spacer data gen` and `spacer data render` ([`super::data_gen`],
//!   [`super::data_render`]): synthetic scenes into a cache; a scene to PNG or SVG.
//!
//! Each subcommand is a variant of [`DataCommand`] with its own argument struct and
//! `run` function, so new ones slot in beside these.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::scenario::cache::CacheWriter;
use crate::scenario::interaction::InteractionOptions;
use crate::scenario::validate::StepRule;
use crate::scenario::{
    BadScenePolicy, LoadOptions, LoadedScene, MapFeatureKind, ObjectType, SceneStream,
};

/// Arguments of `spacer data`.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// What to do with scene data.
    #[command(subcommand)]
    pub command: DataCommand,
}

/// The `spacer data` subcommands.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Print a table per scene: agents by type, steps, map features by kind,
    /// traffic-light lanes, the self-driving car and the tracks to predict.
    Inspect(InspectArgs),
    /// Read scenes from any source, validate them and write one scene cache (.spc).
    Convert(ConvertArgs),
    /// Generate synthetic scenes into a scene cache.
    Gen(super::data_gen::GenArgs),
    /// Render a scene at a step to PNG or SVG.
    Render(super::data_render::RenderArgs),
}

/// Options shared by the commands that read scenes.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Skip scenes that cannot be trusted (with a warning) instead of failing.
    #[arg(long)]
    pub skip_bad: bool,
    /// The Lanelet2 map (.osm) of INTERACTION track CSVs (default: found beside them).
    #[arg(long, value_name = "OSM")]
    pub map: Option<PathBuf>,
    /// INTERACTION: frames between the starts of consecutive 9.1 s windows.
    #[arg(long, value_name = "FRAMES", default_value_t = InteractionOptions::default().stride_steps)]
    pub stride: usize,
}

impl SourceArgs {
    fn options(&self, steps: StepRule) -> anyhow::Result<LoadOptions> {
        if self.stride == 0 {
            anyhow::bail!("--stride 0: windows need a stride of at least 1 frame");
        }
        Ok(LoadOptions {
            policy: if self.skip_bad {
                BadScenePolicy::Skip
            } else {
                BadScenePolicy::Fail
            },
            steps,
            map: self.map.clone(),
            interaction: InteractionOptions {
                stride_steps: self.stride,
                ..InteractionOptions::default()
            },
            quiet: false,
        })
    }
}

/// Arguments of `spacer data inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Scene files or directories: WOMD .tfrecord, GPUDrive .json, scene cache .spc,
    /// INTERACTION track .csv.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Require 91 steps, as simulation does (by default any length is shown, e.g. the
    /// one-step collision fixtures).
    #[arg(long)]
    pub strict: bool,
    /// Where the scenes come from and what to do with bad ones.
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Arguments of `spacer data convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Scene files or directories (as for `inspect`).
    #[arg(required = true, value_name = "IN")]
    pub inputs: Vec<PathBuf>,
    /// The cache to write (written to a temporary file and renamed when complete).
    #[arg(long, value_name = "CACHE.spc")]
    pub out: PathBuf,
    /// Where the scenes come from and what to do with bad ones.
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Runs `spacer data`.
///
/// # Errors
/// The first unreadable input or bad scene (without `--skip-bad`), or a failed write.
pub fn run(args: DataArgs) -> anyhow::Result<()> {
    match args.command {
        DataCommand::Inspect(a) => inspect(a),
        DataCommand::Convert(a) => convert(a),
        DataCommand::Gen(a) => super::data_gen::run(a),
        DataCommand::Render(a) => super::data_render::run(a),
    }
}

/// The counts `inspect` prints for one scene.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SceneSummary {
    /// Scenario id.
    pub id: String,
    /// Source format name.
    pub source: &'static str,
    /// File and record.
    pub origin: String,
    /// Steps per track.
    pub steps: usize,
    /// The current step.
    pub current_step: usize,
    /// Agents by type, in [`ObjectType`] order, types with none left out.
    pub agents: Vec<(ObjectType, usize)>,
    /// Valid object states over all tracks and steps.
    pub valid_states: usize,
    /// The self-driving car: track index and object id.
    pub sdc: Option<(usize, i64)>,
    /// Track indices to predict, in the source's order.
    pub tracks_to_predict: Vec<usize>,
    /// Object ids of interest.
    pub objects_of_interest: Vec<i64>,
    /// Map features by kind name, in a fixed order, kinds with none left out.
    pub features: Vec<(&'static str, usize)>,
    /// Points of the lanes, road lines and road edges.
    pub polyline_points: usize,
    /// Lanes with a signal state at some step.
    pub signal_lanes: usize,
    /// Steps with at least one signal state.
    pub signal_steps: usize,
}

const KIND_ORDER: [&str; 7] = [
    "lane",
    "road_line",
    "road_edge",
    "crosswalk",
    "speed_bump",
    "stop_sign",
    "driveway",
];

impl SceneSummary {
    /// Counts what `inspect` shows.
    pub fn of(loaded: &LoadedScene) -> Self {
        let s = &loaded.scene;
        let types = [
            ObjectType::Vehicle,
            ObjectType::Pedestrian,
            ObjectType::Cyclist,
            ObjectType::Other,
            ObjectType::Unset,
        ];
        let agents = types
            .iter()
            .map(|&t| (t, s.tracks.iter().filter(|x| x.object_type == t).count()))
            .filter(|&(_, n)| n > 0)
            .collect();
        let features = KIND_ORDER
            .iter()
            .map(|&k| (k, s.map.iter().filter(|m| m.kind.name() == k).count()))
            .filter(|&(_, n)| n > 0)
            .collect();
        let polyline_points = s
            .map
            .iter()
            .filter(|m| {
                matches!(
                    m.kind,
                    MapFeatureKind::Lane(_)
                        | MapFeatureKind::RoadLine(_)
                        | MapFeatureKind::RoadEdge(_)
                )
            })
            .map(|m| m.points.len())
            .sum();
        let mut lanes: Vec<i64> = s.signals.iter().flatten().map(|l| l.lane).collect();
        lanes.sort_unstable();
        lanes.dedup();
        let origin = match loaded.record {
            Some(r) => format!("{}, record {r}", loaded.path.display()),
            None => loaded.path.display().to_string(),
        };
        Self {
            id: s.id.clone(),
            source: match s.source {
                crate::scenario::SceneSource::Womd => "womd",
                crate::scenario::SceneSource::Gpudrive => "gpudrive",
                crate::scenario::SceneSource::Interaction => "interaction",
                crate::scenario::SceneSource::Synthetic => "synthetic",
            },
            origin,
            steps: s.num_steps(),
            current_step: s.current_step,
            agents,
            valid_states: s
                .tracks
                .iter()
                .map(|t| t.states.iter().filter(|x| x.valid).count())
                .sum(),
            sdc: s.sdc_index.and_then(|i| s.tracks.get(i).map(|t| (i, t.id))),
            tracks_to_predict: s.tracks_to_predict.iter().map(|t| t.track_index).collect(),
            objects_of_interest: s.objects_of_interest.clone(),
            features,
            polyline_points,
            signal_lanes: lanes.len(),
            signal_steps: s.signals.iter().filter(|x| !x.is_empty()).count(),
        }
    }

    /// Number of agents.
    pub fn agent_count(&self) -> usize {
        self.agents.iter().map(|a| a.1).sum()
    }

    /// Number of map features.
    pub fn feature_count(&self) -> usize {
        self.features.iter().map(|a| a.1).sum()
    }

    /// The table `inspect` prints.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let list = |v: &[String]| {
            if v.is_empty() {
                String::new()
            } else {
                format!(" ({})", v.join(", "))
            }
        };
        let agents: Vec<String> = self
            .agents
            .iter()
            .map(|(t, n)| format!("{n} {}", t.name()))
            .collect();
        let features: Vec<String> = self
            .features
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        let ttp: Vec<String> = self
            .tracks_to_predict
            .iter()
            .map(|i| i.to_string())
            .collect();
        let ooi: Vec<String> = self
            .objects_of_interest
            .iter()
            .map(|i| i.to_string())
            .collect();
        let mut t = String::new();
        let _ = writeln!(t, "scene {} [{}] {}", self.id, self.source, self.origin);
        let mut row = |k: &str, v: String| {
            let _ = writeln!(t, "  {k:<20} {v}");
        };
        row(
            "steps",
            format!("{} (current {})", self.steps, self.current_step),
        );
        row("agents", format!("{}{}", self.agent_count(), list(&agents)));
        row("valid states", self.valid_states.to_string());
        row(
            "self-driving car",
            match self.sdc {
                Some((i, id)) => format!("track {i} (id {id})"),
                None => "none".into(),
            },
        );
        row("tracks to predict", format!("{}{}", ttp.len(), list(&ttp)));
        row(
            "objects of interest",
            format!("{}{}", ooi.len(), list(&ooi)),
        );
        row(
            "map features",
            format!("{}{}", self.feature_count(), list(&features)),
        );
        row("polyline points", self.polyline_points.to_string());
        row(
            "traffic-light lanes",
            if self.signal_lanes == 0 {
                "0".into()
            } else {
                format!(
                    "{} (states at {} of {} steps)",
                    self.signal_lanes, self.signal_steps, self.steps
                )
            },
        );
        t
    }
}

fn inspect(args: InspectArgs) -> anyhow::Result<()> {
    let rule = if args.strict {
        StepRule::Full
    } else {
        StepRule::Any
    };
    let mut stream = SceneStream::open(&args.paths, args.source.options(rule)?)?;
    let started = Instant::now();
    let mut n = 0usize;
    for loaded in stream.by_ref() {
        let loaded = loaded?;
        if n > 0 {
            println!();
        }
        print!("{}", SceneSummary::of(&loaded).table());
        n += 1;
    }
    println!();
    println!(
        "{n} scene(s) in {:.3} s{}",
        started.elapsed().as_secs_f64(),
        match stream.warnings().len() {
            0 => String::new(),
            k => format!(", {k} skipped"),
        }
    );
    Ok(())
}

fn convert(args: ConvertArgs) -> anyhow::Result<()> {
    if args.out.exists() && args.out.is_dir() {
        anyhow::bail!(
            "{}: --out is a directory; give a cache file name such as scenes.spc",
            args.out.display()
        );
    }
    let mut stream = SceneStream::open(&args.inputs, args.source.options(StepRule::Full)?)?;
    let files = stream.files_left();
    if files == 0 {
        anyhow::bail!("no scene files in {:?}", args.inputs);
    }
    let bar = ProgressBar::new(files as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files, {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut writer = CacheWriter::create(&args.out)?;
    let (mut agents, mut features) = (0usize, 0usize);
    while let Some(loaded) = stream.next() {
        let loaded = match loaded {
            Ok(l) => l,
            Err(e) => {
                bar.abandon();
                return Err(e).context(
                    "conversion stopped; nothing was written (use --skip-bad to skip bad scenes)",
                );
            }
        };
        agents += loaded.scene.tracks.len();
        features += loaded.scene.map.len();
        writer.push(&loaded.scene)?;
        bar.set_position((files - stream.files_left()).saturating_sub(1) as u64);
        bar.set_message(format!("{} scenes", writer.len()));
    }
    bar.set_position(files as u64);
    bar.finish_and_clear();
    if writer.is_empty() {
        // Dropping the writer removes its temporary file: no empty cache is left.
        anyhow::bail!(
            "no scene could be converted from {} file(s) ({} skipped); nothing was written to {}",
            files,
            stream.warnings().len(),
            args.out.display()
        );
    }
    let written = writer.finish()?;
    let secs = started.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&args.out).map(|m| m.len()).unwrap_or(0);
    println!(
        "wrote {written} scene(s) ({agents} agents, {features} map features) from {files} file(s) to {} ({:.1} MB) in {secs:.2} s ({:.0} scenes/s)",
        args.out.display(),
        bytes as f64 / 1e6,
        written as f64 / secs.max(1e-9)
    );
    let skipped = stream.warnings().len();
    if skipped > 0 {
        println!("skipped {skipped} bad scene(s) or file(s); the warnings above name them");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::shared_data;

    fn summaries(relative: &str) -> Vec<SceneSummary> {
        let mut o = LoadOptions::new(BadScenePolicy::Fail);
        o.steps = StepRule::Any;
        SceneStream::open(&[shared_data(relative)], o)
            .unwrap()
            .map(|s| SceneSummary::of(&s.unwrap()))
            .collect()
    }

    fn one(relative: &str) -> SceneSummary {
        let mut v = summaries(relative);
        assert_eq!(v.len(), 1, "{relative}");
        v.remove(0)
    }

    fn features(s: &SceneSummary) -> Vec<(&'static str, usize)> {
        s.features.clone()
    }

    use ObjectType::{Cyclist as C, Pedestrian as P, Vehicle as V};

    /// Every number data/README.md lists, for every shipped file.
    #[test]
    fn inspect_prints_the_readme_counts_for_every_shipped_file() {
        // womd/637f20cafde22ff8.tfrecord and its GPUDrive copy.
        for f in [
            "womd/637f20cafde22ff8.tfrecord",
            "gpudrive/637f20cafde22ff8.json",
        ] {
            let s = one(f);
            assert_eq!(s.id, "637f20cafde22ff8");
            assert_eq!(s.agents, [(V, 70), (P, 10), (C, 3)], "{f}");
            assert_eq!(
                (s.steps, s.current_step, s.valid_states),
                (91, 10, 4596),
                "{f}"
            );
            assert_eq!(s.sdc.map(|x| x.0), Some(82), "{f}");
            assert_eq!(
                features(&s),
                [
                    ("lane", 199),
                    ("road_line", 59),
                    ("road_edge", 28),
                    ("crosswalk", 4),
                    ("speed_bump", 3),
                    ("stop_sign", 8)
                ],
                "{f}"
            );
            assert_eq!(s.feature_count(), 301);
            assert_eq!(s.polyline_points, 19_596, "{f}");
            assert_eq!((s.signal_lanes, s.signal_steps), (12, 91), "{f}");
            assert_eq!(s.tracks_to_predict, [72, 43, 42], "{f}");
            let t = s.table();
            assert!(
                t.contains("agents               83 (70 vehicle, 10 pedestrian, 3 cyclist)"),
                "{t}"
            );
            assert!(t.contains("steps                91 (current 10)"), "{t}");
            assert!(t.contains("valid states         4596"), "{t}");
            assert!(t.contains("self-driving car     track 82"), "{t}");
            assert!(t.contains("map features         301 (199 lane, 59 road_line, 28 road_edge, 4 crosswalk, 3 speed_bump, 8 stop_sign)"), "{t}");
            assert!(t.contains("polyline points      19596"), "{t}");
            assert!(
                t.contains("traffic-light lanes  12 (states at 91 of 91 steps)"),
                "{t}"
            );
            assert!(t.contains("tracks to predict    3 (72, 43, 42)"), "{t}");
        }
        // womd/ee519cf571686d19.tfrecord and its GPUDrive copy.
        for f in [
            "womd/ee519cf571686d19.tfrecord",
            "gpudrive/ee519cf571686d19.json",
        ] {
            let s = one(f);
            assert_eq!(s.agents, [(V, 189), (P, 68)], "{f}");
            assert_eq!(s.sdc.map(|x| x.0), Some(256), "{f}");
            assert_eq!(
                features(&s),
                [
                    ("lane", 114),
                    ("road_line", 12),
                    ("road_edge", 75),
                    ("crosswalk", 4),
                    ("speed_bump", 6),
                    ("stop_sign", 4)
                ],
                "{f}"
            );
            assert_eq!(s.signal_lanes, 0, "{f}");
            assert!(s.table().contains("traffic-light lanes  0"), "{f}");
        }
        // GPUDrive files: (objects, roads, light lanes).
        for (f, objects, roads, lights) in [
            ("gpudrive/tfrecord-00000-of-01000_4.json", 81, 102, 0),
            ("gpudrive/tfrecord-00000-of-01000_325.json", 62, 157, 0),
            ("gpudrive/tfrecord-00000-of-01000_402.json", 91, 225, 0),
            ("gpudrive/tfrecord-00002-of-01000_407.json", 15, 177, 0),
            ("gpudrive/1c365f15b70ebdbf.json", 25, 118, 0),
            (
                "gpudrive/tl_tfrecord-00000-of-00150_2af8a17d6cee3f8.json",
                100,
                174,
                14,
            ),
            (
                "gpudrive/tl_tfrecord-00000-of-00150_2a173b334be3d32c.json",
                15,
                213,
                12,
            ),
            (
                "gpudrive/dense_tfrecord-00000-of-00150_238786b3cccc4a0e.json",
                87,
                297,
                19,
            ),
        ] {
            let s = one(f);
            assert_eq!(
                (s.agent_count(), s.feature_count(), s.signal_lanes),
                (objects, roads, lights),
                "{f}"
            );
            assert_eq!(s.steps, 91, "{f}");
            assert!(
                s.table()
                    .contains(&format!("agents               {objects}")),
                "{f}"
            );
            assert!(
                s.table().contains(&format!("map features         {roads}")),
                "{f}"
            );
        }
        let s = one("gpudrive/tl_tfrecord-00000-of-00150_2a173b334be3d32c.json");
        assert_eq!(s.agents, [(V, 12), (P, 3)]);
        let s = one("gpudrive/dense_tfrecord-00000-of-00150_238786b3cccc4a0e.json");
        assert_eq!(s.sdc, None);
        assert!(s.tracks_to_predict.is_empty());
        assert!(s.table().contains("self-driving car     none"));
        // The one-step collision fixtures.
        for f in [
            "gpudrive/agent-agent-collision.json",
            "gpudrive/agent-road-edge-collision.json",
        ] {
            let s = one(f);
            assert_eq!(s.steps, 1, "{f}");
        }
        assert_eq!(one("gpudrive/agent-agent-collision.json").agent_count(), 2);
        assert_eq!(
            one("gpudrive/agent-road-edge-collision.json").agent_count(),
            1
        );
        // INTERACTION: 3,007 frames cut every second into 9.1 s windows, 74 vehicles.
        let v = summaries("interaction");
        assert_eq!(v.len(), 292);
        assert!(
            v.iter()
                .all(|s| s.steps == 91 && s.current_step == 10 && s.sdc.is_none())
        );
        assert!(
            v[0].table().contains(
                "map features         102 (59 lane, 13 road_line, 24 road_edge, 6 stop_sign)"
            ),
            "{}",
            v[0].table()
        );
        // Every shipped directory at once.
        let all: usize = ["womd", "gpudrive"]
            .iter()
            .map(|d| summaries(d).len())
            .sum();
        assert_eq!(all, 14);
    }

    #[test]
    fn convert_writes_a_cache_that_inspects_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("s.spc");
        let args = ConvertArgs {
            inputs: vec![
                shared_data("womd"),
                shared_data("gpudrive/637f20cafde22ff8.json"),
            ],
            out: out.clone(),
            source: SourceArgs {
                skip_bad: false,
                map: None,
                stride: 10,
            },
        };
        convert(args).unwrap();
        let v: Vec<SceneSummary> =
            SceneStream::open(std::slice::from_ref(&out), LoadOptions::default())
                .unwrap()
                .map(|s| SceneSummary::of(&s.unwrap()))
                .collect();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].valid_states, 4596);
        assert_eq!(v[1].agent_count(), 257);
        // The fixtures are one step long: without --skip-bad the conversion fails and
        // leaves no cache behind.
        let bad_out = dir.path().join("t.spc");
        let args = ConvertArgs {
            inputs: vec![shared_data("gpudrive")],
            out: bad_out.clone(),
            source: SourceArgs {
                skip_bad: false,
                map: None,
                stride: 10,
            },
        };
        let e = format!("{:#}", convert(args).unwrap_err());
        assert!(
            e.contains("agent-agent-collision.json") && e.contains("expected 91"),
            "{e}"
        );
        assert!(!bad_out.exists());
    }

    #[test]
    fn a_zero_stride_is_an_error() {
        let source = SourceArgs {
            skip_bad: false,
            map: None,
            stride: 0,
        };
        let e = source.options(StepRule::Full).unwrap_err().to_string();
        assert!(e.contains("--stride 0"), "{e}");
    }

    #[test]
    fn converting_nothing_is_an_error_and_writes_nothing() {
        // A 0-byte TFRecord used to convert into an empty cache with exit 0.
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.tfrecord");
        std::fs::write(&empty, b"").unwrap();
        for skip_bad in [false, true] {
            let out = dir.path().join("e.spc");
            let args = ConvertArgs {
                inputs: vec![empty.clone()],
                out: out.clone(),
                source: SourceArgs {
                    skip_bad,
                    map: None,
                    stride: 10,
                },
            };
            let e = format!("{:#}", convert(args).unwrap_err());
            assert!(
                e.contains("empty.tfrecord") || e.contains("no scene could be converted"),
                "{e}"
            );
            let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
            assert_eq!(left.len(), 1, "only the input remains: {left:?}");
        }
    }
}
