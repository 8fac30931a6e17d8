//! The plan: publish order, waves, registry state and dev-dependency
//! stripping.

use std::collections::{BTreeMap, HashMap};

use convoy_protocol::index::IndexPackage;
use convoy_workspace::{DepKind, Member, OrderError, PublishOrder, Workspace};
use serde::Serialize;

use crate::diagnostic::{Code, Diagnostic};

/// What the registry holds, as far as we could tell.
#[derive(Debug, Clone)]
pub enum RegistryState {
    /// The index was read: every version of every crate asked about. A crate
    /// missing from the map is not on the registry.
    Known(BTreeMap<String, Vec<IndexPackage>>),
    /// The index could not be read (offline, refused, unreachable); nothing
    /// is guessed.
    Unknown {
        /// Why, for the user.
        reason: String,
    },
}

/// The target registry and its state.
#[derive(Debug, Clone)]
pub struct RegistryView {
    /// Name and URL, for output.
    pub info: RegistryInfo,
    /// What it holds.
    pub state: RegistryState,
}

/// The registry a plan is for, as reported in output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistryInfo {
    /// Name from cargo config (`crates-io` for crates.io), when known.
    pub name: Option<String>,
    /// Sparse index URL.
    pub index: String,
    /// Whether the index was read.
    pub checked: bool,
    /// Why it was not, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the release will do with a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Upload it.
    Publish,
    /// This exact version is on the registry already.
    Skip,
    /// The registry could not be read, so nobody knows.
    Unknown,
}

impl Action {
    /// `publish`, `skip` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Skip => "skip",
            Action::Unknown => "unknown",
        }
    }
}

/// For a skipped package: does the published `.crate` match what would be
/// packaged now?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Content {
    /// Same sha256.
    Same,
    /// Different sha256: the version was published from other sources.
    Different,
    /// Packaging failed or was not asked for.
    Unchecked,
}

/// One package of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedPackage {
    /// Package name.
    pub name: String,
    /// Local version.
    pub version: String,
    /// What happens to it.
    pub action: Action,
    /// Wave, from 0; see [`convoy_workspace::Ordered::wave`].
    pub wave: usize,
    /// Selected packages it waits for.
    pub depends_on: Vec<String>,
    /// Local dev-dependencies Convoy removes from the packaged manifest,
    /// because the registry will not hold a matching version when this
    /// package is uploaded (see `docs/PLANNING.md`).
    pub strip_dev_dependencies: Vec<String>,
    /// For `skip`: whether the published content matches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// The `cksum` in the index, for `skip`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_checksum: Option<String>,
    /// The sha256 of the `.crate` packaged now, when computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_checksum: Option<String>,
    /// The package's manifest.
    pub manifest_path: String,
    /// For a companion (a sublibrary shipped with its parent, see
    /// `docs/SUBLIBRARIES.md`): the parent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sublibrary_of: Option<String>,
}

/// A release plan, in publish order.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Bumped when a field changes meaning or goes away; adding fields keeps it.
    pub format_version: u32,
    /// The target registry.
    pub registry: RegistryInfo,
    /// Every selected package, dependencies first.
    pub packages: Vec<PlannedPackage>,
    /// Number of waves.
    pub waves: usize,
    /// The longest dependency chain, first to last.
    pub critical_path: Vec<String>,
    /// Findings of planning itself (content mismatches, unreadable registry).
    pub diagnostics: Vec<Diagnostic>,
}

impl Plan {
    /// The entry for `name`.
    pub fn package(&self, name: &str) -> Option<&PlannedPackage> {
        self.packages.iter().find(|p| p.name == name)
    }
}

/// Whether the index lists `version` (build metadata ignored, as registries
/// compare versions).
fn published<'a>(
    versions: &'a [IndexPackage],
    version: &semver::Version,
) -> Option<&'a IndexPackage> {
    versions.iter().find(|v| {
        semver::Version::parse(&v.vers).is_ok_and(|p| {
            p.major == version.major
                && p.minor == version.minor
                && p.patch == version.patch
                && p.pre == version.pre
        })
    })
}

