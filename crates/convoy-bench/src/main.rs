//! `cargo xtask …`: Convoy's developer tasks (the alias lives in
//! `.cargo/config.toml`). `cargo xtask bench registry` measures the registry
//! server against the goals of issue 2, `cargo xtask bench publish` the
//! publish pipeline against those of issue 4, `cargo xtask bench web` the
//! web UI's crate pages against that of issue 12.
//!
//! A benchmark reports on the terminal, so printing is its whole point: the
//! workspace lints against `print_*` are relaxed for this crate only.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod docs;
mod genws;
mod load;
mod procs;
mod publish;
mod registry;
mod upload;
mod web;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// How a benchmark prints its figures.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Format {
    /// A human table.
    Table,
    /// One JSON document.
    Json,
}

/// Convoy developer tasks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Benchmarks; each starts and stops everything it measures.
    #[command(subcommand)]
    Bench(Bench),
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// The registry server: sparse-index reads against nginx, concurrent
    /// publishes, and the server's peak RSS.
    Registry(registry::Args),
    /// The publish pipeline: Convoy's package + lock + verify against
    /// `cargo package --workspace` and `cargo build --workspace`, and the
    /// upload stage's concurrency against a slow registry.
    Publish(publish::Args),
    /// The web UI: crate pages read by concurrent clients (p99 latency).
    Web(web::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(Bench::Registry(args)) => registry::main(args),
        Command::Bench(Bench::Publish(args)) => publish::main(args),
        Command::Bench(Bench::Web(args)) => web::main(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
