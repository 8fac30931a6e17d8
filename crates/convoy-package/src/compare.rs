//! Whether a package's content differs from a copy the registry holds,
//! ignoring what changes without the crate changing: the commit id cargo
//! records, the lock file Convoy resolves at publish time, and Convoy's own
//! manifest changes.

use std::collections::{BTreeMap, BTreeSet};

use convoy_workspace::{Member, Workspace};

use crate::TargetRegistry;
use crate::manifest::{ManifestRewrite, rewrite_manifest};
use crate::tarball::read_entries;

/// Files left out of the comparison, relative to the package root.
///
/// - `.cargo_vcs_info.json` names the commit the package was made from, so
///   it changes with every commit, touching the crate or not.
/// - `Cargo.lock` is resolved by Convoy when it publishes, against the
///   registry of the day: it changes when a dependency is republished, not
///   when the crate does.
pub const IGNORED_FILES: [&str; 2] = [".cargo_vcs_info.json", "Cargo.lock"];

/// Why two packages could not be compared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompareError {
    /// One of the `.crate` files is not a gzipped tarball.
    #[error("the {which} package cannot be read")]
    Archive {
        /// `local` or `registry`.
        which: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A `Cargo.toml` is not valid TOML.
    #[error("the {which} package's `Cargo.toml` cannot be read: {reason}")]
    Manifest {
        /// `local` or `registry`.
        which: &'static str,
        /// What was wrong.
        reason: String,
    },
}

/// The paths (relative to the package root) whose content differs between
/// `local` and `registry`, or that exist in only one of them; empty when the
/// packages are the same for every purpose but [`IGNORED_FILES`].
///
/// Each `Cargo.toml` is compared after Convoy's rewrite for `target` (which
/// is idempotent, so a copy Convoy published compares as is, and a copy
/// `cargo publish` made gets the same changes) and as TOML values, so that
/// formatting does not count.
pub fn content_differences(
    ws: &Workspace,
    member: &Member,
    target: &TargetRegistry,
    local: &[u8],
    registry: &[u8],
) -> Result<Vec<String>, CompareError> {
    let siblings = sibling_path_deps(ws, member);
    let renames = crate::companion::renames(ws);
    let rewrite = ManifestRewrite {
        siblings: &siblings,
        renames: &renames,
        target_index: (!target.is_crates_io).then_some(target.index_url.as_str()),
    };
    let ours = files("local", local, &rewrite)?;
    let theirs = files("registry", registry, &rewrite)?;
    let paths: BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
    Ok(paths
        .into_iter()
        .filter(|p| ours.get(*p) != theirs.get(*p))
        .cloned()
        .collect())
}

/// A file's comparable content: the manifest as a TOML value, anything else
/// as bytes.
#[derive(PartialEq)]
enum Content {
    Manifest(toml::Table),
    Bytes(Vec<u8>),
}

fn files(
    which: &'static str,
    bytes: &[u8],
    rewrite: &ManifestRewrite<'_>,
) -> Result<BTreeMap<String, Content>, CompareError> {
    let entries = read_entries(bytes).map_err(|source| CompareError::Archive { which, source })?;
    let mut out = BTreeMap::new();
    for entry in entries {
        // Every path starts with `<name>-<version>/`; the comparison is
        // about what is inside.
        let Some((_, rel)) = entry.path.split_once('/') else {
            continue;
        };
        if rel.is_empty() || IGNORED_FILES.contains(&rel) {
            continue;
        }
        let content = if rel == "Cargo.toml" {
            let bad = |reason: String| CompareError::Manifest { which, reason };
            let text = String::from_utf8(entry.data).map_err(|_| bad("not UTF-8".into()))?;
            let text = rewrite_manifest(&text, rewrite)
                .map_err(|e| bad(e.to_string()))?
                .text;
            Content::Manifest(toml::from_str(&text).map_err(|e| bad(e.to_string()))?)
        } else {
            Content::Bytes(entry.data)
        };
        out.insert(rel.to_owned(), content);
    }
    Ok(out)
}

