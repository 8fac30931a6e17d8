//! `cargo convoy version`: new versions for the selected members, carried
//! through every requirement on them, then `Cargo.lock` and changelogs.
//!
//! Planning reads every manifest with `toml_edit` and computes all new
//! versions and requirements before anything is written, so a refusal
//! (a version that does not move forward, a manifest that does not parse)
//! leaves the workspace untouched; `--dry-run` stops there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use convoy_index_client::{RegistryRequest, SparseIndex};
use convoy_workspace::process::Cmd;
use convoy_workspace::{DepKind, Member, Publish, Selection, Workspace};
use semver::Version;
use serde::Serialize;
use toml_edit::{DocumentMut, Item, Value};

use crate::bump::{BumpSpec, Level, bump, dependent_bump, updated_requirement, validate_pre_id};
use crate::config::{DependentBump, WorkflowConfig, tag_version};
use crate::conventional::{self, Change};
use crate::semver_checks::{self, SemverChecks};
use crate::{Git, WorkflowError, changelog, io_error};

/// What to bump, and how.
#[derive(Debug, Clone)]
pub struct VersionOptions {
    /// The runtime the registry reads block on: the CLI's one runtime,
    /// multi-thread. [`version`] must not be called from one of its tasks.
    pub runtime: tokio::runtime::Handle,
    /// `--manifest-path`.
    pub manifest_path: Option<PathBuf>,
    /// `-p` / `--exclude`. Without `-p`, the members `changed` reports.
    pub selection: Selection,
    /// The registry `changed` and cargo-semver-checks compare with.
    pub registry: RegistryRequest,
    /// `patch`, `minor`, `major`, `X.Y.Z` or `auto`.
    pub spec: BumpSpec,
    /// `--pre ID`.
    pub pre: Option<String>,
    /// `--dry-run`: plan only, write nothing.
    pub dry_run: bool,
}

/// Why a member gets a new version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Why {
    /// It was selected (or `changed` reported it).
    Selected,
    /// Its packaged manifest changes because a dependency moved
    /// (`dependent-bump = "patch"`).
    Dependent,
    /// It shares `[workspace.package].version` with a member that moved.
    SharedVersion,
}

/// One member's new version.
#[derive(Debug, Clone, Serialize)]
pub struct Bumped {
    /// Package name.
    pub name: String,
    /// The version before.
    pub from: String,
    /// The version after.
    pub to: String,
    /// Why it moves.
    pub why: Why,
    /// With `auto`: the level the commits (and cargo-semver-checks) asked
    /// for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// The conventional commits since its last tag that touched it.
    pub changes: Vec<Change>,
    /// The changelog written (or, with `--dry-run`, that would be), relative
    /// to the workspace root; `None` for members that are not published.
    pub changelog: Option<PathBuf>,
}

/// One requirement rewritten.
#[derive(Debug, Clone, Serialize)]
pub struct RequirementChange {
    /// The manifest, relative to the workspace root.
    pub manifest: PathBuf,
    /// The table, as a TOML header (`[workspace.dependencies]`,
    /// `[target.'cfg(unix)'.build-dependencies]`, …).
    pub table: String,
    /// The key of the entry (the name used in code, if renamed).
    pub dependency: String,
    /// The bumped crate it points at.
    pub package: String,
    /// The requirement before.
    pub from: String,
    /// The requirement after.
    pub to: String,
}

/// The result document of `cargo convoy version --format json`.
#[derive(Debug, Clone, Serialize)]
pub struct VersionReport {
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Whether `auto` could consult cargo-semver-checks.
    pub semver_checks: SemverChecks,
    /// New versions, by name.
    pub packages: Vec<Bumped>,
    /// Requirements rewritten.
    pub requirements: Vec<RequirementChange>,
    /// Files written (or that would be), relative to the workspace root.
    pub files: Vec<PathBuf>,
    /// Things the user should know, one sentence each.
    pub notes: Vec<String>,
}

