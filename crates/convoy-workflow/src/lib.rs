//! The release workflow around `cargo convoy publish`: the steps before it
//! and after it that maintainers otherwise do by hand or with a second tool.
//!
//! - [`changed`]: each publishable member's would-be package (Convoy's own
//!   packaging, as `publish` makes it) against the registry's copy, through
//!   [`convoy_package::content_differences`], so the commit id, the lock file
//!   and Convoy's manifest changes do not count as edits.
//! - [`version`]: bumps through the dependency graph with `toml_edit`
//!   (member path dependencies, `[workspace.dependencies]`, renamed,
//!   target-specific and build dependencies, `=` pins, a shared
//!   `[workspace.package].version`), then `Cargo.lock` through the user's
//!   cargo, then keep-a-changelog sections from conventional commits.
//! - [`tag_released`]: annotated tags for what the registries confirmed,
//!   never for what failed.
//!
//! Git is the git CLI and cargo is the user's cargo, both through
//! [`convoy_workspace::process::Cmd`]. The keys of
//! `[workspace.metadata.convoy]` are in [`WorkflowConfig`];
//! `docs/RELEASING.md` describes the whole workflow.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod bump;
mod changed;
pub mod changelog;
mod config;
pub mod conventional;
mod git;
mod semver_checks;
mod tag;
mod version;

use std::path::PathBuf;

use convoy_workspace::process::ProcessError;

pub use bump::{BumpSpec, Level, bump, dependent_bump, updated_requirement, validate_pre_id};
pub use changed::{ChangeReason, ChangedOptions, ChangedPackage, ChangedReport, changed};
pub use config::{
    DEFAULT_CHANGELOG, DEFAULT_TAG_FORMAT, DependentBump, WorkflowConfig, tag_name, tag_version,
    validate_tag_format,
};
pub use git::Git;
pub use semver_checks::SemverChecks;
pub use tag::{TagOptions, TagReport, check_tagging, tag_released};
pub use version::{Bumped, RequirementChange, VersionOptions, VersionReport, Why, version};

/// Why a workflow step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkflowError {
    /// The workspace could not be read.
    #[error(transparent)]
    Load(#[from] convoy_workspace::LoadError),
    /// `-p` / `--exclude` named something wrong.
    #[error(transparent)]
    Select(#[from] convoy_workspace::SelectError),
    /// The registry could not be determined.
    #[error(transparent)]
    Registry(#[from] convoy_index_client::ResolveError),
    /// The registry could not be read.
    #[error("failed to read `{name}` from the registry")]
    Index {
        /// The crate being read.
        name: String,
        /// The cause.
        #[source]
        source: convoy_index_client::IndexError,
    },
    /// Convoy's packaging failed.
    #[error(transparent)]
    Package(#[from] convoy_package::PackageError),
    /// A package could not be compared with the registry's copy.
    #[error("failed to compare `{name}` with the registry's copy")]
    Compare {
        /// The crate.
        name: String,
        /// The cause.
        #[source]
        source: convoy_package::CompareError,
    },
    /// A git command failed.
    #[error("git failed")]
    Git(#[source] ProcessError),
    /// The workspace is not in a git work tree, and the step needs one.
    #[error("`{}` is not in a git repository; {why}", dir.display())]
    NotARepository {
        /// The workspace root.
        dir: PathBuf,
        /// What needed git.
        why: &'static str,
    },
    /// A cargo command failed.
    #[error("failed to {action}")]
    Cargo {
        /// What was being done.
        action: &'static str,
        /// The cause.
        #[source]
        source: ProcessError,
    },
    /// `cargo semver-checks` failed in a way that says nothing about the
    /// API; guessing "compatible" would hide a break.
    #[error("cargo-semver-checks failed for `{name}`: {reason}")]
    SemverChecks {
        /// The crate.
        name: String,
        /// What it printed.
        reason: String,
    },
    /// A manifest could not be parsed or edited.
    #[error("failed to edit `{}`: {reason}", path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("failed to {action} `{}`", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `[workspace.metadata.convoy]` or a flag has a wrong value.
    #[error("{reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// The requested version is not possible.
    #[error("cannot bump `{name}`: {reason}")]
    Version {
        /// The crate.
        name: String,
        /// Why.
        reason: String,
    },
}

pub(crate) fn io_error<'p>(
    action: &'static str,
    path: &'p std::path::Path,
) -> impl FnOnce(std::io::Error) -> WorkflowError + 'p {
    move |source| WorkflowError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Where the workflow packages and unpacks: `<target>/convoy/<what>`, next
/// to the release engine's own directories.
pub(crate) fn work_dir(ws: &convoy_workspace::Workspace, what: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.root.join("target"))
        .join("convoy")
        .join(what)
}
