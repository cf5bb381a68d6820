//! `spacer vocab`: build the motion-token vocabulary from logs and report how well it
//! reproduces them.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use spacer_core::agent::AgentKind;
use spacer_core::tokenizer::Vocabulary;

use super::args::DatasetArgs;
use crate::scenario::Scene;
use crate::vocab::{
    BuiltVocabulary, ClusterConfig, TokenizationError, build_vocabulary, read_vocabulary,
    tokenization_error, write_vocabulary,
};

/// Arguments of `spacer vocab`.
#[derive(Debug, Args)]
pub struct VocabArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: VocabCommand,
}

/// `spacer vocab` subcommands.
#[derive(Debug, Subcommand)]
pub enum VocabCommand {
    /// k-disk clustering of logged 0.2 s segments into K tokens per agent type.
    Build(BuildArgs),
    /// Tokenization error of a vocabulary on logged scenes.
    Eval(EvalArgs),
    /// Writes the data-free kinematic grid (speed x turn rate) as a vocabulary file,
    /// for ablations against a built vocabulary.
    Grid(GridArgs),
}

/// Arguments of `spacer vocab grid`.
#[derive(Debug, Args)]
pub struct GridArgs {
    /// Tokens per agent type.
    #[arg(long, default_value_t = 200)]
    pub k: usize,
    /// Output file.
    #[arg(long, default_value = "vocab-grid.postcard")]
    pub out: PathBuf,
}

/// Arguments of `spacer vocab build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The scenes.
    #[command(flatten)]
    pub data: DatasetArgs,
    /// Tokens per agent type.
    #[arg(long, default_value_t = 200)]
    pub k: usize,
    /// Grouping tolerance for vehicles (mean corner distance, m); scaled by box size
    /// for the other types. 0.1 by measurement (see `spacer_train::vocab`).
    #[arg(long, default_value_t = 0.1)]
    pub tolerance: f32,
    /// Grow the tolerance until the tokens cover this fraction of the logged
    /// segments (0: keep the tolerance).
    #[arg(long, default_value_t = 0.0)]
    pub coverage: f64,
    /// Seed of the cluster-seed draws and of the synthetic scenes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Synthetic scenes added to the training scenes.
    #[arg(long, default_value_t = 0)]
    pub synthetic: usize,
    /// Output file.
    #[arg(long, default_value = "vocab.postcard")]
    pub out: PathBuf,
}

/// Arguments of `spacer vocab eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The vocabulary file.
    #[arg(long)]
    pub vocab: PathBuf,
    /// The scenes.
    #[command(flatten)]
    pub data: DatasetArgs,
}

/// Runs `spacer vocab`.
pub fn run(args: VocabArgs) -> anyhow::Result<()> {
    match args.command {
        VocabCommand::Build(a) => build(a),
        VocabCommand::Eval(a) => eval(a),
        VocabCommand::Grid(a) => grid(a),
    }
}

fn grid(a: GridArgs) -> anyhow::Result<()> {
    let v = Vocabulary::kinematic_grid(a.k).map_err(|e| anyhow::anyhow!("--k {}: {e}", a.k))?;
    write_vocabulary(&a.out, &v)?;
    println!(
        "vocabulary: the kinematic grid, {} tokens per type (not built from data) -> {}",
        a.k,
        a.out.display()
    );
    Ok(())
}

fn build(a: BuildArgs) -> anyhow::Result<()> {
    let d = a.data.load(a.synthetic, a.seed)?;
    let train: Vec<Scene> = d.training().cloned().collect();
    if train.is_empty() {
        // It used to write the kinematic grid as if it had been built from data.
        anyhow::bail!(
            "no training scenes to build a vocabulary from: give --scenes with readable scenes or --synthetic N"
        );
    }
    let cfg = ClusterConfig {
        k: a.k,
        vehicle_tolerance: a.tolerance,
        seed: a.seed,
        coverage: a.coverage,
    };
    let started = std::time::Instant::now();
    let built = build_vocabulary(&train, &cfg).map_err(anyhow::Error::msg)?;
    write_vocabulary(&a.out, &built.vocabulary)?;
    println!(
        "vocabulary: {} tokens per type from {} training scenes (validation and held-out \
         scenes not used) in {:.2} s -> {}",
        a.k,
        train.len(),
        started.elapsed().as_secs_f64(),
        a.out.display()
    );
    print_provenance(&built);
    report(&built.vocabulary, &train, &d.held_out)
}

