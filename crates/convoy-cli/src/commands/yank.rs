//! `cargo convoy yank --release ID [--undo]`: glue over the staging client,
//! printing one cargo-style line per version of the release.

use std::process::ExitCode;

use anyhow::Context;
use convoy_upload::staging::StagingClient;

use crate::cli::YankArgs;
use crate::status::{Status, Tone};

pub fn exec(args: YankArgs, runtime: &tokio::runtime::Handle) -> anyhow::Result<ExitCode> {
    if args.cargo.offline {
        anyhow::bail!("`--offline` cannot be used with `yank`, which changes the registry");
    }
    let config = args.cargo.apply()?;
    let cwd = std::env::current_dir().context("failed to read the current directory")?;
    let target =
        convoy_index_client::CargoConfig::load(&cwd, &config)?.resolve(&args.registry.request())?;
    let client = StagingClient::connect(&target, runtime)?;
    client.yank_release(&args.release, args.undo)?;
    // The yank answer carries no crate list; the release record does.
    let release = client.release(&args.release)?;
    let status = Status::new();
    let verb = if args.undo { "Unyanked" } else { "Yanked" };
    for krate in &release.crates {
        status.line(Tone::Ok, verb, &format!("{} v{}", krate.name, krate.vers));
    }
    Ok(ExitCode::SUCCESS)
}
