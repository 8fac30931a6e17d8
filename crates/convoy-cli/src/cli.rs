//! The command-line surface. Flags follow cargo's names wherever cargo has one.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Publish every crate of a Cargo workspace, and serve a Cargo registry.
#[derive(Debug, Parser)]
#[command(name = "cargo-convoy", bin_name = "cargo convoy", version, about)]
pub struct Cli {
    /// More log output on stderr (-v, -vv).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Convoy registry (sparse index and Cargo Web API).
    Serve(ServeArgs),
    /// Manage API tokens of a Convoy registry's data directory.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Show what would be published, in which order, and what the registry
    /// already has.
    Plan(PlanArgs),
    /// Run the preflight checks; exits 1 when any check fails.
    Check(CheckArgs),
}

/// `cargo convoy serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory holding the database and the `.crate` files; created if missing.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub addr: String,
    /// Require a token for every read (index, config.json, downloads).
    #[arg(long)]
    pub auth_required: bool,
    /// URL clients use to reach this server, when it differs from the bound
    /// address (behind a proxy, say).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Largest accepted `.crate` file, in bytes.
    #[arg(long, default_value_t = convoy_registry::Limits::default().max_upload_bytes)]
    pub max_upload_bytes: u64,
    /// Publishes each user may make back to back before being answered 429.
    #[arg(long, value_name = "N", requires = "publish_refill_secs")]
    pub publish_burst: Option<u32>,
    /// Seconds to earn back one publish after a burst.
    #[arg(long, value_name = "SECS", requires = "publish_burst")]
    pub publish_refill_secs: Option<f64>,
    /// Largest accepted unpacked crate, in bytes.
    #[arg(long, default_value_t = convoy_registry::Limits::default().max_unpacked_bytes)]
    pub max_unpacked_bytes: u64,
}

/// `cargo convoy token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it alone on stdout.
    Create(TokenCreateArgs),
}

/// `cargo convoy token create`.
#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// The registry's data directory.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// The token's user; created if it does not exist.
    #[arg(long, value_name = "NAME")]
    pub user: String,
    /// Allowed action; repeat for several. Without it the token may do everything.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<convoy_protocol::scope::EndpointScope>,
    /// Crates the token may act on: a name, or a prefix ending in `*`; repeatable.
    #[arg(long = "crate", value_name = "GLOB")]
    pub crates: Vec<convoy_protocol::scope::CrateGlob>,
    /// Days until the token expires; it never does without this.
    #[arg(long, value_name = "N")]
    pub expires_days: Option<u32>,
    /// A label shown when listing tokens.
    #[arg(long, default_value = "cli")]
    pub name: String,
}

/// Cargo runs `cargo-convoy convoy …` for `cargo convoy …`; drop that second
/// word so both spellings parse the same.
pub fn args_without_cargo_subcommand(
    args: impl IntoIterator<Item = OsString>,
) -> impl Iterator<Item = OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    if args.get(1).is_some_and(|a| a == "convoy") {
        args.remove(1);
    }
    args.into_iter()
}

/// Which packages and which registry: flags shared by `plan` and `check`,
/// named as in `cargo publish`.
#[derive(Debug, Args)]
pub struct ReleaseScopeArgs {
    /// Path to the workspace's `Cargo.toml`.
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// Package to release; repeatable. Default: every publishable member.
    #[arg(short = 'p', long = "package", value_name = "SPEC")]
    pub packages: Vec<String>,
    /// Release every publishable member (the default; accepted for cargo
    /// compatibility).
    #[arg(long)]
    pub workspace: bool,
    /// Leave a package out; repeatable.
    #[arg(long, value_name = "SPEC")]
    pub exclude: Vec<String>,
    /// Registry name from cargo config.
    #[arg(long, value_name = "NAME", conflicts_with = "index")]
    pub registry: Option<String>,
    /// Sparse index URL of the registry (`sparse+https://…/`).
    #[arg(long, value_name = "URL")]
    pub index: Option<String>,
    /// Token for the registry; otherwise cargo config and credentials.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "CONVOY_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Do not read the registry; actions become `unknown`.
    #[arg(long)]
    pub offline: bool,
}

/// Output format of `plan`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PlanFormat {
    /// Cargo-style text.
    Human,
    /// JSON, schema in docs/PLANNING.md.
    Json,
    /// Graphviz dot.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
}

/// Output format of `check`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CheckFormat {
    /// Cargo-style text.
    Human,
    /// JSON, schema in docs/PLANNING.md.
    Json,
}

/// `cargo convoy plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub scope: ReleaseScopeArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: PlanFormat,
    /// Do not package already-published versions to compare checksums.
    #[arg(long)]
    pub no_content_check: bool,
}

/// `cargo convoy check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub scope: ReleaseScopeArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: CheckFormat,
}
