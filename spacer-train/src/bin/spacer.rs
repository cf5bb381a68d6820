//! The `spacer` command line.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = spacer_train::cli::Cli::parse();
    match spacer_train::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
