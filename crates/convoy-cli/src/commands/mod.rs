//! One module per subcommand; each turns its arguments into a library call.

mod changed;
mod check;
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
        Command::Plan(args) => plan::exec(args),
        Command::Check(args) => check::exec(args),
        Command::Publish(args) => publish::exec(args),
        Command::Yank(args) => yank::exec(args),
        Command::Changed(args) => changed::exec(args),
        Command::Version(args) => version::exec(args),
    }
}
