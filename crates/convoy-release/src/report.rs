//! The result of a release: [`ReleaseReport`], the document `--format json`
//! prints, built from each registry's upload report.

use std::path::PathBuf;

use convoy_upload::{CrateOutcome, UploadReport};
use serde::Serialize;

use crate::journal::PreviousRun;
use crate::steps::Prepared;

/// What became of one crate on one registry. Its JSON spelling is the
/// report's (and the CLI's) vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Uploaded by this run, and visible.
    Published,
    /// Already on the registry with the same checksum.
    Skipped,
    /// Its upload failed.
    Failed,
    /// Not attempted, because a crate it depends on failed.
    Blocked,
    /// `--dry-run`: everything but the upload.
    DryRun,
    /// `--atomic`: staged, then discarded with its stage.
    Aborted,
}

impl Outcome {
    /// Whether the crate did not reach the registry, and a rerun should
    /// retry it.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Failed | Self::Blocked | Self::Aborted)
    }

    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Published => "published",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
            Self::Blocked => "blocked",
            Self::DryRun => "dry-run",
            Self::Aborted => "aborted",
        }
    }
}

/// The result document of `--format json`.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseReport {
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// What the previous run recorded, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_run: Option<PreviousRun>,
    /// One entry per registry, in the order given.
    pub registries: Vec<RegistryResult>,
}

impl ReleaseReport {
    /// Whether every crate reached every registry (or would, in a dry run).
    pub fn is_success(&self) -> bool {
        self.registries
            .iter()
            .all(|r| r.crates.iter().all(|c| !c.outcome.is_failure()))
    }
}

/// One registry's part of the report.
#[derive(Debug, Clone, Serialize)]
pub struct RegistryResult {
    /// The registry's name, or its index URL.
    pub registry: String,
    /// Its index URL.
    pub index: String,
    /// One entry per crate, in publish order.
    pub crates: Vec<CrateResult>,
    /// `--atomic`: the id of the release the commit made (`stg_…`), for
    /// `cargo convoy yank --release`. `None` without `--atomic`, on
    /// failure, and when every version was already published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
}

/// One crate on one registry.
#[derive(Debug, Clone, Serialize)]
pub struct CrateResult {
    /// Crate name.
    pub name: String,
    /// Version.
    pub version: String,
    /// What became of it; serialized as `published`, `skipped`, `failed`,
    /// `blocked`, `dry-run` or `aborted`.
    pub outcome: Outcome,
    /// Why it failed or was blocked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// sha256 of the `.crate`.
    pub cksum: String,
    /// The `.crate` that was verified and uploaded.
    pub crate_file: PathBuf,
    /// Convoy's changes to the packaged manifest.
    pub changes: Vec<String>,
    /// `PUT`s sent, retries included.
    pub attempts: u32,
}

pub(crate) fn registry_result(p: &Prepared, report: &UploadReport) -> RegistryResult {
    let crates = p
        .packages
        .iter()
        .map(|pkg| {
            let entry = report.get(&pkg.name);
            let (outcome, reason) = match entry.map(|e| &e.outcome) {
                Some(CrateOutcome::Published) => (Outcome::Published, None),
                Some(CrateOutcome::Skipped) => (Outcome::Skipped, None),
                Some(CrateOutcome::DryRun) => (Outcome::DryRun, None),
                Some(CrateOutcome::Failed { reason }) => (Outcome::Failed, Some(reason.clone())),
                Some(CrateOutcome::Blocked { by }) => (
                    Outcome::Blocked,
                    Some(format!("waits for {}", by.join(", "))),
                ),
                Some(_) | None => (Outcome::Failed, Some("no upload result".to_owned())),
            };
            CrateResult {
                name: pkg.name.clone(),
                version: pkg.version.clone(),
                outcome,
                reason,
                cksum: pkg.cksum.clone(),
                crate_file: pkg.path.clone(),
                changes: pkg.changes.clone(),
                attempts: entry.map(|e| e.attempts).unwrap_or(0),
            }
        })
        .collect();
    RegistryResult {
        registry: p.label.clone(),
        index: p.target.index.clone(),
        crates,
        release: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_keep_their_json_spelling() {
        for o in [
            Outcome::Published,
            Outcome::Skipped,
            Outcome::Failed,
            Outcome::Blocked,
            Outcome::DryRun,
            Outcome::Aborted,
        ] {
            assert_eq!(
                serde_json::to_value(o).unwrap(),
                serde_json::Value::from(o.as_str())
            );
        }
        assert!(Outcome::Aborted.is_failure() && !Outcome::DryRun.is_failure());
    }
}
