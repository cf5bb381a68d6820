//! `spacer data gen`: synthetic scenes into a scene cache.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::scenario::cache::{CACHE_EXTENSION, CacheWriter};
use crate::scenario::synthetic::{Layout, LayoutMix, SyntheticConfig, generate_range};

/// Arguments of `spacer data gen`.
#[derive(Debug, Args)]
pub struct GenArgs {
    /// Number of scenes.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,
    /// Batch seed (scene `i` uses `scene_seed(seed, i)`).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory; the cache is written as
    /// `synthetic-s<SEED>-n<COUNT>.spc` inside it.
    #[arg(long)]
    pub out: PathBuf,
    /// Only these layouts (repeatable); default: the standard mix.
    #[arg(long, value_enum)]
    pub layout: Vec<Layout>,
    /// Cap on the objects per scene.
    #[arg(long, default_value_t = SyntheticConfig::default().max_agents)]
    pub max_agents: usize,
    /// Probability that an intersection is signalised.
    #[arg(long, default_value_t = SyntheticConfig::default().signal_probability)]
    pub signal_probability: f32,
}

impl GenArgs {
    /// The generator configuration these arguments ask for.
    pub fn config(&self) -> SyntheticConfig {
        let mut layouts = LayoutMix::default();
        if !self.layout.is_empty() {
            layouts = LayoutMix::only(self.layout[0]);
            for &l in &self.layout[1..] {
                let one = LayoutMix::only(l);
                layouts.straight += one.straight;
                layouts.curved += one.curved;
                layouts.four_way += one.four_way;
                layouts.t_junction += one.t_junction;
                layouts.merge += one.merge;
            }
        }
        SyntheticConfig {
            layouts,
            max_agents: self.max_agents,
            signal_probability: self.signal_probability,
            ..SyntheticConfig::default()
        }
    }

    /// The cache file written.
    pub fn output_file(&self) -> PathBuf {
        self.out.join(format!(
            "synthetic-s{}-n{}.{CACHE_EXTENSION}",
            self.seed, self.count
        ))
    }
}

/// Generates the scenes in parallel chunks, streams them into the cache, and prints
/// the throughput.
pub fn run(args: GenArgs) -> anyhow::Result<()> {
    let config = args.config();
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid generator settings: {e}"))?;
    if args.count == 0 {
        anyhow::bail!("--count must be at least 1");
    }
    let path = args.output_file();
    let mut writer = CacheWriter::create(&path)
        .with_context(|| format!("cannot create the cache in {}", args.out.display()))?;
    let bar = ProgressBar::new(args.count as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} generating [{bar:40}] {pos}/{len} scenes ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let threads = rayon::current_num_threads();
    let chunk = (threads * 32).max(64);
    let start = Instant::now();
    let (mut agents, mut features) = (0usize, 0usize);
    let mut layouts = [0usize; Layout::ALL.len()];
    let mut begin = 0;
    while begin < args.count {
        let end = (begin + chunk).min(args.count);
        let scenes = generate_range(&config, args.seed, begin..end);
        for s in &scenes {
            writer.push(s)?;
            agents += s.tracks.len();
            features += s.map.len();
            if let Some(l) = Layout::of_scene_id(&s.id) {
                layouts[l as usize] += 1;
            }
        }
        bar.inc((end - begin) as u64);
        begin = end;
    }
    let generated = start.elapsed();
    let n = writer.finish()?;
    bar.finish_and_clear();
    let secs = generated.as_secs_f64().max(1e-9);
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let mix: Vec<String> = Layout::ALL
        .iter()
        .zip(layouts)
        .filter(|(_, c)| *c > 0)
        .map(|(l, c)| format!("{} {c}", l.name()))
        .collect();
    println!(
        "wrote {n} scenes to {} ({:.1} MB): {}",
        path.display(),
        bytes as f64 / 1e6,
        mix.join(", ")
    );
    println!(
        "mean {:.1} agents and {:.0} map features per scene",
        agents as f64 / n as f64,
        features as f64 / n as f64
    );
    println!(
        "generated {n} scenes in {secs:.2} s on {threads} threads: {:.0} scenes/minute",
        n as f64 / secs * 60.0
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gen_writes_a_readable_cache() {
        let dir = tempfile::tempdir().unwrap();
        let args = GenArgs {
            count: 3,
            seed: 4,
            out: dir.path().to_path_buf(),
            layout: vec![Layout::Straight, Layout::Merge],
            max_agents: 20,
            signal_probability: 0.5,
        };
        let path = args.output_file();
        let config = args.config();
        assert_eq!(config.layouts.weight(Layout::FourWay), 0.0);
        run(args).unwrap();
        let scenes = crate::scenario::cache::read_cache(&path).unwrap();
        assert_eq!(scenes.len(), 3);
        assert!(scenes.iter().all(|s| s.tracks.len() <= 20));
        assert!(scenes.iter().all(|s| matches!(
            Layout::of_scene_id(&s.id),
            Some(Layout::Straight | Layout::Merge)
        )));
        assert_eq!(
            scenes[1],
            crate::scenario::synthetic::generate(
                &config,
                crate::scenario::synthetic::scene_seed(4, 1)
            )
        );
    }
}
