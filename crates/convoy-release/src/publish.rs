//! `cargo convoy publish`, as one library call.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use convoy_index_client::{RegistryRequest, RegistryTarget, ResolveError};
use convoy_package::{PackageError, PackageOptions, PackagedCrate, TargetRegistry};
use convoy_plan::{Diagnostic, Severity};
use convoy_upload::{CrateOutcome, UploadEvent, UploadOptions, UploadReport};
use convoy_verify::{Overlay, Upstream, VerifyError, VerifyEvent, VerifyMode, VerifyOptions};
use convoy_workspace::{LoadError, OrderError, PublishOrder, SelectError, Selection};
use serde::Serialize;

use convoy_protocol::staging::Release;
use convoy_upload::staging::{StagingClient, StagingError};

use crate::journal::{Journal, PreviousRun};
use crate::stages::StageLedger;

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
}

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
    #[error("{} preflight check(s) failed, nothing was packaged or uploaded", .0.len())]
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
        self.registries.iter().all(|r| {
            r.crates
                .iter()
                .all(|c| !matches!(c.outcome, "failed" | "blocked" | "aborted"))
        })
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
    /// `published`, `skipped`, `failed`, `blocked`, `dry-run`, or with
    /// `--atomic`, `aborted` (staged, then discarded with its stage).
    pub outcome: &'static str,
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

pub(crate) struct Prepared {
    pub(crate) target: RegistryTarget,
    pub(crate) label: String,
    pub(crate) packages: Vec<PackagedCrate>,
}

