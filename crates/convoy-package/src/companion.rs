//! Packaging sublibraries as companions (see `docs/SUBLIBRARIES.md`).
//!
//! Cargo refuses to package a path dependency without a version, and a
//! sublibrary has none. So for the length of the one `cargo package` run,
//! Convoy gives cargo what it needs in the user's manifests: each
//! sublibrary gets its parent's version, and each path dependency on it a
//! `=` requirement. [`TemporaryEdits`] restores every file byte for byte
//! (and its mtime) when dropped, success or failure, and keeps a copy of
//! the originals under the target directory, so that a run killed in
//! between is undone by the next one ([`recover`]).
//!
//! After packaging, [`companion_manifest`] turns the sublibrary's packaged
//! manifest into the companion's (name, description, license, repository,
//! `sublibrary-of`), and the ordinary rewrite points dependents at the
//! companion under the same dependency key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use convoy_workspace::process::Cmd;
use convoy_workspace::{Member, Workspace};
use toml_edit::{DocumentMut, Item, Table, value};

use crate::error::PackageError;

const DEP_TABLES: [&str; 3] = ["dependencies", "build-dependencies", "dev-dependencies"];

/// Where the originals are kept while the edits are in place.
fn backup_path(target_dir: &Path) -> PathBuf {
    target_dir.join("convoy").join("manifest-backup.json")
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Original {
    path: PathBuf,
    /// `None`: the file did not exist (a `Cargo.lock` cargo creates).
    text: Option<String>,
}

/// The user's files as they were, put back on drop.
pub(crate) struct TemporaryEdits {
    originals: Vec<(Original, Option<SystemTime>)>,
    backup: PathBuf,
}

impl Drop for TemporaryEdits {
    fn drop(&mut self) {
        for (original, mtime) in &self.originals {
            restore(original, *mtime);
        }
        let _ = std::fs::remove_file(&self.backup);
    }
}

fn restore(original: &Original, mtime: Option<SystemTime>) {
    match &original.text {
        Some(text) => {
            if std::fs::read_to_string(&original.path).ok().as_deref() != Some(text.as_str()) {
                let _ = std::fs::write(&original.path, text);
            }
            if let (Some(mtime), Ok(file)) = (
                mtime,
                std::fs::File::options().write(true).open(&original.path),
            ) {
                let _ = file.set_modified(mtime);
            }
        }
        None => {
            let _ = std::fs::remove_file(&original.path);
        }
    }
}

/// Puts back the files of a run that was killed while its edits were in
/// place. Returns whether there was anything to undo.
pub(crate) fn recover(target_dir: &Path) -> bool {
    let backup = backup_path(target_dir);
    let Ok(text) = std::fs::read_to_string(&backup) else {
        return false;
    };
    if let Ok(originals) = serde_json::from_str::<Vec<Original>>(&text) {
        for original in &originals {
            restore(original, None);
        }
    }
    let _ = std::fs::remove_file(&backup);
    true
}

/// The sublibraries of the workspace: cargo name → version to give it.
pub(crate) fn sublibraries(ws: &Workspace) -> BTreeMap<String, String> {
    ws.members
        .iter()
        .filter_map(|m| {
            m.companion
                .as_ref()
                .map(|c| (c.workspace_name.clone(), m.version.to_string()))
        })
        .collect()
}

/// Each sublibrary's name in the workspace, mapped to its companion's
/// published name: the manifest rewrite renames the dependencies on it.
pub(crate) fn renames(ws: &Workspace) -> BTreeMap<String, String> {
    ws.members
        .iter()
        .filter_map(|m| {
            m.companion
                .as_ref()
                .map(|c| (c.workspace_name.clone(), m.name.clone()))
        })
        .collect()
}

/// Whether cargo needs [`TemporaryEdits`] to package `member`.
pub(crate) fn needs_edits(ws: &Workspace, member: &Member) -> bool {
    member.companion.is_some()
        || member.dependencies.iter().any(|d| {
            d.path().is_some()
                && ws
                    .member(&d.name)
                    .is_some_and(|target| target.companion.is_some())
        })
}

/// Refuses, as cargo would, to package uncommitted changes when
/// `--allow-dirty` was not given: the edited run has to pass
/// `--allow-dirty` to cargo, so the check is made here first. Outside a git
/// repository there is nothing to check, as for cargo.
pub(crate) fn check_clean(ws: &Workspace, members: &[&Member]) -> Result<(), PackageError> {
    let dirty = dirty_files(&ws.root, members.iter().map(|m| m.dir()));
    if dirty.is_empty() {
        Ok(())
    } else {
        Err(PackageError::Dirty { files: dirty })
    }
}

/// Files under `dirs` that git reports as changed or untracked.
pub(crate) fn dirty_files<'a>(root: &Path, dirs: impl Iterator<Item = &'a Path>) -> Vec<String> {
    let mut cmd = Cmd::new("git")
        .args(["status", "--porcelain", "--untracked-files=all", "--"])
        .cwd(root);
    for dir in dirs {
        cmd = cmd.arg(dir);
    }
    match cmd.stdout() {
        Ok(out) => out
            .lines()
            .filter_map(|l| l.get(3..))
            .map(str::to_owned)
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Applies the edits cargo needs and returns the guard that undoes them.
pub(crate) fn apply(ws: &Workspace, target_dir: &Path) -> Result<TemporaryEdits, PackageError> {
    let subs = sublibraries(ws);
    let mut paths: Vec<PathBuf> = ws.members.iter().map(|m| m.manifest_path.clone()).collect();
    let root = ws.root.join("Cargo.toml");
    if !paths.contains(&root) {
        paths.push(root);
    }
    let own_version: BTreeMap<PathBuf, String> = ws
        .members
        .iter()
        .filter_map(|m| {
            m.companion
                .as_ref()
                .map(|_| (m.manifest_path.clone(), m.version.to_string()))
        })
        .collect();
    let mut edited = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|source| PackageError::Io {
            action: "read",
            path: path.clone(),
            source,
        })?;
        let new = edit_manifest(&text, &subs, own_version.get(&path).map(String::as_str)).map_err(
            |reason| PackageError::Unexpected {
                path: path.clone(),
                reason,
            },
        )?;
        if new != text {
            edited.push((path, text, new));
        }
    }
    let lock = ws.root.join("Cargo.lock");
    let mut originals: Vec<(Original, Option<SystemTime>)> = Vec::new();
    for (path, text, _) in &edited {
        let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        originals.push((
            Original {
                path: path.clone(),
                text: Some(text.clone()),
            },
            mtime,
        ));
    }
    // Cargo rewrites the lock file for the new versions; it is put back too.
    originals.push((
        Original {
            path: lock.clone(),
            text: std::fs::read_to_string(&lock).ok(),
        },
        std::fs::metadata(&lock).and_then(|m| m.modified()).ok(),
    ));
    let backup = backup_path(target_dir);
    let io = |action: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| PackageError::Io {
            action,
            path,
            source,
        }
    };
    if let Some(dir) = backup.parent() {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    }
    let plain: Vec<&Original> = originals.iter().map(|(o, _)| o).collect();
    let json = serde_json::to_string(&plain).map_err(|e| PackageError::Unexpected {
        path: backup.clone(),
        reason: e.to_string(),
    })?;
    std::fs::write(&backup, json).map_err(io("write", &backup))?;
    let guard = TemporaryEdits { originals, backup };
    for (path, _, new) in &edited {
        std::fs::write(path, new).map_err(io("write", path))?;
    }
    Ok(guard)
}

