//! `cargo convoy`: publish a whole workspace, and serve a registry.
//!
//! This binary is glue: it parses arguments into each library's options,
//! calls one library function per subcommand, and renders an error once, here
//! at the top, as one `error:` line followed by its causes.

mod cli;
mod commands;
mod status;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse_from(cli::args_without_cargo_subcommand(std::env::args_os()));
    init_logging(cli.verbose);
    match commands::run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            report(&err);
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr so that stdout stays for data (the `listening on` line,
/// tokens, JSON documents).
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn,convoy=info",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONVOY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

#[allow(clippy::print_stderr)]
fn report(err: &anyhow::Error) {
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("\nCaused by:\n  {cause}");
    }
}
