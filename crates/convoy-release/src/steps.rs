//! The steps of a release that both the plain and the atomic pipeline run:
//! package, lock, verify and upload, and what they hand on ([`Prepared`]).

use std::collections::BTreeSet;
use std::path::Path;

use convoy_index_client::RegistryTarget;
use convoy_package::{PackageOptions, PackagedCrate, TargetRegistry};
use convoy_upload::staging::NewStage;
use convoy_upload::{UploadEvent, UploadOptions, UploadReport};
use convoy_verify::{Overlay, Upstream, VerifyError, VerifyEvent, VerifyMode, VerifyOptions};
use convoy_workspace::process::{map_parallel, short_run_workers};

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
    // `cargo package` above wrote it if the workspace had none.
    let previous = std::fs::read_to_string(ws.root.join("Cargo.lock")).ok();
    let packaged = lock_for(
        packaged,
        &published,
        previous.as_deref(),
        target,
        label,
        target_dir,
        opts,
    )?;
    for p in &packaged {
        observer(ReleaseEvent::Packaged {
            registry: label.to_owned(),
            krate: Box::new(p.clone()),
        });
    }
    Ok(packaged)
}

/// Gives every package the `Cargo.lock` it ships with, naming the target
/// registry and the checksums of the very files that will be uploaded;
/// packages in `published` are the registry's files and keep theirs. Like
/// `cargo package`, each starts from the workspace's lock (`previous`), so
/// it keeps the versions the workspace was tested with.
///
/// A package's lock depends on its siblings' final checksums, and those
/// on the siblings' own locks, so a naive order locks one wave at a time,
/// and each wave waits for cargo's index reads. But what cargo resolves
/// (versions, sources) does not depend on checksums at all. So every lock
/// is resolved at once, against one overlay of the packages as they are
/// now, and the siblings' checksums in it are then replaced, in publish
/// order, with their final ones. A lock that names a sibling not yet final
/// at that point (through a dev-dependency on a later package) is resolved
/// again against the final packages before it, as the wave order would.
fn lock_for(
    packages: Vec<PackagedCrate>,
    published: &BTreeSet<String>,
    previous: Option<&str>,
    target: &RegistryTarget,
    label: &str,
    target_dir: &Path,
    opts: &PublishOptions,
) -> Result<Vec<PackagedCrate>, ReleaseError> {
    let vopts = verify_options(label, target_dir, opts);
    let lock_error = |source| ReleaseError::Lock {
        registry: label.to_owned(),
        source: Box::new(source),
    };
    let panicked = |pkg: &PackagedCrate| ReleaseError::Lock {
        registry: label.to_owned(),
        source: Box::new(VerifyError::Spawn {
            command: format!("cargo run locking `{}`", pkg.name),
            source: std::io::Error::other("the worker thread panicked"),
        }),
    };
    if packages.iter().all(|p| published.contains(&p.name)) {
        return Ok(packages);
    }
    let overlay =
        Overlay::start(&opts.runtime, Upstream::from(target), &packages).map_err(lock_error)?;
    let locks = map_parallel(&packages, short_run_workers(opts.jobs), |pkg| {
        (!published.contains(&pkg.name))
            .then(|| convoy_verify::generate_lockfile(pkg, &overlay, &vopts, previous))
    });
    drop(overlay);
    // Checksums of the packages as locked above, and what each became.
    let mut finals: Vec<(String, String)> = Vec::new();
    let mut done: Vec<PackagedCrate> = Vec::with_capacity(packages.len());
    for (i, (pkg, lock)) in packages.iter().zip(locks).enumerate() {
        if published.contains(&pkg.name) {
            done.push(pkg.clone());
            continue;
        }
        let mut lock = lock
            .flatten()
            .ok_or_else(|| panicked(pkg))?
            .map_err(lock_error)?;
        for (before, after) in &finals {
            lock = lock.replace(before.as_str(), after);
        }
        let names_unfinished = packages[i + 1..]
            .iter()
            .any(|later| !published.contains(&later.name) && lock.contains(later.cksum.as_str()));
        if names_unfinished {
            let overlay =
                Overlay::start(&opts.runtime, Upstream::from(target), &done).map_err(lock_error)?;
            lock = convoy_verify::generate_lockfile(pkg, &overlay, &vopts, previous)
                .map_err(lock_error)?;
        }
        let locked =
            convoy_package::with_lockfile(pkg, &lock).map_err(|source| ReleaseError::Package {
                registry: label.to_owned(),
                source,
            })?;
        finals.push((pkg.cksum.clone(), locked.cksum.clone()));
        done.push(locked);
    }
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
