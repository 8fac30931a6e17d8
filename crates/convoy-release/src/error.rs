//! Why a release stopped: [`ReleaseError`], one variant per step.

use std::path::PathBuf;

use convoy_index_client::ResolveError;
use convoy_package::PackageError;
use convoy_plan::Diagnostic;
use convoy_upload::staging::StagingError;
use convoy_verify::VerifyError;
use convoy_workspace::{LoadError, OrderError, SelectError};

/// Why a release stopped before or during its work. Per-crate upload
/// failures are not errors here: they are in the [`ReleaseReport`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// The workspace could not be read.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// `-p`/`--exclude` named something wrong.
    #[error(transparent)]
    Select(#[from] SelectError),
    /// Normal or build dependencies form a cycle.
    #[error(transparent)]
    Order(#[from] OrderError),
    /// A `--registry` could not be resolved.
    #[error(transparent)]
    Registry(#[from] ResolveError),
    /// The preflight checks found errors.
    #[error("{} preflight check(s) failed, nothing was uploaded", .0.len())]
    Checks(Vec<Diagnostic>),
    /// Packaging failed.
    #[error("packaging for `{registry}` failed, nothing was uploaded")]
    Package {
        /// Registry label.
        registry: String,
        /// The cause.
        #[source]
        source: PackageError,
    },
    /// A crate did not verify.
    #[error("verification for `{registry}` failed, nothing was uploaded")]
    Verify {
        /// Registry label.
        registry: String,
        /// The cause, naming the crate.
        #[source]
        source: Box<VerifyError>,
    },
    /// A package's `Cargo.lock` could not be resolved against the target.
    #[error("resolving lock files for `{registry}` failed, nothing was uploaded")]
    Lock {
        /// Registry label.
        registry: String,
        /// The cause, naming the crate.
        #[source]
        source: Box<VerifyError>,
    },
    /// The overlay registry for packaging or verification could not start.
    #[error("could not start the verification overlay for `{registry}`")]
    Overlay {
        /// Registry label.
        registry: String,
        /// The cause.
        #[source]
        source: Box<VerifyError>,
    },
    /// `--offline` without `--dry-run`: uploads need the network.
    #[error("`--offline` can only be used with `--dry-run`: uploading needs the network")]
    OfflineUpload,
    /// Nothing to do: every member is `publish = false` or excluded.
    #[error("no packages selected to publish")]
    NothingSelected,
    /// `--atomic` on a registry whose `config.json` has no `convoy-staging`.
    #[error(
        "registry `{registry}` does not offer staged releases (no `convoy-staging` in its config.json); publish without `--atomic`"
    )]
    StagingUnavailable {
        /// Registry label.
        registry: String,
    },
    /// A staging request failed before any commit; every stage opened so
    /// far was aborted.
    #[error(
        "staged release on `{registry}` failed, every stage was aborted and nothing was published"
    )]
    Staging {
        /// Registry label.
        registry: String,
        /// The cause.
        #[source]
        source: Box<StagingError>,
    },
    /// The open stage could not be recorded in `stages.json`, so a crash
    /// could not be cleaned up; the stage was aborted before any upload.
    #[error("failed to record the open stage in `{}`, nothing was published", path.display())]
    StageLedger {
        /// `target/convoy/stages.json`.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A crate did not verify against the staging view; every stage was
    /// aborted.
    #[error(
        "verification against the staged release on `{registry}` failed, every stage was aborted and nothing was published"
    )]
    StagedVerify {
        /// Registry label.
        registry: String,
        /// The cause, naming the crate.
        #[source]
        source: Box<VerifyError>,
    },
}
