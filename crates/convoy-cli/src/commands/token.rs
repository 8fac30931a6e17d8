//! `cargo convoy token create`.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use convoy_store::NewToken;

use crate::cli::TokenCreateArgs;

pub(crate) fn create(args: TokenCreateArgs) -> anyhow::Result<ExitCode> {
    if args.user.trim().is_empty() {
        anyhow::bail!("`--user` cannot be empty");
    }
    let expires_at = args
        .expires_days
        .map(|days| SystemTime::now() + Duration::from_secs(u64::from(days) * 86_400));
    let secret = runtime()?.block_on(async {
        // The database arbitrates with running servers, so this works
        // whether or not one is up.
        let store = args.state.metadata().await?;
        let secret = store
            .create_token(NewToken {
                login: args.user,
                name: args.name,
                scopes: args.scopes,
                crates: args.crates,
                expires_at,
            })
            .await?;
        anyhow::Ok(secret)
    })?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", secret.expose())?;
    Ok(ExitCode::SUCCESS)
}

/// A small runtime for one administrative command.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}
