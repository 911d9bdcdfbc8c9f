//! The `podns` command: the only place where the stages are wired together.
//!
//! `cli` parses the command line into typed configurations for each crate; `pipeline` runs
//! manifests → cluster store → controllers → service views → zone snapshot; `cli::serve` puts
//! the wire server in front of the published snapshot and follows manifest changes; `cli::get`
//! prints what podns derived, kubectl-style; `cli::resolve` is podns-client behind a command line.

mod cli;
mod memory;
mod pipeline;
mod serve;
mod settings;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    memory::limit_arenas();
    let args = cli::Args::parse();
    init_tracing(args.verbose);
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("podns: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr; `RUST_LOG` overrides the level chosen with `-v`.
fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
