//! The upload stage of `cargo convoy publish`: packaged crates go to one
//! registry, concurrently, as their local dependency graph allows.
//!
//! [`upload`] (or [`upload_on`], for a synchronous caller such as the CLI,
//! on the caller's runtime) takes the
//! [`PackagedCrate`]s of a release and, for each:
//!
//! - reads its index file first, so a rerun after any failure resumes: the
//!   same version with the same cksum is [`CrateOutcome::Skipped`], with a
//!   different cksum it is an error and nothing is sent;
//! - uploads it (`PUT /api/v1/crates/new`, cargo's framing, the raw token)
//!   as soon as every local dependency in the job is **visible in the
//!   index**, not merely uploaded, with at most [`UploadOptions::jobs`]
//!   uploads in flight and no wave barriers;
//! - honours 429 `Retry-After`, retries 5xx, resets and timeouts with
//!   exponential backoff and jitter, and never retries any other 4xx. A
//!   failure that may hide a success is checked against the index before
//!   the next attempt, so a version is never sent twice;
//! - paces itself to crates.io's published limits when the target is
//!   crates.io ([`Pacing`]), so a large release waits instead of failing;
//! - waits for the version to appear in the index (polling without caches)
//!   before releasing its dependents.
//!
//! A failed crate blocks its dependents ([`CrateOutcome::Blocked`]); the
//! others go on. Progress is reported through an observer callback
//! ([`UploadEvent`]); the library never prints, and never prints a token.
//! The [`UploadReport`] serializes to the CLI's `--format json` document.
//!
//! [`staging`] is the client of Convoy's staged-release extension
//! (`docs/STAGING.md`): uploading into a stage is this same upload, aimed
//! at the stage's view of the index with the stage token.
//!
//! ```no_run
//! # fn demo(
//! #     runtime: &tokio::runtime::Handle,
//! #     target: &convoy_index_client::RegistryTarget,
//! #     crates: &[convoy_package::PackagedCrate],
//! # ) {
//! use convoy_upload::{UploadOptions, upload_on};
//!
//! let opts = UploadOptions { jobs: 8, ..UploadOptions::default() };
//! let report = upload_on(runtime, target, crates, &opts, |event| {
//!     // Feed the progress bar.
//!     let _ = event;
//! });
//! assert!(report.is_success());
//! # }
//! ```

mod client;
mod error;
mod options;
mod pacing;
mod report;
mod retry;
mod schedule;
pub mod staging;

use convoy_index_client::RegistryTarget;
use convoy_package::PackagedCrate;

pub use error::{UploadError, describe};
pub use options::{Pacing, UploadOptions};
pub use pacing::{Clock, PaceKind, PaceLimit, PaceLimits, Pacer, SystemClock};
pub use report::{CrateOutcome, CrateReport, UploadEvent, UploadReport};

/// Uploads `crates` to `target`; see the crate documentation for the
/// rules. Never fails as a whole: a problem reaching the registry is
/// reported as the failure of every crate, so the CLI has one document to
/// write either way.
///
/// Must run inside a tokio runtime with the time and I/O drivers enabled.
pub async fn upload(
    target: &RegistryTarget,
    crates: &[PackagedCrate],
    opts: &UploadOptions,
    observer: &(dyn Fn(UploadEvent) + Send + Sync),
) -> UploadReport {
    schedule::run(target, crates, opts, observer).await
}

/// [`upload`] from a synchronous caller, on the caller's `runtime` (the
/// CLI's one runtime). `observer` runs on the calling thread, so it may
/// borrow the caller's state: events travel through a channel drained next
/// to the upload, in the same `block_on`. Must not be called from inside
/// that runtime's tasks.
pub fn upload_on(
    runtime: &tokio::runtime::Handle,
    target: &RegistryTarget,
    crates: &[PackagedCrate],
    opts: &UploadOptions,
    mut observer: impl FnMut(UploadEvent),
) -> UploadReport {
    runtime.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<UploadEvent>();
        let run = async move {
            let send = move |event: UploadEvent| {
                let _ = tx.send(event);
            };
            // `send` (and with it the sender) is dropped when the upload
            // ends, which ends the drain below.
            upload(target, crates, opts, &send).await
        };
        let drain = async {
            while let Some(event) = rx.recv().await {
                observer(event);
            }
        };
        let (report, ()) = tokio::join!(run, drain);
        report
    })
}