/// One user manifest with the sublibraries versioned: `own_version` for
/// the sublibrary's own `package.version`, and `=V` on every path
/// dependency on a sublibrary (including `[workspace.dependencies]`).
fn edit_manifest(
    text: &str,
    subs: &BTreeMap<String, String>,
    own_version: Option<&str>,
) -> Result<String, String> {
    let mut doc: DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    if let Some(v) = own_version
        && let Some(package) = doc.get_mut("package").and_then(Item::as_table_like_mut)
    {
        package.insert("version", value(v));
    }
    let pin = |table: &mut Table| {
        for (key, item) in table.iter_mut() {
            let Some(entry) = item.as_table_like_mut() else {
                continue;
            };
            if entry.get("path").is_none() {
                continue;
            }
            let real = entry
                .get("package")
                .and_then(Item::as_str)
                .unwrap_or(key.get())
                .to_owned();
            if let Some(v) = subs.get(&real) {
                entry.insert("version", value(format!("={v}")));
            }
        }
    };
    for name in DEP_TABLES {
        if let Some(t) = doc.get_mut(name).and_then(Item::as_table_mut) {
            pin(t);
        }
    }
    if let Some(targets) = doc.get_mut("target").and_then(Item::as_table_mut) {
        for (_, target) in targets.iter_mut() {
            for name in DEP_TABLES {
                if let Some(t) = target.get_mut(name).and_then(Item::as_table_mut) {
                    pin(t);
                }
            }
        }
    }
    if let Some(t) = doc
        .get_mut("workspace")
        .and_then(|w| w.get_mut("dependencies"))
        .and_then(Item::as_table_mut)
    {
        pin(t);
    }
    Ok(doc.to_string())
}