/// Runs the whole release. Per-crate failures are in the report; an `Err`
/// means the release stopped before uploading anything (or could not
/// start).
pub fn publish(
    opts: &PublishOptions,
    observer: &mut dyn FnMut(ReleaseEvent),
) -> Result<ReleaseReport, ReleaseError> {
    let ws = convoy_workspace::load(opts.manifest_path.as_deref())?;
    let selected = convoy_workspace::select(&ws, &opts.selection)?;
    if selected.is_empty() {
        return Err(ReleaseError::NothingSelected);
    }
    let order = PublishOrder::new(&selected)?;
    let members: Vec<&convoy_workspace::Member> = order
        .packages
        .iter()
        .filter_map(|o| selected.iter().copied().find(|m| m.name == o.name))
        .collect();
    let target_dir = opts
        .target_dir
        .clone()
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| ws.root.join("target"));
    let convoy_dir = target_dir.join("convoy");

    let journal = Journal::open(&convoy_dir).ok();
    let previous_run = journal.as_ref().and_then(Journal::previous_run);
    if let Some(prev) = previous_run
        .as_ref()
        .filter(|p| !p.finished || !p.failures.is_empty())
    {
        observer(ReleaseEvent::PreviousRun(prev.clone()));
    }
    let record =
        |event: &str, registry: Option<&str>, pkg: Option<(&str, &str)>, detail: Option<String>| {
            if let Some(j) = &journal {
                // The journal explains; it never decides. A write failure must
                // not stop a release.
                let _ = j.record(event, registry, pkg, detail);
            }
        };
    record(
        "started",
        None,
        None,
        opts.dry_run.then(|| "dry run".into()),
    );

    let requests = if !opts.registries.is_empty() {
        opts.registries.clone()
    } else if let Some(names) = metadata_registries(&ws.convoy_metadata) {
        names
            .into_iter()
            .map(|name| RegistryRequest {
                registry: Some(name),
                ..RegistryRequest::default()
            })
            .collect()
    } else {
        vec![RegistryRequest::default()]
    };
    let targets = requests
        .iter()
        .map(|r| convoy_index_client::resolve_registry(r, &ws.root))
        .collect::<Result<Vec<_>, _>>()?;

    // `--atomic` needs every registry to offer staging; find out before
    // anything is checked or packaged.
    let staging = if opts.atomic {
        let clients = staging_clients(&targets);
        if let Err(e) = &clients {
            record("failed", None, None, Some(error_chain(e)));
        }
        clients?
    } else {
        Vec::new()
    };
    let staged = opts.atomic && !opts.dry_run;

    // Checks for every registry first: a problem anywhere stops everything.
    let mut errors = Vec::new();
    for target in &targets {
        let diagnostics = convoy_plan::ops::preflight(&ws, &members, target);
        let report = convoy_plan::CheckReport::new(&ws.convoy_metadata, members.len(), diagnostics);
        for d in report.diagnostics {
            match d.severity {
                Severity::Error => errors.push(d),
                _ => observer(ReleaseEvent::Warning(d)),
            }
        }
    }
    if !errors.is_empty() {
        record(
            "failed",
            None,
            None,
            Some(format!("{} preflight check(s) failed", errors.len())),
        );
        return Err(ReleaseError::Checks(errors));
    }

    // Package and verify for every registry before the first upload.
    if let Some(first) = targets.first() {
        cargo_package_once(&ws, &members, first, &target_dir, opts)
            .inspect_err(|e| record("failed", Some(first.label()), None, Some(error_chain(e))))?;
    }
    let mut prepared = Vec::new();
    for target in targets {
        let label = target.label().to_owned();
        observer(ReleaseEvent::Planned {
            registry: label.clone(),
            packages: members
                .iter()
                .map(|m| (m.name.clone(), m.version.to_string()))
                .collect(),
            waves: order.wave_count(),
        });
        let packages = package_for(&ws, &members, &target, &label, &target_dir, opts, observer)
            .inspect_err(|e| record("failed", Some(&label), None, Some(error_chain(e))))?;
        for p in &packages {
            record(
                "packaged",
                Some(&label),
                Some((&p.name, &p.version)),
                Some(p.cksum.clone()),
            );
        }
        if !staged {
            // Atomic releases verify later, against the staged bytes.
            verify_for(&packages, &target, &label, &target_dir, opts, observer)
                .inspect_err(|e| record("failed", Some(&label), None, Some(error_chain(e))))?;
        }
        prepared.push(Prepared {
            target,
            label,
            packages,
        });
    }

    if staged {
        let ledger = StageLedger::new(&convoy_dir);
        let registries = crate::atomic::run(
            &prepared,
            staging,
            &ledger,
            opts,
            &target_dir,
            observer,
            &record,
        )?;
        record("finished", None, None, None);
        return Ok(ReleaseReport {
            dry_run: false,
            previous_run,
            registries,
        });
    }

    let mut registries = Vec::new();
    for p in &prepared {
        let upload_opts = UploadOptions {
            jobs: opts.jobs.unwrap_or(4).max(1),
            dry_run: opts.dry_run,
            visibility_timeout: opts.visibility_timeout,
            ..UploadOptions::default()
        };
        let label = p.label.clone();
        let report = {
            let forward = |event: UploadEvent| {
                record_upload(&record, &label, &event);
                observer(ReleaseEvent::Upload {
                    registry: label.clone(),
                    event,
                });
            };
            upload_with(&p.target, &p.packages, &upload_opts, forward)
        };
        registries.push(registry_result(p, &report));
    }
    record("finished", None, None, None);
    Ok(ReleaseReport {
        dry_run: opts.dry_run,
        previous_run,
        registries,
    })
}

/// Runs the upload with an observer that may borrow the caller's state; the
/// upload library wants a `Sync` callback, so events are funnelled through
/// a channel and replayed here on the calling thread.
pub(crate) fn upload_with(
    target: &RegistryTarget,
    packages: &[PackagedCrate],
    opts: &UploadOptions,
    mut observer: impl FnMut(UploadEvent),
) -> UploadReport {
    let (tx, rx) = std::sync::mpsc::channel::<UploadEvent>();
    std::thread::scope(|scope| {
        let handle = scope.spawn(move || {
            let send = move |e: UploadEvent| {
                let _ = tx.send(e);
            };
            convoy_upload::upload_blocking(target, packages, opts, &send)
        });
        for event in rx {
            observer(event);
        }
        handle.join().unwrap_or_else(|_| UploadReport {
            registry: target.label().to_owned(),
            dry_run: opts.dry_run,
            crates: Vec::new(),
        })
    })
}

