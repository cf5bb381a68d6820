//! `spacer data gen`: synthetic scenes into a scene cache.

use std::path::PathBuf;

use clap::Args;

use crate::scenario::cache::CACHE_EXTENSION;
use crate::scenario::synthetic::{Layout, LayoutMix, SyntheticConfig, write_cache};

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
        SyntheticConfig {
            layouts: LayoutMix::of(&self.layout),
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

/// Generates the scenes into the cache ([`write_cache`]) and prints the throughput.
pub fn run(args: GenArgs) -> anyhow::Result<()> {
    let report = write_cache(
        &args.config(),
        args.count,
        args.seed,
        &args.output_file(),
        true,
    )?;
    print!("{}", report.text());
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
        assert_eq!(config.layouts.weight(Layout::Merge), 1.0);
        let r = write_cache(&config, 3, 4, &path, false).unwrap();
        assert_eq!((r.scenes, r.layouts.iter().sum::<usize>()), (3, 3));
        assert!(r.text().contains("wrote 3 scenes"), "{}", r.text());
        let e = write_cache(&config, 0, 4, &dir.path().join("none.spc"), false).unwrap_err();
        assert!(e.to_string().contains("--count"), "{e}");
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
