//! The command-line surface. Flags follow cargo's names wherever cargo has one.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use convoy_protocol::limits::IndexLimits;
use convoy_registry::ConnectionLimits;

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
    /// Manage API tokens of a Convoy registry (no server needs to run).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Copy an embedded registry (`--data DIR`) into PostgreSQL and blob storage.
    Migrate(MigrateArgs),
    /// Show what would be published, in which order, and what the registry
    /// already has.
    Plan(PlanArgs),
    /// Run the preflight checks; exits 1 when any check fails.
    Check(CheckArgs),
    /// Package, verify together, then upload every crate as the graph allows.
    Publish(PublishArgs),
    /// Yank (or restore) every crate of a release made by `publish --atomic`.
    Yank(YankArgs),
    /// Show which members differ from the registry's copy.
    Changed(ChangedArgs),
    /// Bump versions, carry them through the dependency graph, and write
    /// changelogs.
    Version(VersionArgs),
}

/// Where a registry keeps its state: a data directory (the default,
/// embedded backend), or a PostgreSQL database plus blob storage shared by
/// scale-out nodes (docs/DEPLOY.md).
#[derive(Debug, Args)]
pub struct StateArgs {
    /// Directory holding the SQLite database and the `.crate` files; created if missing.
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "database",
        conflicts_with = "database"
    )]
    pub data: Option<PathBuf>,
    /// PostgreSQL database shared by every node: `postgres://USER[:PASS]@HOST:PORT/DB`.
    #[arg(
        long,
        value_name = "URL",
        env = "CONVOY_DATABASE_URL",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// Where `--database` keeps `.crate` files: `s3://BUCKET[/PREFIX]` (configured by
    /// the AWS_* variables) or `file:///DIR`.
    #[arg(long, value_name = "URL", env = "CONVOY_STORAGE_URL")]
    pub storage: Option<String>,
}

impl StateArgs {
    /// The backend these flags select.
    pub fn backend(&self) -> Result<convoy_store::Backend, convoy_store::BackendError> {
        convoy_store::Backend::from_urls(
            self.data.as_deref().unwrap_or(std::path::Path::new(".")),
            self.database.as_deref(),
            self.storage.as_deref(),
        )
    }

    /// The metadata store alone (token commands need no blob storage).
    pub async fn metadata(
        &self,
    ) -> Result<std::sync::Arc<dyn convoy_store::Store>, convoy_store::BackendError> {
        convoy_store::backend::open_metadata(
            self.data.as_deref().unwrap_or(std::path::Path::new(".")),
            self.database.as_deref(),
        )
        .await
    }
}