fn record_upload(
    record: &impl Fn(&str, Option<&str>, Option<(&str, &str)>, Option<String>),
    label: &str,
    event: &UploadEvent,
) {
    match event {
        UploadEvent::Published { name, version } => {
            record("published", Some(label), Some((name, version)), None)
        }
        UploadEvent::Skipped { name, version } => {
            record("skipped", Some(label), Some((name, version)), None)
        }
        UploadEvent::Failed {
            name,
            version,
            reason,
        } => record(
            "failed",
            Some(label),
            Some((name, version)),
            Some(reason.clone()),
        ),
        UploadEvent::Blocked { name, version, by } => record(
            "blocked",
            Some(label),
            Some((name, version)),
            Some(format!("waits for {}", by.join(", "))),
        ),
        _ => {}
    }
}

fn package_options<'a>(
    ws: &'a convoy_workspace::Workspace,
    members: &[&'a convoy_workspace::Member],
    target: &RegistryTarget,
    label: &str,
    target_dir: &Path,
    opts: &PublishOptions,
) -> PackageOptions<'a> {
    PackageOptions {
        workspace: ws,
        members: members.to_vec(),
        target: TargetRegistry {
            index_url: target.index.clone(),
            is_crates_io: target.is_crates_io(),
        },
        target_dir: target_dir.to_owned(),
        out_dir: target_dir.join("convoy").join(sanitize(label)),
        allow_dirty: opts.allow_dirty,
        cargo_flags: if opts.locked {
            vec!["--locked".to_owned()]
        } else {
            Vec::new()
        },
    }
}

/// Runs the user's `cargo package` once; its output serves every registry.
fn cargo_package_once(
    ws: &convoy_workspace::Workspace,
    members: &[&convoy_workspace::Member],
    target: &RegistryTarget,
    target_dir: &Path,
    opts: &PublishOptions,
) -> Result<(), ReleaseError> {
    let label = target.label();
    convoy_package::cargo_package(&package_options(
        ws, members, target, label, target_dir, opts,
    ))
    .map_err(|source| ReleaseError::Package {
        registry: label.to_owned(),
        source,
    })
}

/// Finalizes the packages of [`cargo_package_once`] for one registry and
/// gives each its lock file.
fn package_for(
    ws: &convoy_workspace::Workspace,
    members: &[&convoy_workspace::Member],
    target: &RegistryTarget,
    label: &str,
    target_dir: &Path,
    opts: &PublishOptions,
    observer: &mut dyn FnMut(ReleaseEvent),
) -> Result<Vec<PackagedCrate>, ReleaseError> {
    observer(ReleaseEvent::Packaging {
        registry: label.to_owned(),
        count: members.len(),
    });
    let packaged = convoy_package::finalize_packages(&package_options(
        ws, members, target, label, target_dir, opts,
    ))
    .map_err(|source| ReleaseError::Package {
        registry: label.to_owned(),
        source,
    })?;
    let packaged = lock_for(packaged, target, label, target_dir, opts)?;
    for p in &packaged {
        observer(ReleaseEvent::Packaged {
            registry: label.to_owned(),
            krate: Box::new(p.clone()),
        });
    }
    Ok(packaged)
}

