//! The release engine behind `cargo convoy publish`.
//!
//! One call runs the whole pipeline, each step visible through
//! [`ReleaseEvent`]s:
//!
//! 1. **plan**: load the workspace, select and order it (`convoy-workspace`);
//! 2. **check**: the preflight checks (`convoy-plan`); errors stop here;
//! 3. **package**: the user's cargo packages every crate, and Convoy points
//!    sibling references at each target registry (`convoy-package`). The
//!    file checks of step 2 read cargo's `.crate`s, so they run between
//!    cargo's packaging and Convoy's edits;
//! 4. **verify**: every crate builds from its packaged bytes against an
//!    overlay of the local packages over the target registry
//!    (`convoy-verify`). Nothing is uploaded unless every crate of every
//!    registry verifies;
//! 5. **upload**: concurrently as the graph allows, waiting for index
//!    visibility, with retries, pacing and skip-if-identical
//!    (`convoy-upload`), one registry after another so a failure on one
//!    cannot touch the next.
//!
//! With `--atomic` ([`PublishOptions::atomic`]), steps 4 and 5 swap: every
//! registry gets a staged release (`docs/STAGING.md`), the crates are
//! uploaded into it, verified against the staged bytes, and only then is
//! each stage committed, so each registry shows all of the release or none
//! of it. Open stages are recorded in `target/convoy/stages.json`
//! ([`StageLedger`]) so that a rerun after a crash aborts them.
//!
//! Resuming needs no state: a rerun packages the same bytes, finds the
//! versions already published with identical checksums, and skips them. The
//! [`Journal`] records each run so the rerun can say what happened before.

mod atomic;
mod checksums;
mod error;
mod event;
mod journal;
mod options;
mod publish;
mod report;
mod reuse;
mod stages;
mod steps;

pub use checksums::EngineChecksums;
pub use error::ReleaseError;
pub use event::ReleaseEvent;
pub use journal::{Journal, JournalEntry, JournalEvent, PreviousRun};
pub use options::PublishOptions;
pub use publish::publish;
pub use report::{CrateResult, Outcome, RegistryResult, ReleaseReport};
pub use stages::{OpenStage, StageLedger};
