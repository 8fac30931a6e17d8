//! Workspaces generated on disk, for the tests of Convoy's crates.
//!
//! Tests describe a workspace in a few lines and get real manifests, so that
//! what they check is what `cargo metadata` reports, inheritance included.
//! Packages get `description`, `license` and `repository` by default so that
//! a generated workspace passes the checks unless a test says otherwise.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A package to generate under `crates/<name>`.
#[derive(Debug, Clone)]
pub struct Pkg {
    name: String,
    version: Option<String>,
    fields: Vec<(String, String)>,
    sections: Vec<(String, Vec<String>)>,
    files: Vec<(String, Vec<u8>)>,
    dir: Option<String>,
    metadata_fields: bool,
    raw: String,
}

impl Pkg {
    /// A library package `name` at version `0.1.0`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: Some("\"0.1.0\"".to_owned()),
            fields: Vec::new(),
            sections: Vec::new(),
            files: Vec::new(),
            dir: None,
            metadata_fields: true,
            raw: String::new(),
        }
    }

    /// Sets the version (a plain string such as `1.0.0`).
    pub fn version(mut self, v: &str) -> Self {
        self.version = Some(format!("\"{v}\""));
        self
    }

    /// Writes no `version` at all: cargo then reports `0.0.0` and
    /// `publish = false`, which is what makes a sublibrary.
    pub fn unversioned(mut self) -> Self {
        self.version = None;
        self
    }

    /// Writes `version.workspace = true`.
    pub fn version_inherited(mut self) -> Self {
        self.version = Some("{ workspace = true }".to_owned());
        self
    }

    /// Adds `key = value` under `[package]`; `value` is raw TOML.
    pub fn field(mut self, key: &str, value: &str) -> Self {
        self.fields.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Leaves out the default `description`, `license` and `repository`.
    pub fn bare(mut self) -> Self {
        self.metadata_fields = false;
        self
    }

    /// Adds `name = spec` to the table `section` (such as `dependencies` or
    /// `target.'cfg(unix)'.dependencies`); `spec` is raw TOML.
    pub fn entry(mut self, section: &str, name: &str, spec: &str) -> Self {
        let line = format!("{name} = {spec}");
        match self.sections.iter_mut().find(|(s, _)| s == section) {
            Some((_, lines)) => lines.push(line),
            None => self.sections.push((section.to_owned(), vec![line])),
        }
        self
    }

    /// Raw TOML appended to the manifest (such as a whole `[features]`
    /// table).
    pub fn entry_raw(mut self, toml: &str) -> Self {
        self.raw.push_str(toml);
        self.raw.push('\n');
        self
    }

    /// The package name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A `[dependencies]` entry.
    pub fn dep(self, name: &str, spec: &str) -> Self {
        self.entry("dependencies", name, spec)
    }

    /// A `[dev-dependencies]` entry.
    pub fn dev_dep(self, name: &str, spec: &str) -> Self {
        self.entry("dev-dependencies", name, spec)
    }

    /// A `[build-dependencies]` entry.
    pub fn build_dep(self, name: &str, spec: &str) -> Self {
        self.entry("build-dependencies", name, spec)
    }

    /// A path dependency with a version on the sibling member `name`.
    pub fn local(self, name: &str, version: &str) -> Self {
        let spec = format!("{{ path = \"../{name}\", version = \"{version}\" }}");
        self.dep(name, &spec)
    }

    /// A path dependency with a version on the member `name` found at `dir`
    /// relative to this package.
    pub fn local_at(self, name: &str, dir: &str, version: &str) -> Self {
        let spec = format!("{{ path = \"{dir}\", version = \"{version}\" }}");
        self.dep(name, &spec)
    }

    /// A file inside the package directory.
    pub fn file(mut self, path: &str, contents: impl Into<Vec<u8>>) -> Self {
        self.files.push((path.to_owned(), contents.into()));
        self
    }

    /// Puts the package at `dir` (relative to the workspace root) instead of
    /// `crates/<name>`.
    pub fn at(mut self, dir: &str) -> Self {
        self.dir = Some(dir.to_owned());
        self
    }

    fn manifest(&self) -> String {
        let mut s = String::from("[package]\n");
        let _ = writeln!(s, "name = \"{}\"", self.name);
        if let Some(v) = &self.version {
            let _ = writeln!(s, "version = {v}");
        }
        s.push_str("edition = \"2021\"\n");
        if self.metadata_fields {
            let _ = writeln!(s, "description = \"The {} crate\"", self.name);
            s.push_str("license = \"MIT OR Apache-2.0\"\n");
            s.push_str("repository = \"https://example.invalid/repo\"\n");
        }
        for (k, v) in &self.fields {
            let _ = writeln!(s, "{k} = {v}");
        }
        for (section, lines) in &self.sections {
            let _ = writeln!(s, "\n[{section}]");
            for l in lines {
                s.push_str(l);
                s.push('\n');
            }
        }
        s.push('\n');
        s.push_str(&self.raw);
        s
    }
}

