//! The steps of a release that both the plain and the atomic pipeline run:
//! package, lock, verify and upload, and what they hand on ([`Prepared`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use convoy_index_client::RegistryTarget;
use convoy_package::{PackageOptions, PackagedCrate, TargetRegistry};
use convoy_upload::staging::NewStage;
use convoy_upload::{UploadEvent, UploadOptions, UploadReport};
use convoy_verify::{Overlay, Upstream, VerifyError, VerifyEvent, VerifyMode, VerifyOptions};

use crate::error::ReleaseError;
use crate::event::ReleaseEvent;
use crate::options::PublishOptions;

/// One registry's packages, finalized and locked, ready to verify and
/// upload.
pub(crate) struct Prepared {
    pub(crate) target: RegistryTarget,
    pub(crate) label: String,
    pub(crate) packages: Vec<PackagedCrate>,
}

/// Runs the upload on the command's runtime, with an observer that may
/// borrow the caller's state.
pub(crate) fn upload_with(
    runtime: &tokio::runtime::Handle,
    target: &RegistryTarget,
    packages: &[PackagedCrate],
    opts: &UploadOptions,
    observer: impl FnMut(UploadEvent),
) -> UploadReport {
    convoy_upload::upload_on(runtime, target, packages, opts, observer)
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
pub(crate) fn cargo_package_once(
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
pub(crate) fn package_for(
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
    let (packaged, published) = crate::reuse::take_published(&opts.runtime, ws, target, packaged);
    let packaged = lock_for(packaged, &published, target, label, target_dir, opts)?;
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
/// be uploaded; packages in `published` are the registry's files and keep
/// theirs. Packages go in batches: every package whose local
/// dependencies are final is locked at once (one overlay, several cargo
/// runs in parallel), which is once per wave.
fn lock_for(
    packages: Vec<PackagedCrate>,
    published: &BTreeSet<String>,
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
        // The registry's own files (see `reuse`) keep the lock they ship.
        let (kept, ready): (Vec<PackagedCrate>, Vec<PackagedCrate>) =
            ready.into_iter().partition(|p| published.contains(&p.name));
        done.extend(kept);
        if ready.is_empty() {
            continue;
        }
        let overlay =
            Overlay::start(&opts.runtime, Upstream::from(target), &done).map_err(lock_error)?;
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
fn downloads_dir(target_dir: &Path) -> std::path::PathBuf {
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

/// Builds every crate from its packaged bytes against an overlay of the
/// local packages over `target`. With `stage`, against the staging view
/// instead: the overlay reads the stage (with the stage token) and stands in
/// for the target registry, with no local packages, so each crate and its
/// siblings come from the staged bytes and lock files keep naming the
/// target.
pub(crate) fn verify_for(
    packages: &[PackagedCrate],
    target: &RegistryTarget,
    label: &str,
    target_dir: &Path,
    opts: &PublishOptions,
    observer: &mut dyn FnMut(ReleaseEvent),
    stage: Option<&NewStage>,
) -> Result<(), ReleaseError> {
    if opts.verify == VerifyMode::None {
        return Ok(());
    }
    let overlay = match stage {
        None => Overlay::start(&opts.runtime, Upstream::from(target), packages),
        Some(stage) => {
            let upstream = Upstream {
                index_url: stage.stage.index.clone(),
                token: Some(stage.token.expose().to_owned()),
                http: target.http.clone(),
            };
            Overlay::start_with_identity(&opts.runtime, &target.index, upstream, &[])
        }
    }
    .map_err(|source| ReleaseError::Overlay {
        registry: label.to_owned(),
        source: Box::new(source),
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
        let registry = label.to_owned();
        let source = Box::new(source);
        match stage {
            None => ReleaseError::Verify { registry, source },
            Some(_) => ReleaseError::StagedVerify { registry, source },
        }
    })
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