/// The sublibrary's packaged (normalized) manifest as the companion's.
pub(crate) fn companion_manifest(
    text: &str,
    member: &Member,
    parent: &str,
) -> Result<String, String> {
    let mut doc: DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    let package = doc
        .get_mut("package")
        .and_then(Item::as_table_mut)
        .ok_or("missing `[package]`")?;
    package.insert("name", value(&member.name));
    package.insert("version", value(member.version.to_string()));
    if let Some(d) = &member.description {
        package.insert("description", value(d));
    }
    if let Some(l) = &member.license {
        package.insert("license", value(l));
        package.remove("license-file");
    }
    if let Some(r) = &member.repository {
        package.insert("repository", value(r));
    }
    // `publish = false` was how cargo saw the sublibrary; the companion is
    // published with its parent.
    package.remove("publish");
    let metadata = package
        .entry("metadata")
        .or_insert_with(|| Item::Table(Table::new()));
    let convoy = metadata
        .as_table_like_mut()
        .ok_or("`package.metadata` is not a table")?
        .entry("convoy")
        .or_insert(Item::Table(Table::new()));
    convoy
        .as_table_like_mut()
        .ok_or("`package.metadata.convoy` is not a table")?
        .insert("sublibrary-of", value(parent));
    Ok(doc.to_string())
}

/// `.cargo_vcs_info.json` without the `dirty` flag that only Convoy's own
/// temporary edits caused.
pub(crate) fn clean_vcs_info(text: &str) -> Option<String> {
    let mut info: serde_json::Value = serde_json::from_str(text).ok()?;
    info.get_mut("git")?.as_object_mut()?.remove("dirty")?;
    serde_json::to_string_pretty(&info).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_path_dependencies_on_sublibraries_only() {
        let subs = BTreeMap::from([("helper".to_owned(), "1.2.0".to_owned())]);
        let text = "[package]\nname = \"app\"\nversion = \"1.2.0\"\n\n[dependencies]\nhelper = { path = \"../helper\" }\nh2 = { path = \"../h2\", package = \"helper\" }\nother = { path = \"../other\", version = \"0.1\" }\nserde = \"1\"\n\n[target.'cfg(unix)'.build-dependencies]\nhelper = { path = \"../helper\" }\n";
        let out = edit_manifest(text, &subs, None).expect("edits");
        let doc: toml::Value = toml::from_str(&out).expect("toml");
        assert_eq!(
            doc["dependencies"]["helper"]["version"].as_str(),
            Some("=1.2.0")
        );
        assert_eq!(
            doc["dependencies"]["h2"]["version"].as_str(),
            Some("=1.2.0")
        );
        assert_eq!(
            doc["dependencies"]["other"]["version"].as_str(),
            Some("0.1")
        );
        assert_eq!(
            doc["target"]["cfg(unix)"]["build-dependencies"]["helper"]["version"].as_str(),
            Some("=1.2.0")
        );
        let own =
            edit_manifest("[package]\nname = \"helper\"\n", &subs, Some("1.2.0")).expect("edits");
        assert!(own.contains("version = \"1.2.0\""), "{own}");
    }

    /// The edits are undone when the guard drops, and by [`recover`] when
    /// the run was killed before it could drop.
    #[test]
    fn user_files_come_back_byte_for_byte() {
        use convoy_workspace::testing::{Pkg, WorkspaceBuilder};
        let dir = tempfile::tempdir().expect("tempdir");
        let manifest = WorkspaceBuilder::new()
            .package(Pkg::new("app").dep("util", r#"{ path = "../util" }"#))
            .package(Pkg::new("util").unversioned())
            .write(dir.path())
            .expect("workspace");
        let ws = convoy_workspace::load(Some(&manifest)).expect("loads");
        let files = [
            dir.path().join("crates/app/Cargo.toml"),
            dir.path().join("crates/util/Cargo.toml"),
        ];
        let before: Vec<String> = files
            .iter()
            .map(|f| std::fs::read_to_string(f).expect("read"))
            .collect();
        let target = dir.path().join("target");
        let guard = apply(&ws, &target).expect("applies");
        let during = std::fs::read_to_string(&files[0]).expect("read");
        assert!(during.contains("version = \"=0.1.0\""), "{during}");
        drop(guard);
        let after: Vec<String> = files
            .iter()
            .map(|f| std::fs::read_to_string(f).expect("read"))
            .collect();
        assert_eq!(before, after);
        assert!(!dir.path().join("Cargo.lock").exists());

        std::mem::forget(apply(&ws, &target).expect("applies"));
        assert_ne!(std::fs::read_to_string(&files[1]).expect("read"), before[1]);
        assert!(recover(&target));
        assert_eq!(std::fs::read_to_string(&files[1]).expect("read"), before[1]);
        assert!(!recover(&target), "nothing left to undo");
    }

    #[test]
    fn vcs_info_loses_only_the_dirty_flag() {
        let text = "{\n  \"git\": {\n    \"sha1\": \"abc\",\n    \"dirty\": true\n  },\n  \"path_in_vcs\": \"app\"\n}";
        let clean = "{\n  \"git\": {\n    \"sha1\": \"abc\"\n  },\n  \"path_in_vcs\": \"app\"\n}";
        assert_eq!(clean_vcs_info(text).as_deref(), Some(clean));
        assert_eq!(clean_vcs_info(clean), None);
    }
}
