//! What a release reports while it runs, for the CLI's status lines and
//! progress bars.

use convoy_package::PackagedCrate;
use convoy_plan::Diagnostic;
use convoy_protocol::staging::Release;
use convoy_upload::UploadEvent;
use convoy_verify::VerifyEvent;

use crate::journal::PreviousRun;

/// Progress, for the CLI's status lines and progress bars.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ReleaseEvent {
    /// What the last run recorded, when it did not finish cleanly.
    PreviousRun(PreviousRun),
    /// The release order is known.
    Planned {
        /// Registry label.
        registry: String,
        /// Packages in publish order.
        packages: Vec<(String, String)>,
        /// Number of waves.
        waves: usize,
    },
    /// A check found a warning (errors stop the release and come back as
    /// [`ReleaseError::Checks`]).
    Warning(Diagnostic),
    /// `cargo package` is running.
    Packaging {
        /// Registry label.
        registry: String,
        /// How many crates.
        count: usize,
    },
    /// A crate is packaged.
    Packaged {
        /// Registry label.
        registry: String,
        /// The result, with Convoy's manifest changes.
        krate: Box<PackagedCrate>,
    },
    /// Verification progress.
    Verify {
        /// Registry label.
        registry: String,
        /// What happened.
        event: VerifyEvent,
    },
    /// Upload progress.
    Upload {
        /// Registry label.
        registry: String,
        /// What happened.
        event: UploadEvent,
    },
    /// `--atomic`: a stage is open and recorded in `stages.json`.
    StageOpened {
        /// Registry label.
        registry: String,
        /// `stg_…`.
        id: String,
        /// When it expires unless extended, RFC 3339.
        expires_at: String,
    },
    /// `--atomic`: progress of the upload into a stage. `Published` means
    /// staged: nobody sees it before the commit.
    StageUpload {
        /// Registry label.
        registry: String,
        /// The stage.
        id: String,
        /// What happened.
        event: UploadEvent,
    },
    /// `--atomic`: a stage is being committed.
    Committing {
        /// Registry label.
        registry: String,
        /// The stage.
        id: String,
    },
    /// `--atomic`: a stage is committed; every version of it is published.
    Committed {
        /// Registry label.
        registry: String,
        /// The release, as the registry recorded it.
        release: Release,
    },
    /// `--atomic`: a stage was discarded; nothing of it is visible.
    StageAborted {
        /// Registry label.
        registry: String,
        /// The stage.
        id: String,
        /// Why, as a clause ("an upload into the stage failed").
        why: String,
    },
    /// `--atomic`: a stage could not be aborted. It stays invisible,
    /// expires on its own, and the next `--atomic` run aborts it.
    StageAbortFailed {
        /// Registry label.
        registry: String,
        /// The stage.
        id: String,
        /// What went wrong.
        error: String,
    },
}
