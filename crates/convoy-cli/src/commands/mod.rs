//! One module per subcommand; each turns its arguments into a library call.

mod changed;
mod check;
mod migrate;
mod plan;
mod publish;
mod serve;
mod token;
mod version;
mod yank;

use std::process::ExitCode;

use crate::cli::{Command, TokenCommand};

/// Runs a parsed command. `Ok` carries the exit code for commands whose
/// "no" is not an error (such as `check` finding problems).
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => serve::exec(args),
        Command::Token(TokenCommand::Create(args)) => token::create(args),
        Command::Migrate(args) => migrate::exec(args),
        Command::Token(TokenCommand::List(args)) => token::list(args),
        Command::Token(TokenCommand::Revoke(args)) => token::revoke(args),
        Command::Plan(args) => plan::exec(args),
        Command::Check(args) => check::exec(args),
        Command::Publish(args) => publish::exec(args, runtime()?.handle()),
        Command::Yank(args) => yank::exec(args, runtime()?.handle()),
        Command::Changed(args) => changed::exec(args),
        Command::Version(args) => version::exec(args),
    }
}

/// The command's one tokio runtime: the release engine's uploads and stage
/// requests all run on it (`serve` makes its own, the only one it has).
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("convoy")
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}