/// A manifest being edited.
struct Manifest {
    path: PathBuf,
    doc: DocumentMut,
    dirty: bool,
}

/// A dependency entry on a workspace member, as written.
#[derive(Debug, Clone)]
struct Entry {
    manifest: usize,
    /// The keys leading to its table.
    table: Vec<String>,
    key: String,
    /// The member it points at.
    package: String,
    kind: DepKind,
    /// `workspace = true`: the requirement lives in
    /// `[workspace.dependencies]`.
    inherited: bool,
    /// The written requirement; only path entries (or
    /// `[workspace.dependencies]` entries) are counted, a bare registry
    /// requirement on a member's name means the registry's crate.
    req: Option<String>,
}

const DEP_TABLES: [(&str, DepKind); 3] = [
    ("dependencies", DepKind::Normal),
    ("build-dependencies", DepKind::Build),
    ("dev-dependencies", DepKind::Dev),
];

/// `cargo convoy version`.
pub fn version(opts: &VersionOptions) -> Result<VersionReport, WorkflowError> {
    if let Some(pre) = &opts.pre {
        validate_pre_id(pre).map_err(|reason| WorkflowError::Config { reason })?;
    }
    let ws = convoy_workspace::load(opts.manifest_path.as_deref())?;
    let config = WorkflowConfig::from_metadata(&ws.convoy_metadata)?;
    let git = Git::new(&ws.root);
    let in_git = git.is_repository();
    let mut notes = Vec::new();

    // The members to bump, and the registry when it is needed.
    let mut registry: Option<Registry> = None;
    let selected: Vec<&Member> = if opts.selection.packages.is_empty() {
        let candidates = convoy_workspace::select(&ws, &opts.selection)?;
        let (target, _) = open_registry(&mut registry, opts, &ws)?;
        let report = crate::changed::compare(&opts.runtime, &ws, &candidates, target)?;
        let changed: BTreeSet<String> = report
            .into_iter()
            .filter(|p| p.changed)
            .map(|p| p.name)
            .collect();
        if changed.is_empty() {
            notes.push(format!(
                "nothing changed since `{}`'s copy; select packages with `-p` to bump anyway",
                target.label()
            ));
        }
        candidates
            .into_iter()
            .filter(|m| changed.contains(&m.name))
            .collect()
    } else {
        convoy_workspace::select(&ws, &opts.selection)?
    };

    let mut commits = CommitCache::new(&ws, &git, in_git, &config.tag_format);
    let semver = if opts.spec == BumpSpec::Auto {
        if !in_git {
            return Err(WorkflowError::NotARepository {
                dir: ws.root.clone(),
                why: "`auto` reads the commits since each crate's last tag",
            });
        }
        let found = semver_checks::detect();
        if found == SemverChecks::NotInstalled {
            notes.push(
                "cargo-semver-checks is not installed; `auto` takes levels from conventional commits only (`cargo install cargo-semver-checks` to check the API too)"
                    .to_owned(),
            );
        }
        found
    } else {
        SemverChecks::NotUsed
    };

    let pre = opts.pre.as_deref();
    let mut plan: BTreeMap<String, (Version, Why, Option<Level>)> = BTreeMap::new();
    for m in &selected {
        let (to, level) = match &opts.spec {
            BumpSpec::Level(level) => (bump(&m.version, *level, pre), None),
            BumpSpec::Exact(v) => {
                let mut v = v.clone();
                if let Some(id) = pre.filter(|_| v.pre.is_empty()) {
                    // Validated above, so this parses.
                    v.pre = semver::Prerelease::new(&format!("{id}.1")).map_err(|e| {
                        WorkflowError::Config {
                            reason: e.to_string(),
                        }
                    })?;
                }
                if v <= m.version {
                    return Err(WorkflowError::Version {
                        name: m.name.clone(),
                        reason: format!("{v} is not newer than the current {}", m.version),
                    });
                }
                (v, None)
            }
            BumpSpec::Auto => {
                let changes = commits.changes(m)?;
                let mut level = conventional::level_of(&changes);
                if let SemverChecks::Installed { .. } = semver {
                    let (_, index) = open_registry(&mut registry, opts, &ws)?;
                    level = level.max(semver_level(&ws, m, index)?);
                }
                let level = match level {
                    Some(l) => l,
                    None => {
                        notes.push(format!(
                            "`{}`: no `feat`, `fix`, `perf` or breaking commit since {}; a patch release",
                            m.name,
                            commits.since_text(m)
                        ));
                        Level::Patch
                    }
                };
                (bump(&m.version, level, pre), Some(level))
            }
        };
        plan.insert(m.name.clone(), (to, Why::Selected, level));
    }

    let mut manifests = read_manifests(&ws)?;
    let entries = dependency_entries(&ws, &manifests);
    let inherits: BTreeSet<String> = ws
        .members
        .iter()
        .filter(|m| {
            member_manifest(&manifests, m).is_some_and(|i| inherits_version(&manifests[i].doc))
        })
        .map(|m| m.name.clone())
        .collect();
    let workspace_reqs = workspace_requirements(&manifests[0].doc);

    // Carry the bumps until nothing more moves.
    loop {
        let mut moved = false;
        let shared: Option<Version> = plan
            .iter()
            .filter(|(n, _)| inherits.contains(*n))
            .map(|(_, (v, _, _))| v.clone())
            .max();
        if let Some(shared) = shared {
            for name in &inherits {
                match plan.get_mut(name) {
                    Some((v, _, _)) if *v == shared => {}
                    Some((v, _, _)) => {
                        *v = shared.clone();
                        moved = true;
                    }
                    None => {
                        plan.insert(name.clone(), (shared.clone(), Why::SharedVersion, None));
                        moved = true;
                    }
                }
            }
        }
        for m in &ws.members {
            if plan.contains_key(&m.name) || m.publish == Publish::Never {
                continue;
            }
            if config.dependent_bump == DependentBump::None {
                continue;
            }
            let Some(index) = member_manifest(&manifests, m) else {
                continue;
            };
            let touched = entries.iter().any(|e| {
                e.manifest == index
                    && e.kind != DepKind::Dev
                    && is_member_entry_of(e, m, &ws)
                    && plan.get(&e.package).is_some_and(|(v, _, _)| {
                        let req = if e.inherited {
                            workspace_reqs.get(&e.key).cloned().flatten()
                        } else {
                            e.req.clone()
                        };
                        req.is_some_and(|r| updated_requirement(&r, v).is_some())
                    })
            });
            if touched {
                plan.insert(
                    m.name.clone(),
                    (dependent_bump(&m.version, pre), Why::Dependent, None),
                );
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }

    // Edit the manifests in memory.
    let mut requirements = Vec::new();
    let mut workspace_version_done = false;
    for (name, (to, _, _)) in &plan {
        let Some(m) = ws.member(name) else { continue };
        let Some(index) = member_manifest(&manifests, m) else {
            return Err(WorkflowError::Manifest {
                path: m.manifest_path.clone(),
                reason: "it is not among the workspace's manifests".into(),
            });
        };
        if inherits.contains(name) {
            if !workspace_version_done {
                let root = &mut manifests[0];
                set_string(
                    &mut root.doc,
                    &["workspace", "package", "version"],
                    &to.to_string(),
                )
                .map_err(|reason| WorkflowError::Manifest {
                    path: root.path.clone(),
                    reason,
                })?;
                root.dirty = true;
                workspace_version_done = true;
            }
        } else {
            let manifest = &mut manifests[index];
            set_string(&mut manifest.doc, &["package", "version"], &to.to_string()).map_err(
                |reason| WorkflowError::Manifest {
                    path: manifest.path.clone(),
                    reason,
                },
            )?;
            manifest.dirty = true;
        }
    }
    for e in &entries {
        if e.inherited {
            continue;
        }
        let (Some((to, _, _)), Some(req)) = (plan.get(&e.package), &e.req) else {
            continue;
        };
        let Some(next) = updated_requirement(req, to) else {
            continue;
        };
        let manifest = &mut manifests[e.manifest];
        let mut keys: Vec<&str> = e.table.iter().map(String::as_str).collect();
        keys.push(&e.key);
        keys.push("version");
        set_string(&mut manifest.doc, &keys, &next).map_err(|reason| WorkflowError::Manifest {
            path: manifest.path.clone(),
            reason,
        })?;
        manifest.dirty = true;
        requirements.push(RequirementChange {
            manifest: relative(&ws.root, &manifest.path),
            table: table_header(&e.table),
            dependency: e.key.clone(),
            package: e.package.clone(),
            from: req.clone(),
            to: next,
        });
    }

    // Changelogs, and which requirement changes each bumped crate carries.
    let date = today();
    let mut packages = Vec::new();
    let mut changelogs: Vec<(PathBuf, String)> = Vec::new();
    for (name, (to, why, level)) in &plan {
        let Some(m) = ws.member(name) else { continue };
        let changes = if in_git {
            commits.changes(m)?
        } else {
            Vec::new()
        };
        let changelog_path = (m.publish != Publish::Never).then(|| m.dir().join(&config.changelog));
        if let Some(path) = &changelog_path {
            let index = member_manifest(&manifests, m);
            let mut deps: Vec<String> = requirements
                .iter()
                .filter(|r| {
                    index.is_some_and(|i| manifests[i].path == ws.root.join(&r.manifest))
                        && !r.table.contains("dev-dependencies")
                })
                .map(|r| format!("`{}` requirement `{}` (was `{}`)", r.package, r.to, r.from))
                .collect();
            for e in entries
                .iter()
                .filter(|e| e.inherited && e.kind != DepKind::Dev && index == Some(e.manifest))
            {
                if let (Some((v, _, _)), Some(Some(req))) =
                    (plan.get(&e.package), workspace_reqs.get(&e.key))
                    && let Some(next) = updated_requirement(req, v)
                {
                    deps.push(format!(
                        "`{}` requirement `{next}` (was `{req}`, from the workspace)",
                        e.package
                    ));
                }
            }
            deps.sort();
            deps.dedup();
            let existing = match std::fs::read_to_string(path) {
                Ok(text) => Some(text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    return Err(WorkflowError::Io {
                        action: "read",
                        path: path.clone(),
                        source: e,
                    });
                }
            };
            let section = changelog::section(&to.to_string(), &date, &changes, &deps);
            changelogs.push((
                path.clone(),
                changelog::insert(existing.as_deref(), &section),
            ));
        }
        packages.push(Bumped {
            name: name.clone(),
            from: m.version.to_string(),
            to: to.to_string(),
            why: *why,
            level: *level,
            changes,
            changelog: changelog_path.map(|p| relative(&ws.root, &p)),
        });
    }

    // `[workspace.dependencies]`, once for all members inheriting them.
    for (key, req) in &workspace_reqs {
        let Some(req) = req else { continue };
        let Some(package) = workspace_dep_package(&manifests[0].doc, key) else {
            continue;
        };
        let Some((to, _, _)) = plan.get(&package) else {
            continue;
        };
        let Some(next) = updated_requirement(req, to) else {
            continue;
        };
        let root = &mut manifests[0];
        set_string(
            &mut root.doc,
            &["workspace", "dependencies", key, "version"],
            &next,
        )
        .map_err(|reason| WorkflowError::Manifest {
            path: root.path.clone(),
            reason,
        })?;
        root.dirty = true;
        requirements.push(RequirementChange {
            manifest: relative(&ws.root, &root.path),
            table: "[workspace.dependencies]".into(),
            dependency: key.clone(),
            package,
            from: req.clone(),
            to: next,
        });
    }

    let mut files: Vec<PathBuf> = manifests
        .iter()
        .filter(|m| m.dirty)
        .map(|m| relative(&ws.root, &m.path))
        .collect();
    let lock = ws.root.join("Cargo.lock");
    let has_lock = lock.is_file();
    if has_lock && !plan.is_empty() {
        files.push(PathBuf::from("Cargo.lock"));
    }
    files.extend(changelogs.iter().map(|(p, _)| relative(&ws.root, p)));

    if !opts.dry_run {
        for m in manifests.iter().filter(|m| m.dirty) {
            std::fs::write(&m.path, m.doc.to_string()).map_err(io_error("write", &m.path))?;
        }
        if has_lock && !plan.is_empty() {
            update_lock(&ws)?;
        }
        for (path, text) in &changelogs {
            std::fs::write(path, text).map_err(io_error("write", path))?;
        }
    }
    Ok(VersionReport {
        dry_run: opts.dry_run,
        semver_checks: semver,
        packages,
        requirements,
        files,
        notes,
    })
}

type Registry = (convoy_index_client::RegistryTarget, SparseIndex);

/// The registry, resolved and opened on first use: `-p` with a fixed level
/// needs none.
fn open_registry<'r>(
    slot: &'r mut Option<Registry>,
    opts: &VersionOptions,
    ws: &Workspace,
) -> Result<&'r Registry, WorkflowError> {
    let registry = match slot.take() {
        Some(r) => r,
        None => {
            let target = convoy_index_client::resolve_registry(&opts.registry, &ws.root)?;
            let index = SparseIndex::for_target(&opts.runtime, &target).map_err(|source| {
                WorkflowError::Index {
                    name: "config.json".into(),
                    source,
                }
            })?;
            (target, index)
        }
    };
    Ok(slot.insert(registry))
}

