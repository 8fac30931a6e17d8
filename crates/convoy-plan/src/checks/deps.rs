//! Dependencies: what makes a manifest unpublishable or wrong once
//! published.

use convoy_workspace::{DepKind, DepSource, Dependency, Member, Publish};

use super::CheckContext;
use crate::diagnostic::{Code, Diagnostic};

/// Whether the entry survives into the published manifest. Cargo drops
/// dev-dependencies without a version; everything else is kept.
fn is_published(d: &Dependency) -> bool {
    d.kind != DepKind::Dev || d.has_version
}

fn describe(d: &Dependency) -> String {
    let table = match d.kind {
        DepKind::Normal => "dependency",
        DepKind::Build => "build-dependency",
        DepKind::Dev => "dev-dependency",
    };
    match &d.rename {
        Some(r) => format!("{table} `{r}` (package `{}`)", d.name),
        None => format!("{table} `{}`", d.name),
    }
}

pub(super) fn check(cx: &CheckContext<'_>, m: &Member, out: &mut Vec<Diagnostic>) {
    let name = Some(m.name.as_str());
    let target = cx.target;
    let target_name = target.name.as_deref();
    if !m.publish.allows(target_name) {
        let allowed = match &m.publish {
            Publish::Only(list) => list
                .iter()
                .map(|r| format!("`{r}`"))
                .collect::<Vec<_>>()
                .join(", "),
            _ => "none".to_owned(),
        };
        out.push(Diagnostic::new(
            Code::RegistryNotAllowed,
            name,
            format!("`{}` may not be published to `{}`, its `publish` list allows {allowed}", m.name, target.label()),
            "publish to an allowed registry with `--registry`, add this one to `package.publish`, or `--exclude` the package",
        ));
    }
    for d in &m.dependencies {
        let what = describe(d);
        let local = cx.workspace.member(&d.name);
        // A path dependency that is not a member is published too, but is
        // not ours to check beyond having a version.
        if let DepSource::Path(_) = d.source
            && !d.has_version
            && d.kind != DepKind::Dev
        {
            out.push(Diagnostic::new(
                Code::PathDependencyWithoutVersion,
                name,
                format!("{what} has a `path` but no `version`, the registry cannot resolve it"),
                match local {
                    Some(l) => format!("add `version = \"{}\"` next to `path`", l.version),
                    None => "add a `version` next to `path`".to_owned(),
                },
            ));
        }
        if let Some(l) = local
            && l.publish == Publish::Never
            && d.kind != DepKind::Dev
            && d.path().is_some()
        {
            out.push(Diagnostic::new(
                Code::DependencyOnUnpublishable,
                name,
                format!("{what} is a `publish = false` member, the registry will never have it"),
                format!("publish `{}` too, or make the dependency a dev-dependency or optional and drop it", l.name),
            ));
        }
        if let Some(l) = local
            && d.kind != DepKind::Dev
            && d.has_version
            && (d.path().is_some() || d.registry.is_none())
            && !d.req.matches(&l.version)
        {
            out.push(Diagnostic::new(
                Code::LocalVersionMismatch,
                name,
                format!("{what} requires `{} {}` but the workspace has `{} {}`", d.name, d.req, l.name, l.version),
                format!("require `{}` to build against the local crate, or rename the dependency if the older release is wanted", l.version),
            ));
        }
        if let DepSource::Git(url) = &d.source {
            if !d.has_version && d.kind != DepKind::Dev {
                out.push(Diagnostic::new(
                    Code::GitDependency,
                    name,
                    format!(
                        "{what} comes from git (`{url}`) with no `version`, registries refuse it"
                    ),
                    "publish the dependency to the registry and add a `version`",
                ));
            } else if d.has_version {
                out.push(Diagnostic::new(
                    Code::GitDependencyWithVersion,
                    name,
                    format!("{what} comes from git, the published crate will use `{} {}` from the registry instead", d.name, d.req),
                    "make sure the registry release has what the git revision provides",
                ));
            }
        }
        if let DepSource::Registry(_) = d.source
            && !d.has_version
        {
            out.push(Diagnostic::new(
                Code::WildcardDependency,
                name,
                format!("{what} has the requirement `*`, crates.io refuses wildcard requirements"),
                "require the oldest version that works, such as `\"1\"`",
            ));
        }
        if target.is_crates_io() && d.registry.is_some() && is_published(d) {
            out.push(Diagnostic::new(
                Code::CrossRegistryDependency,
                name,
                format!("{what} comes from another registry, crates.io only accepts dependencies from crates.io"),
                "publish the dependency to crates.io, or publish this package to that registry",
            ));
        }
    }
}