/// Real names of `member`'s path dependencies that are workspace members:
/// the dependencies Convoy's manifest rewrite applies to.
pub(crate) fn sibling_path_deps(ws: &Workspace, member: &Member) -> BTreeSet<String> {
    member
        .dependencies
        .iter()
        .filter(|d| d.path().is_some() && ws.member(&d.name).is_some())
        .map(|d| d.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tarball::{Entry, write_entries};
    use std::path::PathBuf;

    fn package(files: &[(&str, &str)]) -> Vec<u8> {
        let entries: Vec<Entry> = files
            .iter()
            .map(|(path, data)| {
                let mut header = tar::Header::new_gnu();
                header.set_mode(0o644);
                Entry {
                    path: format!("app-0.1.0/{path}"),
                    header,
                    data: data.as_bytes().to_vec(),
                }
            })
            .collect();
        write_entries(&entries).expect("tarball")
    }

    fn workspace() -> (Workspace, Member) {
        let member = |name: &str, deps: Vec<convoy_workspace::Dependency>| Member {
            name: name.into(),
            version: semver::Version::new(0, 1, 0),
            manifest_path: PathBuf::from(format!("/ws/{name}/Cargo.toml")),
            publish: convoy_workspace::Publish::Anywhere,
            description: None,
            license: None,
            license_file: None,
            repository: None,
            readme: None,
            keywords: Vec::new(),
            categories: Vec::new(),
            features: Default::default(),
            dependencies: deps,
            companion: None,
        };
        let dep = convoy_workspace::Dependency {
            name: "base".into(),
            rename: None,
            kind: convoy_workspace::DepKind::Normal,
            req: "^0.1.0".parse().expect("req"),
            has_version: true,
            source: convoy_workspace::DepSource::Path(PathBuf::from("/ws/base")),
            registry: None,
            target: None,
            optional: false,
        };
        let app = member("app", vec![dep]);
        let ws = Workspace {
            root: PathBuf::from("/ws"),
            members: vec![app.clone(), member("base", Vec::new())],
            convoy_metadata: serde_json::Value::Null,
            sublibrary_problems: Vec::new(),
        };
        (ws, app)
    }

    const TARGET: &str = "sparse+http://127.0.0.1:1/index/";

    #[test]
    fn commit_id_lock_file_and_convoys_rewrite_do_not_count() {
        let (ws, app) = workspace();
        let target = TargetRegistry {
            index_url: TARGET.into(),
            is_crates_io: false,
        };
        // What `cargo publish` would have uploaded: no registry-index, its
        // own formatting, another commit id, another lock file.
        let registry = package(&[
            (".cargo_vcs_info.json", r#"{"git":{"sha1":"aaaa"}}"#),
            ("Cargo.lock", "# old lock\n"),
            (
                "Cargo.toml",
                "[package]\nname = \"app\"\nversion = \"0.1.0\"\n\n[dependencies.base]\nversion = \"0.1.0\"\n",
            ),
            ("src/lib.rs", "pub fn f() {}\n"),
        ]);
        // What Convoy packages now.
        let local = package(&[
            (".cargo_vcs_info.json", r#"{"git":{"sha1":"bbbb"}}"#),
            (
                "Cargo.toml",
                &format!(
                    "[package]\nname = \"app\"\nversion = \"0.1.0\"\n[dependencies.base]\nversion = \"0.1.0\"\nregistry-index = \"{TARGET}\"\n"
                ),
            ),
            ("src/lib.rs", "pub fn f() {}\n"),
        ]);
        assert_eq!(
            content_differences(&ws, &app, &target, &local, &registry).expect("compare"),
            Vec::<String>::new()
        );

        let edited = package(&[
            (
                "Cargo.toml",
                "[package]\nname = \"app\"\nversion = \"0.1.0\"\n[dependencies.base]\nversion = \"0.1.1\"\n",
            ),
            ("src/lib.rs", "pub fn g() {}\n"),
            ("README.md", "new\n"),
        ]);
        assert_eq!(
            content_differences(&ws, &app, &target, &edited, &registry).expect("compare"),
            ["Cargo.toml", "README.md", "src/lib.rs"]
        );
        assert!(content_differences(&ws, &app, &target, b"not gzip", &registry).is_err());
    }
}
