//! `spacer info`: the policy architecture and its size.

use std::path::PathBuf;

use clap::Args;
use spacer_core::policy::{ParamLayout, PolicyDims, param_count};

use crate::policy_file::PolicyFile;

/// Arguments of `spacer info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A weights blob to describe instead of the default architecture.
    #[arg(long)]
    pub weights: Option<PathBuf>,
}

/// Prints the architecture table and the parameter count.
pub fn run(args: InfoArgs) -> anyhow::Result<()> {
    let (dims, origin) = match &args.weights {
        Some(path) => {
            let file = PolicyFile::read(path)?;
            let h = *file.blob().header();
            println!(
                "weights {} ({} bytes, format v{}, trained for {} steps)",
                path.display(),
                file.bytes().len(),
                h.version,
                h.trained_steps
            );
            (h.dims, "blob")
        }
        None => (PolicyDims::default(), "default"),
    };
    print!("{}", architecture_table(&dims));
    println!(
        "observation: {} floats (ego 6 + {} partners x 6 + {} road segments x 13), {origin}",
        dims.observation_len(),
        dims.max_partners,
        dims.max_road_segments
    );
    println!("parameters: {}", thousands(param_count(dims.actions())));
    Ok(())
}

/// The per-tensor table of the late-fusion policy.
pub fn architecture_table(dims: &PolicyDims) -> String {
    use std::fmt::Write;
    let layout = ParamLayout::new(dims.actions());
    let mut s = String::new();
    let _ = writeln!(
        s,
        "late-fusion policy (GPUDrive / SPACeR), K = {} tokens",
        dims.actions()
    );
    let _ = writeln!(s, "{:<18} {:>10} {:>10}", "tensor", "shape", "params");
    for t in layout.tensors() {
        let shape = if t.cols == 1 {
            format!("[{}]", t.rows)
        } else {
            format!("[{}, {}]", t.rows, t.cols)
        };
        let _ = writeln!(
            s,
            "{:<18} {:>10} {:>10}",
            t.name,
            shape,
            thousands(t.rows * t.cols)
        );
    }
    s
}

/// `65289` -> `65,289`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_count() {
        assert_eq!(thousands(65_289), "65,289");
        assert_eq!(thousands(7), "7");
        assert_eq!(thousands(1_000_000), "1,000,000");
        let t = architecture_table(&PolicyDims::default());
        assert!(t.contains("road.l1.w") && t.contains("[13, 64]") && t.contains("actor.w"));
    }
}
