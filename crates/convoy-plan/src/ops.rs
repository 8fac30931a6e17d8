//! The entry points with I/O: load the workspace, read the registry, ask
//! cargo for file lists and packages, then call the pure planners.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use convoy_index_client::{
    CargoConfig, ConfigOptions, RegistryRequest, RegistryTarget, ResolveError, SparseIndex,
};
use convoy_workspace::process::Cmd;
use convoy_workspace::{
    LoadError, Member, OrderError, SelectError, Selection, Workspace, package_file_list,
};
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;

use crate::checks::{
    CheckContext, CompanionFacts, FileEntry, FileList, SNIFF_BYTES, check_sublibraries, run_checks,
};
use crate::diagnostic::{CheckReport, Code, Diagnostic};
use crate::plan::{Action, Plan, RegistryInfo, RegistryState, RegistryView, build_plan};

/// Computes what the release would upload now, for comparison with what the
/// registry holds. The release engine implements it with its own packaging
/// (Convoy's manifest changes and lock files included), so that the plan
/// compares the very bytes a publish would send; without it, the plan falls
/// back to plain `cargo package`, which is only right for crates.io targets
/// without sibling dev-dependencies.
pub trait PackageChecksums: Send + Sync {
    /// The sha256 of each member's package for `target`, or why it could
    /// not be made. Network reads (and any overlay) run on `runtime`.
    fn checksums(
        &self,
        runtime: &Handle,
        ws: &Workspace,
        members: &[&Member],
        target: &RegistryTarget,
    ) -> BTreeMap<String, Result<String, String>>;
}

/// A shared [`PackageChecksums`], with a `Debug` that says only whether
/// one is set.
#[derive(Clone)]
pub struct ChecksumSource(pub std::sync::Arc<dyn PackageChecksums>);

impl std::fmt::Debug for ChecksumSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChecksumSource(..)")
    }
}

/// Options shared by `plan` and `check`.
#[derive(Debug, Clone)]
pub struct PlanOpts {
    /// The runtime the registry reads run on: the CLI's one runtime. It
    /// must be multi-thread, and `plan` and `check` must not be called from
    /// one of its tasks, as they block on it.
    pub runtime: Handle,
    /// `--manifest-path`; the current directory's workspace otherwise.
    pub manifest_path: Option<PathBuf>,
    /// `-p` / `--exclude`.
    pub selection: Selection,
    /// `--registry` / `--index` / `--token`.
    pub registry: RegistryRequest,
    /// Do not read the registry (`--offline`); the plan says so.
    pub offline: bool,
    /// `--config` and `--offline` as cargo reads them: the network settings
    /// and registries the plan uses.
    pub config: ConfigOptions,
    /// Package versions that are already published and compare checksums.
    /// Costs one `cargo package` run.
    pub compare_content: bool,
    /// How to package for the comparison; plain `cargo package` when unset.
    pub content: Option<ChecksumSource>,
}

impl PlanOpts {
    /// The options of a plain `plan` of the current directory's workspace
    /// for the registry `cargo publish` would pick, reading on `runtime`.
    pub fn new(runtime: Handle) -> Self {
        Self {
            runtime,
            manifest_path: None,
            selection: Selection::default(),
            registry: RegistryRequest::default(),
            offline: false,
            config: ConfigOptions::default(),
            compare_content: false,
            content: None,
        }
    }
}