/// `cargo convoy serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub state: StateArgs,
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
    /// Turn off the companion extension (docs/SUBLIBRARIES.md): companions
    /// are then ordinary crates, as on crates.io.
    #[arg(long)]
    pub no_companions: bool,
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
    /// Answer downloads from S3 with a 302 to a presigned URL valid this many seconds,
    /// instead of streaming them through the server.
    #[arg(long, value_name = "SECS")]
    pub s3_redirect_secs: Option<u64>,
    /// Memory for hot `.crate` files served without touching disk or bucket, in bytes;
    /// 0 turns it off.
    #[arg(long, value_name = "BYTES", default_value_t = convoy_store::cache::DEFAULT_CACHE_BYTES)]
    pub blob_cache_bytes: usize,
    /// Longest path inside a `.crate` (GNU long names and PAX paths too), in bytes.
    #[arg(long, default_value_t = convoy_registry::Limits::default().max_path_bytes)]
    pub max_path_bytes: u64,
    /// Largest PAX extended header of one `.crate` entry, in bytes.
    #[arg(long, default_value_t = convoy_registry::Limits::default().max_pax_bytes)]
    pub max_pax_bytes: u64,
    /// Most features one version may declare.
    #[arg(long, default_value_t = IndexLimits::DEFAULT.max_features)]
    pub max_features: usize,
    /// Most values one feature may list.
    #[arg(long, default_value_t = IndexLimits::DEFAULT.max_feature_values)]
    pub max_feature_values: usize,
    /// Most dependencies one version may declare.
    #[arg(long, default_value_t = IndexLimits::DEFAULT.max_dependencies)]
    pub max_dependencies: usize,
    /// Largest index line one version may add, in bytes.
    #[arg(long, default_value_t = IndexLimits::DEFAULT.max_line_bytes)]
    pub max_index_line_bytes: usize,
    /// Seconds a connection may take to send a complete request head.
    #[arg(long, value_name = "SECS", default_value_t = ConnectionLimits::DEFAULT.header_timeout.as_secs())]
    pub header_timeout_secs: u64,
    /// Seconds a request body may pause between two chunks.
    #[arg(long, value_name = "SECS", default_value_t = ConnectionLimits::DEFAULT.body_timeout.as_secs())]
    pub body_timeout_secs: u64,
    /// Seconds a request may take from its head to its response.
    #[arg(long, value_name = "SECS", default_value_t = ConnectionLimits::DEFAULT.request_timeout.as_secs())]
    pub request_timeout_secs: u64,
    /// Seconds a connection may sit with no request and no traffic.
    #[arg(long, value_name = "SECS", default_value_t = ConnectionLimits::DEFAULT.idle_timeout.as_secs())]
    pub idle_timeout_secs: u64,
    /// Most connections served at once; more wait to be accepted.
    #[arg(long, value_name = "N", default_value_t = ConnectionLimits::DEFAULT.max_connections)]
    pub max_connections: usize,
    /// Seconds between sweeps of orphan `.crate` files; 0 never sweeps. Default: 3600 with
    /// `--data`; never with `--database`, where several nodes share the blobs (give it only
    /// when one node writes them).
    #[arg(long, value_name = "SECS")]
    pub sweep_interval_secs: Option<u64>,
    /// Seconds an unreferenced `.crate` file must have existed before a sweep deletes it.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub sweep_grace_secs: u64,
    /// What the web UI's install snippets name this registry in cargo's
    /// config (`cargo add --registry NAME`).
    #[arg(long, value_name = "NAME", default_value = convoy_registry::DEFAULT_REGISTRY_NAME)]
    pub registry_name: String,
}

/// `cargo convoy token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it alone on stdout.
    Create(TokenCreateArgs),
    /// List a user's tokens (never their secrets).
    List(TokenListArgs),
    /// Revoke one token of a user, or all of them; stage tokens opened with
    /// a revoked token stop working too.
    Revoke(TokenRevokeArgs),
}

/// Output of `cargo convoy token list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenListFormat {
    /// One token a line.
    Human,
    /// crates.io's `{"api_tokens":[…]}`.
    Json,
}

/// `cargo convoy token list`.
#[derive(Debug, Args)]
pub struct TokenListArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// Whose tokens.
    #[arg(long, value_name = "NAME")]
    pub user: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: TokenListFormat,
}

/// `cargo convoy token revoke`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["id", "all"])))]
pub struct TokenRevokeArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// Whose tokens.
    #[arg(long, value_name = "NAME")]
    pub user: String,
    /// The token to revoke, as `token list` shows it.
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Revoke every token of the user.
    #[arg(long)]
    pub all: bool,
}

/// `cargo convoy token create`.
#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    #[command(flatten)]
    pub state: StateArgs,
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
    #[arg(long, value_name = "N", conflicts_with = "expires_secs")]
    pub expires_days: Option<u32>,
    /// Seconds until the token expires, for short-lived tokens.
    #[arg(long, value_name = "N")]
    pub expires_secs: Option<u64>,
    /// A label shown when listing tokens.
    #[arg(long, default_value = "cli")]
    pub name: String,
}