/// `cargo update --workspace`: only the members' own entries of
/// `Cargo.lock` move. Offline first, as nothing needs the network when only
/// member versions changed; online if cargo says it needs it.
fn update_lock(ws: &Workspace) -> Result<(), WorkflowError> {
    let cmd = |offline: bool| {
        let mut cmd = Cmd::cargo()
            .args(["update", "--workspace", "--quiet"])
            .arg("--manifest-path")
            .arg(ws.root.join("Cargo.toml"))
            .cwd(&ws.root);
        if offline {
            cmd = cmd.arg("--offline");
        }
        cmd
    };
    cmd(true)
        .output()
        .or_else(|_| cmd(false).output())
        .map(drop)
        .map_err(|source| WorkflowError::Cargo {
            action: "update `Cargo.lock` for the new versions (the manifests are written; run `cargo update --workspace`)",
            source,
        })
}

/// The level cargo-semver-checks asks for against the registry's latest
/// version of `m`; `None` when the registry has none (nothing to compare).
fn semver_level(
    ws: &Workspace,
    m: &Member,
    index: &SparseIndex,
) -> Result<Option<Level>, WorkflowError> {
    let versions = index
        .versions(&m.name)
        .map_err(|source| WorkflowError::Index {
            name: m.name.clone(),
            source,
        })?
        .unwrap_or_default();
    let Some(baseline) = crate::changed::latest(&versions) else {
        return Ok(None);
    };
    let bytes = index
        .download(&baseline)
        .map_err(|source| WorkflowError::Index {
            name: m.name.clone(),
            source,
        })?;
    semver_checks::required_level(ws, &m.name, &bytes)
}

