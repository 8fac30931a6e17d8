//! `cargo convoy token create|list|revoke`.
//!
//! These work on the data directory directly, whether or not a server runs
//! on it: SQLite arbitrates, and a server reads the token row on every
//! request, so a revocation takes effect at once.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use convoy_protocol::index::format_timestamp;
use convoy_store::{NewToken, TokenInfo};

use crate::cli::{TokenCreateArgs, TokenListArgs, TokenListFormat, TokenRevokeArgs};

fn require_user(user: &str) -> anyhow::Result<()> {
    if user.trim().is_empty() {
        anyhow::bail!("`--user` cannot be empty");
    }
    Ok(())
}

pub(crate) fn create(
    args: TokenCreateArgs,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<ExitCode> {
    require_user(&args.user)?;
    let lifetime = match (args.expires_days, args.expires_secs) {
        (Some(days), _) => Some(Duration::from_secs(u64::from(days) * 86_400)),
        (None, Some(secs)) => Some(Duration::from_secs(secs)),
        (None, None) => None,
    };
    let expires_at = lifetime.map(|d| SystemTime::now() + d);
    let secret = runtime.block_on(async {
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

fn timestamp(t: SystemTime) -> String {
    format_timestamp(
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    )
}

fn json(t: &TokenInfo) -> serde_json::Value {
    serde_json::json!({
        "id": t.id,
        "name": t.name,
        "endpoint_scopes": t.scopes,
        "crate_scopes": (!t.crates.is_empty())
            .then(|| t.crates.iter().map(|g| g.as_str()).collect::<Vec<_>>()),
        "created_at": timestamp(t.created_at),
        "expired_at": t.expires_at.map(timestamp),
        "last_used_at": t.last_used_at.map(timestamp),
        "stage": t.stage,
    })
}

pub(crate) fn list(
    args: TokenListArgs,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<ExitCode> {
    require_user(&args.user)?;
    let tokens = runtime.block_on(async {
        let store = args.state.metadata().await?;
        anyhow::Ok(convoy_store::admin::tokens_of(store.as_ref(), &args.user).await?)
    })?;
    let mut out = std::io::stdout().lock();
    match args.format {
        TokenListFormat::Json => {
            let list: Vec<_> = tokens.iter().map(json).collect();
            writeln!(out, "{}", serde_json::json!({ "api_tokens": list }))?;
        }
        TokenListFormat::Human => {
            for t in &tokens {
                let scopes: Vec<_> = t.scopes.iter().map(|s| s.as_str()).collect();
                let crates: Vec<_> = t.crates.iter().map(|g| g.as_str()).collect();
                writeln!(
                    out,
                    "{}  {}  scopes={}  crates={}  created={}  expires={}  last-used={}{}",
                    t.id,
                    convoy_protocol::text::quote(&t.name),
                    scopes.join(","),
                    if crates.is_empty() {
                        "*".to_owned()
                    } else {
                        crates.join(",")
                    },
                    timestamp(t.created_at),
                    t.expires_at.map_or("never".to_owned(), timestamp),
                    t.last_used_at.map_or("never".to_owned(), timestamp),
                    t.stage
                        .as_deref()
                        .map_or(String::new(), |s| format!("  stage={s}")),
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn revoke(
    args: TokenRevokeArgs,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<ExitCode> {
    require_user(&args.user)?;
    let id = if args.all { None } else { args.id.as_deref() };
    let revoked = runtime.block_on(async {
        let store = args.state.metadata().await?;
        anyhow::Ok(convoy_store::admin::revoke_tokens(store.as_ref(), &args.user, id).await?)
    })?;
    if let (Some(id), true) = (id, revoked.is_empty()) {
        anyhow::bail!(
            "user `{}` has no token `{}`",
            args.user,
            convoy_protocol::text::quote(id)
        );
    }
    crate::status::Status::new().line(
        crate::status::Tone::Ok,
        "Revoked",
        &format!(
            "{} token(s) of user `{}`: {}",
            revoked.len(),
            args.user,
            revoked.join(", ")
        ),
    );
    Ok(ExitCode::SUCCESS)
}
