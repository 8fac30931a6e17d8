//! `cargo convoy publish --atomic`: the release goes through a staged
//! release on every registry (`docs/STAGING.md`).
//!
//! Per registry, after packaging: leftover stages of an earlier run are
//! aborted, a stage is created and recorded in `stages.json`, every crate
//! is uploaded into it (the ordinary upload aimed at the staging view), and
//! every crate is verified against the staging view, so the builds use the
//! very bytes that will be published. Only when **every** registry is
//! staged and verified are the stages committed, one registry after
//! another. Any failure before a commit aborts every stage opened so far.
//!
//! No protocol makes two servers commit together: if the commit on a later
//! registry fails, the earlier registries keep their releases, and the
//! report says so; a rerun completes the rest (their versions are skipped).

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use convoy_index_client::RegistryTarget;
use convoy_index_client::describe;
use convoy_protocol::staging::StageState;
use convoy_upload::staging::{NewStage, StagingClient, StagingError};
use convoy_upload::{CrateOutcome, UploadEvent, UploadOptions, UploadReport};

use crate::error::ReleaseError;
use crate::event::ReleaseEvent;
use crate::journal::{JournalEvent, Recorder, now};
use crate::options::PublishOptions;
use crate::report::{Outcome, RegistryResult, registry_result};
use crate::stages::{OpenStage, StageLedger};
use crate::steps::{Prepared, upload_with, verify_for};

/// How long a stage lives after it is created or extended.
const STAGE_TTL: Duration = Duration::from_secs(60 * 60);
/// How often an open stage is extended by [`STAGE_TTL`] while the run goes
/// on, so that a long upload or verification never outlives it.
const EXTEND_EVERY: Duration = Duration::from_secs(10 * 60);

/// The journal writer of [`crate::publish`].
type Record<'a> = &'a Recorder;

/// One registry's open stage, uploaded and verified.
struct Staged<'p> {
    prepared: &'p Prepared,
    client: StagingClient,
    stage: NewStage,
    upload: UploadReport,
    _keepalive: KeepAlive,
}

/// What happened to a registry's stage, for its part of the report.
enum Fate {
    /// Committed as this release.
    Committed(String),
    /// Every version was already published: there was nothing to commit.
    NothingToCommit,
    /// Discarded, for this reason.
    Aborted(String),
    /// The commit was refused or failed, for this reason.
    CommitFailed(String),
}

/// What an atomic release runs with, besides its registries.
pub(crate) struct Context<'a> {
    /// The release's options.
    pub(crate) opts: &'a PublishOptions,
    /// Cargo's target directory.
    pub(crate) target_dir: &'a std::path::Path,
    /// The command's runtime.
    pub(crate) runtime: &'a tokio::runtime::Handle,
}

