//! `spacer info`: the policy architecture and its size; with `--weights`, what a blob
//! holds (format version, f32 or int8 weights, checksum).

use std::path::PathBuf;

use clap::Args;
use spacer_core::policy::{ParamLayout, PolicyDims, param_count};
use spacer_core::quant::{QuantKind, QuantLayout};
use spacer_core::weights::WeightFormat;

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
            let blob = file.blob();
            let h = *blob.header();
            let checksum = match blob.checksum() {
                Some(c) => format!("CRC-32C {c:08x}"),
                None => "no checksum".to_string(),
            };
            println!(
                "weights {} ({} bytes, format v{}, {} weights, {checksum}, trained for {} steps)",
                path.display(),
                file.bytes().len(),
                h.version,
                h.format.name(),
                h.trained_steps
            );
            if h.format == WeightFormat::Int8 {
                print!("{}", int8_table(&h.dims));
                println!(
                    "int8 parameters: {} bytes (the f32 network they quantize: {} parameters, {} bytes)",
                    thousands(blob.param_bytes().len()),
                    thousands(param_count(h.dims.actions())),
                    thousands(4 * param_count(h.dims.actions()))
                );
                return Ok(());
            }
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

/// The per-tensor table of an int8 policy ([`spacer_core::quant`]): the ego encoder's
/// second layer, the fusion layer and the heads are folded into one int8 head.
pub fn int8_table(dims: &PolicyDims) -> String {
    use std::fmt::Write;
    let layout = QuantLayout::new(dims.actions());
    let mut s = String::new();
    let _ = writeln!(
        s,
        "int8 late-fusion policy, K = {} tokens (fusion, actor, critic and ego.l2 folded into head.w)",
        dims.actions()
    );
    let _ = writeln!(s, "{:<18} {:>16} {:>10}", "tensor", "storage", "bytes");
    for t in layout.tensors().iter().filter(|t| t.words > 0) {
        let storage = match t.kind {
            QuantKind::F32 => format!("f32 [{}]", t.words),
            QuantKind::I32 => format!("i32 [{}]", t.words),
            QuantKind::U64 => "u64".to_string(),
            QuantKind::I16Pairs => format!("i16 [{}, 2]", t.words),
            QuantKind::Int8 { inputs, outputs } => format!("i8 [{inputs}, {outputs}]"),
        };
        let _ = writeln!(
            s,
            "{:<18} {:>16} {:>10}",
            t.name,
            storage,
            thousands(4 * t.words)
        );
    }
    s
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
        let q = int8_table(&PolicyDims::default());
        assert!(q.contains("head.w") && q.contains("i8 [192, 202]") && !q.contains("ego.l2.w"));
    }
}
