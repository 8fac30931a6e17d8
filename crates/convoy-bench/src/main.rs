//! `cargo xtask …`: Convoy's developer tasks (the alias lives in
//! `.cargo/config.toml`). Today there is one: `cargo xtask bench registry`,
//! which measures the registry server against the goals of issue 2.
//!
//! A benchmark reports on the terminal, so printing is its whole point: the
//! workspace lints against `print_*` are relaxed for this crate only.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod docs;
mod load;
mod procs;
mod registry;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(Bench::Registry(args)) => registry::main(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
