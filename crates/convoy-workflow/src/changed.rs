//! `cargo convoy changed`: which members differ from the registry's copy.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use convoy_index_client::{RegistryRequest, RegistryTarget, SparseIndex};
use convoy_package::{PackageOptions, TargetRegistry};
use convoy_protocol::index::IndexPackage;
use convoy_workspace::{Member, Selection, Workspace};
use semver::Version;
use serde::Serialize;

use crate::WorkflowError;

/// What to compare, against which registry.
#[derive(Debug, Clone)]
pub struct ChangedOptions {
    /// The runtime the registry reads block on: the CLI's one runtime,
    /// multi-thread. [`changed`] must not be called from one of its tasks.
    pub runtime: tokio::runtime::Handle,
    /// `--manifest-path`.
    pub manifest_path: Option<PathBuf>,
    /// `-p` / `--exclude`; every publishable member by default.
    pub selection: Selection,
    /// `--registry` / `--index` / `--token`.
    pub registry: RegistryRequest,
}

/// Why a member counts as changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeReason {
    /// Its current version is not on the registry.
    Unpublished,
    /// Its current version is, with other content.
    Content,
}

/// One member, compared.
#[derive(Debug, Clone, Serialize)]
pub struct ChangedPackage {
    /// Package name.
    pub name: String,
    /// The version in the workspace.
    pub version: String,
    /// The registry's copy: the current version if published, else the
    /// latest published one; `None` for a crate the registry does not have.
    pub published_version: Option<String>,
    /// Whether a release is due.
    pub changed: bool,
    /// Why, when `changed`.
    pub reason: Option<ChangeReason>,
    /// With `reason = content`: the files that differ.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Publishable members that depend on this one (normal or build
    /// dependencies, directly or not): what a change here reaches.
    pub dependents: Vec<String>,
}

/// The result document of `cargo convoy changed --format json`.
#[derive(Debug, Clone, Serialize)]
pub struct ChangedReport {
    /// The registry compared with.
    pub registry: String,
    /// One entry per selected member, by name.
    pub packages: Vec<ChangedPackage>,
}

/// `cargo convoy changed`.
pub fn changed(opts: &ChangedOptions) -> Result<ChangedReport, WorkflowError> {
    let ws = convoy_workspace::load(opts.manifest_path.as_deref())?;
    let selected = convoy_workspace::select(&ws, &opts.selection)?;
    let target = convoy_index_client::resolve_registry(&opts.registry, &ws.root)?;
    let packages = compare(&opts.runtime, &ws, &selected, &target)?;
    Ok(ChangedReport {
        registry: target.label().to_owned(),
        packages,
    })
}