/// Runs the staged part of an atomic release over `prepared` (packaged and
/// locked, not yet verified). `clients` are the registries' staging
/// clients, in the same order.
pub(crate) fn run(
    prepared: &[Prepared],
    clients: Vec<StagingClient>,
    ledger: &StageLedger,
    cx: &Context<'_>,
    observer: &mut dyn FnMut(ReleaseEvent),
    record: Record<'_>,
) -> Result<Vec<RegistryResult>, ReleaseError> {
    let Context {
        opts,
        target_dir,
        runtime,
    } = *cx;
    let mut staged: Vec<Staged<'_>> = Vec::new();
    for (p, client) in prepared.iter().zip(clients) {
        abort_leftovers(p, &client, ledger, observer, record);

        let stage = match client.create_stage(Some(STAGE_TTL)) {
            Ok(stage) => stage,
            Err(source) => {
                abort_all(&staged, ledger, "the release failed", observer, record);
                return Err(ReleaseError::Staging {
                    registry: p.label.clone(),
                    source: Box::new(source),
                });
            }
        };
        let id = stage.stage.id.clone();
        let entry = OpenStage {
            registry: p.label.clone(),
            index: p.target.index.clone(),
            id: id.clone(),
            opened_at: now(),
        };
        if let Err(source) = ledger.add(entry) {
            // Without the record a crash could not be cleaned up by a
            // rerun, so nothing is uploaded into an unrecorded stage.
            abort_one(
                p,
                &client,
                &id,
                "the release failed",
                ledger,
                observer,
                record,
            );
            abort_all(&staged, ledger, "the release failed", observer, record);
            return Err(ReleaseError::StageLedger {
                path: ledger.path().to_owned(),
                source,
            });
        }
        record.record(
            JournalEvent::StageOpened,
            Some(&p.label),
            None,
            Some(id.clone()),
        );
        observer(ReleaseEvent::StageOpened {
            registry: p.label.clone(),
            id: id.clone(),
            expires_at: stage.stage.expires_at.clone(),
        });
        let keepalive = KeepAlive::start(p.target.clone(), id.clone(), runtime.clone());

        let upload = upload_into(p, &stage, opts, runtime, observer, record);
        let failed = !upload.is_success();
        staged.push(Staged {
            prepared: p,
            client,
            stage,
            upload,
            _keepalive: keepalive,
        });
        if failed {
            let why = format!("an upload into the stage on `{}` failed", p.label);
            abort_all(&staged, ledger, &why, observer, record);
            return Ok(results(prepared, &staged, |i| {
                (i < staged.len()).then(|| Fate::Aborted(why.clone()))
            }));
        }

        if let Some(last) = staged.last()
            && let Err(e) = verify_for(
                &p.packages,
                &p.target,
                &p.label,
                target_dir,
                opts,
                observer,
                Some(&last.stage),
            )
        {
            abort_all(&staged, ledger, "verification failed", observer, record);
            record.failed(Some(&p.label), &e);
            return Err(e);
        }
    }

    // Everything is staged and verified: commit, one registry at a time.
    let mut fates: Vec<Fate> = Vec::new();
    for (i, s) in staged.iter().enumerate() {
        let label = &s.prepared.label;
        let id = &s.stage.stage.id;
        if fates.iter().any(|f| matches!(f, Fate::CommitFailed(_))) {
            let reason = "not committed, because an earlier registry's commit failed; registries before it keep their releases";
            abort_one(s.prepared, &s.client, id, reason, ledger, observer, record);
            fates.push(Fate::Aborted(reason.to_owned()));
            continue;
        }
        let uploaded = s
            .upload
            .crates
            .iter()
            .any(|c| c.outcome == CrateOutcome::Published);
        if !uploaded {
            abort_one(
                s.prepared,
                &s.client,
                id,
                "every version is already published",
                ledger,
                observer,
                record,
            );
            fates.push(Fate::NothingToCommit);
            continue;
        }
        observer(ReleaseEvent::Committing {
            registry: label.clone(),
            id: id.clone(),
        });
        match s.client.commit(id) {
            Ok(release) => {
                let _ = ledger.remove(id);
                record.record(
                    JournalEvent::Committed,
                    Some(label),
                    None,
                    Some(release.id.clone()),
                );
                for c in &release.crates {
                    record.record(
                        JournalEvent::Published,
                        Some(label),
                        Some((&c.name, &c.vers)),
                        None,
                    );
                }
                fates.push(Fate::Committed(release.id.clone()));
                observer(ReleaseEvent::Committed {
                    registry: label.clone(),
                    release,
                });
            }
            Err(e) => {
                let reason = commit_reason(&e, i);
                record.record(
                    JournalEvent::Failed,
                    Some(label),
                    None,
                    Some(reason.clone()),
                );
                abort_one(
                    s.prepared,
                    &s.client,
                    id,
                    "its commit failed",
                    ledger,
                    observer,
                    record,
                );
                fates.push(Fate::CommitFailed(reason));
            }
        }
    }
    let mut fates = fates.into_iter().map(Some).collect::<Vec<_>>();
    Ok(results(prepared, &staged, |i| {
        fates.get_mut(i).and_then(Option::take)
    }))
}

/// A refused commit's message, every detail included.
fn commit_reason(e: &StagingError, index: usize) -> String {
    let mut reason = describe(e);
    if index > 0 {
        reason.push_str("; the registries before this one were committed and keep their release");
    }
    reason
}

/// Aborts the stages an earlier run recorded for this registry and left
/// open (killed, or its abort failed). The stage token is not on disk, so
/// resuming is not possible; the creator's own token may abort.
fn abort_leftovers(
    p: &Prepared,
    client: &StagingClient,
    ledger: &StageLedger,
    observer: &mut dyn FnMut(ReleaseEvent),
    record: Record<'_>,
) {
    for old in ledger.for_index(&p.target.index) {
        match client.stage(&old.id) {
            Ok(stage) if stage.state == StageState::Open => abort_one(
                p,
                client,
                &old.id,
                "an earlier run left it open",
                ledger,
                observer,
                record,
            ),
            // Committed, aborted or expired: nothing left to do. A stage
            // committed by a run killed right after the commit shows up as
            // skipped versions below.
            Ok(_) => {
                let _ = ledger.remove(&old.id);
            }
            // 404 (gone) or 401/403 (not ours): nothing this run can do.
            Err(e) if e.status().is_some_and(|s| (400..500).contains(&s)) => {
                let _ = ledger.remove(&old.id);
            }
            // Unreachable: keep the record for the next run. Versions the
            // old stage holds will be refused with 409, which says why.
            Err(e) => observer(ReleaseEvent::StageAbortFailed {
                registry: p.label.clone(),
                id: old.id.clone(),
                error: describe(&e),
            }),
        }
    }
}

