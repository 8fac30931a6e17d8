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
    let runtime = runtime(matches!(command, Command::Serve(_)))?;
    let handle = runtime.handle();
    match command {
        Command::Serve(args) => serve::exec(args, handle),
        Command::Token(TokenCommand::Create(args)) => token::create(args, handle),
        Command::Migrate(args) => migrate::exec(args, handle),
        Command::Token(TokenCommand::List(args)) => token::list(args, handle),
        Command::Token(TokenCommand::Revoke(args)) => token::revoke(args, handle),
        Command::Plan(args) => plan::exec(args, handle),
        Command::Check(args) => check::exec(args, handle),
        Command::Publish(args) => publish::exec(args, handle),
        Command::Yank(args) => yank::exec(args, handle),
        Command::Changed(args) => changed::exec(args, handle),
        Command::Version(args) => version::exec(args, handle),
    }
}

/// The process's one tokio runtime, built here and handed down as a
/// [`tokio::runtime::Handle`]: no library builds one. Every network request
/// runs on it, the verification overlays are served from it, and `serve`'s
/// registry runs on it.
///
/// Multi-thread, always: the synchronous library calls block on it from
/// this thread (`Handle::block_on`, which cannot drive a current-thread
/// runtime), and while a release waits on cargo, cargo's requests to the
/// overlay are answered by the workers alone. Two workers suffice for a
/// client, whose work is waiting on the network; the server takes one per
/// core.
fn runtime(serving: bool) -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if !serving {
        builder.worker_threads(2);
    }
    builder
        .thread_name("convoy")
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}