/// The conventional commits of each member since its last tag, read once.
struct CommitCache<'a> {
    ws: &'a Workspace,
    git: &'a Git,
    in_git: bool,
    format: &'a str,
    tags: Option<Vec<String>>,
    cache: BTreeMap<String, Vec<Change>>,
}

impl<'a> CommitCache<'a> {
    fn new(ws: &'a Workspace, git: &'a Git, in_git: bool, format: &'a str) -> Self {
        Self {
            ws,
            git,
            in_git,
            format,
            tags: None,
            cache: BTreeMap::new(),
        }
    }

    /// The tag of `m`'s current version if there is one, else its highest
    /// tagged version.
    fn last_tag(&mut self, m: &Member) -> Result<Option<String>, WorkflowError> {
        if !self.in_git {
            return Ok(None);
        }
        if self.tags.is_none() {
            self.tags = Some(self.git.tags().map_err(WorkflowError::Git)?);
        }
        let tags = self.tags.as_deref().unwrap_or_default();
        let mut best: Option<(Version, &String)> = None;
        for tag in tags {
            let Some(v) = tag_version(self.format, &m.name, tag) else {
                continue;
            };
            if v == m.version {
                return Ok(Some(tag.clone()));
            }
            if v < m.version && best.as_ref().is_none_or(|(b, _)| v > *b) {
                best = Some((v, tag));
            }
        }
        Ok(best.map(|(_, t)| t.clone()))
    }