/// Gives every package the `Cargo.lock` it ships with. Each lock is
/// resolved against an overlay holding the siblings finalized so far, so it
/// names the target registry and the checksums of the very files that will
/// be uploaded. Packages go in batches: every package whose local
/// dependencies are final is locked at once (one overlay, several cargo
/// runs in parallel), which is once per wave.
fn lock_for(
    packages: Vec<PackagedCrate>,
    target: &RegistryTarget,
    label: &str,
    target_dir: &Path,
    opts: &PublishOptions,
) -> Result<Vec<PackagedCrate>, ReleaseError> {
    let selected: BTreeSet<String> = packages.iter().map(|p| p.name.clone()).collect();
    let position: BTreeMap<String, usize> = packages
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.clone(), i))
        .collect();
    let vopts = verify_options(label, target_dir, opts);
    let parallel = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2)
        .max(opts.jobs.unwrap_or(1));
    let lock_error = |source| ReleaseError::Lock {
        registry: label.to_owned(),
        source: Box::new(source),
    };
    let mut done: Vec<PackagedCrate> = Vec::with_capacity(packages.len());
    let mut pending = packages;
    while !pending.is_empty() {
        let finished: BTreeSet<&str> = done.iter().map(|p| p.name.as_str()).collect();
        let (mut ready, rest): (Vec<PackagedCrate>, Vec<PackagedCrate>) =
            pending.into_iter().partition(|p| {
                p.local_deps
                    .iter()
                    .all(|d| finished.contains(d.as_str()) || !selected.contains(d))
            });
        if ready.is_empty() {
            // The input is in publish order, so this cannot happen; take the
            // next package rather than loop forever if it ever does.
            let mut rest = rest;
            ready.push(rest.remove(0));
            pending = rest;
        } else {
            pending = rest;
        }
        let overlay = Overlay::start(Upstream::from(target), &done).map_err(lock_error)?;
        let mut locks = Vec::with_capacity(ready.len());
        for chunk in ready.chunks(parallel.max(1)) {
            let results: Vec<_> = std::thread::scope(|scope| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|pkg| {
                        let (overlay, vopts) = (&overlay, &vopts);
                        scope.spawn(move || convoy_verify::generate_lockfile(pkg, overlay, vopts))
                    })
                    .collect();
                handles.into_iter().map(|h| h.join()).collect()
            });
            locks.extend(results);
        }
        for (pkg, lock) in ready.iter().zip(locks) {
            let lock = match lock {
                Ok(result) => result.map_err(lock_error)?,
                Err(_) => {
                    return Err(ReleaseError::Lock {
                        registry: label.to_owned(),
                        source: Box::new(VerifyError::Spawn {
                            command: format!("cargo generate-lockfile for `{}`", pkg.name),
                            source: std::io::Error::other("the worker thread panicked"),
                        }),
                    });
                }
            };
            let locked = convoy_package::with_lockfile(pkg, &lock).map_err(|source| {
                ReleaseError::Package {
                    registry: label.to_owned(),
                    source,
                }
            })?;
            done.push(locked);
        }
    }
    done.sort_by_key(|p| position.get(&p.name).copied().unwrap_or(usize::MAX));
    Ok(done)
}

/// Where the verification overlays keep upstream `.crate` files, by
/// checksum, so a rerun downloads nothing again.
pub(crate) fn downloads_dir(target_dir: &Path) -> std::path::PathBuf {
    target_dir.join("convoy").join("downloads")
}

pub(crate) fn verify_options(
    label: &str,
    target_dir: &Path,
    opts: &PublishOptions,
) -> VerifyOptions {
    VerifyOptions {
        mode: opts.verify,
        run_tests: opts.verify_tests,
        target_dir: target_dir.to_owned(),
        work_dir: target_dir
            .join("convoy")
            .join(sanitize(label))
            .join("verify"),
        jobs: opts.jobs.map(|j| j as u32),
        features: opts.features.clone(),
        all_features: opts.all_features,
        no_default_features: opts.no_default_features,
        env: Vec::new(),
    }
}

fn verify_for(
    packages: &[PackagedCrate],
    target: &RegistryTarget,
    label: &str,
    target_dir: &Path,
    opts: &PublishOptions,
    observer: &mut dyn FnMut(ReleaseEvent),
) -> Result<(), ReleaseError> {
    if opts.verify == VerifyMode::None {
        return Ok(());
    }
    let overlay = Overlay::start(Upstream::from(target), packages).map_err(|source| {
        ReleaseError::Overlay {
            registry: label.to_owned(),
            source: Box::new(source),
        }
    })?;
    overlay.cache_downloads_in(downloads_dir(target_dir));
    let verify_opts = verify_options(label, target_dir, opts);
    let mut forward = |event: VerifyEvent| {
        observer(ReleaseEvent::Verify {
            registry: label.to_owned(),
            event,
        })
    };
    convoy_verify::verify(packages, &overlay, &verify_opts, &mut forward).map_err(|source| {
        ReleaseError::Verify {
            registry: label.to_owned(),
            source: Box::new(source),
        }
    })
}

