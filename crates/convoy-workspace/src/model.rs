//! The data kept about a workspace; plain values so that tests and benchmarks
//! can build one without running cargo.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use semver::{Version, VersionReq};

/// A Cargo workspace reduced to what publishing needs.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The directory of the root `Cargo.toml`.
    pub root: PathBuf,
    /// The members, sorted by name: outputs are deterministic and lookups
    /// binary-search. Code that builds a `Workspace` by hand must keep it so.
    pub members: Vec<Member>,
    /// `[workspace.metadata.convoy]`, or `null`; read by the checks for lint
    /// severities.
    pub convoy_metadata: serde_json::Value,
    /// Sublibraries that could not be given a parent (see
    /// `docs/SUBLIBRARIES.md`); `check` reports each.
    pub sublibrary_problems: Vec<crate::SublibraryProblem>,
}

impl Workspace {
    /// The member called `name`. Cargo refuses two members with one name, so
    /// the name is a key.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.member_index(name).map(|i| &self.members[i])
    }

    /// The index of the member called `name` in [`Workspace::members`].
    /// A binary search, which keeps the checks linear on large workspaces;
    /// it relies on `members` being sorted by name, as documented there.
    pub fn member_index(&self, name: &str) -> Option<usize> {
        self.members
            .binary_search_by(|m| m.name.as_str().cmp(name))
            .ok()
    }
}

/// Where a member may be published, from `package.publish`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publish {
    /// No `publish` key (or `true`): any registry.
    Anywhere,
    /// `publish = false` (cargo reports it as an empty allow-list).
    Never,
    /// `publish = ["name", …]`: only these registries; crates.io is
    /// `crates-io`.
    Only(Vec<String>),
}

impl Publish {
    /// Whether `registry` (a name from cargo config, `crates-io` for
    /// crates.io) is allowed. `None` means a registry given by URL only,
    /// which an allow-list cannot name.
    pub fn allows(&self, registry: Option<&str>) -> bool {
        match self {
            Publish::Anywhere => true,
            Publish::Never => false,
            Publish::Only(list) => registry.is_some_and(|r| list.iter().any(|l| l == r)),
        }
    }
}

/// A workspace member.
#[derive(Debug, Clone)]
pub struct Member {
    /// The package name.
    pub name: String,
    /// The package version, inheritance resolved.
    pub version: Version,
    /// The member's `Cargo.toml`.
    pub manifest_path: PathBuf,
    /// Its `publish` setting.
    pub publish: Publish,
    /// `package.description`.
    pub description: Option<String>,
    /// `package.license`.
    pub license: Option<String>,
    /// `package.license-file`, as written (relative to the package).
    pub license_file: Option<PathBuf>,
    /// `package.repository`.
    pub repository: Option<String>,
    /// `package.readme`, as cargo resolved it (it fills in `README.md` when
    /// that file exists and the key is absent).
    pub readme: Option<PathBuf>,
    /// `package.keywords`.
    pub keywords: Vec<String>,
    /// `package.categories`.
    pub categories: Vec<String>,
    /// `[features]`.
    pub features: BTreeMap<String, Vec<String>>,
    /// Every `[dependencies]`, `[dev-dependencies]` and `[build-dependencies]`
    /// entry, target-specific ones included.
    pub dependencies: Vec<Dependency>,
    /// Set when this member is a sublibrary shipped as a companion of a
    /// published member: then `name`, `version`, `publish`, `description`,
    /// `license` and `repository` are the companion's, not the manifest's.
    pub companion: Option<crate::Companion>,
}

impl Member {
    /// The name cargo knows the package by in the workspace (`-p`), which
    /// differs from [`Member::name`] for a companion.
    pub fn cargo_name(&self) -> &str {
        self.companion
            .as_ref()
            .map_or(self.name.as_str(), |c| c.workspace_name.as_str())
    }

    /// The directory holding the manifest; relative paths in the manifest
    /// start here.
    pub fn dir(&self) -> &Path {
        self.manifest_path.parent().unwrap_or(Path::new("."))
    }
}

/// Which table a dependency sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DepKind {
    /// `[dependencies]`.
    Normal,
    /// `[dev-dependencies]`: needed only for tests, so never an ordering edge.
    Dev,
    /// `[build-dependencies]`.
    Build,
}

impl DepKind {
    /// Normal and build dependencies must exist on the registry before the
    /// dependent is uploaded; dev-dependencies need not.
    pub fn orders(self) -> bool {
        !matches!(self, DepKind::Dev)
    }
}

/// Where a dependency comes from, as far as the manifest says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DepSource {
    /// A registry; `None` is crates.io, otherwise the index URL that cargo
    /// resolved from `registry = "name"`.
    Registry(Option<String>),
    /// `path = "…"`, possibly with a `version` too; the absolute directory.
    Path(PathBuf),
    /// `git = "…"`; the source string cargo reports.
    Git(String),
}

/// One dependency entry of a member.
#[derive(Debug, Clone)]
pub struct Dependency {
    /// The real package name (after `package = "…"`).
    pub name: String,
    /// The name used in code when renamed with `package = "…"`.
    pub rename: Option<String>,
    /// Which table it sits in.
    pub kind: DepKind,
    /// The version requirement. Cargo reports `*` when none is written, so
    /// `has_version` tells the two apart where it matters.
    pub req: VersionReq,
    /// Whether a version requirement other than `*` was written. A path or
    /// git dependency without one cannot be published (unless it is a
    /// dev-dependency, which cargo strips).
    pub has_version: bool,
    /// Where it comes from.
    pub source: DepSource,
    /// The index URL of an alternative registry (`registry = "name"`); `None`
    /// for crates.io.
    pub registry: Option<String>,
    /// `cfg(…)` or a target triple for `[target.….dependencies]`.
    pub target: Option<String>,
    /// `optional = true`.
    pub optional: bool,
}

impl Dependency {
    /// Whether this dependency also has a `path`.
    pub fn path(&self) -> Option<&Path> {
        match &self.source {
            DepSource::Path(p) => Some(p),
            _ => None,
        }
    }
}