    fn since_text(&mut self, m: &Member) -> String {
        match self.last_tag(m) {
            Ok(Some(tag)) => format!("`{tag}`"),
            _ => "the first commit".to_owned(),
        }
    }

    fn changes(&mut self, m: &Member) -> Result<Vec<Change>, WorkflowError> {
        if let Some(c) = self.cache.get(&m.name) {
            return Ok(c.clone());
        }
        let since = self.last_tag(m)?;
        // Git runs in the workspace root; pathspecs are relative to it.
        let rel = |d: &Path| {
            let r = relative(&self.ws.root, d);
            if r.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                r
            }
        };
        let dir = rel(m.dir());
        // Members nested inside this one's directory are theirs, not its.
        let excludes: Vec<PathBuf> = self
            .ws
            .members
            .iter()
            .filter(|o| o.dir() != m.dir() && o.dir().starts_with(m.dir()))
            .map(|o| PathBuf::from(format!(":(exclude){}", rel(o.dir()).display())))
            .collect();
        let mut paths: Vec<&Path> = vec![&dir];
        paths.extend(excludes.iter().map(PathBuf::as_path));
        let commits = self
            .git
            .log(since.as_deref(), &paths)
            .map_err(WorkflowError::Git)?;
        let changes: Vec<Change> = commits.iter().filter_map(conventional::parse).collect();
        self.cache.insert(m.name.clone(), changes.clone());
        Ok(changes)
    }
}