fn eval(a: EvalArgs) -> anyhow::Result<()> {
    let v = read_vocabulary(&a.vocab)?;
    let d = a.data.load(0, 0)?;
    report(&v, &d.train, &d.held_out)
}

fn print_provenance(b: &BuiltVocabulary) {
    println!(
        "{:<11} {:>9} {:>10} {:>11} {:>9}",
        "type", "segments", "tolerance", "from data", "covered"
    );
    for kind in AgentKind::ALL {
        let c = &b.clusters[kind.index()];
        println!(
            "{:<11} {:>9} {:>9.4}m {:>11} {:>8.1}%",
            kind.name(),
            c.segments,
            c.tolerance,
            c.from_data,
            100.0 * c.covered as f64 / c.segments.max(1) as f64
        );
    }
}

fn report(v: &Vocabulary, train: &[Scene], held: &[Scene]) -> anyhow::Result<()> {
    let grid = Vocabulary::kinematic_grid(v.len()).map_err(|e| anyhow::anyhow!("{e}"))?;
    for (name, scenes) in [("training", train), ("held-out", held)] {
        if scenes.is_empty() {
            continue;
        }
        let ours = tokenization_error(scenes, v);
        let base = tokenization_error(scenes, &grid);
        println!(
            "tokenization error on {} {name} scenes (logs encoded, decoded, compared at 10 Hz):",
            scenes.len()
        );
        println!(
            "{:<11} {:>6} {:>10} {:>10} {:>10} {:>12} {:>12}",
            "type", "runs", "ADE (m)", "FDE (m)", "max (m)", "grid ADE", "grid FDE"
        );
        for kind in AgentKind::ALL {
            let (o, g): (&TokenizationError, &TokenizationError) =
                (&ours[kind.index()], &base[kind.index()]);
            println!(
                "{:<11} {:>6} {:>10.4} {:>10.4} {:>10.3} {:>12.4} {:>12.4}",
                kind.name(),
                o.trajectories,
                o.ade,
                o.fde,
                o.max,
                g.ade,
                g.fde
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build_args(data: DatasetArgs, out: PathBuf) -> VocabArgs {
        VocabArgs {
            command: VocabCommand::Build(BuildArgs {
                data,
                k: 16,
                tolerance: 0.1,
                coverage: 0.0,
                seed: 0,
                synthetic: 0,
                out,
            }),
        }
    }

    #[test]
    fn no_readable_scene_is_an_error_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.tfrecord");
        std::fs::write(&empty, b"").unwrap();
        let out = dir.path().join("v.postcard");
        // An empty file given with --scenes.
        let data = DatasetArgs {
            scenes: vec![empty],
            no_real: false,
        };
        let e = format!("{:#}", run(build_args(data, out.clone())).unwrap_err());
        assert!(
            e.contains("empty.tfrecord") && e.contains("no readable scene"),
            "{e}"
        );
        // No real scenes and no synthetic ones.
        let data = DatasetArgs {
            scenes: vec![],
            no_real: true,
        };
        let e = format!("{:#}", run(build_args(data, out.clone())).unwrap_err());
        assert!(e.contains("no training scenes"), "{e}");
        assert!(!out.exists());
    }

    #[test]
    fn grid_writes_the_kinematic_grid_and_refuses_a_bad_size() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("grid.postcard");
        grid(GridArgs {
            k: 200,
            out: out.clone(),
        })
        .unwrap();
        let v = read_vocabulary(&out).unwrap();
        assert_eq!(v, Vocabulary::kinematic_grid(200).unwrap());
        let e = grid(GridArgs { k: 0, out }).unwrap_err().to_string();
        assert!(e.contains("--k 0"), "{e}");
    }
}