/// `cargo convoy migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The embedded registry's data directory (read only; a server may keep running on it).
    #[arg(long, value_name = "DIR")]
    pub from_data: PathBuf,
    /// The PostgreSQL database to fill: `postgres://USER[:PASS]@HOST:PORT/DB`.
    #[arg(
        long,
        value_name = "URL",
        env = "CONVOY_DATABASE_URL",
        hide_env_values = true
    )]
    pub database: String,
    /// Where to put the `.crate` files: `s3://BUCKET[/PREFIX]` or `file:///DIR`.
    #[arg(long, value_name = "URL", env = "CONVOY_STORAGE_URL")]
    pub storage: String,
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

/// Which packages: the selection flags of `cargo publish`, shared by
/// `plan`, `check` and `publish`.
#[derive(Debug, Args)]
pub struct PackageArgs {
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
}

impl PackageArgs {
    /// The library's view of `-p`/`--exclude`.
    pub fn selection(&self) -> convoy_workspace::Selection {
        convoy_workspace::Selection {
            packages: self.packages.clone(),
            exclude: self.exclude.clone(),
        }
    }
}

/// Which registry: `--registry`, `--index` and `--token`, as cargo names
/// them; shared by `plan`, `check` and `yank`.
#[derive(Debug, Args)]
pub struct RegistryArgs {
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
}

impl RegistryArgs {
    /// The library's view of these flags.
    pub fn request(self) -> convoy_index_client::RegistryRequest {
        convoy_index_client::RegistryRequest {
            registry: self.registry,
            index: self.index,
            token: self.token,
        }
    }
}

/// Cargo's configuration flags, as cargo names them; shared by every
/// command that reads a registry or runs cargo.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Override a cargo configuration value (`KEY=VALUE` in TOML syntax, or
    /// the path of an extra config file), as `cargo --config` does; passed
    /// on to every cargo Convoy runs.
    #[arg(long = "config", value_name = "KEY=VALUE|PATH")]
    pub config: Vec<String>,
    /// Run without accessing the network, from cargo's cache, as `cargo
    /// --offline` does.
    #[arg(long)]
    pub offline: bool,
}

impl ConfigArgs {
    /// Reads cargo's configuration in the current directory with these
    /// flags, and makes every cargo Convoy runs get them too.
    pub fn apply(&self) -> anyhow::Result<convoy_index_client::ConfigOptions> {
        use anyhow::Context;
        let options = convoy_index_client::ConfigOptions {
            cli: self.config.clone(),
            offline: self.offline,
            ..convoy_index_client::ConfigOptions::default()
        };
        let cwd = std::env::current_dir().context("failed to read the current directory")?;
        let config = convoy_index_client::CargoConfig::load(&cwd, &options)?;
        convoy_workspace::process::set_cargo_defaults(
            config.cli_config().to_vec(),
            config.offline(),
        );
        Ok(convoy_index_client::ConfigOptions {
            cli: config.cli_config().to_vec(),
            ..options
        })
    }
}

/// Which packages and which registry: flags shared by `plan` and `check`,
/// named as in `cargo publish`.
#[derive(Debug, Args)]
pub struct ReleaseScopeArgs {
    #[command(flatten)]
    pub packages: PackageArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// `--config`, and `--offline`: do not read the registry; actions
    /// become `unknown`.
    #[command(flatten)]
    pub cargo: ConfigArgs,
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

/// What `--verify` runs on each packaged crate.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum VerifyArg {
    /// `cargo check`: type-checks against the overlay (fast).
    Check,
    /// `cargo build`: as `cargo publish` does.
    Build,
    /// Skip verification.
    None,
}

/// Output format of `publish`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PublishFormat {
    /// Cargo-style status lines on stderr.
    Human,
    /// A JSON result document on stdout (status lines still on stderr).
    Json,
}