pub(crate) fn registry_result(p: &Prepared, report: &UploadReport) -> RegistryResult {
    let crates = p
        .packages
        .iter()
        .map(|pkg| {
            let entry = report.get(&pkg.name);
            let (outcome, reason) = match entry.map(|e| &e.outcome) {
                Some(CrateOutcome::Published) => ("published", None),
                Some(CrateOutcome::Skipped) => ("skipped", None),
                Some(CrateOutcome::DryRun) => ("dry-run", None),
                Some(CrateOutcome::Failed { reason }) => ("failed", Some(reason.clone())),
                Some(CrateOutcome::Blocked { by }) => {
                    ("blocked", Some(format!("waits for {}", by.join(", "))))
                }
                Some(_) | None => ("failed", Some("no upload result".to_owned())),
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

/// The staging client of every target, or the refusal of the first that
/// does not offer staging.
fn staging_clients(targets: &[RegistryTarget]) -> Result<Vec<StagingClient>, ReleaseError> {
    targets
        .iter()
        .map(|target| {
            StagingClient::connect(target).map_err(|source| match source {
                StagingError::NotOffered { registry } => {
                    ReleaseError::StagingUnavailable { registry }
                }
                source => ReleaseError::Staging {
                    registry: target.label().to_owned(),
                    source: Box::new(source),
                },
            })
        })
        .collect()
}

/// A registry label as a directory name.
fn sanitize(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// `[workspace.metadata.convoy] registries = ["a", "b"]`: the registries a
/// release goes to when no `--registry` is given.
fn metadata_registries(convoy: &serde_json::Value) -> Option<Vec<String>> {
    let list = convoy.get("registries")?.as_array()?;
    let names: Vec<String> = list
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    (!names.is_empty()).then_some(names)
}

/// The engine's packaging as the plan's content check: packages (with
/// Convoy's manifest changes and lock files) under `target/convoy/plan/` and
/// reports each checksum, so `plan` and `check` compare the bytes a publish
/// would upload.
#[derive(Debug, Clone, Copy, Default)]
pub struct EngineChecksums;

impl convoy_plan::ops::PackageChecksums for EngineChecksums {
    fn checksums(
        &self,
        ws: &convoy_workspace::Workspace,
        members: &[&convoy_workspace::Member],
        target: &RegistryTarget,
    ) -> BTreeMap<String, Result<String, String>> {
        let fail = |reason: String| {
            members
                .iter()
                .map(|m| (m.name.clone(), Err(reason.clone())))
                .collect()
        };
        let ordered: Vec<&convoy_workspace::Member> = match PublishOrder::new(members) {
            Ok(order) => order
                .packages
                .iter()
                .filter_map(|o| members.iter().copied().find(|m| m.name == o.name))
                .collect(),
            Err(e) => return fail(e.to_string()),
        };
        let target_dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| ws.root.join("target"))
            .join("convoy")
            .join("plan");
        let opts = PublishOptions {
            manifest_path: None,
            selection: Selection::default(),
            registries: Vec::new(),
            verify: VerifyMode::Check,
            verify_tests: false,
            jobs: None,
            dry_run: true,
            allow_dirty: true,
            visibility_timeout: Duration::from_secs(60),
            features: Vec::new(),
            all_features: false,
            no_default_features: false,
            target_dir: Some(target_dir.clone()),
            atomic: false,
            locked: false,
        };
        let label = target.label().to_owned();
        if let Err(e) = cargo_package_once(ws, &ordered, target, &target_dir, &opts) {
            return fail(error_chain(&e));
        }
        match package_for(
            ws,
            &ordered,
            target,
            &label,
            &target_dir,
            &opts,
            &mut |_| {},
        ) {
            Ok(packaged) => packaged
                .into_iter()
                .map(|p| (p.name, Ok(p.cksum)))
                .collect(),
            Err(e) => fail(error_chain(&e)),
        }
    }
}