/// Compares `selected` with `target`'s copies, reading on `runtime`.
pub(crate) fn compare(
    runtime: &tokio::runtime::Handle,
    ws: &Workspace,
    selected: &[&Member],
    target: &RegistryTarget,
) -> Result<Vec<ChangedPackage>, WorkflowError> {
    let index =
        SparseIndex::for_target(runtime, target).map_err(|source| WorkflowError::Index {
            name: "config.json".into(),
            source,
        })?;
    let mut published: BTreeMap<&str, (Option<IndexPackage>, Option<IndexPackage>)> =
        BTreeMap::new();
    for m in selected {
        let versions = index
            .versions(&m.name)
            .map_err(|source| WorkflowError::Index {
                name: m.name.clone(),
                source,
            })?
            .unwrap_or_default();
        let current = versions
            .iter()
            .find(|p| Version::parse(&p.vers).is_ok_and(|v| v == m.version))
            .cloned();
        published.insert(&m.name, (current, latest(&versions)));
    }

    // Package the members whose current version is on the registry, in one
    // cargo run, exactly as `publish` packages for this registry.
    let to_compare: Vec<&Member> = selected
        .iter()
        .copied()
        .filter(|m| {
            published
                .get(m.name.as_str())
                .is_some_and(|(c, _)| c.is_some())
        })
        .collect();
    let packaged = if to_compare.is_empty() {
        Vec::new()
    } else {
        let dir = crate::work_dir(ws, "changed");
        convoy_package::package(&PackageOptions {
            workspace: ws,
            members: to_compare.clone(),
            target: target_registry(target),
            target_dir: dir.clone(),
            out_dir: dir.join("out"),
            // The question is what changed, committed or not.
            allow_dirty: true,
            cargo_flags: Vec::new(),
        })?
    };

    let dependents = dependents(ws, selected);
    let mut out = Vec::with_capacity(selected.len());
    for m in selected {
        let (current, latest) = published.remove(m.name.as_str()).unwrap_or((None, None));
        let (changed, reason, files, shown) = match current {
            None => (
                true,
                Some(ChangeReason::Unpublished),
                Vec::new(),
                latest.map(|p| p.vers),
            ),
            Some(pkg) => {
                let local = packaged.iter().find(|p| p.name == m.name).ok_or_else(|| {
                    WorkflowError::Version {
                        name: m.name.clone(),
                        reason: "Convoy's packaging did not produce it".into(),
                    }
                })?;
                let ours =
                    std::fs::read(&local.path).map_err(crate::io_error("read", &local.path))?;
                let theirs = index
                    .download(&pkg)
                    .map_err(|source| WorkflowError::Index {
                        name: m.name.clone(),
                        source,
                    })?;
                let files = convoy_package::content_differences(
                    ws,
                    m,
                    &target_registry(target),
                    &ours,
                    &theirs,
                )
                .map_err(|source| WorkflowError::Compare {
                    name: m.name.clone(),
                    source,
                })?;
                let changed = !files.is_empty();
                (
                    changed,
                    changed.then_some(ChangeReason::Content),
                    files,
                    Some(pkg.vers),
                )
            }
        };
        out.push(ChangedPackage {
            name: m.name.clone(),
            version: m.version.to_string(),
            published_version: shown,
            changed,
            reason,
            files,
            dependents: dependents.get(m.name.as_str()).cloned().unwrap_or_default(),
        });
    }
    Ok(out)
}

pub(crate) fn target_registry(target: &RegistryTarget) -> TargetRegistry {
    TargetRegistry {
        index_url: target.index.clone(),
        is_crates_io: target.is_crates_io(),
    }
}

/// The highest version, preferring those not yanked.
pub(crate) fn latest(versions: &[IndexPackage]) -> Option<IndexPackage> {
    let parsed = |p: &IndexPackage| Version::parse(&p.vers).ok();
    let best = |yanked_ok: bool| {
        versions
            .iter()
            .filter(|p| yanked_ok || !p.yanked)
            .filter_map(|p| parsed(p).map(|v| (v, p)))
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, p)| p.clone())
    };
    best(false).or_else(|| best(true))
}

/// For each selected member, the selected members reaching it through
/// normal or build dependencies, transitively.
fn dependents<'a>(ws: &'a Workspace, selected: &[&'a Member]) -> BTreeMap<&'a str, Vec<String>> {
    let names: BTreeSet<&str> = selected.iter().map(|m| m.name.as_str()).collect();
    let mut direct: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for m in &ws.members {
        for d in &m.dependencies {
            if d.kind.orders() && d.name != m.name && ws.member(&d.name).is_some() {
                direct
                    .entry(d.name.as_str())
                    .or_default()
                    .insert(m.name.as_str());
            }
        }
    }
    let mut out = BTreeMap::new();
    for m in selected {
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut stack = vec![m.name.as_str()];
        while let Some(n) = stack.pop() {
            for d in direct.get(n).into_iter().flatten() {
                if seen.insert(d) {
                    stack.push(d);
                }
            }
        }
        seen.remove(m.name.as_str());
        out.insert(
            m.name.as_str(),
            seen.into_iter()
                .filter(|n| names.contains(n))
                .map(str::to_owned)
                .collect(),
        );
    }
    out
}