fn read_manifests(ws: &Workspace) -> Result<Vec<Manifest>, WorkflowError> {
    let mut paths = vec![ws.root.join("Cargo.toml")];
    for m in &ws.members {
        if !paths.contains(&m.manifest_path) {
            paths.push(m.manifest_path.clone());
        }
    }
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(io_error("read", &path))?;
            let doc = text
                .parse::<DocumentMut>()
                .map_err(|e| WorkflowError::Manifest {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            Ok(Manifest {
                path,
                doc,
                dirty: false,
            })
        })
        .collect()
}

fn member_manifest(manifests: &[Manifest], m: &Member) -> Option<usize> {
    manifests.iter().position(|x| x.path == m.manifest_path)
}

fn inherits_version(doc: &DocumentMut) -> bool {
    doc.get("package")
        .and_then(|p| p.get("version"))
        .and_then(Item::as_table_like)
        .and_then(|t| t.get("workspace"))
        .and_then(Item::as_bool)
        == Some(true)
}

/// Whether `e` in `m`'s manifest points at a member other than `m`.
fn is_member_entry_of(e: &Entry, m: &Member, ws: &Workspace) -> bool {
    e.package != m.name && ws.member(&e.package).is_some()
}

/// Every dependency entry, in every member manifest, on a workspace member.
fn dependency_entries(ws: &Workspace, manifests: &[Manifest]) -> Vec<Entry> {
    let mut out = Vec::new();
    for (index, manifest) in manifests.iter().enumerate() {
        let is_member = ws.members.iter().any(|m| m.manifest_path == manifest.path);
        if !is_member {
            continue;
        }
        let doc = &manifest.doc;
        let mut tables: Vec<(Vec<String>, DepKind)> = DEP_TABLES
            .iter()
            .map(|(t, k)| (vec![(*t).to_owned()], *k))
            .collect();
        if let Some(targets) = doc.get("target").and_then(Item::as_table_like) {
            for (spec, _) in targets.iter() {
                for (t, k) in DEP_TABLES {
                    tables.push((vec!["target".into(), spec.to_owned(), t.to_owned()], k));
                }
            }
        }
        for (keys, kind) in tables {
            let mut item = doc.as_item();
            let mut found = true;
            for k in &keys {
                match item.get(k) {
                    Some(i) => item = i,
                    None => {
                        found = false;
                        break;
                    }
                }
            }
            let Some(table) = item.as_table_like().filter(|_| found) else {
                continue;
            };
            for (key, dep) in table.iter() {
                let Some(spec) = dep.as_table_like() else {
                    // `name = "1.0"`: a registry requirement, not the member.
                    continue;
                };
                let inherited = spec.get("workspace").and_then(Item::as_bool) == Some(true);
                let package = if inherited {
                    workspace_dep_package(&manifests[0].doc, key)
                } else {
                    Some(
                        spec.get("package")
                            .and_then(Item::as_str)
                            .unwrap_or(key)
                            .to_owned(),
                    )
                };
                let Some(package) = package.filter(|p| ws.member(p).is_some()) else {
                    continue;
                };
                if !inherited && spec.get("path").is_none() {
                    continue;
                }
                out.push(Entry {
                    manifest: index,
                    table: keys.clone(),
                    key: key.to_owned(),
                    package,
                    kind,
                    inherited,
                    req: spec
                        .get("version")
                        .and_then(Item::as_str)
                        .map(str::to_owned),
                });
            }
        }
    }
    out
}

