//! The packaging step: run cargo once for the whole selection, then make
//! each `.crate` final in publish order.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use convoy_workspace::process::Cmd;
use convoy_workspace::{DepKind, Member, Workspace};
use sha2::{Digest, Sha256};

use crate::compare::sibling_path_deps;
pub use crate::error::PackageError;
use crate::manifest::{ManifestRewrite, rewrite_manifest};
use crate::tarball::{read_entries, write_entries};
use crate::{PackagedCrate, companion, metadata};

/// Where the packages will be published.
#[derive(Debug, Clone)]
pub struct TargetRegistry {
    /// Index URL, as cargo writes it in lock files and manifests
    /// (`sparse+https://…/` or crates.io's git URL).
    pub index_url: String,
    /// Whether this is crates.io, where sibling references need no change.
    pub is_crates_io: bool,
}

/// What to package and how.
#[derive(Debug, Clone)]
pub struct PackageOptions<'a> {
    /// The workspace.
    pub workspace: &'a Workspace,
    /// The members to package, in publish order (dependencies first).
    pub members: Vec<&'a Member>,
    /// The registry they are for.
    pub target: TargetRegistry,
    /// Where cargo builds (its `package/` directory is read from here).
    pub target_dir: PathBuf,
    /// Where the final `.crate` files go.
    pub out_dir: PathBuf,
    /// `--allow-dirty`, passed through to cargo.
    pub allow_dirty: bool,
    /// `--offline` / `--locked` / `--frozen`, passed through.
    pub cargo_flags: Vec<String>,
}

fn io<'p>(
    action: &'static str,
    path: &'p Path,
) -> impl FnOnce(std::io::Error) -> PackageError + 'p {
    move |source| PackageError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Packages `opts.members` and returns them in the same order.
pub fn package(opts: &PackageOptions<'_>) -> Result<Vec<PackagedCrate>, PackageError> {
    cargo_package(opts)?;
    finalize_packages(opts)
}

/// Makes the `.crate` files of [`cargo_package`]'s run final for
/// `opts.target`. Cargo's output does not depend on the target, so a release
/// to several registries packages once and finalizes once per registry.
pub fn finalize_packages(opts: &PackageOptions<'_>) -> Result<Vec<PackagedCrate>, PackageError> {
    std::fs::create_dir_all(&opts.out_dir).map_err(io("create", &opts.out_dir))?;
    let renames = companion::renames(opts.workspace);
    let mut packaged = Vec::with_capacity(opts.members.len());
    for member in &opts.members {
        let crate_file = cargo_output(&opts.target_dir, member);
        let original = std::fs::read(&crate_file).map_err(io("read", &crate_file))?;
        packaged.push(finalize(opts, member, &renames, &original, &crate_file)?);
    }
    Ok(packaged)
}

/// Where [`cargo_package`] leaves `member`'s `.crate`, before Convoy makes
/// it final: cargo's own output, named as cargo names it.
pub fn cargo_output(target_dir: &Path, member: &Member) -> PathBuf {
    target_dir
        .join("package")
        .join(format!("{}-{}.crate", member.cargo_name(), member.version))
}

/// The files of the `.crate` at `crate_file`, as `(path, contents)` with
/// the path inside the package (without the archive's `name-version/`):
/// what cargo chose to package, read back instead of asked for again.
pub fn crate_files(crate_file: &Path) -> Result<Vec<(String, Vec<u8>)>, PackageError> {
    let bytes = std::fs::read(crate_file).map_err(io("read", crate_file))?;
    let entries = read_entries(&bytes).map_err(io("unpack", crate_file))?;
    Ok(entries
        .into_iter()
        .filter(|e| e.header.entry_type().is_file())
        .map(|e| {
            let path = match e.path.split_once('/') {
                Some((_, rest)) => rest.to_owned(),
                None => e.path,
            };
            (path, e.data)
        })
        .collect())
}

