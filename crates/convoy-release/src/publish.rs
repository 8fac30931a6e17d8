//! `cargo convoy publish`, as one library call: the pipeline, from plan to
//! upload. The steps it shares with `--atomic` live in [`crate::steps`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use convoy_index_client::{CargoConfig, RegistryRequest, RegistryTarget};
use convoy_plan::{Diagnostic, Severity};
use convoy_upload::staging::{StagingClient, StagingError};
use convoy_upload::{UploadEvent, UploadOptions};
use convoy_workspace::PublishOrder;

use crate::error::ReleaseError;
use crate::event::ReleaseEvent;
use crate::journal::{Journal, JournalEvent, Recorder};
use crate::options::PublishOptions;
use crate::report::{ReleaseReport, registry_result};
use crate::stages::StageLedger;
use crate::steps::{Prepared, cargo_package_once, package_for, upload_with, verify_for};

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

    let recorder = Recorder::new(Journal::open(&convoy_dir).ok());
    let previous_run = recorder.journal().and_then(Journal::previous_run);
    if let Some(prev) = previous_run
        .as_ref()
        .filter(|p| !p.finished || !p.failures.is_empty())
    {
        observer(ReleaseEvent::PreviousRun(prev.clone()));
    }
    recorder.record(
        JournalEvent::Started,
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
    let config = CargoConfig::load(&ws.root, &opts.config)?;
    if config.offline() && !opts.dry_run {
        return Err(ReleaseError::OfflineUpload);
    }
    let targets = requests
        .iter()
        .map(|r| config.resolve(r))
        .collect::<Result<Vec<_>, _>>()?;
    // One runtime for every request of the release: the caller's.
    let runtime = &opts.runtime;

    // `--atomic` needs every registry to offer staging; find out before
    // anything is checked or packaged.
    let staging = if opts.atomic {
        let clients = staging_clients(&targets, runtime);
        if let Err(e) = &clients {
            recorder.failed(None, e);
        }
        clients?
    } else {
        Vec::new()
    };
    let staged = opts.atomic && !opts.dry_run;

    // Checks for every registry first: a problem anywhere stops everything.
    // The packaged files are checked in the `.crate`s cargo makes, so the
    // other checks come before packaging and those after it; when the first
    // fail, cargo lists the files instead, so that one report holds all.
    let no_files = BTreeMap::new();
    let checks: Vec<Vec<Diagnostic>> = targets
        .iter()
        .map(|target| convoy_plan::ops::preflight_with(runtime, &ws, &members, target, &no_files))
        .collect();
    let report = |diagnostics: Vec<Diagnostic>| {
        convoy_plan::CheckReport::new(&ws.convoy_metadata, members.len(), diagnostics).diagnostics
    };
    let failing = checks.iter().any(|diagnostics| {
        report(diagnostics.clone())
            .iter()
            .any(|d| d.severity == Severity::Error)
    });
    let files = if failing {
        convoy_plan::ops::listed_files(&ws, &members)
    } else {
        match targets.first() {
            Some(first) => {
                cargo_package_once(&ws, &members, first, &target_dir, opts)
                    .inspect_err(|e| recorder.failed(Some(first.label()), e))?;
                members
                    .iter()
                    .map(|m| {
                        let path = convoy_package::cargo_output(&target_dir, m);
                        (m.name.clone(), packaged_files(&path))
                    })
                    .collect()
            }
            None => BTreeMap::new(),
        }
    };
    let mut errors = Vec::new();
    for mut diagnostics in checks {
        diagnostics.extend(convoy_plan::check_files(&members, &files));
        for d in report(diagnostics) {
            match d.severity {
                Severity::Error => errors.push(d),
                _ => observer(ReleaseEvent::Warning(d)),
            }
        }
    }
    if !errors.is_empty() {
        recorder.record(
            JournalEvent::Failed,
            None,
            None,
            Some(format!("{} preflight check(s) failed", errors.len())),
        );
        return Err(ReleaseError::Checks(errors));
    }

    // Package and verify for every registry before the first upload.
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
            .inspect_err(|e| recorder.failed(Some(&label), e))?;
        for p in &packages {
            recorder.record(
                JournalEvent::Packaged,
                Some(&label),
                Some((&p.name, &p.version)),
                Some(p.cksum.clone()),
            );
        }
        if !staged {
            // Atomic releases verify later, against the staged bytes.
            verify_for(
                &packages,
                &target,
                &label,
                &target_dir,
                opts,
                observer,
                None,
            )
            .inspect_err(|e| recorder.failed(Some(&label), e))?;
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
            &crate::atomic::Context {
                opts,
                target_dir: &target_dir,
                runtime,
            },
            observer,
            &recorder,
        )?;
        recorder.record(JournalEvent::Finished, None, None, None);
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
                recorder.upload(&label, &event, None);
                observer(ReleaseEvent::Upload {
                    registry: label.clone(),
                    event,
                });
            };
            upload_with(runtime, &p.target, &p.packages, &upload_opts, forward)
        };
        registries.push(registry_result(p, &report));
    }
    recorder.record(JournalEvent::Finished, None, None, None);
    Ok(ReleaseReport {
        dry_run: opts.dry_run,
        previous_run,
        registries,
    })
}

/// The staging client of every target, or the refusal of the first that
/// does not offer staging.
fn staging_clients(
    targets: &[RegistryTarget],
    runtime: &tokio::runtime::Handle,
) -> Result<Vec<StagingClient>, ReleaseError> {
    targets
        .iter()
        .map(|target| {
            StagingClient::connect(target, runtime).map_err(|source| match source {
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

/// The file list of the `.crate` cargo made at `crate_file`, for the file
/// checks; why it could not be read otherwise.
fn packaged_files(crate_file: &std::path::Path) -> convoy_plan::FileList {
    let files = convoy_package::crate_files(crate_file).map_err(|e| {
        let cause = std::error::Error::source(&e).map(|s| format!(": {s}"));
        format!("{e}{}", cause.unwrap_or_default())
    })?;
    Ok(files
        .into_iter()
        .map(|(path, data)| convoy_plan::FileEntry::new(path, data.len() as u64, &data))
        .collect())
}
