//! What a verification run is asked to do, and what it reports.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// How much of a build verification runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VerifyMode {
    /// Nothing: the packages are uploaded unverified (`--verify=none`).
    None,
    /// `cargo check`: type-checks every crate and its dependency graph, the
    /// fastest way to find missing files, features and items.
    #[default]
    Check,
    /// `cargo build`: like cargo's own verify, also runs codegen, so errors
    /// that only appear at link or monomorphization time are caught too.
    Build,
}

/// Options for [`verify`].
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Check, build or nothing.
    pub mode: VerifyMode,
    /// Also run `cargo test` from the packaged sources. Dev-dependencies on
    /// sibling crates may have been stripped by packaging, so tests that
    /// need them fail.
    pub run_tests: bool,
    /// Target directory shared by every package, so third-party
    /// dependencies are built once per run.
    pub target_dir: PathBuf,
    /// Where packages are unpacked, one fresh `<name>-<version>/` each.
    pub work_dir: PathBuf,
    /// `-j`.
    pub jobs: Option<u32>,
    /// `--features`, applied to every package.
    pub features: Vec<String>,
    /// `--all-features`, applied to every package.
    pub all_features: bool,
    /// `--no-default-features`, applied to every package.
    pub no_default_features: bool,
    /// Extra environment for the cargo invocations (a `CARGO_HOME` in
    /// tests, say).
    pub env: Vec<(OsString, OsString)>,
}

impl VerifyOptions {
    /// Check mode with default features, nothing else.
    pub fn new(target_dir: impl Into<PathBuf>, work_dir: impl Into<PathBuf>) -> Self {
        Self {
            mode: VerifyMode::Check,
            run_tests: false,
            target_dir: target_dir.into(),
            work_dir: work_dir.into(),
            jobs: None,
            features: Vec::new(),
            all_features: false,
            no_default_features: false,
            env: Vec::new(),
        }
    }
}

/// Progress, for the CLI's status lines and progress bar.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyEvent {
    /// A package's verification began (`   Verifying foo v1.2.0`).
    Started {
        /// Package name.
        name: String,
        /// Version.
        version: String,
        /// 0-based position in the run.
        index: usize,
        /// Packages in the run.
        total: usize,
    },
    /// Its tests began, when [`VerifyOptions::run_tests`] is set.
    Testing {
        /// Package name.
        name: String,
        /// Version.
        version: String,
    },
    /// It verified.
    Finished {
        /// Package name.
        name: String,
        /// Version.
        version: String,
        /// Wall time for this package.
        duration: Duration,
        /// How it was built.
        strategy: Strategy,
        /// The lock file cargo generated for it: local packages appear with
        /// the target registry as `source` and the checksum of their
        /// `.crate`.
        lockfile: PathBuf,
        /// How many packages the cargo invocation built together (1: on
        /// its own); `duration` is then that invocation's.
        together: usize,
    },
}

/// How a package is built from its `.crate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// As the root of its unpacked copy (`--manifest-path
    /// <work_dir>/<name>-<version>/Cargo.toml`), like cargo's verify. Used
    /// for packages with binaries, with feature options, and when tests
    /// run.
    Unpacked,
    /// As the only dependency of a generated empty crate
    /// (`<work_dir>/<name>-<version>.consumer/`), so cargo fetches the
    /// `.crate` through the overlay and builds it exactly as a downstream
    /// user's build does. Its artifacts are then the ones dependents reuse,
    /// so each library is compiled once per run instead of twice. Used for
    /// libraries; several of them share one consumer when that provably
    /// resolves each the same as alone. A build script's writes into the
    /// sources cargo extracted are looked for afterwards.
    AsDependency,
}

/// The cargo step that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `cargo check`.
    Check,
    /// `cargo build`.
    Build,
    /// `cargo test`.
    Test,
    /// `cargo generate-lockfile`: the lock file shipped in the package,
    /// resolved afresh.
    Lock,
    /// `cargo metadata` over a copy of the workspace's `Cargo.lock`: the
    /// lock file shipped in the package, keeping the workspace's versions
    /// as `cargo package` keeps them.
    Relock,
}

impl Step {
    pub(crate) fn subcommand(self) -> &'static str {
        match self {
            Step::Check => "check",
            Step::Build => "build",
            Step::Test => "test",
            Step::Lock => "generate-lockfile",
            Step::Relock => "metadata",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cargo {}", self.subcommand())
    }
}