/// Runs the user's `cargo package` once for `opts.members`, leaving the
/// `.crate` files in `<target_dir>/package/`. `opts.target` and
/// `opts.out_dir` play no part.
///
/// When the workspace has sublibraries, cargo runs on temporarily edited
/// manifests (see [`crate::companion`]); the files are restored before this
/// returns, whatever happened.
pub fn cargo_package(opts: &PackageOptions<'_>) -> Result<(), PackageError> {
    let root = opts.workspace.root.join("Cargo.toml");
    companion::recover(&opts.target_dir);
    let edits = opts
        .members
        .iter()
        .any(|m| companion::needs_edits(opts.workspace, m));
    let _guard = if edits {
        if !opts.allow_dirty {
            companion::check_clean(opts.workspace, &opts.members)?;
        }
        Some(companion::apply(opts.workspace, &opts.target_dir)?)
    } else {
        None
    };
    let mut cmd = Cmd::cargo()
        .arg("package")
        .arg("--no-verify")
        // No lock file from cargo: resolving one would look siblings up on
        // crates.io (the dependency-confusion trap) and trips over
        // dev-dependency cycles. Convoy adds a lock file resolved against
        // the target registry instead, see `with_lockfile`.
        .arg("--exclude-lockfile")
        .arg("--manifest-path")
        .arg(&root)
        .arg("--target-dir")
        .arg(&opts.target_dir);
    for member in &opts.members {
        cmd = cmd
            .arg("-p")
            .arg(format!("{}@{}", member.cargo_name(), member.version));
    }
    if opts.allow_dirty || edits {
        cmd = cmd.arg("--allow-dirty");
    }
    if edits {
        // The edited versions change the lock file by design (it is put
        // back afterwards), so `--locked` cannot hold for this run.
        for flag in &opts.cargo_flags {
            match flag.as_str() {
                "--locked" => {}
                "--frozen" => cmd = cmd.arg("--offline"),
                _ => cmd = cmd.arg(flag),
            }
        }
    } else {
        cmd = cmd.args(&opts.cargo_flags);
    }
    cmd.output().map(drop).map_err(PackageError::Cargo)
}