/// `[workspace.dependencies]` entries with a path: key → written
/// requirement.
fn workspace_requirements(root: &DocumentMut) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    let Some(table) = root
        .get("workspace")
        .and_then(|w| w.get("dependencies"))
        .and_then(Item::as_table_like)
    else {
        return out;
    };
    for (key, dep) in table.iter() {
        let Some(spec) = dep.as_table_like() else {
            continue;
        };
        if spec.get("path").is_none() {
            continue;
        }
        out.insert(
            key.to_owned(),
            spec.get("version")
                .and_then(Item::as_str)
                .map(str::to_owned),
        );
    }
    out
}

/// The package a `[workspace.dependencies]` key names.
fn workspace_dep_package(root: &DocumentMut, key: &str) -> Option<String> {
    let dep = root.get("workspace")?.get("dependencies")?.get(key)?;
    let spec = dep.as_table_like()?;
    Some(
        spec.get("package")
            .and_then(Item::as_str)
            .unwrap_or(key)
            .to_owned(),
    )
}

/// Replaces the string at `keys`, keeping its comments and spacing.
fn set_string(doc: &mut DocumentMut, keys: &[&str], new: &str) -> Result<(), String> {
    let mut item = doc.as_item_mut();
    for k in keys {
        item = item
            .get_mut(k)
            .ok_or_else(|| format!("`{}` is missing", keys.join(".")))?;
    }
    let old = item
        .as_value()
        .filter(|v| v.is_str())
        .ok_or_else(|| format!("`{}` is not a string", keys.join(".")))?;
    let decor = old.decor().clone();
    let mut value = Value::from(new);
    *value.decor_mut() = decor;
    *item = Item::Value(value);
    Ok(())
}

fn table_header(keys: &[String]) -> String {
    let parts: Vec<String> = keys
        .iter()
        .map(|k| {
            if k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                k.clone()
            } else {
                format!("'{k}'")
            }
        })
        .collect();
    format!("[{}]", parts.join("."))
}

fn relative(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_owned()
}

fn today() -> String {
    let date = time::OffsetDateTime::now_utc().date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}