/// Builds the plan from already-gathered inputs. `checksums` maps a package
/// to the sha256 of its freshly packaged `.crate`, or to why packaging
/// failed; packages absent from it are reported `unchecked`.
pub fn build_plan(
    ws: &Workspace,
    selected: &[&Member],
    registry: &RegistryView,
    checksums: &BTreeMap<String, Result<String, String>>,
) -> Result<Plan, OrderError> {
    let order = PublishOrder::new(selected)?;
    let members: HashMap<&str, &Member> = selected.iter().map(|m| (m.name.as_str(), *m)).collect();
    let position: HashMap<&str, usize> = order
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.wave))
        .collect();
    let mut diagnostics = Vec::new();
    if let RegistryState::Unknown { reason } = &registry.state {
        diagnostics.push(Diagnostic::new(
            Code::RegistryUnreachable,
            None,
            format!("could not read the index of `{}`, {reason}", registry.info.name.as_deref().unwrap_or(&registry.info.index)),
            "check the network and the token; until then the plan cannot tell what is already published",
        ));
    }
    let mut packages = Vec::with_capacity(order.packages.len());
    for ordered in &order.packages {
        let Some(member) = members.get(ordered.name.as_str()) else {
            continue;
        };
        let existing = match &registry.state {
            RegistryState::Known(map) => Some(
                map.get(&member.name)
                    .and_then(|versions| published(versions, &member.version)),
            ),
            RegistryState::Unknown { .. } => None,
        };
        let action = match existing {
            Some(Some(_)) => Action::Skip,
            Some(None) => Action::Publish,
            None => Action::Unknown,
        };
        let published_checksum = existing.flatten().map(|p| p.cksum.clone());
        let local = checksums.get(&member.name);
        let local_checksum = local.and_then(|r| r.as_ref().ok()).cloned();
        let content = published_checksum.as_ref().map(|remote| match local {
            Some(Ok(sum)) if sum == remote => Content::Same,
            Some(Ok(sum)) => {
                diagnostics.push(Diagnostic::new(
                    Code::VersionContentMismatch,
                    Some(&member.name),
                    format!(
                        "`{} v{}` is already on `{}` with different content (published sha256 {}, local {})",
                        member.name, member.version, registry.info.name.as_deref().unwrap_or(&registry.info.index),
                        short(remote), short(sum)
                    ),
                    "bump the version, the published crate cannot be replaced",
                ));
                Content::Different
            }
            Some(Err(reason)) => {
                diagnostics.push(Diagnostic::new(
                    Code::ContentUnchecked,
                    Some(&member.name),
                    format!("could not compare `{} v{}` with the published crate, {reason}", member.name, member.version),
                    "run `cargo package` for this package to see why packaging fails",
                ));
                Content::Unchecked
            }
            None => Content::Unchecked,
        });
        let strip_dev_dependencies =
            dev_dependencies_to_strip(ws, member, ordered.wave, &position, &registry.state);
        packages.push(PlannedPackage {
            name: member.name.clone(),
            version: member.version.to_string(),
            action,
            wave: ordered.wave,
            depends_on: ordered.depends_on.clone(),
            strip_dev_dependencies,
            content,
            published_checksum,
            local_checksum,
            manifest_path: member.manifest_path.display().to_string(),
            sublibrary_of: member.companion.as_ref().map(|c| c.parent.clone()),
        });
    }
    Ok(Plan {
        format_version: 1,
        registry: registry.info.clone(),
        waves: order.wave_count(),
        critical_path: order.critical_path(),
        packages,
        diagnostics,
    })
}

/// Dev-dependencies on workspace members (by path): Convoy removes them from
/// every packaged `Cargo.toml`, as cargo already removes version-less ones.
///
/// The rule deliberately ignores registry state and waves. The packaged
/// bytes must be a function of the sources alone, or a rerun after a partial
/// release would package a crate differently from the copy it already
/// uploaded and report a content mismatch instead of resuming. Tests still
/// see the dependency locally; users of the published crate never build it.
fn dev_dependencies_to_strip(
    ws: &Workspace,
    member: &Member,
    _wave: usize,
    _waves: &HashMap<&str, usize>,
    _state: &RegistryState,
) -> Vec<String> {
    let mut out: Vec<String> = member
        .dependencies
        .iter()
        .filter(|d| d.kind == DepKind::Dev && d.has_version && d.path().is_some())
        .filter(|d| ws.member(&d.name).is_some())
        .map(|d| d.name.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

fn short(sum: &str) -> &str {
    sum.get(..12).unwrap_or(sum)
}