fn finalize(
    opts: &PackageOptions<'_>,
    member: &Member,
    renames: &BTreeMap<String, String>,
    original: &[u8],
    crate_file: &Path,
) -> Result<PackagedCrate, PackageError> {
    let unexpected = |reason: String| PackageError::Unexpected {
        path: crate_file.to_owned(),
        reason,
    };
    let prefix = format!("{}-{}", member.name, member.version);
    let mut entries = read_entries(original).map_err(|e| unexpected(e.to_string()))?;
    let manifest_path = format!("{prefix}/Cargo.toml");
    let mut changes = Vec::new();
    let mut changed = false;
    if companion::needs_edits(opts.workspace, member) {
        changed |=
            undo_temporary_edits(opts, member, &mut entries, &mut changes).map_err(unexpected)?;
    }

    let manifest_index = entries
        .iter()
        .position(|e| e.path == manifest_path)
        .ok_or_else(|| unexpected("it has no `Cargo.toml`".into()))?;
    let manifest_text = String::from_utf8(entries[manifest_index].data.clone())
        .map_err(|_| unexpected("its `Cargo.toml` is not UTF-8".into()))?;
    let sibling_deps = sibling_path_deps(opts.workspace, member);
    let rewrite = rewrite_manifest(
        &manifest_text,
        &ManifestRewrite {
            siblings: &sibling_deps,
            renames,
            target_index: (!opts.target.is_crates_io).then_some(opts.target.index_url.as_str()),
        },
    )
    .map_err(|e| unexpected(format!("its `Cargo.toml` cannot be edited: {e}")))?;
    changes.extend(rewrite.changes);
    changed |= rewrite.text != manifest_text;
    entries[manifest_index].data = rewrite.text.clone().into_bytes();

    // Keep cargo's bytes untouched when nothing changed, so a crates.io
    // release is byte for byte what `cargo publish` uploads.
    let bytes = if changed {
        write_entries(&entries).map_err(|e| unexpected(e.to_string()))?
    } else {
        original.to_vec()
    };
    let cksum = hex::encode(Sha256::digest(&bytes));
    let out = opts.out_dir.join(format!("{prefix}.crate"));
    std::fs::write(&out, &bytes).map_err(io("write", &out))?;

    let readme = metadata::readme_of(&rewrite.text)
        .and_then(|rel| entries.iter().find(|e| e.path == format!("{prefix}/{rel}")))
        .and_then(|e| String::from_utf8(e.data.clone()).ok());
    let new_crate = metadata::new_crate(&rewrite.text, readme, &opts.target)
        .map_err(|e| unexpected(format!("its `Cargo.toml` cannot be read: {e}")))?;
    let local_deps: Vec<String> = member
        .dependencies
        .iter()
        .filter(|d| d.kind != DepKind::Dev && sibling_deps.contains(&d.name))
        .map(|d| d.name.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if changes.is_empty() && changed {
        changes.push("repacked".into());
    }
    Ok(PackagedCrate {
        name: member.name.clone(),
        version: member.version.to_string(),
        path: out,
        index_line: new_crate.to_index_package(cksum.clone(), None),
        cksum,
        metadata: new_crate,
        local_deps,
        changes,
    })
}

/// Makes a package that cargo built from temporarily edited manifests look
/// as if it came from the user's files: a sublibrary's entries move under
/// the companion's name and its manifest becomes the companion's;
/// `Cargo.toml.orig` is the user's file again; and the `dirty` flag that
/// only the edits caused is dropped. Returns whether anything changed.
fn undo_temporary_edits(
    opts: &PackageOptions<'_>,
    member: &Member,
    entries: &mut [crate::tarball::Entry],
    changes: &mut Vec<String>,
) -> Result<bool, String> {
    let from = format!("{}-{}/", member.cargo_name(), member.version);
    let to = format!("{}-{}/", member.name, member.version);
    let mut changed = false;
    if let Some(c) = &member.companion {
        for e in entries.iter_mut() {
            if let Some(rest) = e.path.strip_prefix(&from) {
                e.path = format!("{to}{rest}");
            }
        }
        let manifest = format!("{to}Cargo.toml");
        let entry = entries
            .iter_mut()
            .find(|e| e.path == manifest)
            .ok_or("it has no `Cargo.toml`")?;
        let text =
            String::from_utf8(entry.data.clone()).map_err(|_| "its `Cargo.toml` is not UTF-8")?;
        entry.data = companion::companion_manifest(&text, member, &c.parent)?.into_bytes();
        changes.push(format!(
            "sublibrary `{}` packaged as `{}` {}, a companion of `{}` (its version, license and repository)",
            c.workspace_name, member.name, member.version, c.parent
        ));
        changed = true;
    }
    let user = std::fs::read(&member.manifest_path).map_err(|e| {
        format!(
            "cannot read `{}` again: {e}",
            member.manifest_path.display()
        )
    })?;
    let clean =
        companion::dirty_files(&opts.workspace.root, std::iter::once(member.dir())).is_empty();
    for e in entries.iter_mut() {
        if e.path == format!("{to}Cargo.toml.orig") && e.data != user {
            e.data = user.clone();
            changed = true;
        }
        if clean
            && e.path == format!("{to}.cargo_vcs_info.json")
            && let Some(text) = std::str::from_utf8(&e.data)
                .ok()
                .and_then(companion::clean_vcs_info)
        {
            e.data = text.into_bytes();
            changed = true;
        }
    }
    Ok(changed)
}

/// Adds `lock` as the package's `Cargo.lock` (replacing any), writes the
/// `.crate` again and returns the crate with its new checksum. The lock file
/// is resolved by the caller against the target registry, after the
/// crate's local dependencies are final, so its checksums are the ones users
/// will download.
pub fn with_lockfile(krate: &PackagedCrate, lock: &str) -> Result<PackagedCrate, PackageError> {
    let unexpected = |reason: String| PackageError::Unexpected {
        path: krate.path.clone(),
        reason,
    };
    let original = std::fs::read(&krate.path).map_err(io("read", &krate.path))?;
    let mut entries = read_entries(&original).map_err(|e| unexpected(e.to_string()))?;
    let prefix = format!("{}-{}", krate.name, krate.version);
    let lock_path = format!("{prefix}/Cargo.lock");
    let manifest_path = format!("{prefix}/Cargo.toml");
    entries.retain(|e| e.path != lock_path);
    let at = entries
        .iter()
        .position(|e| e.path == manifest_path)
        .ok_or_else(|| unexpected("it has no `Cargo.toml`".into()))?;
    // Cargo writes `Cargo.lock` right before `Cargo.toml`, with the same
    // header fields.
    let header = entries[at].header.clone();
    entries.insert(
        at,
        crate::tarball::Entry {
            path: lock_path,
            header,
            data: lock.as_bytes().to_vec(),
        },
    );
    let bytes = write_entries(&entries).map_err(|e| unexpected(e.to_string()))?;
    let cksum = hex::encode(Sha256::digest(&bytes));
    std::fs::write(&krate.path, &bytes).map_err(io("write", &krate.path))?;
    Ok(PackagedCrate {
        cksum: cksum.clone(),
        index_line: krate.metadata.to_index_package(cksum, None),
        ..krate.clone()
    })
}
