//! What a release is asked to do: [`PublishOptions`], the one input of
//! [`crate::publish`].

use std::path::PathBuf;
use std::time::Duration;

use convoy_index_client::{ConfigOptions, RegistryRequest};
use convoy_verify::VerifyMode;
use convoy_workspace::Selection;

/// What to release, where, and how.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// `--manifest-path`.
    pub manifest_path: Option<PathBuf>,
    /// `-p` / `--exclude`.
    pub selection: Selection,
    /// One entry per `--registry` (or `--index`); empty means the registry
    /// `cargo publish` would pick.
    pub registries: Vec<RegistryRequest>,
    /// `--verify`.
    pub verify: VerifyMode,
    /// `--verify-tests`: also run each package's tests from its packaged
    /// sources.
    pub verify_tests: bool,
    /// `-j`: parallel uploads (and cargo's jobs when verifying).
    pub jobs: Option<usize>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--allow-dirty`, passed to cargo.
    pub allow_dirty: bool,
    /// How long to wait for each upload to show in the index.
    pub visibility_timeout: Duration,
    /// `--features`, `--all-features`, `--no-default-features`, applied when
    /// verifying.
    pub features: Vec<String>,
    /// `--all-features`.
    pub all_features: bool,
    /// `--no-default-features`.
    pub no_default_features: bool,
    /// `--target-dir`; cargo's default (`target/` or `CARGO_TARGET_DIR`)
    /// otherwise.
    pub target_dir: Option<PathBuf>,
    /// `--locked`: packaging fails if the workspace's `Cargo.lock` would
    /// change, as with `cargo publish --locked`.
    pub locked: bool,
    /// `--atomic`: publish through a staged release on every registry, so
    /// that each registry shows all of the release or none of it
    /// (`docs/STAGING.md`). Registries that do not offer staging are refused
    /// before anything is packaged.
    pub atomic: bool,
    /// `--config` and `--offline`, read with cargo's precedence: the
    /// registries, tokens and network settings of the release.
    pub config: ConfigOptions,
    /// The runtime every network request of the release runs on, and the
    /// verification overlays are served from: the CLI's one runtime. It
    /// must be multi-thread (its workers answer cargo while the release
    /// waits on it), and [`crate::publish`] must not be called from one of
    /// its tasks: the release blocks on it.
    pub runtime: tokio::runtime::Handle,
}