/// A workspace to generate.
#[derive(Debug, Clone, Default)]
pub struct WorkspaceBuilder {
    root_package: Option<Pkg>,
    packages: Vec<Pkg>,
    workspace_extra: String,
    members: Option<Vec<String>>,
}

impl WorkspaceBuilder {
    /// A virtual workspace with `members = ["crates/*"]`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the root manifest a package too (a non-virtual workspace).
    pub fn root_package(mut self, pkg: Pkg) -> Self {
        self.root_package = Some(pkg);
        self
    }

    /// Adds a member.
    pub fn package(mut self, pkg: Pkg) -> Self {
        self.packages.push(pkg);
        self
    }

    /// Raw TOML appended after `[workspace]` (such as
    /// `[workspace.package]` or `[workspace.metadata.convoy.lints]` tables).
    pub fn workspace_toml(mut self, toml: &str) -> Self {
        self.workspace_extra.push_str(toml);
        self.workspace_extra.push('\n');
        self
    }

    /// Replaces the default `members = ["crates/*"]`.
    pub fn members(mut self, members: &[&str]) -> Self {
        self.members = Some(members.iter().map(|m| (*m).to_owned()).collect());
        self
    }

    /// Writes everything under `root` and returns the root manifest path.
    pub fn write(&self, root: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(root)?;
        let mut manifest = String::new();
        if let Some(pkg) = &self.root_package {
            manifest.push_str(&pkg.manifest());
            write_files(root, pkg)?;
        }
        let members = self
            .members
            .clone()
            .unwrap_or_else(|| vec!["crates/*".to_owned()]);
        let members: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
        let _ = write!(
            manifest,
            "\n[workspace]\nresolver = \"2\"\nmembers = [{}]\n{}",
            members.join(", "),
            self.workspace_extra
        );
        std::fs::write(root.join("Cargo.toml"), manifest)?;
        for pkg in &self.packages {
            let dir = match &pkg.dir {
                Some(d) => root.join(d),
                None => root.join("crates").join(&pkg.name),
            };
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("Cargo.toml"), pkg.manifest())?;
            write_files(&dir, pkg)?;
        }
        Ok(root.join("Cargo.toml"))
    }
}

fn write_files(dir: &Path, pkg: &Pkg) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("src"))?;
    if !pkg.files.iter().any(|(p, _)| p == "src/lib.rs") {
        std::fs::write(dir.join("src/lib.rs"), "")?;
    }
    for (path, contents) in &pkg.files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, contents)?;
    }
    Ok(())
}

/// Panics unless `order` is a valid publish order of `selected`: every
/// member once, every ordering edge (normal or build, see
/// [`crate::is_ordering_edge`]) pointing backwards in the order and to a lower
/// wave, waves never decreasing, and waves minimal (a member in wave `w > 0`
/// has a dependency in wave `w - 1`; one in wave 0 has none).
pub fn assert_valid_order(selected: &[&crate::Member], order: &crate::PublishOrder) {
    use std::collections::HashMap;
    let pos: HashMap<&str, usize> = order
        .packages
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    assert_eq!(pos.len(), order.packages.len(), "a member appears twice");
    assert_eq!(pos.len(), selected.len(), "order and selection differ");
    for w in order.packages.windows(2) {
        assert!(w[0].wave <= w[1].wave, "waves decrease at `{}`", w[1].name);
    }
    for m in selected {
        let me = &order.packages[pos[m.name.as_str()]];
        let mut deepest: Option<usize> = None;
        for d in &m.dependencies {
            let Some(target) = selected.iter().find(|t| t.name == d.name) else {
                continue;
            };
            if target.name == m.name || !crate::is_ordering_edge(d, target) {
                continue;
            }
            let dep = &order.packages[pos[target.name.as_str()]];
            assert!(
                pos[target.name.as_str()] < pos[m.name.as_str()],
                "`{}` is published before its dependency `{}`",
                m.name,
                target.name
            );
            assert!(
                dep.wave < me.wave,
                "`{}` is not in a later wave than `{}`",
                m.name,
                target.name
            );
            deepest = Some(deepest.map_or(dep.wave, |w: usize| w.max(dep.wave)));
        }
        match deepest {
            None => assert_eq!(
                me.wave, 0,
                "`{}` has no dependency but is in wave {}",
                m.name, me.wave
            ),
            Some(w) => assert_eq!(me.wave, w + 1, "wave of `{}` is not minimal", m.name),
        }
    }
}