/// Why planning could not even start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The workspace could not be read.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The selection is invalid.
    #[error(transparent)]
    Select(#[from] SelectError),
    /// Normal or build dependencies form a cycle.
    #[error(transparent)]
    Order(#[from] OrderError),
    /// The target registry could not be determined.
    #[error(transparent)]
    Registry(#[from] ResolveError),
}

/// `cargo convoy plan`: the release plan for the selected packages.
pub fn plan(opts: &PlanOpts) -> Result<Plan, PlanError> {
    let ws = convoy_workspace::load(opts.manifest_path.as_deref())?;
    let selected = convoy_workspace::select(&ws, &opts.selection)?;
    let target = resolve(opts, &ws)?;
    let mut plan = plan_loaded(&ws, &selected, &target, opts)?;
    // Sublibrary problems and taken companion names stop a release, so the
    // plan says so too, before anything is packaged.
    let facts = if opts.offline {
        CompanionFacts::default()
    } else {
        companion_facts(&opts.runtime, &selected, &target)
    };
    plan.diagnostics
        .extend(check_sublibraries(&ws, &selected, target.label(), &facts));
    Ok(plan)
}

/// The plan for an already loaded workspace and resolved registry; what the
/// release engine calls.
pub fn plan_loaded(
    ws: &Workspace,
    selected: &[&Member],
    target: &RegistryTarget,
    opts: &PlanOpts,
) -> Result<Plan, PlanError> {
    let names: Vec<&str> = selected.iter().map(|m| m.name.as_str()).collect();
    let registry = read_registry(
        &opts.runtime,
        target,
        &names,
        opts.offline || target.http.offline,
    );
    let checksums = if opts.compare_content {
        let published: Vec<&Member> = selected
            .iter()
            .copied()
            .filter(|m| is_published(&registry.state, m))
            .collect();
        match &opts.content {
            Some(source) => source.0.checksums(&opts.runtime, ws, &published, target),
            None => package_checksums(ws, &published),
        }
    } else {
        BTreeMap::new()
    };
    Ok(build_plan(ws, selected, &registry, &checksums)?)
}

/// Every preflight check of `selected` for `target`, file lists included
/// (one `cargo package --list` per package). Severities are not applied
/// yet; [`CheckReport::new`] does that. Registry reads run on `runtime`
/// (see [`PlanOpts::runtime`]).
pub fn preflight(
    runtime: &Handle,
    ws: &Workspace,
    selected: &[&Member],
    target: &RegistryTarget,
) -> Vec<Diagnostic> {
    let files = listed_files(ws, selected);
    preflight_with(runtime, ws, selected, target, &files)
}

/// [`preflight`] with the file lists given: a package missing from `files`
/// is not checked for files. The release engine passes none before it
/// packages and then checks the files of the `.crate`s it made
/// ([`crate::check_files`]), which spares one cargo run per package.
pub fn preflight_with(
    runtime: &Handle,
    ws: &Workspace,
    selected: &[&Member],
    target: &RegistryTarget,
    files: &BTreeMap<String, FileList>,
) -> Vec<Diagnostic> {
    let mut out = run_checks(&CheckContext {
        workspace: ws,
        selected,
        target,
        files,
    });
    let facts = companion_facts(runtime, selected, target);
    out.extend(check_sublibraries(ws, selected, target.label(), &facts));
    out
}

/// `cargo package --list` of every package in `selected`, by name. The runs
/// are independent, so they run side by side.
pub fn listed_files(ws: &Workspace, selected: &[&Member]) -> BTreeMap<String, FileList> {
    let workers = convoy_workspace::process::short_run_workers(None);
    let lists = convoy_workspace::process::map_parallel(selected, workers, |m| file_list(ws, m));
    selected
        .iter()
        .zip(lists)
        .filter_map(|(m, list)| Some((m.name.clone(), list?)))
        .collect()
}

/// Reads what the target says about the selected companions: whether it
/// offers the extension, and which companion names exist there under owners
/// who do not own the parent. A companion already on the target at this
/// very version is this release's own, from an earlier partial run, and
/// is left to the upload step (same bytes: skipped). Unreadable answers
/// claim nothing; the plan reports an unreachable registry on its own.
pub fn companion_facts(
    runtime: &Handle,
    selected: &[&Member],
    target: &RegistryTarget,
) -> CompanionFacts {
    let mut facts = CompanionFacts::default();
    let companions: Vec<&Member> = selected
        .iter()
        .copied()
        .filter(|m| m.companion.is_some())
        .collect();
    if companions.is_empty() {
        return facts;
    }
    let Ok(index) = SparseIndex::for_target(runtime, target) else {
        return facts;
    };
    facts.extension = index.config().ok().map(|c| c.convoy_companions.is_some());
    for m in companions {
        let Some(c) = &m.companion else { continue };
        let Ok(Some(versions)) = index.versions(&m.name) else {
            continue;
        };
        let ours = versions
            .iter()
            .any(|v| semver::Version::parse(&v.vers).is_ok_and(|v| v == m.version));
        if ours {
            continue;
        }
        let owners = index.owners(&m.name).ok().flatten().unwrap_or_default();
        let parent_owners = match index.versions(&c.parent) {
            Ok(Some(_)) => index.owners(&c.parent).ok().flatten().unwrap_or_default(),
            _ => Vec::new(),
        };
        if !owners.iter().any(|o| parent_owners.contains(o)) {
            facts.taken.insert(m.name.clone(), owners);
        }
    }
    facts
}

/// `cargo convoy check`: every preflight check, plus the plan's own findings
/// (content mismatches, an unreadable registry, cycles).
pub fn check(opts: &PlanOpts) -> Result<CheckReport, PlanError> {
    let ws = convoy_workspace::load(opts.manifest_path.as_deref())?;
    let selected = convoy_workspace::select(&ws, &opts.selection)?;
    let target = resolve(opts, &ws)?;
    let mut diagnostics = preflight(&opts.runtime, &ws, &selected, &target);
    match plan_loaded(&ws, &selected, &target, opts) {
        Ok(plan) => diagnostics.extend(plan.diagnostics),
        Err(PlanError::Order(e)) => diagnostics.push(Diagnostic::new(
            Code::DependencyCycle,
            None,
            e.to_string(),
            "break the cycle, for example by making one edge a dev-dependency",
        )),
        Err(e) => return Err(e),
    }
    Ok(CheckReport::new(
        &ws.convoy_metadata,
        selected.len(),
        diagnostics,
    ))
}

/// The target registry, read with the command's cargo configuration in the
/// workspace root.
fn resolve(opts: &PlanOpts, ws: &Workspace) -> Result<RegistryTarget, PlanError> {
    let config = CargoConfig::load(&ws.root, &opts.config)?;
    Ok(config.resolve(&opts.registry)?)
}

fn is_published(state: &RegistryState, m: &Member) -> bool {
    match state {
        RegistryState::Known(map) => map.get(&m.name).is_some_and(|versions| {
            versions.iter().any(|v| {
                semver::Version::parse(&v.vers).is_ok_and(|v| {
                    v.major == m.version.major
                        && v.minor == m.version.minor
                        && v.patch == m.version.patch
                        && v.pre == m.version.pre
                })
            })
        }),
        RegistryState::Unknown { .. } => false,
    }
}

/// Reads the index entries of `names`. Any failure makes the whole state
/// unknown: a half-read registry would make the plan guess. Reads run on
/// `runtime`.
pub fn read_registry(
    runtime: &Handle,
    target: &RegistryTarget,
    names: &[&str],
    offline: bool,
) -> RegistryView {
    let mut info = RegistryInfo {
        name: target.name.clone(),
        index: target.index.clone(),
        checked: false,
        error: None,
    };
    if offline {
        let reason = "`--offline` was given".to_owned();
        info.error = Some(reason.clone());
        return RegistryView {
            info,
            state: RegistryState::Unknown { reason },
        };
    }
    let result = SparseIndex::for_target(runtime, target).and_then(|index| {
        let mut map = BTreeMap::new();
        for name in names {
            if let Some(versions) = index.versions(name)? {
                map.insert((*name).to_owned(), versions);
            }
        }
        Ok(map)
    });
    match result {
        Ok(map) => {
            info.checked = true;
            RegistryView {
                info,
                state: RegistryState::Known(map),
            }
        }
        Err(e) => {
            let reason = error_chain(&e);
            info.error = Some(reason.clone());
            RegistryView {
                info,
                state: RegistryState::Unknown { reason },
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// `cargo package --list` for one package, with sizes and a binary sniff.
pub fn file_list(ws: &Workspace, m: &Member) -> FileList {
    let paths = package_file_list(ws, m.cargo_name()).map_err(|e| error_chain(&e))?;
    Ok(paths.iter().map(|p| file_entry(m.dir(), p)).collect())
}

fn file_entry(dir: &Path, rel: &Path) -> FileEntry {
    let full = dir.join(rel);
    let size = std::fs::metadata(&full).map(|m| m.len()).unwrap_or(0);
    let mut head = Vec::new();
    if size > 0
        && let Ok(file) = std::fs::File::open(&full)
        && file
            .take(SNIFF_BYTES as u64)
            .read_to_end(&mut head)
            .is_err()
    {
        head.clear();
    }
    FileEntry::new(rel.to_string_lossy().replace('\\', "/"), size, &head)
}

/// Packages `members` with `cargo package --no-verify` into a temporary
/// target directory and returns the sha256 of each `.crate`, or why it
/// could not be made. All are packaged in one cargo run so that
/// dependencies between them resolve against each other, as in
/// `cargo publish --workspace`.
pub fn package_checksums(
    ws: &Workspace,
    members: &[&Member],
) -> BTreeMap<String, Result<String, String>> {
    let mut out = BTreeMap::new();
    if members.is_empty() {
        return out;
    }
    let fail_all = |out: &mut BTreeMap<String, Result<String, String>>, reason: String| {
        for m in members {
            out.insert(m.name.clone(), Err(reason.clone()));
        }
    };
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            fail_all(
                &mut out,
                format!("failed to create a temporary directory: {e}"),
            );
            return out;
        }
    };
    let mut cmd = Cmd::cargo()
        .args(["package", "--no-verify", "--allow-dirty", "--quiet"])
        .arg("--manifest-path")
        .arg(ws.root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(dir.path())
        .cwd(&ws.root);
    for m in members {
        cmd = cmd.arg("-p").arg(m.cargo_name());
    }
    if let Err(e) = cmd.output() {
        fail_all(&mut out, format!("packaging failed: {}", error_chain(&e)));
        return out;
    }
    for m in members {
        let file = dir
            .path()
            .join("package")
            .join(format!("{}-{}.crate", m.name, m.version));
        let result = std::fs::read(&file)
            .map(|bytes| hex::encode(Sha256::digest(&bytes)))
            .map_err(|e| format!("failed to read `{}`: {e}", file.display()));
        out.insert(m.name.clone(), result);
    }
    out
}

/// Whether anything in the plan will be uploaded.
pub fn has_work(plan: &Plan) -> bool {
    plan.packages.iter().any(|p| p.action != Action::Skip)
}
