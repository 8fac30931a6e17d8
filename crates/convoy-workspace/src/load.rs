//! Building a [`Workspace`] from `cargo metadata`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cargo_metadata::{DependencyKind, Metadata};

use crate::model::{DepKind, DepSource, Dependency, Member, Publish, Workspace};
use crate::process::{Cmd, ProcessError};
use crate::sublibrary::ConvoyKeys;

/// Why the workspace could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// `cargo metadata` failed.
    #[error("failed to read the workspace with `cargo metadata`")]
    Metadata(#[source] ProcessError),
    /// Its output was not what cargo documents.
    #[error("failed to parse the output of `cargo metadata`")]
    Parse(#[source] cargo_metadata::Error),
    /// `cargo package --list` failed for a package.
    #[error("failed to list the files `cargo package` would include for `{package}`")]
    PackageList {
        /// The package.
        package: String,
        /// The failure.
        #[source]
        source: ProcessError,
    },
}

/// Runs `cargo metadata --no-deps` for the workspace holding `manifest_path`
/// (or the current directory) and builds the model. `--no-deps` keeps this
/// offline and fast: publishing needs the manifests, not the resolved graph.
pub fn load(manifest_path: Option<&Path>) -> Result<Workspace, LoadError> {
    let mut cmd = Cmd::cargo().args(["metadata", "--format-version", "1", "--no-deps"]);
    if let Some(path) = manifest_path {
        cmd = cmd.arg("--manifest-path").arg(path);
        // Cargo reads `.cargo/config.toml` from the current directory up, so
        // run where the user would: in the workspace.
        if let Some(dir) = path.parent().filter(|d| d.is_dir()) {
            cmd = cmd.cwd(dir);
        }
    }
    let json = cmd.stdout().map_err(LoadError::Metadata)?;
    let metadata = cargo_metadata::MetadataCommand::parse(json).map_err(LoadError::Parse)?;
    Ok(Workspace::from_metadata(metadata))
}

/// The files `cargo package` would put in `package`'s `.crate`, relative to
/// the package directory, from `cargo package --list`. Taking cargo's own
/// answer means `include`, `exclude` and `.gitignore` are honoured exactly.
///
/// `package` is the name cargo knows ([`Member::cargo_name`]).
pub fn package_file_list(ws: &Workspace, package: &str) -> Result<Vec<PathBuf>, LoadError> {
    let out = Cmd::cargo()
        .args([
            "package",
            "--list",
            "--allow-dirty",
            "--quiet",
            "-p",
            package,
        ])
        .arg("--manifest-path")
        .arg(ws.root.join("Cargo.toml"))
        .cwd(&ws.root)
        .stdout()
        .map_err(|source| LoadError::PackageList {
            package: package.to_owned(),
            source,
        })?;
    Ok(out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(PathBuf::from)
        .collect())
}

impl Workspace {
    /// Builds the model from parsed `cargo metadata` output. Only workspace
    /// members are kept.
    pub fn from_metadata(metadata: Metadata) -> Self {
        let convoy_metadata = metadata
            .workspace_metadata
            .get("convoy")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        let mut packages: Vec<&cargo_metadata::Package> = metadata
            .packages
            .iter()
            .filter(|p| metadata.workspace_members.contains(&p.id))
            .collect();
        packages.sort_by(|a, b| a.name.cmp(&b.name));
        let keys: Vec<ConvoyKeys> = packages
            .iter()
            .map(|p| ConvoyKeys::from_metadata(&p.metadata))
            .collect();
        let mut members: Vec<Member> = packages.into_iter().map(member_from_package).collect();
        let sublibrary_problems = crate::sublibrary::resolve(&mut members, &keys);
        Workspace {
            root: metadata.workspace_root.into_std_path_buf(),
            members,
            convoy_metadata,
            sublibrary_problems,
        }
    }
}

fn member_from_package(p: &cargo_metadata::Package) -> Member {
    let publish = match &p.publish {
        None => Publish::Anywhere,
        Some(list) if list.is_empty() => Publish::Never,
        Some(list) => Publish::Only(list.clone()),
    };
    let dependencies = p
        .dependencies
        .iter()
        .map(|d| {
            let source = if let Some(path) = &d.path {
                DepSource::Path(path.clone().into_std_path_buf())
            } else {
                match &d.source {
                    Some(s) if s.repr.starts_with("git+") => DepSource::Git(s.repr.clone()),
                    _ => DepSource::Registry(d.registry.clone()),
                }
            };
            Dependency {
                name: d.name.clone(),
                rename: d.rename.clone(),
                kind: match d.kind {
                    DependencyKind::Development => DepKind::Dev,
                    DependencyKind::Build => DepKind::Build,
                    _ => DepKind::Normal,
                },
                has_version: d.req != semver::VersionReq::STAR,
                req: d.req.clone(),
                source,
                registry: d.registry.clone(),
                target: d.target.as_ref().map(|t| t.to_string()),
                optional: d.optional,
            }
        })
        .collect();
    Member {
        name: p.name.to_string(),
        version: p.version.clone(),
        manifest_path: p.manifest_path.clone().into_std_path_buf(),
        publish,
        description: p.description.clone(),
        license: p.license.clone(),
        license_file: p.license_file.clone().map(|f| f.into_std_path_buf()),
        repository: p.repository.clone(),
        readme: p.readme.clone().map(|f| f.into_std_path_buf()),
        keywords: p.keywords.clone(),
        categories: p.categories.clone(),
        features: p.features.clone().into_iter().collect::<BTreeMap<_, _>>(),
        dependencies,
        companion: None,
    }
}
