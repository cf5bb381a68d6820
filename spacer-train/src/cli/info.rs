//! `spacer info`: the policy architecture and its size.

use clap::Args;

/// Arguments of `spacer info`.
#[derive(Debug, Args)]
pub struct InfoArgs {}

/// Prints the architecture table.
pub fn run(_args: InfoArgs) -> anyhow::Result<()> {
    println!("spacer {}", env!("CARGO_PKG_VERSION"));
    Ok(())
}