/// `cargo convoy publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    #[command(flatten)]
    pub packages: PackageArgs,
    /// Registry name from cargo config; repeat to publish the same release
    /// to several registries.
    #[arg(long = "registry", value_name = "NAME", conflicts_with = "index")]
    pub registries: Vec<String>,
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
    /// Do everything but the uploads.
    #[arg(long)]
    pub dry_run: bool,
    /// How to verify each packaged crate before anything is uploaded.
    #[arg(long, value_enum, default_value = "check")]
    pub verify: VerifyArg,
    /// Also run each package's tests from its packaged sources.
    #[arg(long)]
    pub verify_tests: bool,
    /// Parallel uploads (and cargo jobs while verifying).
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Allow packaging with uncommitted changes, as `cargo package` does.
    #[arg(long)]
    pub allow_dirty: bool,
    /// Fail if the workspace's `Cargo.lock` would change.
    #[arg(long)]
    pub locked: bool,
    /// Seconds to wait for each upload to appear in the index.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub timeout: u64,
    /// Features to verify with (space or comma separated; repeatable).
    #[arg(short = 'F', long, value_name = "FEATURES")]
    pub features: Vec<String>,
    /// Verify with every feature.
    #[arg(long)]
    pub all_features: bool,
    /// Verify without default features.
    #[arg(long)]
    pub no_default_features: bool,
    /// Cargo's target directory; packages go to `<DIR>/convoy/`.
    #[arg(long, value_name = "DIR")]
    pub target_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, alias = "message-format", value_enum, default_value = "human")]
    pub format: PublishFormat,
    /// Publish through a staged release, so that each registry shows all of
    /// the release or none of it; needs a registry that offers staging.
    #[arg(long)]
    pub atomic: bool,
    /// `--config` and `--offline` (only with `--dry-run`).
    #[command(flatten)]
    pub cargo: ConfigArgs,
    #[command(flatten)]
    pub tags: TagArgs,
}

/// `publish --tag`: git tags for what every registry confirmed.
#[derive(Debug, Args)]
pub struct TagArgs {
    /// After the run, create an annotated git tag for every crate version
    /// that every registry of the run confirmed (published, or skipped as
    /// identical).
    #[arg(long)]
    pub tag: bool,
    /// The tag name; `{name}` and `{version}` are replaced. Default:
    /// `[workspace.metadata.convoy] tag-format`, else `{name}-v{version}`.
    #[arg(long, value_name = "FORMAT", requires = "tag")]
    pub tag_format: Option<String>,
    /// Push the tags to `origin`.
    #[arg(long, requires = "tag")]
    pub push: bool,
}

/// Output format of `changed` and `version`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum WorkflowFormat {
    /// Cargo-style status lines on stderr.
    Human,
    /// A JSON document on stdout, schema in docs/RELEASING.md.
    Json,
}

/// `cargo convoy changed`.
#[derive(Debug, Args)]
pub struct ChangedArgs {
    #[command(flatten)]
    pub packages: PackageArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: WorkflowFormat,
}

/// `cargo convoy version`.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// `patch`, `minor`, `major`, an exact version such as `1.2.3`, or
    /// `auto` (from conventional commits, and cargo-semver-checks when
    /// installed).
    #[arg(value_name = "BUMP")]
    pub bump: convoy_workflow::BumpSpec,
    #[command(flatten)]
    pub packages: PackageArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Make pre-releases: `-ID.1`, or the next number of an `ID` series.
    #[arg(long, value_name = "ID")]
    pub pre: Option<String>,
    /// Show what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: WorkflowFormat,
}

/// `cargo convoy yank --release ID`.
#[derive(Debug, Args)]
pub struct YankArgs {
    /// The release to yank, as `publish --atomic` printed it (`stg_…`).
    #[arg(long, value_name = "ID")]
    pub release: String,
    /// Restore the release's versions instead.
    #[arg(long)]
    pub undo: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// `--config` (and `--offline`, which a yank cannot honour).
    #[command(flatten)]
    pub cargo: ConfigArgs,
}