fn abort_one(
    p: &Prepared,
    client: &StagingClient,
    id: &str,
    why: &str,
    ledger: &StageLedger,
    observer: &mut dyn FnMut(ReleaseEvent),
    record: Record<'_>,
) {
    match client.abort(id) {
        Ok(_) => {
            let _ = ledger.remove(id);
            record.record(
                JournalEvent::StageAborted,
                Some(&p.label),
                None,
                Some(why.to_owned()),
            );
            observer(ReleaseEvent::StageAborted {
                registry: p.label.clone(),
                id: id.to_owned(),
                why: why.to_owned(),
            });
        }
        // Already gone (404) or no longer open (409): as good as aborted.
        Err(e) if matches!(e.status(), Some(404 | 409 | 410)) => {
            let _ = ledger.remove(id);
        }
        // The record stays, so the next run aborts it; until then the
        // stage is invisible and expires on its own.
        Err(e) => observer(ReleaseEvent::StageAbortFailed {
            registry: p.label.clone(),
            id: id.to_owned(),
            error: describe(&e),
        }),
    }
}

fn abort_all(
    staged: &[Staged<'_>],
    ledger: &StageLedger,
    why: &str,
    observer: &mut dyn FnMut(ReleaseEvent),
    record: Record<'_>,
) {
    for s in staged {
        abort_one(
            s.prepared,
            &s.client,
            &s.stage.stage.id,
            why,
            ledger,
            observer,
            record,
        );
    }
}

/// The ordinary upload, aimed at the stage's view with the stage token.
fn upload_into(
    p: &Prepared,
    stage: &NewStage,
    opts: &PublishOptions,
    runtime: &tokio::runtime::Handle,
    observer: &mut dyn FnMut(ReleaseEvent),
    record: Record<'_>,
) -> UploadReport {
    let mut target: RegistryTarget = stage.upload_target(&p.target);
    target.name = Some(p.label.clone());
    let upload_opts = UploadOptions {
        jobs: opts.jobs.unwrap_or(4).max(1),
        dry_run: false,
        visibility_timeout: opts.visibility_timeout,
        ..UploadOptions::default()
    };
    let label = p.label.clone();
    let id = stage.stage.id.clone();
    let forward = |event: UploadEvent| {
        record.upload(&label, &event, Some(&id));
        observer(ReleaseEvent::StageUpload {
            registry: label.clone(),
            id: id.clone(),
            event,
        });
    };
    upload_with(runtime, &target, &p.packages, &upload_opts, forward)
}

/// Every registry's part of the report; `fate(i)` says what became of the
/// i-th registry's stage (`None`: never staged).
fn results(
    prepared: &[Prepared],
    staged: &[Staged<'_>],
    mut fate: impl FnMut(usize) -> Option<Fate>,
) -> Vec<RegistryResult> {
    let empty = |p: &Prepared| UploadReport {
        registry: p.label.clone(),
        dry_run: false,
        crates: Vec::new(),
    };
    prepared
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let upload = staged.get(i).map(|s| &s.upload);
            let fallback = empty(p);
            let mut result = registry_result(p, upload.unwrap_or(&fallback));
            let fate = fate(i).unwrap_or_else(|| {
                Fate::Aborted(
                    "not staged, because the release failed on an earlier registry".into(),
                )
            });
            for c in &mut result.crates {
                match &fate {
                    Fate::Committed(_) | Fate::NothingToCommit => {}
                    // Skipped versions were published before this run and
                    // stay so; upload failures keep their own reason.
                    Fate::Aborted(why) => {
                        if c.outcome == Outcome::Published || upload.is_none() {
                            c.outcome = Outcome::Aborted;
                            c.reason = Some(why.clone());
                        }
                    }
                    Fate::CommitFailed(why) => {
                        if c.outcome == Outcome::Published {
                            c.outcome = Outcome::Failed;
                            c.reason = Some(why.clone());
                        }
                    }
                }
            }
            if let Fate::Committed(id) = fate {
                result.release = Some(id);
            }
            result
        })
        .collect()
}

/// Extends a stage every [`EXTEND_EVERY`] until dropped, from a thread of
/// its own with its own client (the ordinary token: the creator may
/// extend), whose requests run on the release's runtime.
/// Best effort: a stage that expires anyway fails its commit clearly.
struct KeepAlive {
    stop: Option<mpsc::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

impl KeepAlive {
    fn start(target: RegistryTarget, id: String, runtime: tokio::runtime::Handle) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("convoy-stage-keepalive".into())
            .spawn(move || {
                let mut client: Option<StagingClient> = None;
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EXTEND_EVERY)
                {
                    if client.is_none() {
                        client = StagingClient::connect(&target, &runtime).ok();
                    }
                    if let Some(c) = &client {
                        let _ = c.extend(&id, STAGE_TTL);
                    }
                }
            })
            .ok();
        Self {
            stop: Some(stop),
            handle,
        }
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
