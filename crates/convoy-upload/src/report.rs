//! What happened, as events while it happens and as a report at the end.

use std::time::Duration;

use serde::Serialize;

/// Progress of the run, for the CLI's status lines and progress bar. The
/// library never prints; the observer decides.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UploadEvent {
    /// A `PUT` is being sent (`attempt` counts from 1).
    Uploading {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
        /// Which attempt this is.
        attempt: u32,
    },
    /// The registry accepted the upload.
    Uploaded {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
        /// Warnings the registry sent back (unknown categories and such).
        warnings: Vec<String>,
    },
    /// Polling the index until the version shows up.
    Waiting {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
    },
    /// Visible in the index: dependents may go.
    Published {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
    },
    /// Already on the registry with identical content.
    Skipped {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
    },
    /// Dry run: this crate would be uploaded.
    DryRun {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
    },
    /// Held back by client-side pacing.
    Paced {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
        /// How long.
        wait: Duration,
    },
    /// A transient failure or a 429; the upload is tried again after `after`.
    Retrying {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
        /// What went wrong, for the user.
        reason: String,
        /// The wait before the next attempt.
        after: Duration,
    },
    /// This crate failed for good.
    Failed {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
        /// Why, with its causes.
        reason: String,
    },
    /// Not uploaded because a local dependency failed.
    Blocked {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
        /// The failed crates it (transitively) depends on.
        by: Vec<String>,
    },
}

/// The end state of one crate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum CrateOutcome {
    /// Uploaded by this run and visible in the index.
    Published,
    /// Already on the registry with identical content.
    Skipped,
    /// Not (fully) published.
    Failed {
        /// Why, with its causes.
        reason: String,
    },
    /// Not attempted because local dependencies failed.
    Blocked {
        /// The failed crates at the root of it, sorted.
        by: Vec<String>,
    },
    /// Dry run: would have been uploaded.
    DryRun,
}

impl CrateOutcome {
    /// Whether the registry has (or, in a dry run, would have) this version.
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Published | Self::Skipped | Self::DryRun)
    }
}

/// One crate's line in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrateReport {
    /// Crate name.
    pub name: String,
    /// Version.
    pub version: String,
    /// sha256 of the local `.crate`.
    pub cksum: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: CrateOutcome,
    /// `PUT`s sent for it, retries included.
    pub attempts: u32,
    /// Warnings the registry returned on upload.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The result of one run against one registry, in input order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadReport {
    /// The registry's label (its name, or its index URL).
    pub registry: String,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// One entry per input crate, in input order.
    pub crates: Vec<CrateReport>,
}

impl UploadReport {
    /// Whether every crate ended published, skipped or (dry run) would be
    /// uploaded.
    pub fn is_success(&self) -> bool {
        self.crates.iter().all(|c| c.outcome.is_success())
    }

    /// The entry for `name`.
    pub fn get(&self, name: &str) -> Option<&CrateReport> {
        self.crates.iter().find(|c| c.name == name)
    }
}
