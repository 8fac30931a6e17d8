//! `cargo convoy token create`.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use convoy_store::NewToken;
use convoy_store::sqlite::SqliteStore;

use crate::cli::TokenCreateArgs;

pub(crate) fn create(args: TokenCreateArgs) -> anyhow::Result<ExitCode> {
    if args.user.trim().is_empty() {
        anyhow::bail!("`--user` cannot be empty");
    }
    let path = super::serve::database_path(&args.data);
    // SQLite arbitrates with a running server on the same file, so this works
    // whether or not one is up.
    let store = SqliteStore::open(&path)
        .with_context(|| format!("failed to open the database `{}`", path.display()))?;
    let expires_at = args
        .expires_days
        .map(|days| SystemTime::now() + Duration::from_secs(u64::from(days) * 86_400));
    let secret = store.create_token_blocking(NewToken {
        login: args.user,
        name: args.name,
        scopes: args.scopes,
        crates: args.crates,
        expires_at,
    })?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", secret.expose())?;
    Ok(ExitCode::SUCCESS)
}
