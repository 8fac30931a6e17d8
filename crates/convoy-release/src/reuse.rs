//! Versions the registry already has with the same content.
//!
//! In a git checkout, `cargo package` records the commit in
//! `.cargo_vcs_info.json`, so a crate nobody touched packages to a new
//! checksum after every commit, and its version on the registry would look
//! like a conflicting upload. When the registry's file has the same content
//! by `convoy_package::content_differences` (the commit id, the lock file
//! and Convoy's manifest changes aside), the release takes the registry's
//! file instead: dependents lock against the checksum users download,
//! verification builds what is published, and the upload stage skips it as
//! identical, so `publish --tag` counts it as confirmed.

use std::collections::BTreeSet;

use convoy_index_client::{RegistryTarget, SparseIndex};
use convoy_package::{PackagedCrate, TargetRegistry};
use convoy_workspace::Workspace;
use sha2::{Digest, Sha256};

/// `packaged` with the registry's file in place of each package whose
/// version it holds with the same content, and the names of those. Best
/// effort: a registry that cannot be read here changes nothing, and the
/// upload stage reports it authoritatively. Reads block on `runtime`.
pub(crate) fn take_published(
    runtime: &tokio::runtime::Handle,
    ws: &Workspace,
    target: &RegistryTarget,
    packaged: Vec<PackagedCrate>,
) -> (Vec<PackagedCrate>, BTreeSet<String>) {
    let mut reused = BTreeSet::new();
    let rules = TargetRegistry {
        index_url: target.index.clone(),
        is_crates_io: target.is_crates_io(),
    };
    // One index read per package, independent of each other: a few workers
    // side by side, each with its own reader, blocking on the runtime.
    let workers = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2)
        .clamp(2, 8);
    let per_worker = packaged.len().div_ceil(workers).max(1);
    let mut copies: Vec<Option<(Vec<u8>, String)>> = Vec::with_capacity(packaged.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = packaged
            .chunks(per_worker)
            .map(|chunk| {
                let rules = &rules;
                scope.spawn(move || {
                    let index = SparseIndex::for_target(runtime, target).ok();
                    chunk
                        .iter()
                        .map(|pkg| {
                            index
                                .as_ref()
                                .and_then(|index| published_copy(ws, index, rules, pkg))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for (handle, chunk) in handles.into_iter().zip(packaged.chunks(per_worker)) {
            match handle.join() {
                Ok(found) => copies.extend(found),
                Err(_) => copies.extend(chunk.iter().map(|_| None)),
            }
        }
    });
    let out = packaged
        .into_iter()
        .zip(copies)
        .map(|(pkg, copy)| match copy {
            Some((bytes, cksum)) if std::fs::write(&pkg.path, &bytes).is_ok() => {
                reused.insert(pkg.name.clone());
                PackagedCrate {
                    index_line: pkg.metadata.to_index_package(cksum.clone(), None),
                    cksum,
                    ..pkg
                }
            }
            _ => pkg,
        })
        .collect();
    (out, reused)
}

/// The registry's file of `pkg`'s version and its checksum, when the
/// registry has that version with another checksum and the same content.
fn published_copy(
    ws: &Workspace,
    index: &SparseIndex,
    rules: &TargetRegistry,
    pkg: &PackagedCrate,
) -> Option<(Vec<u8>, String)> {
    let line = index
        .versions(&pkg.name)
        .ok()??
        .into_iter()
        .find(|l| l.vers == pkg.version)?;
    if line.cksum.eq_ignore_ascii_case(&pkg.cksum) {
        return None;
    }
    let member = ws.member(&pkg.name)?;
    let theirs = index.download(&line).ok()?;
    // Only bytes that are the indexed file can stand in for it.
    if !hex::encode(Sha256::digest(&theirs)).eq_ignore_ascii_case(&line.cksum) {
        return None;
    }
    let ours = std::fs::read(&pkg.path).ok()?;
    let differences =
        convoy_package::content_differences(ws, member, rules, &ours, &theirs).ok()?;
    differences
        .is_empty()
        .then(|| (theirs, line.cksum.to_ascii_lowercase()))
}
